#include "libs/common/log.h"

#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <string>

#include "libs/common/strings.h"
#include "spdlog/pattern_formatter.h"
#include "spdlog/sinks/stdout_color_sinks.h"

namespace temper {
namespace {

// %* : the log message, escaped for a JSON string.
class JsonMessageFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    std::string escaped = JsonEscape(std::string_view(msg.payload.data(), msg.payload.size()));
    dest.append(escaped.data(), escaped.data() + escaped.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JsonMessageFlag>();
  }
};

}  // namespace

void InitLogging(std::string_view component) {
  const char* fmt_env = std::getenv("TEMPER_LOG_FORMAT");
  std::string format = fmt_env ? fmt_env : (isatty(STDERR_FILENO) ? "text" : "json");
  auto logger = spdlog::get(std::string(component));
  if (!logger) logger = spdlog::stderr_color_mt(std::string(component));
  if (format == "json") {
    auto formatter = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
    formatter->add_flag<JsonMessageFlag>('*').set_pattern(
        R"({"ts":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l","component":")" + JsonEscape(component) +
        R"(","pid":%P,"tid":%t,"msg":"%*"})");
    logger->set_formatter(std::move(formatter));
  } else {
    logger->set_pattern("%H:%M:%S.%e %^%L%$ " + std::string(component) + ": %v");
  }
  const char* level = std::getenv("TEMPER_LOG_LEVEL");
  logger->set_level(level ? spdlog::level::from_str(level) : spdlog::level::info);
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

}  // namespace temper
