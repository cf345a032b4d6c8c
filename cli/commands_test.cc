#include "cli/commands.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <deque>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "nlohmann/json.hpp"

namespace temper::cli {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

std::string ReadExample(const std::string& name) {
  const char* root = std::getenv("TEMPER_SOURCE_DIR");
  std::ifstream in(std::string(root ? root : TEMPER_SOURCE_ROOT) + "/examples/" + name);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A coordinator in memory: records every call; runs get ids from 1; WatchRun plays scripts.
class FakeCoordinator final : public CoordinatorClient {
 public:
  struct WatchScript {
    std::vector<v1::RunEvent> events;
    absl::Status end;
  };

  absl::StatusOr<v1::Run> SubmitRun(const v1::SubmitRunRequest& req) override {
    ++calls;
    submits.push_back(req);
    if (!submit_error.ok()) return submit_error;
    v1::Run run;
    run.set_id(static_cast<int64_t>(submits.size()));
    run.set_name(req.config().name());
    run.set_state(v1::RUN_STATE_PENDING);
    return run;
  }
  absl::StatusOr<v1::Run> GetRun(int64_t id) override {
    ++calls;
    if (!get_run_error.ok()) return get_run_error;
    v1::Run run = run_to_get;
    run.set_id(id);
    return run;
  }
  absl::StatusOr<v1::ListRunsResponse> ListRuns(const v1::ListRunsRequest& req) override {
    ++calls;
    list_requests.push_back(req);
    if (pages.empty()) return v1::ListRunsResponse();
    auto page = pages.front();
    pages.pop_front();
    return page;
  }
  absl::StatusOr<v1::Run> CancelRun(const v1::CancelRunRequest& req) override {
    ++calls;
    v1::Run run;
    run.set_id(req.id());
    run.set_name("r");
    run.set_state(v1::RUN_STATE_RUNNING);
    run.set_cancel_requested(true);
    return run;
  }
  absl::Status WatchRun(int64_t id, int64_t after_event_id,
                        const std::function<void(const v1::RunEvent&)>& on_event) override {
    ++calls;
    watch_after.push_back(after_event_id);
    if (watches.empty()) return absl::UnavailableError("no more scripts");
    auto script = watches.front();
    watches.pop_front();
    for (const auto& e : script.events) on_event(e);
    return script.end;
  }
  absl::StatusOr<v1::ListJobsResponse> ListJobs(const v1::ListJobsRequest& req) override {
    ++calls;
    job_requests.push_back(req);
    return v1::ListJobsResponse();
  }
  absl::StatusOr<v1::ListWorkersResponse> ListWorkers() override {
    ++calls;
    return absl::PermissionDeniedError("workers are secret");
  }
  absl::StatusOr<v1::ListCheckpointsResponse> ListCheckpoints(int64_t) override {
    ++calls;
    return v1::ListCheckpointsResponse();
  }
  absl::StatusOr<v1::GetLineageResponse> GetLineage(int64_t) override {
    ++calls;
    return absl::NotFoundError("checkpoint 9 not found");
  }

  int calls = 0;
  std::vector<v1::SubmitRunRequest> submits;
  absl::Status submit_error;
  v1::Run run_to_get;
  absl::Status get_run_error;
  std::deque<v1::ListRunsResponse> pages;
  std::vector<v1::ListRunsRequest> list_requests;
  std::deque<WatchScript> watches;
  std::vector<int64_t> watch_after;
  std::vector<v1::ListJobsRequest> job_requests;
};

class CommandsTest : public ::testing::Test {
 protected:
  CommandsTest() : io_{out_, err_} {
    io_.fmt.now = absl::FromUnixSeconds(1'700'000'000);
    io_.fmt.zone = absl::UTCTimeZone();
    io_.sleep = [this](absl::Duration d) { slept_ += d; };
  }
  std::ostringstream out_, err_;
  Io io_;
  absl::Duration slept_;
  FakeCoordinator fake_;
};

TEST_F(CommandsTest, UnknownKeyPrintsPathLineAndSuggestionAndSendsNothing) {
  std::string yaml = absl::StrReplaceAll(ReadExample("run.yaml"), {{"  r: 16", "  rank: 16"}});
  EXPECT_EQ(SubmitYaml(fake_, yaml, "run.yaml", {}, io_), kExitUsage);
  EXPECT_EQ(fake_.calls, 0);
  EXPECT_THAT(err_.str(), AllOf(HasSubstr("run.yaml:12:3: lora.rank: "), HasSubstr("lora.r"),
                                HasSubstr("nothing was submitted")));
  EXPECT_EQ(out_.str(), "");
}

TEST_F(CommandsTest, EveryErrorIsPrinted) {
  std::string yaml = absl::StrReplaceAll(ReadExample("run.yaml"),
                                         {{"  r: 16", "  rank: 16"}, {"dropout: 0.05", "dropout: 7"},
                                          {"seed: 42", "seed: forty-two"}});
  EXPECT_EQ(SubmitYaml(fake_, yaml, "x.yaml", {}, io_), kExitUsage);
  EXPECT_EQ(fake_.calls, 0);
  EXPECT_THAT(err_.str(), AllOf(HasSubstr("x.yaml:12:3: lora.rank:"), HasSubstr("x.yaml:14:12: lora.dropout:"),
                                HasSubstr("train.seed:"), HasSubstr("3 errors")));
}

TEST_F(CommandsTest, MalformedYamlInvalidUtf8AndBadNamesAreUsageErrors) {
  for (std::string yaml : {std::string("name: [unclosed\n"), std::string("name: caf\xC3\x28\n"),
                           absl::StrReplaceAll(ReadExample("run.yaml"), {{"name: tiny-llama-ei", "name: \"x'; DROP TABLE runs;--\""}}),
                           std::string("")}) {
    SCOPED_TRACE(yaml);
    err_.str("");
    EXPECT_EQ(SubmitYaml(fake_, yaml, "bad.yaml", {}, io_), kExitUsage);
    EXPECT_THAT(err_.str(), HasSubstr("bad.yaml"));
  }
  EXPECT_EQ(fake_.calls, 0);
}

TEST_F(CommandsTest, InvalidConfigNeverReachesTheNetwork) {
  // Port 1 on loopback: any attempt to send would fail with "cannot reach".
  auto client = NewGrpcCoordinatorClient("127.0.0.1:1", std::chrono::seconds(2));
  std::string yaml = absl::StrReplaceAll(ReadExample("run.yaml"), {{"  r: 16", "  rank: 16"}});
  EXPECT_EQ(SubmitYaml(*client, yaml, "run.yaml", {}, io_), kExitUsage);
  EXPECT_THAT(err_.str(), AllOf(HasSubstr("lora.rank"), Not(HasSubstr("cannot reach"))));
}

TEST_F(CommandsTest, UnreachableCoordinatorIsNamed) {
  auto client = NewGrpcCoordinatorClient("127.0.0.1:1", std::chrono::seconds(5));
  EXPECT_EQ(SubmitYaml(*client, ReadExample("run.yaml"), "run.yaml", {}, io_), kExitFailure);
  EXPECT_THAT(err_.str(), HasSubstr("temper: cannot reach the coordinator at 127.0.0.1:1: "));
  err_.str("");
  EXPECT_EQ(ListRuns(*client, {}, io_), kExitFailure);
  EXPECT_THAT(err_.str(), HasSubstr("cannot reach the coordinator at 127.0.0.1:1"));
}

TEST_F(CommandsTest, SubmitSendsTheValidatedConfigWithAContentKey) {
  std::string yaml = ReadExample("run.yaml");
  EXPECT_EQ(SubmitYaml(fake_, yaml, "run.yaml", {}, io_), kExitOk);
  ASSERT_EQ(fake_.submits.size(), 1u);
  EXPECT_EQ(fake_.submits[0].config().name(), "tiny-llama-ei");
  EXPECT_EQ(fake_.submits[0].config().lora().r(), 16);
  EXPECT_EQ(fake_.submits[0].idempotency_key(), DefaultIdempotencyKey(yaml));
  EXPECT_EQ(out_.str(), "submitted run 1 tiny-llama-ei (pending)\n");

  SubmitOptions o;
  o.idempotency_key = "retry-7";
  EXPECT_EQ(SubmitYaml(fake_, yaml, "run.yaml", o, io_), kExitOk);
  EXPECT_EQ(fake_.submits[1].idempotency_key(), "retry-7");
}

TEST_F(CommandsTest, SweepSubmitsEveryPointWithItsOwnKey) {
  std::string yaml = ReadExample("sweep.yaml");
  SubmitOptions o;
  o.json = true;
  EXPECT_EQ(SubmitYaml(fake_, yaml, "sweep.yaml", o, io_), kExitOk);
  ASSERT_EQ(fake_.submits.size(), 12u);
  std::string key = DefaultIdempotencyKey(yaml);
  for (size_t i = 0; i < 12; ++i) {
    EXPECT_EQ(fake_.submits[i].idempotency_key(), absl::StrCat(key, "/", i));
    EXPECT_FALSE(fake_.submits[i].config().has_sweep());
  }
  EXPECT_EQ(fake_.submits[0].config().name(), "tiny-llama-sweep-00");
  auto doc = nlohmann::json::parse(out_.str());
  ASSERT_EQ(doc["runs"].size(), 12u);
  EXPECT_EQ(doc["runs"][11]["name"], "tiny-llama-sweep-11");
  EXPECT_EQ(doc["runs"][11]["id"], "12");
}

TEST_F(CommandsTest, PartialSweepFailureSaysHowToResume) {
  fake_.submit_error = absl::InvalidArgumentError("model.path: no such model");
  EXPECT_EQ(SubmitYaml(fake_, ReadExample("sweep.yaml"), "sweep.yaml", {}, io_), kExitFailure);
  EXPECT_EQ(err_.str(), "temper: model.path: no such model\n");
}

TEST_F(CommandsTest, DefaultKeyIsSha256OfTheBytes) {
  EXPECT_EQ(DefaultIdempotencyKey(""), "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(DefaultIdempotencyKey("abc"), "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_F(CommandsTest, OverlongKeyIsAUsageError) {
  SubmitOptions o;
  o.idempotency_key = std::string(300, 'k');
  EXPECT_EQ(SubmitYaml(fake_, ReadExample("run.yaml"), "run.yaml", o, io_), kExitUsage);
  EXPECT_EQ(fake_.calls, 0);
}

TEST_F(CommandsTest, UnreadableFileIsAUsageError) {
  EXPECT_EQ(SubmitFile(fake_, "/nonexistent/run.yaml", {}, io_), kExitUsage);
  EXPECT_THAT(err_.str(), HasSubstr("cannot read /nonexistent/run.yaml: No such file or directory"));
  EXPECT_EQ(SubmitFile(fake_, "/", {}, io_), kExitUsage);
  EXPECT_THAT(err_.str(), HasSubstr("cannot read /: is a directory"));
  EXPECT_EQ(fake_.calls, 0);
}

v1::Run MakeRun(int64_t id, const std::string& name, v1::RunState state) {
  v1::Run r;
  r.set_id(id);
  r.set_name(name);
  r.set_state(state);
  r.set_created_at_us(1'699'999'000'000'000);
  r.set_updated_at_us(1'699'999'090'000'000);
  r.set_total_rounds(2);
  return r;
}

TEST_F(CommandsTest, ListRunsFollowsPageTokensWithAll) {
  v1::ListRunsResponse p1, p2;
  *p1.add_runs() = MakeRun(3, "c", v1::RUN_STATE_RUNNING);
  p1.set_next_page_token("3");
  *p2.add_runs() = MakeRun(2, "b", v1::RUN_STATE_FAILED);
  fake_.pages = {p1, p2};
  ListRunsOptions o;
  o.all = true;
  o.json = true;
  o.limit = 1;
  o.states = {"running", "FAILED"};
  o.name_prefix = "x";
  EXPECT_EQ(ListRuns(fake_, o, io_), kExitOk);
  ASSERT_EQ(fake_.list_requests.size(), 2u);
  EXPECT_EQ(fake_.list_requests[0].page_token(), "");
  EXPECT_EQ(fake_.list_requests[1].page_token(), "3");
  EXPECT_EQ(fake_.list_requests[1].page_size(), 1);
  EXPECT_EQ(fake_.list_requests[0].name_prefix(), "x");
  EXPECT_THAT(fake_.list_requests[0].states(), ::testing::ElementsAre(v1::RUN_STATE_RUNNING, v1::RUN_STATE_FAILED));
  auto doc = nlohmann::json::parse(out_.str());
  ASSERT_EQ(doc["runs"].size(), 2u);
  EXPECT_EQ(doc["runs"][0]["state"], "RUN_STATE_RUNNING");
  EXPECT_EQ(doc["next_page_token"], "");
}

TEST_F(CommandsTest, ListRunsOnePageHintsAtMore) {
  v1::ListRunsResponse p1;
  *p1.add_runs() = MakeRun(3, "c", v1::RUN_STATE_RUNNING);
  p1.set_next_page_token("3");
  fake_.pages = {p1};
  EXPECT_EQ(ListRuns(fake_, {}, io_), kExitOk);
  EXPECT_EQ(fake_.list_requests.size(), 1u);
  EXPECT_THAT(out_.str(), HasSubstr("ID  NAME  STATE"));
  EXPECT_THAT(err_.str(), HasSubstr("--page-token 3"));
}

TEST_F(CommandsTest, BadListArgumentsAreUsageErrors) {
  ListRunsOptions o;
  o.states = {"runing"};
  EXPECT_EQ(ListRuns(fake_, o, io_), kExitUsage);
  EXPECT_THAT(err_.str(), HasSubstr("unknown state \"runing\"; expected one of: pending, running, succeeded, failed, cancelled"));
  ListRunsOptions o2;
  o2.limit = 5000;
  EXPECT_EQ(ListRuns(fake_, o2, io_), kExitUsage);
  ListJobsOptions j;
  j.states = {"leased", "bogus"};
  EXPECT_EQ(ListJobs(fake_, j, io_), kExitUsage);
  EXPECT_EQ(fake_.calls, 0);
}

TEST_F(CommandsTest, ServerErrorsExitOneWithTheirMessage) {
  EXPECT_EQ(ListWorkers(fake_, false, io_), kExitFailure);
  EXPECT_EQ(err_.str(), "temper: workers are secret\n");
  err_.str("");
  EXPECT_EQ(CheckpointLineage(fake_, 9, true, io_), kExitFailure);
  EXPECT_EQ(err_.str(), "temper: checkpoint 9 not found\n");
  EXPECT_EQ(out_.str(), "");
}

TEST_F(CommandsTest, JobsPassFilters) {
  ListJobsOptions j;
  j.run_id = 4;
  j.states = {"pending"};
  j.json = true;
  EXPECT_EQ(ListJobs(fake_, j, io_), kExitOk);
  ASSERT_EQ(fake_.job_requests.size(), 1u);
  EXPECT_EQ(fake_.job_requests[0].run_id(), 4);
  EXPECT_THAT(fake_.job_requests[0].states(), ::testing::ElementsAre(v1::JOB_STATE_PENDING));
  EXPECT_EQ(nlohmann::json::parse(out_.str())["jobs"].size(), 0u);
}

v1::RunEvent Event(int64_t id, const std::string& type, const std::string& message, double progress = 0) {
  v1::RunEvent e;
  e.set_id(id);
  e.set_run_id(7);
  e.set_at_us(1'700'000'000'000'000 + id * 1000);
  e.set_type(type);
  e.set_message(message);
  e.set_progress(progress);
  return e;
}

TEST_F(CommandsTest, WatchResumesAfterTheLastEventWhenTheStreamBreaks) {
  fake_.watches.push_back({{Event(1, "submitted", "run r submitted"), Event(2, "progress", "step 5", 0.25)},
                           absl::UnavailableError("connection reset")});
  fake_.watches.push_back({{}, absl::UnavailableError("connection refused")});
  fake_.watches.push_back({{Event(3, "run_succeeded", "done", 1.0)}, absl::OkStatus()});
  fake_.run_to_get = MakeRun(7, "r", v1::RUN_STATE_SUCCEEDED);
  EXPECT_EQ(WatchRun(fake_, 7, {}, io_), kExitOk);
  EXPECT_THAT(fake_.watch_after, ::testing::ElementsAre(0, 2, 2));
  EXPECT_EQ(out_.str(),
            "2023-11-14T22:13:20.001+00:00 submitted run r submitted\n"
            "2023-11-14T22:13:20.002+00:00 progress step 5\n"
            "2023-11-14T22:13:20.003+00:00 run_succeeded done\n");
  EXPECT_THAT(err_.str(), AllOf(HasSubstr("connection reset; reconnecting"), HasSubstr("run 7 (r) succeeded")));
  EXPECT_EQ(slept_, absl::Milliseconds(250 + 500));
}

TEST_F(CommandsTest, WatchExitsOneForCancelledOrFailed) {
  for (auto state : {v1::RUN_STATE_CANCELLED, v1::RUN_STATE_FAILED}) {
    fake_.watches.push_back({{Event(1, "run_cancelled", "run cancelled")}, absl::OkStatus()});
    fake_.run_to_get = MakeRun(7, "r", state);
    fake_.run_to_get.set_error("cancelled by user");
    EXPECT_EQ(WatchRun(fake_, 7, {}, io_), kExitFailure);
  }
  EXPECT_THAT(err_.str(), HasSubstr("run 7 (r) cancelled: cancelled by user"));
}

TEST_F(CommandsTest, WatchDrawsAProgressLineOnATerminal) {
  io_.tty = true;
  io_.width = 60;
  fake_.watches.push_back({{Event(1, "progress", "step 10/50", 0.5), Event(2, "run_succeeded", "done", 1.0)},
                           absl::OkStatus()});
  fake_.run_to_get = MakeRun(7, "r", v1::RUN_STATE_SUCCEEDED);
  EXPECT_EQ(WatchRun(fake_, 7, {}, io_), kExitOk);
  EXPECT_EQ(out_.str(),
            "\r\033[K[##########..........]  50%  progress: step 10/50"
            "\r\033[K[####################] 100%  run_succeeded: done\n");
}

TEST_F(CommandsTest, WatchGivesUpOnAnUnknownRunAndAfterLongOutages) {
  fake_.watches.push_back({{}, absl::NotFoundError("run 99 not found")});
  EXPECT_EQ(WatchRun(fake_, 99, {}, io_), kExitFailure);
  EXPECT_THAT(err_.str(), HasSubstr("temper: run 99 not found"));
  err_.str("");
  WatchOptions o;
  o.give_up_after = absl::Seconds(20);
  EXPECT_EQ(WatchRun(fake_, 7, o, io_), kExitFailure);  // no scripts left: always UNAVAILABLE
  EXPECT_THAT(err_.str(), HasSubstr("gave up following run 7"));
  EXPECT_GE(slept_, absl::Seconds(20));
}

TEST_F(CommandsTest, CancelAndShow) {
  EXPECT_EQ(CancelRun(fake_, 5, "enough", false, io_), kExitOk);
  EXPECT_EQ(out_.str(), "run 5 (r): cancel requested; its running jobs stop at their next heartbeat\n");
  out_.str("");
  fake_.run_to_get = MakeRun(5, "r", v1::RUN_STATE_RUNNING);
  EXPECT_EQ(ShowRun(fake_, 5, true, io_), kExitOk);
  auto doc = nlohmann::json::parse(out_.str());
  EXPECT_EQ(doc["id"], "5");
  EXPECT_EQ(doc["created_at_us"], "1699999000000000");
  EXPECT_EQ(doc["jobs_done"], 0);
}

}  // namespace
}  // namespace temper::cli
