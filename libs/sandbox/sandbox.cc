#include "libs/sandbox/sandbox.h"

#include <array>

namespace temper::sandbox {
namespace {

constexpr std::array<std::pair<Limit, std::string_view>, 7> kLimitNames = {{
    {Limit::kNone, "none"},
    {Limit::kWallTime, "wall_time"},
    {Limit::kMemory, "memory"},
    {Limit::kPids, "pids"},
    {Limit::kCpuTime, "cpu_time"},
    {Limit::kFileSize, "file_size"},
    {Limit::kOutput, "output"},
}};

}  // namespace

std::string_view LimitName(Limit limit) {
  for (const auto& [l, name] : kLimitNames) {
    if (l == limit) return name;
  }
  return "unknown";
}

std::optional<Limit> LimitFromName(std::string_view name) {
  for (const auto& [l, n] : kLimitNames) {
    if (n == name) return l;
  }
  return std::nullopt;
}

}  // namespace temper::sandbox
