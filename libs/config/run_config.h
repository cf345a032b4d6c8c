// Run configuration: YAML parsing, defaults, validation, sweep expansion and the generated
// reference. The schema is temper.v1.RunConfig; each field's `(temper.v1.field)` option in
// proto/temper/v1/config.proto holds its default, range, allowed values and meaning, and every
// function here is driven from those by reflection, so nothing restates the schema.
//
// All functions are pure and thread-safe.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "temper/v1/config.pb.h"

namespace temper {

// One problem with a config, located by its YAML path ("lora.target_modules[2]",
// "labels[team]", "sweep.grid[lora.r][1]"; "" is the whole document).
struct ConfigError {
  std::string path;
  int line = 0;    // 1-based; 0 when unknown (a config that did not come from YAML)
  int column = 0;  // 1-based; 0 when unknown
  std::string message;

  // "file:line:col: path: message"; the location is left out when unknown.
  std::string ToString(std::string_view file_name) const;
};

// Largest YAML input accepted.
inline constexpr size_t kMaxConfigBytes = size_t{1} << 20;
// Most runs one sweep may expand to.
inline constexpr int kMaxSweepPoints = 1024;

// Parses a run config written in YAML, strictly: unknown or duplicate keys, wrong types, values
// out of range or not among the allowed choices, missing required keys, malformed YAML, invalid
// UTF-8 and oversize input are all errors. Every error is collected (not just the first), with
// its path, line and column. On success returns the config with defaults applied, valid by
// ValidateRunConfig. On failure returns InvalidArgument whose message lists the errors one per
// line as "file:line:col: path: message", and no config. `errors`, when not null, receives the
// errors (cleared first; empty on success).
absl::StatusOr<v1::RunConfig> ParseRunConfigYaml(std::string_view yaml, std::string_view file_name,
                                                 std::vector<ConfigError>* errors = nullptr);

// The config as YAML that ParseRunConfigYaml reads back to an equal message.
std::string RunConfigToYaml(const v1::RunConfig& config);

// Sets every absent key that has a default to that default (creating sub-messages as needed).
// Idempotent. Derived defaults (model.tokenizer) are left for their consumers.
void ApplyDefaults(v1::RunConfig* config);

// Every problem with `config` as received from anywhere (the coordinator re-validates what the
// CLI sent): required keys, ranges, choices, the name rule [A-Za-z0-9._-]{1,128}, UTF-8 in every
// string, length limits, sweep keys and values, and cross-field rules (eval.pass_at_k each at
// most eval.samples_per_task, train.warmup_steps at most train.max_steps, data for the rounds),
// judged with defaults applied. With a sweep, cross-field rules are checked at every grid point.
// Errors carry paths but no lines; their messages match ParseRunConfigYaml's.
std::vector<ConfigError> CollectConfigErrors(const v1::RunConfig& config);

// OK when CollectConfigErrors finds nothing; else InvalidArgument listing "path: message" lines.
absl::Status ValidateRunConfig(const v1::RunConfig& config);

// The runs a config stands for: itself (defaults applied) when it has no sweep grid, else one run
// per point of the cartesian product of the grid, in a deterministic order (keys sorted, the last
// key varying fastest). Point i is named "<name>-<i>" (i zero-padded to the width of the largest
// index), has no sweep, has defaults applied and carries labels "sweep" = <name> and
// "sweep.<key>" = <value>. Fails with InvalidArgument when the config or any point is invalid or
// the grid exceeds kMaxSweepPoints.
absl::StatusOr<std::vector<v1::RunConfig>> ExpandSweep(const v1::RunConfig& config);

// The markdown reference of every key (path, type, default, allowed values, meaning);
// docs/config.md is exactly this text.
std::string RenderConfigReference();

}  // namespace temper
