// Structured logging: spdlog with one JSON object per line when TEMPER_LOG_FORMAT=json (the default
// for services when stderr is not a terminal), human-readable text otherwise.
#pragma once

#include <string_view>

#include "spdlog/spdlog.h"

namespace temper {

// Configures the default logger for a process named `component`. Safe to call more than once.
void InitLogging(std::string_view component);

}  // namespace temper
