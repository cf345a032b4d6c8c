#include "cli/commands.h"

#include <openssl/evp.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "libs/common/strings.h"
#include "libs/config/run_config.h"
#include "nlohmann/json.hpp"

namespace temper::cli {
namespace {

constexpr size_t kMaxIdempotencyKeyBytes = 256;  // the coordinator's limit

// Prints a failure as "temper: <message>", one line per line of the message, and returns 1.
int Fail(const absl::Status& s, Io& io) {
  for (absl::string_view line : absl::StrSplit(s.message(), '\n'))
    if (!line.empty()) io.err << "temper: " << Printable(SV(line)) << "\n";
  if (s.message().empty()) io.err << "temper: " << absl::StatusCodeToString(s.code()) << "\n";
  return kExitFailure;
}

int Usage(std::string_view message, Io& io) {
  io.err << "temper: " << Printable(message) << "\n";
  return kExitUsage;
}

bool IsTerminal(v1::RunState s) {
  return s == v1::RUN_STATE_SUCCEEDED || s == v1::RUN_STATE_FAILED || s == v1::RUN_STATE_CANCELLED;
}

// Errors worth retrying while following a run: the connection, not the request.
bool IsTransient(const absl::Status& s) {
  return absl::IsUnavailable(s) || absl::IsDeadlineExceeded(s) || absl::IsAborted(s);
}

template <typename Enum>
bool ParseStates(const std::vector<std::string>& names, std::optional<Enum> (*parse)(std::string_view),
                 const std::string& valid, google::protobuf::RepeatedField<int>* out, Io& io) {
  for (const auto& name : names) {
    auto s = parse(name);
    if (!s) {
      Usage(absl::StrCat("unknown state \"", name, "\"; expected one of: ", valid), io);
      return false;
    }
    out->Add(*s);
  }
  return true;
}

// The run's summary for the end of a watch: "run 7 (name) succeeded" plus its error.
std::string Summary(const v1::Run& run) {
  std::string line = absl::StrCat("run ", run.id(), " (", run.name(), ") ", RunStateName(run.state()));
  if (!run.error().empty() && run.state() != v1::RUN_STATE_SUCCEEDED) absl::StrAppend(&line, ": ", run.error());
  return Printable(line);
}

std::string CompactJson(const google::protobuf::Message& m) {
  return nlohmann::json::parse(ToJson(m)).dump();
}

}  // namespace

std::string DefaultIdempotencyKey(std::string_view file_bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(file_bytes.data(), file_bytes.size(), digest, &length, EVP_sha256(), nullptr);
  std::string key = "sha256:";
  for (unsigned int i = 0; i < length; ++i) absl::StrAppendFormat(&key, "%02x", digest[i]);
  return key;
}

int SubmitYaml(CoordinatorClient& client, std::string_view yaml, const std::string& file_name,
               const SubmitOptions& options, Io& io) {
  if (options.json && options.watch) return Usage("--json and --watch cannot be combined", io);
  std::vector<ConfigError> errors;
  auto config = ParseRunConfigYaml(yaml, file_name, &errors);
  if (!config.ok()) {
    for (const auto& e : errors) io.err << Printable(e.ToString(file_name)) << "\n";
    if (errors.empty()) io.err << Printable(SV(config.status().message())) << "\n";
    io.err << "temper: " << Printable(file_name) << ": " << std::max<size_t>(errors.size(), 1)
           << (errors.size() == 1 ? " error" : " errors") << "; nothing was submitted\n";
    return kExitUsage;
  }
  auto runs = ExpandSweep(*config);
  if (!runs.ok()) {
    for (absl::string_view line : absl::StrSplit(runs.status().message(), '\n'))
      if (!line.empty()) io.err << Printable(file_name) << ": " << Printable(SV(line)) << "\n";
    io.err << "temper: " << Printable(file_name) << ": invalid sweep; nothing was submitted\n";
    return kExitUsage;
  }
  bool sweep = config->has_sweep();
  std::string key = options.idempotency_key.empty() ? DefaultIdempotencyKey(yaml) : options.idempotency_key;
  if (!IsValidUtf8(key)) return Usage("--idempotency-key is not valid UTF-8", io);
  size_t suffix = sweep ? absl::StrCat("/", runs->size()).size() : 0;
  if (key.size() + suffix > kMaxIdempotencyKeyBytes)
    return Usage(absl::StrCat("--idempotency-key is longer than ", kMaxIdempotencyKeyBytes - suffix, " bytes"), io);

  std::vector<v1::Run> submitted;
  for (size_t i = 0; i < runs->size(); ++i) {
    v1::SubmitRunRequest req;
    *req.mutable_config() = (*runs)[i];
    req.set_idempotency_key(sweep ? absl::StrCat(key, "/", i) : key);
    auto run = client.SubmitRun(req);
    if (!run.ok()) {
      if (!submitted.empty())
        io.err << "temper: " << submitted.size() << " of " << runs->size()
               << " runs were submitted; submitting the same file again resumes without duplicates"
               << (options.idempotency_key.empty() ? "" : " (with the same --idempotency-key)") << "\n";
      return Fail(run.status(), io);
    }
    if (!options.json) {
      io.out << "submitted run " << run->id() << " " << Printable(run->name()) << " ("
             << RunStateName(run->state()) << ")\n";
      io.out.flush();
    }
    submitted.push_back(*std::move(run));
  }
  if (options.json) {
    nlohmann::json doc = {{"runs", nlohmann::json::array()}};
    for (const auto& r : submitted) doc["runs"].push_back(nlohmann::json::parse(ToJson(r)));
    io.out << doc.dump(2) << "\n";
  }
  if (!options.watch) return kExitOk;
  int code = kExitOk;
  for (const auto& r : submitted) code = std::max(code, WatchRun(client, r.id(), WatchOptions(), io));
  return code;
}

int SubmitFile(CoordinatorClient& client, const std::string& path, const SubmitOptions& options, Io& io) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) return Usage(absl::StrCat("cannot read ", path, ": is a directory"), io);
  std::ifstream in(path, std::ios::binary);
  if (!in) return Usage(absl::StrCat("cannot read ", path, ": ", std::strerror(errno)), io);
  std::string yaml;
  // One byte more than the limit, so the parser can say the file is too large.
  yaml.resize(kMaxConfigBytes + 1);
  in.read(yaml.data(), static_cast<std::streamsize>(yaml.size()));
  yaml.resize(static_cast<size_t>(in.gcount()));
  if (in.bad()) return Usage(absl::StrCat("cannot read ", path), io);
  return SubmitYaml(client, yaml, path, options, io);
}

int ListRuns(CoordinatorClient& client, const ListRunsOptions& options, Io& io) {
  v1::ListRunsRequest req;
  if (!ParseStates<v1::RunState>(options.states, &ParseRunState, RunStateNames(), req.mutable_states(), io))
    return kExitUsage;
  if (options.limit != 0 && (options.limit < 1 || options.limit > 1000))
    return Usage("--limit must be between 1 and 1000", io);
  if (!IsValidUtf8(options.name_prefix)) return Usage("--name-prefix is not valid UTF-8", io);
  req.set_name_prefix(options.name_prefix);
  req.set_page_size(options.limit);
  req.set_page_token(options.page_token);
  v1::ListRunsResponse all;
  while (true) {
    auto page = client.ListRuns(req);
    if (!page.ok()) return Fail(page.status(), io);
    for (auto& r : *page->mutable_runs()) *all.add_runs() = std::move(r);
    all.set_next_page_token(page->next_page_token());
    if (!options.all || page->next_page_token().empty()) break;
    req.set_page_token(page->next_page_token());
  }
  if (options.json) {
    io.out << ToJson(all) << "\n";
    return kExitOk;
  }
  PrintRunsTable({all.runs().begin(), all.runs().end()}, io.fmt, io.out);
  if (!all.next_page_token().empty())
    io.err << "(more runs: --all for every page, or --page-token " << Printable(all.next_page_token()) << ")\n";
  return kExitOk;
}

int ShowRun(CoordinatorClient& client, int64_t id, bool json, Io& io) {
  auto run = client.GetRun(id);
  if (!run.ok()) return Fail(run.status(), io);
  if (json) {
    io.out << ToJson(*run) << "\n";
  } else {
    PrintRun(*run, io.fmt, io.out);
  }
  return kExitOk;
}

int CancelRun(CoordinatorClient& client, int64_t id, const std::string& reason, bool json, Io& io) {
  if (!IsValidUtf8(reason)) return Usage("--reason is not valid UTF-8", io);
  v1::CancelRunRequest req;
  req.set_id(id);
  req.set_reason(reason);
  auto run = client.CancelRun(req);
  if (!run.ok()) return Fail(run.status(), io);
  if (json) {
    io.out << ToJson(*run) << "\n";
  } else if (IsTerminal(run->state())) {
    io.out << Summary(*run) << "\n";
  } else {
    io.out << "run " << run->id() << " (" << Printable(run->name()) << "): cancel requested; "
           << "its running jobs stop at their next heartbeat\n";
  }
  return kExitOk;
}

int WatchRun(CoordinatorClient& client, int64_t id, const WatchOptions& options, Io& io) {
  int64_t last_event = 0;
  double progress = 0;
  std::string type = "connecting", message;
  bool line_drawn = false;
  absl::Duration waited;  // reconnecting since the last event
  absl::Duration backoff = absl::Milliseconds(250);
  auto draw = [&] {
    io.out << "\r\033[K" << ProgressLine(progress, type, message, io.width > 1 ? io.width - 1 : 1) << std::flush;
    line_drawn = true;
  };
  auto end_line = [&] {
    if (line_drawn) io.out << "\n" << std::flush;
    line_drawn = false;
  };
  while (true) {
    bool received = false;
    absl::Status s = client.WatchRun(id, last_event, [&](const v1::RunEvent& e) {
      received = true;
      last_event = e.id();
      if (e.progress() > 0) progress = e.progress();
      if (options.json) {
        io.out << CompactJson(e) << "\n" << std::flush;
      } else if (io.tty) {
        type = e.type();
        message = e.message();
        draw();
      } else {
        io.out << EventLine(e, io.fmt) << "\n" << std::flush;
      }
    });
    if (received) {
      waited = absl::ZeroDuration();
      backoff = absl::Milliseconds(250);
    }
    if (s.ok()) {
      // The server ends the stream when the run is over, or when it is shutting down.
      auto run = client.GetRun(id);
      if (run.ok() && IsTerminal(run->state())) {
        end_line();
        io.err << Summary(*run) << "\n";
        return run->state() == v1::RUN_STATE_SUCCEEDED ? kExitOk : kExitFailure;
      }
      if (!run.ok()) s = run.status();
    }
    if (!s.ok() && !IsTransient(s)) {
      end_line();
      return Fail(s, io);
    }
    if (waited >= options.give_up_after) {
      end_line();
      io.err << "temper: gave up following run " << id << " after " << HumanDuration(waited)
             << " of reconnecting\n";
      return s.ok() ? kExitFailure : Fail(s, io);
    }
    if (!s.ok()) {
      if (io.tty && !options.json) {
        type = "reconnecting";
        message = std::string(SV(s.message()));
        draw();
      } else {
        io.err << "temper: " << Printable(SV(s.message())) << "; reconnecting\n";
      }
    }
    io.sleep(backoff);
    waited += backoff;
    backoff = std::min(backoff * 2, absl::Seconds(5));
  }
}

int ListJobs(CoordinatorClient& client, const ListJobsOptions& options, Io& io) {
  v1::ListJobsRequest req;
  if (!ParseStates<v1::JobState>(options.states, &ParseJobState, JobStateNames(), req.mutable_states(), io))
    return kExitUsage;
  if (options.limit != 0 && (options.limit < 1 || options.limit > 10000))
    return Usage("--limit must be between 1 and 10000", io);
  req.set_run_id(options.run_id);
  req.set_limit(options.limit);
  auto jobs = client.ListJobs(req);
  if (!jobs.ok()) return Fail(jobs.status(), io);
  if (options.json) {
    io.out << ToJson(*jobs) << "\n";
  } else {
    PrintJobsTable({jobs->jobs().begin(), jobs->jobs().end()}, io.fmt, io.out);
  }
  return kExitOk;
}

int ListWorkers(CoordinatorClient& client, bool json, Io& io) {
  auto workers = client.ListWorkers();
  if (!workers.ok()) return Fail(workers.status(), io);
  if (json) {
    io.out << ToJson(*workers) << "\n";
  } else {
    PrintWorkersTable({workers->workers().begin(), workers->workers().end()}, io.fmt, io.out);
  }
  return kExitOk;
}

int ListCheckpoints(CoordinatorClient& client, int64_t run_id, bool json, Io& io) {
  auto list = client.ListCheckpoints(run_id);
  if (!list.ok()) return Fail(list.status(), io);
  if (json) {
    io.out << ToJson(*list) << "\n";
  } else {
    PrintCheckpointsTable({list->checkpoints().begin(), list->checkpoints().end()}, false, io.fmt, io.out);
  }
  return kExitOk;
}

int CheckpointLineage(CoordinatorClient& client, int64_t checkpoint_id, bool json, Io& io) {
  auto lineage = client.GetLineage(checkpoint_id);
  if (!lineage.ok()) return Fail(lineage.status(), io);
  if (json) {
    io.out << ToJson(*lineage) << "\n";
  } else {
    PrintCheckpointsTable({lineage->chain().begin(), lineage->chain().end()}, true, io.fmt, io.out);
  }
  return kExitOk;
}

}  // namespace temper::cli
