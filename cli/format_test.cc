#include "cli/format.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sstream>

#include "nlohmann/json.hpp"

namespace temper::cli {
namespace {

using ::testing::HasSubstr;

HumanFormat Pinned() {
  HumanFormat f;
  f.now = absl::FromUnixSeconds(1'700'000'000);  // 2023-11-14 22:13:20 UTC
  f.zone = absl::UTCTimeZone();
  return f;
}

TEST(TableTest, AlignsColumnsByCodePoints) {
  Table t({"ID", "NAME", "NOTE"});
  t.AddRow({"1", "héllo", "x"});
  t.AddRow({"22", "a", ""});
  std::ostringstream out;
  t.Print(out);
  EXPECT_EQ(out.str(),
            "ID  NAME   NOTE\n"
            "1   héllo  x\n"
            "22  a\n");
  EXPECT_EQ(t.rows(), 2u);
}

TEST(TableTest, EscapesControlCharactersInCells) {
  Table t({"A"});
  t.AddRow({"evil\x1b[31mred\nline"});
  std::ostringstream out;
  t.Print(out);
  EXPECT_EQ(out.str(), "A\nevil\\x1b[31mred\\nline\n");
}

TEST(FormatTest, Printable) {
  EXPECT_EQ(Printable("plain ünïcode ✓"), "plain ünïcode ✓");
  EXPECT_EQ(Printable("bad \xC3\x28 byte"), "bad \\xc3( byte");
  EXPECT_EQ(Printable("c1 \xC2\x9B"), "c1 \\u009b");
  EXPECT_EQ(Printable("del\x7f"), "del\\x7f");
}

TEST(FormatTest, Durations) {
  EXPECT_EQ(HumanDuration(absl::Seconds(0)), "0s");
  EXPECT_EQ(HumanDuration(absl::Seconds(45)), "45s");
  EXPECT_EQ(HumanDuration(absl::Seconds(245)), "4m05s");
  EXPECT_EQ(HumanDuration(absl::Minutes(123)), "2h03m");
  EXPECT_EQ(HumanDuration(absl::Hours(76)), "3d04h");
  EXPECT_EQ(HumanDuration(absl::Seconds(-5)), "0s");
}

TEST(FormatTest, TimesAndAges) {
  auto f = Pinned();
  EXPECT_EQ(FormatTimeUs(1'700'000'000'000'000, f), "2023-11-14 22:13:20");
  EXPECT_EQ(FormatTimeUs(0, f), "-");
  EXPECT_EQ(FormatAgeUs(1'699'999'970'000'000, f), "30s ago");
}

TEST(FormatTest, Truncate) {
  EXPECT_EQ(Truncate("abcdef", 10), "abcdef");
  EXPECT_EQ(Truncate("abcdef", 4), "abc…");
  EXPECT_EQ(Truncate("ééééé", 3), "éé…");
}

TEST(FormatTest, EnumNamesRoundTrip) {
  EXPECT_EQ(RunStateName(v1::RUN_STATE_CANCELLED), "cancelled");
  EXPECT_EQ(JobKindName(v1::JOB_KIND_GENERATE), "generate");
  EXPECT_EQ(ParseRunState("Running"), v1::RUN_STATE_RUNNING);
  EXPECT_EQ(ParseRunState("RUN_STATE_FAILED"), v1::RUN_STATE_FAILED);
  EXPECT_EQ(ParseRunState("unspecified"), std::nullopt);
  EXPECT_EQ(ParseRunState("runnin"), std::nullopt);
  EXPECT_EQ(ParseJobState("leased"), v1::JOB_STATE_LEASED);
  EXPECT_EQ(JobStateNames(), "pending, leased, running, succeeded, failed, cancelled");
}

TEST(FormatTest, JsonUsesProtoFieldNamesAndPrintsDefaults) {
  v1::Run r;
  r.set_id(12);
  r.set_name("x");
  r.set_state(v1::RUN_STATE_PENDING);
  auto doc = nlohmann::json::parse(ToJson(r));
  EXPECT_EQ(doc["id"], "12");
  EXPECT_EQ(doc["state"], "RUN_STATE_PENDING");
  EXPECT_EQ(doc["created_at_us"], "0");
  EXPECT_EQ(doc["jobs_total"], 0);
  EXPECT_EQ(doc["cancel_requested"], false);
  EXPECT_EQ(doc["error"], "");
  v1::ListWorkersResponse empty;
  EXPECT_EQ(nlohmann::json::parse(ToJson(empty))["workers"], nlohmann::json::array());
}

TEST(FormatTest, RunsTable) {
  v1::Run a;
  a.set_id(12);
  a.set_name("tiny-llama-ei");
  a.set_state(v1::RUN_STATE_RUNNING);
  a.set_created_at_us(1'699'999'000'000'000);  // 16m40s before now
  a.set_round(1);
  a.set_total_rounds(2);
  a.set_jobs_done(3);
  a.set_jobs_total(7);
  v1::Run b;
  b.set_id(9);
  b.set_name("old");
  b.set_state(v1::RUN_STATE_FAILED);
  b.set_created_at_us(1'690'000'000'000'000);
  b.set_updated_at_us(1'690'000'065'000'000);
  b.set_error("r0/train failed (oom): CUDA out of memory");
  std::ostringstream out;
  PrintRunsTable({a, b}, Pinned(), out);
  EXPECT_EQ(out.str(),
            "ID  NAME           STATE    ROUND  JOBS  CREATED              DURATION  ERROR\n"
            "12  tiny-llama-ei  running  1/2    3/7   2023-11-14 21:56:40  16m40s    -\n"
            "9   old            failed   0/0    0/0   2023-07-22 04:26:40  1m05s     r0/train failed (oom): CUDA out of memory\n");
}

TEST(FormatTest, JobsWorkersCheckpoints) {
  auto f = Pinned();
  v1::Job j;
  j.set_id(3);
  j.set_run_id(12);
  j.set_kind(v1::JOB_KIND_TRAIN);
  j.set_state(v1::JOB_STATE_FAILED);
  j.set_attempts(3);
  j.set_max_attempts(3);
  j.set_failure_class(v1::FAILURE_CLASS_OOM);
  j.set_error("out of memory");
  j.set_rank(1);
  j.set_world_size(2);
  std::ostringstream jobs;
  PrintJobsTable({j}, f, jobs);
  EXPECT_THAT(jobs.str(), HasSubstr("3   12   0      train 1/2  failed  3/3       -       -        oom: out of memory"));

  v1::Worker w;
  w.set_id("gpu-1");
  w.set_hostname("node7");
  w.set_state("busy");
  w.add_kinds(v1::JOB_KIND_TRAIN);
  w.add_kinds(v1::JOB_KIND_GENERATE);
  w.set_gpus(2);
  w.add_gpu_models("H100");
  w.add_gpu_models("H100");
  w.set_cpu_cores(16);
  w.set_last_heartbeat_us(1'699'999'997'000'000);
  std::ostringstream workers;
  PrintWorkersTable({w}, f, workers);
  EXPECT_EQ(workers.str(),
            "ID     HOST   STATE  KINDS           GPUS      CPUS  HEARTBEAT\n"
            "gpu-1  node7  busy   train,generate  2 (H100)  16    3s ago\n");

  v1::Checkpoint c;
  c.set_id(5);
  c.set_parent_id(4);
  c.set_run_id(12);
  c.set_round(1);
  c.set_step(50);
  c.set_depth(1);
  c.set_uri("file:///ckpt/5");
  std::ostringstream lineage;
  PrintCheckpointsTable({c}, true, f, lineage);
  EXPECT_EQ(lineage.str(),
            "DEPTH  ID  PARENT  RUN  ROUND  STEP  CREATED  URI\n"
            "1      5   4       12   1      50    -        file:///ckpt/5\n");
}

TEST(FormatTest, ShowRun) {
  v1::Run r;
  r.set_id(12);
  r.set_name("tiny");
  r.set_state(v1::RUN_STATE_RUNNING);
  r.set_cancel_requested(true);
  r.set_created_at_us(1'699'999'940'000'000);
  r.set_updated_at_us(1'699'999'990'000'000);
  (*r.mutable_config()->mutable_labels())["owner"] = "ml";
  std::ostringstream out;
  PrintRun(r, Pinned(), out);
  EXPECT_EQ(out.str(),
            "id:        12\n"
            "name:      tiny\n"
            "state:     running (cancel requested)\n"
            "round:     0 of 0\n"
            "jobs:      0 of 0 done\n"
            "created:   2023-11-14 22:12:20 (1m00s ago)\n"
            "updated:   2023-11-14 22:13:10 (10s ago)\n"
            "duration:  1m00s\n"
            "label:     owner=ml\n");
}

TEST(FormatTest, ProgressAndEventLines) {
  EXPECT_EQ(ProgressLine(0.25, "progress", "step 5", 80), "[#####...............]  25%  progress: step 5");
  EXPECT_EQ(ProgressLine(2.0, "x", "", 80), "[####################] 100%  x");
  EXPECT_EQ(ProgressLine(0.5, "progress", "a very long message that does not fit", 40),
            "[##########..........]  50%  progress: …");
  v1::RunEvent e;
  e.set_at_us(1'700'000'000'123'000);
  e.set_type("job_leased");
  e.set_message("job 3 leased by gpu-1");
  EXPECT_EQ(EventLine(e, Pinned()), "2023-11-14T22:13:20.123+00:00 job_leased job 3 leased by gpu-1");
}

}  // namespace
}  // namespace temper::cli
