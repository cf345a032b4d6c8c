#include "cli/format.h"

#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "libs/common/strings.h"

namespace temper::cli {
namespace {

// Length of the well-formed UTF-8 sequence starting at s[i], or 0 when it is malformed.
size_t Utf8SequenceLength(std::string_view s, size_t i) {
  auto c = static_cast<unsigned char>(s[i]);
  size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
  if (n == 0 || i + n > s.size()) return 0;
  return IsValidUtf8(s.substr(i, n)) ? n : 0;
}

std::string EnumSuffix(const google::protobuf::EnumDescriptor* d, int value, std::string_view prefix) {
  const auto* v = d->FindValueByNumber(value);
  if (v == nullptr) return absl::StrCat(value);
  std::string name(absl::StripPrefix(v->name(), AV(prefix)));
  absl::AsciiStrToLower(&name);
  return name;
}

template <typename E>
std::optional<E> ParseEnum(const google::protobuf::EnumDescriptor* d, std::string_view s, std::string_view prefix) {
  std::string upper(s);
  absl::AsciiStrToUpper(&upper);
  if (!absl::StartsWith(upper, AV(prefix))) upper = absl::StrCat(AV(prefix), upper);
  const auto* v = d->FindValueByName(upper);
  if (v == nullptr || v->number() == 0) return std::nullopt;
  return static_cast<E>(v->number());
}

std::string EnumNames(const google::protobuf::EnumDescriptor* d, std::string_view prefix) {
  std::vector<std::string> names;
  for (int i = 0; i < d->value_count(); ++i)
    if (d->value(i)->number() != 0) names.push_back(EnumSuffix(d, d->value(i)->number(), prefix));
  return absl::StrJoin(names, ", ");
}

bool IsTerminal(v1::RunState s) {
  return s == v1::RUN_STATE_SUCCEEDED || s == v1::RUN_STATE_FAILED || s == v1::RUN_STATE_CANCELLED;
}

std::string OrDash(std::string s) { return s.empty() ? "-" : s; }
std::string IdOrDash(int64_t id) { return id == 0 ? "-" : absl::StrCat(id); }

}  // namespace

Table::Table(std::vector<std::string> header) { rows_.push_back(std::move(header)); }

void Table::AddRow(std::vector<std::string> row) {
  for (auto& cell : row) cell = Printable(cell);
  rows_.push_back(std::move(row));
}

void Table::Print(std::ostream& out) const {
  size_t columns = rows_[0].size();
  std::vector<size_t> width(columns, 0);
  for (const auto& row : rows_)
    for (size_t c = 0; c < columns && c < row.size(); ++c) width[c] = std::max(width[c], DisplayWidth(row[c]));
  for (const auto& row : rows_) {
    std::string line;
    for (size_t c = 0; c < columns && c < row.size(); ++c) {
      line += row[c];
      if (c + 1 < columns) line.append(width[c] - DisplayWidth(row[c]) + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out << line << "\n";
  }
}

std::string Printable(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    size_t n = Utf8SequenceLength(s, i);
    auto c = static_cast<unsigned char>(s[i]);
    if (n == 0) {
      out += absl::StrFormat("\\x%02x", c);
      ++i;
      continue;
    }
    bool c1 = n == 2 && c == 0xC2 && static_cast<unsigned char>(s[i + 1]) < 0xA0;
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c < 0x20 || c == 0x7F) {
      out += absl::StrFormat("\\x%02x", c);
    } else if (c1) {
      out += absl::StrFormat("\\u%04x", static_cast<unsigned char>(s[i + 1]));
    } else {
      out.append(s.substr(i, n));
    }
    i += n;
  }
  return out;
}

size_t DisplayWidth(std::string_view s) {
  if (!IsValidUtf8(s)) return s.size();
  return std::count_if(s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; });
}

std::string Truncate(std::string_view s, size_t width) {
  if (DisplayWidth(s) <= width) return std::string(s);
  if (width == 0) return "";
  std::string out;
  size_t points = 0;
  for (size_t i = 0; i < s.size() && points + 1 < width;) {
    size_t n = std::max<size_t>(1, Utf8SequenceLength(s, i));
    out.append(s.substr(i, n));
    i += n;
    ++points;
  }
  return out + "…";
}

std::string FormatTimeUs(int64_t us, const HumanFormat& fmt) {
  if (us == 0) return "-";
  return absl::FormatTime("%Y-%m-%d %H:%M:%S", absl::FromUnixMicros(us), fmt.zone);
}

std::string HumanDuration(absl::Duration d) {
  int64_t s = std::max<int64_t>(0, absl::ToInt64Seconds(d));
  if (s < 60) return absl::StrCat(s, "s");
  if (s < 3600) return absl::StrFormat("%dm%02ds", s / 60, s % 60);
  if (s < 86400) return absl::StrFormat("%dh%02dm", s / 3600, s % 3600 / 60);
  return absl::StrFormat("%dd%02dh", s / 86400, s % 86400 / 3600);
}

std::string FormatAgeUs(int64_t us, const HumanFormat& fmt) {
  if (us == 0) return "-";
  return HumanDuration(fmt.now - absl::FromUnixMicros(us)) + " ago";
}

std::string RunStateName(v1::RunState s) { return EnumSuffix(v1::RunState_descriptor(), s, "RUN_STATE_"); }
std::string JobStateName(v1::JobState s) { return EnumSuffix(v1::JobState_descriptor(), s, "JOB_STATE_"); }
std::string JobKindName(v1::JobKind k) { return EnumSuffix(v1::JobKind_descriptor(), k, "JOB_KIND_"); }
std::string FailureClassName(v1::FailureClass c) {
  return EnumSuffix(v1::FailureClass_descriptor(), c, "FAILURE_CLASS_");
}
std::optional<v1::RunState> ParseRunState(std::string_view s) {
  return ParseEnum<v1::RunState>(v1::RunState_descriptor(), s, "RUN_STATE_");
}
std::optional<v1::JobState> ParseJobState(std::string_view s) {
  return ParseEnum<v1::JobState>(v1::JobState_descriptor(), s, "JOB_STATE_");
}
std::string RunStateNames() { return EnumNames(v1::RunState_descriptor(), "RUN_STATE_"); }
std::string JobStateNames() { return EnumNames(v1::JobState_descriptor(), "JOB_STATE_"); }

std::string ToJson(const google::protobuf::Message& m) {
  google::protobuf::util::JsonPrintOptions opts;
  opts.add_whitespace = true;
  opts.preserve_proto_field_names = true;
  opts.always_print_primitive_fields = true;
  std::string out;
  // Printing a well-formed message cannot fail (its Any fields, which could, are not used).
  (void)google::protobuf::util::MessageToJsonString(m, &out, opts);
  return out;
}

void PrintRunsTable(const std::vector<v1::Run>& runs, const HumanFormat& fmt, std::ostream& out) {
  Table t({"ID", "NAME", "STATE", "ROUND", "JOBS", "CREATED", "DURATION", "ERROR"});
  for (const auto& r : runs) {
    absl::Time end = IsTerminal(r.state()) ? absl::FromUnixMicros(r.updated_at_us()) : fmt.now;
    std::string state = RunStateName(r.state());
    if (r.cancel_requested() && !IsTerminal(r.state())) state += " (cancelling)";
    t.AddRow({absl::StrCat(r.id()), r.name(), state, absl::StrCat(r.round(), "/", r.total_rounds()),
              absl::StrCat(r.jobs_done(), "/", r.jobs_total()), FormatTimeUs(r.created_at_us(), fmt),
              HumanDuration(end - absl::FromUnixMicros(r.created_at_us())), Truncate(OrDash(r.error()), 60)});
  }
  t.Print(out);
}

void PrintRun(const v1::Run& r, const HumanFormat& fmt, std::ostream& out) {
  absl::Time end = IsTerminal(r.state()) ? absl::FromUnixMicros(r.updated_at_us()) : fmt.now;
  Table t({"", ""});
  t.AddRow({"id:", absl::StrCat(r.id())});
  t.AddRow({"name:", r.name()});
  t.AddRow({"state:", RunStateName(r.state()) + (r.cancel_requested() && !IsTerminal(r.state()) ? " (cancel requested)" : "")});
  t.AddRow({"round:", absl::StrCat(r.round(), " of ", r.total_rounds())});
  t.AddRow({"jobs:", absl::StrCat(r.jobs_done(), " of ", r.jobs_total(), " done")});
  t.AddRow({"created:", absl::StrCat(FormatTimeUs(r.created_at_us(), fmt), " (", FormatAgeUs(r.created_at_us(), fmt), ")")});
  t.AddRow({"updated:", absl::StrCat(FormatTimeUs(r.updated_at_us(), fmt), " (", FormatAgeUs(r.updated_at_us(), fmt), ")")});
  t.AddRow({"duration:", HumanDuration(end - absl::FromUnixMicros(r.created_at_us()))});
  if (!r.config().description().empty()) t.AddRow({"description:", r.config().description()});
  if (!r.config().model().path().empty()) t.AddRow({"model:", r.config().model().path()});
  for (const auto& [k, v] : std::map<std::string, std::string>(r.config().labels().begin(), r.config().labels().end()))
    t.AddRow({"label:", absl::StrCat(k, "=", v)});
  if (!r.error().empty()) t.AddRow({"error:", r.error()});
  std::ostringstream body;
  t.Print(body);
  // The header row of an all-blank header is an empty line: drop it.
  std::string text = body.str();
  out << text.substr(text.find('\n') + 1);
}

void PrintJobsTable(const std::vector<v1::Job>& jobs, const HumanFormat& fmt, std::ostream& out) {
  Table t({"ID", "RUN", "ROUND", "KIND", "STATE", "ATTEMPTS", "WORKER", "CREATED", "ERROR"});
  for (const auto& j : jobs) {
    std::string error = j.error();
    if (j.failure_class() != v1::FAILURE_CLASS_UNSPECIFIED)
      error = absl::StrCat(FailureClassName(j.failure_class()), error.empty() ? "" : ": ", error);
    std::string kind = JobKindName(j.kind());
    if (j.world_size() > 1) absl::StrAppend(&kind, " ", j.rank(), "/", j.world_size());
    t.AddRow({absl::StrCat(j.id()), absl::StrCat(j.run_id()), absl::StrCat(j.round()), kind, JobStateName(j.state()),
              absl::StrCat(j.attempts(), "/", j.max_attempts()), OrDash(j.worker_id()),
              FormatTimeUs(j.created_at_us(), fmt), Truncate(OrDash(error), 60)});
  }
  t.Print(out);
}

void PrintWorkersTable(const std::vector<v1::Worker>& workers, const HumanFormat& fmt, std::ostream& out) {
  Table t({"ID", "HOST", "STATE", "KINDS", "GPUS", "CPUS", "HEARTBEAT"});
  for (const auto& w : workers) {
    std::vector<std::string> kinds;
    for (int k : w.kinds()) kinds.push_back(JobKindName(static_cast<v1::JobKind>(k)));
    std::string gpus = absl::StrCat(w.gpus());
    if (!w.gpu_models().empty()) {
      std::vector<std::string> models(w.gpu_models().begin(), w.gpu_models().end());
      models.erase(std::unique(models.begin(), models.end()), models.end());
      absl::StrAppend(&gpus, " (", absl::StrJoin(models, ", "), ")");
    }
    t.AddRow({w.id(), OrDash(w.hostname()), OrDash(w.state()), OrDash(absl::StrJoin(kinds, ",")), gpus,
              absl::StrCat(w.cpu_cores()), FormatAgeUs(w.last_heartbeat_us(), fmt)});
  }
  t.Print(out);
}

void PrintCheckpointsTable(const std::vector<v1::Checkpoint>& checkpoints, bool lineage, const HumanFormat& fmt,
                           std::ostream& out) {
  std::vector<std::string> header = {"ID", "PARENT", "RUN", "ROUND", "STEP", "CREATED", "URI"};
  if (lineage) header.insert(header.begin(), "DEPTH");
  Table t(header);
  for (const auto& c : checkpoints) {
    std::vector<std::string> row = {absl::StrCat(c.id()), IdOrDash(c.parent_id()), absl::StrCat(c.run_id()),
                                    absl::StrCat(c.round()), absl::StrCat(c.step()),
                                    FormatTimeUs(c.created_at_us(), fmt), c.uri()};
    if (lineage) row.insert(row.begin(), absl::StrCat(c.depth()));
    t.AddRow(std::move(row));
  }
  t.Print(out);
}

std::string ProgressLine(double progress, std::string_view type, std::string_view message, size_t width) {
  constexpr int kBar = 20;
  double p = std::isfinite(progress) ? std::clamp(progress, 0.0, 1.0) : 0.0;
  int filled = static_cast<int>(std::lround(p * kBar));
  std::string line = absl::StrCat("[", std::string(filled, '#'), std::string(kBar - filled, '.'), "] ",
                                  absl::StrFormat("%3d%%", static_cast<int>(std::floor(p * 100))), "  ",
                                  Printable(type));
  if (!message.empty()) absl::StrAppend(&line, ": ", Printable(message));
  return Truncate(line, width);
}

std::string EventLine(const v1::RunEvent& e, const HumanFormat& fmt) {
  return absl::StrCat(absl::FormatTime("%Y-%m-%dT%H:%M:%E3S%Ez", absl::FromUnixMicros(e.at_us()), fmt.zone), " ",
                      Printable(e.type()), " ", Printable(e.message()));
}

}  // namespace temper::cli
