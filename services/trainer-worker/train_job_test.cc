// RunTrainJob on the random tiny model, CPU: payload parsing, a job to its final checkpoint, a
// stopped job resumed by its next attempt, a parent adapter as the starting point, failure classes.
// Label `slow` (libtorch).
#include "services/trainer-worker/train_job.h"

#include <unistd.h>

#include <filesystem>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "libs/model/peft_adapter.h"

namespace temper::trainerworker {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string Payload(int64_t run, const std::string& stage, int round, std::optional<int64_t> parent = std::nullopt) {
  // As the coordinator writes it: proto JSON with proto field names, 64-bit integers as strings.
  json config = {{"name", "tw-test"},
                 {"model", {{"path", "/nonexistent/model"}, {"dtype", "bf16"}}},
                 {"quantization", {{"method", "nf4"}}},
                 {"lora", {{"r", 4}, {"alpha", 8}, {"dropout", 0.05}, {"target_modules", {"q_proj", "v_proj"}}}},
                 {"train", {{"learning_rate", 1e-2}, {"warmup_steps", 1}, {"max_steps", "6"}, {"micro_batch_size", 2},
                            {"gradient_accumulation", 1}, {"seq_len", 64}, {"seed", "3"}, {"save_every", 2},
                            {"keep_last", 2}}},
                 {"data", {{"prompts", {"p.jsonl"}}}}};
  json p = {{"run_id", run}, {"stage", stage}, {"round", round}, {"config", config}};
  if (parent) p["parent_checkpoint_id"] = *parent;
  return p.dump();
}

class TrainJobTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("temper_tw_" + std::to_string(getpid()));
    fs::remove_all(root_);
    env_.checkpoint_root = root_.string();
    env_.tiny_model = TinyModel::kIfMissing;
    env_.progress_every = 1;
  }
  void TearDown() override { fs::remove_all(root_); }
  fs::path root_;
  TrainJobEnv env_;
};

TEST_F(TrainJobTest, ParsesThePayload) {
  auto s = ParseTrainPayload(7, Payload(3, "r1/train", 1, 11));
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->run_id, 3);
  EXPECT_EQ(s->options.max_steps, 6);
  EXPECT_EQ(s->options.seed, 3u + 1000003u);
  EXPECT_EQ(s->lora.r, 4);
  EXPECT_EQ(s->lora.target_modules, (std::vector<std::string>{"q_proj", "v_proj"}));
  EXPECT_EQ(*s->parent_checkpoint_id, 11);
  EXPECT_TRUE(s->nf4);
  EXPECT_EQ(ParseTrainPayload(1, "{}").status().code(), absl::StatusCode::kInvalidArgument);
  json bad = json::parse(Payload(1, "r0/train", 0));
  bad["config"]["lora"]["target_modules"] = {"qkv"};
  EXPECT_EQ(ClassifyFailure(ParseTrainPayload(1, bad.dump()).status()), v1::FAILURE_CLASS_USER_ERROR);
  EXPECT_EQ(ClassifyFailure(absl::ResourceExhaustedError("oom")), v1::FAILURE_CLASS_OOM);
  EXPECT_EQ(ClassifyFailure(absl::InternalError("disk")), v1::FAILURE_CLASS_INFRASTRUCTURE);
}

TEST_F(TrainJobTest, MissingModelWithoutTinyIsAUserError) {
  env_.tiny_model = TinyModel::kNever;
  auto spec = ParseTrainPayload(1, Payload(1, "r0/train", 0));
  ASSERT_TRUE(spec.ok());
  std::atomic<bool> stop{false};
  auto r = RunTrainJob(*spec, env_, {}, stop);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(ClassifyFailure(r.status()), v1::FAILURE_CLASS_USER_ERROR) << r.status();
}

TEST_F(TrainJobTest, StoppedJobResumesAndParentAdapterStartsTheNextRound) {
  auto spec = ParseTrainPayload(5, Payload(2, "r0/train", 0));
  ASSERT_TRUE(spec.ok());
  std::atomic<bool> stop{false};
  std::vector<int64_t> steps;
  // First attempt: cancelled after step 3 (the progress callback says stop).
  auto first = RunTrainJob(*spec, env_, [&](int64_t step, const std::map<std::string, double>& m, double) {
    steps.push_back(step);
    EXPECT_TRUE(m.count("loss") && m.count("learning_rate") && m.count("tokens_per_second") && m.count("peak_rss_mb"));
    return step < 3;
  }, stop);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(first->stopped);
  EXPECT_TRUE(fs::exists(root_ / "run-2/job-5/step-00000003/trainer_state.json"));
  // Second attempt of the same job: continues at step 4.
  steps.clear();
  auto second = RunTrainJob(*spec, env_, [&](int64_t step, const std::map<std::string, double>&, double) {
    steps.push_back(step);
    return true;
  }, stop);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_FALSE(second->stopped);
  EXPECT_EQ(steps, (std::vector<int64_t>{4, 5, 6}));
  EXPECT_EQ(second->step, 6);
  EXPECT_NE(second->notes.find("resumed from"), std::string::npos) << second->notes;
  EXPECT_NE(second->notes.find("RANDOM TINY MODEL"), std::string::npos);
  EXPECT_TRUE(fs::exists(fs::path(second->checkpoint_dir) / "adapter_model.safetensors"));
  EXPECT_TRUE(fs::exists(fs::path(second->checkpoint_dir) / "README.md"));
  EXPECT_GT(second->metrics.at("loss"), 0);
  // Next round: starts from that adapter.
  auto next = ParseTrainPayload(9, Payload(2, "r1/train", 1, 1));
  ASSERT_TRUE(next.ok());
  next->parent_uri = second->checkpoint_dir;
  next->options.max_steps = 2;
  auto third = RunTrainJob(*next, env_, {}, stop);
  ASSERT_TRUE(third.ok()) << third.status();
  EXPECT_NE(third->notes.find("started from adapter"), std::string::npos) << third->notes;
}

}  // namespace
}  // namespace temper::trainerworker
