// End to end: a real coordinator (throwaway PostgreSQL), a real temper-trainer-worker training a
// random tiny model on the CPU, and the simulated worker for generate and eval. Two rounds of
// expert iteration: each round's train job registers a checkpoint, the second with the first as
// its parent (and trained from its adapter); loss metrics reach the metrics table.
#include <unistd.h>

#include <filesystem>

#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include "absl/strings/str_cat.h"
#include "libs/store/testing/pg_test_env.h"
#include "nlohmann/json.hpp"
#include "tests/e2e/harness.h"

namespace temper::e2e {
namespace {

using std::chrono::seconds;

TEST(TrainerWorkerE2E, TwoRoundsTrainTinyModelWithLineageAndMetrics) {
  auto& env = testing::PgTestEnv::Get();
  env.Truncate();
  const std::string conninfo = env.conninfo();
  const auto dir = std::filesystem::temp_directory_path() / absl::StrCat("temper-trainer-e2e-", getpid());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  auto path = [&](const std::string& name) { return (dir / name).string(); };
  CoordinatorFlags flags;
  flags.database_url = conninfo;
  flags.port = FreePort();
  flags.lease_seconds = 5;
  const std::string address = absl::StrCat("127.0.0.1:", flags.port);
  auto coordinator = StartCoordinator(flags, path("coordinator.log"));
  ASSERT_TRUE(WaitForCoordinator(address, seconds(30))) << "see " << path("coordinator.log");
  auto stub = v1::RunService::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));

  v1::RunConfig config = TestRunConfig("trainer-e2e", /*rounds=*/2, /*gpus=*/0);
  config.mutable_train()->set_max_steps(4);
  config.mutable_train()->set_warmup_steps(1);
  config.mutable_train()->set_seq_len(64);
  config.mutable_train()->set_micro_batch_size(2);
  config.mutable_train()->set_save_every(2);
  config.mutable_lora()->set_r(4);
  auto ids = SubmitRuns(*stub, {config});
  ASSERT_EQ(ids.size(), 1u);
  auto sim = StartSimWorkers(address, 1, "generate,eval", 50, path("sim.log"), "sim");
  Process trainer({Binary("services/trainer-worker/temper-trainer-worker"), "--coordinator", address,
                   "--checkpoint-dir", path("checkpoints"), "--tiny-model", "missing", "--progress-every", "1",
                   "--wait-ms", "500"},
                  path("trainer-worker.log"));
  auto states = WaitTerminal(*stub, ids, seconds(240));
  ASSERT_EQ(states[ids[0]], v1::RUN_STATE_SUCCEEDED) << "see " << path("trainer-worker.log");

  pqxx::connection c(conninfo);
  pqxx::work tx(c);
  auto rows = tx.exec("SELECT c.id, c.parent_id, c.uri, c.step, j.stage FROM checkpoints c JOIN jobs j ON j.id = c.job_id "
                      "WHERE c.run_id = " + std::to_string(ids[0]) + " ORDER BY c.id");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0]["stage"].as<std::string>(), "r0/train");
  EXPECT_TRUE(rows[0]["parent_id"].is_null());
  EXPECT_EQ(rows[1]["stage"].as<std::string>(), "r1/train");
  EXPECT_EQ(rows[1]["parent_id"].as<int64_t>(), rows[0]["id"].as<int64_t>());
  for (const auto& r : rows) {
    EXPECT_EQ(r["step"].as<int64_t>(), 4);
    const std::string uri = r["uri"].as<std::string>();
    EXPECT_TRUE(std::filesystem::exists(uri + "/adapter_model.safetensors")) << uri;
    EXPECT_TRUE(std::filesystem::exists(uri + "/README.md")) << uri;
  }
  const int64_t loss_rows = tx.exec1("SELECT count(*) FROM metrics WHERE run_id = " + std::to_string(ids[0]) +
                                     " AND name = 'loss'")[0].as<int64_t>();
  EXPECT_GE(loss_rows, 8) << "4 steps x 2 rounds, progress every step";
  const int64_t lr_rows = tx.exec1("SELECT count(*) FROM metrics WHERE run_id = " + std::to_string(ids[0]) +
                                   " AND name = 'tokens_per_second'")[0].as<int64_t>();
  EXPECT_GE(lr_rows, 8);
  trainer.Signal(SIGTERM);
  EXPECT_NE(trainer.Wait(seconds(30)), -1);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace temper::e2e
