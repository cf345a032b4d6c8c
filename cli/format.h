// How the `temper` CLI shows things to people and to programs: aligned tables, times, durations,
// enum names, and protobuf messages as JSON with stable (proto) field names. Pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "google/protobuf/message.h"
#include "temper/v1/checkpoint.pb.h"
#include "temper/v1/common.pb.h"
#include "temper/v1/run.pb.h"

namespace temper::cli {

// Debian's Abseil has its own absl::string_view (not std::string_view): these convert at the
// boundary so the CLI's code uses std::string_view throughout.
inline absl::string_view AV(std::string_view s) { return absl::string_view(s.data(), s.size()); }
inline std::string_view SV(absl::string_view s) { return std::string_view(s.data(), s.size()); }

// What human output depends on besides the data: the current time (for ages) and the zone
// times are shown in. Tests pin both.
struct HumanFormat {
  absl::Time now = absl::Now();
  absl::TimeZone zone = absl::LocalTimeZone();
};

// A table of text: a header row, then rows. Columns are separated by two spaces and padded to
// their widest cell (counted in code points); the last column is not padded.
class Table {
 public:
  explicit Table(std::vector<std::string> header);
  // REQUIRES: row.size() equals the header's.
  void AddRow(std::vector<std::string> row);
  void Print(std::ostream& out) const;
  size_t rows() const { return rows_.size() - 1; }

 private:
  std::vector<std::vector<std::string>> rows_;
};

// `s` made safe to print on a terminal: control characters (C0, DEL, C1) become "\xNN" or "\n"
// style escapes and malformed UTF-8 bytes become "\xNN"; everything else is kept.
std::string Printable(std::string_view s);

// The number of code points in valid UTF-8 `s` (bytes otherwise).
size_t DisplayWidth(std::string_view s);

// `s` cut to at most `width` code points, ending in "…" when cut.
std::string Truncate(std::string_view s, size_t width);

// "2025-01-02 15:04:05" in fmt.zone; "-" for 0.
std::string FormatTimeUs(int64_t us, const HumanFormat& fmt);
// "45s", "4m05s", "2h03m", "3d04h"; negative durations show as "0s".
std::string HumanDuration(absl::Duration d);
// HumanDuration(now - t) + " ago"; "-" for 0.
std::string FormatAgeUs(int64_t us, const HumanFormat& fmt);

// Lower-case short names: "running", "train", "oom", ...
std::string RunStateName(v1::RunState s);
std::string JobStateName(v1::JobState s);
std::string JobKindName(v1::JobKind k);
std::string FailureClassName(v1::FailureClass c);
// Parses "running" / "RUNNING" / "RUN_STATE_RUNNING" (likewise for jobs); nullopt when unknown.
std::optional<v1::RunState> ParseRunState(std::string_view s);
std::optional<v1::JobState> ParseJobState(std::string_view s);
// The accepted names, for messages: "pending, running, ...".
std::string RunStateNames();
std::string JobStateNames();

// The message as one JSON document: proto field names (snake_case), every field present even
// when it has its default value, enums by name, int64 as strings (proto3 JSON), indented.
std::string ToJson(const google::protobuf::Message& m);

// Human renderings of the CLI's listings.
void PrintRunsTable(const std::vector<v1::Run>& runs, const HumanFormat& fmt, std::ostream& out);
void PrintRun(const v1::Run& run, const HumanFormat& fmt, std::ostream& out);
void PrintJobsTable(const std::vector<v1::Job>& jobs, const HumanFormat& fmt, std::ostream& out);
void PrintWorkersTable(const std::vector<v1::Worker>& workers, const HumanFormat& fmt, std::ostream& out);
// `lineage` adds a DEPTH column (checkpoints from GetLineage).
void PrintCheckpointsTable(const std::vector<v1::Checkpoint>& checkpoints, bool lineage, const HumanFormat& fmt,
                           std::ostream& out);

// The watch line for a terminal: "[#####.....]  45%  <type>: <message>" cut to `width` columns.
std::string ProgressLine(double progress, std::string_view type, std::string_view message, size_t width);
// The watch line for a pipe or file: "<RFC 3339 time> <type> <message>".
std::string EventLine(const v1::RunEvent& event, const HumanFormat& fmt);

}  // namespace temper::cli
