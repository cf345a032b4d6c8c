// Migrations against a real PostgreSQL: idempotent, concurrent starts race-free, views work.
#include <gtest/gtest.h>

#include <pqxx/pqxx>
#include <thread>

#include "libs/store/migrations.h"
#include "libs/store/testing/pg_test_env.h"

namespace temper {
namespace {

TEST(MigrationsTest, ConcurrentApplyIsRaceFreeAndIdempotent) {
  auto& env = testing::PgTestEnv::Get();  // already migrated once
  std::vector<std::thread> threads;
  std::vector<absl::Status> results(4);
  for (int i = 0; i < 4; ++i)
    threads.emplace_back([&, i] { results[i] = ApplyMigrations(env.conninfo()); });
  for (auto& t : threads) t.join();
  for (const auto& s : results) EXPECT_TRUE(s.ok()) << s;
  pqxx::connection c(env.conninfo());
  pqxx::read_transaction tx(c);
  auto n = tx.exec("SELECT count(*), count(DISTINCT version) FROM schema_migrations")[0];
  EXPECT_EQ(n[0].as<int>(), static_cast<int>(BuiltinMigrations().size()));
  EXPECT_EQ(n[1].as<int>(), static_cast<int>(BuiltinMigrations().size()));
}

TEST(MigrationsTest, AnalystRoleCanReadButNotWrite) {
  auto& env = testing::PgTestEnv::Get();
  env.Truncate();
  pqxx::connection c(env.conninfo());
  {
    pqxx::work tx(c);
    tx.exec("INSERT INTO runs (name, config, created_at, updated_at) VALUES ('r', '{}', now(), now())");
    tx.commit();
  }
  pqxx::work tx(c);
  tx.exec("SET ROLE temper_analyst");
  EXPECT_EQ(tx.exec("SELECT count(*) FROM run_summary")[0][0].as<int>(), 1);
  EXPECT_EQ(tx.exec("SELECT count(*) FROM checkpoint_lineage")[0][0].as<int>(), 0);
  EXPECT_THROW(tx.exec("DELETE FROM runs"), pqxx::insufficient_privilege);
}

TEST(MigrationsTest, UnknownNewerMigrationIsRefused) {
  auto& env = testing::PgTestEnv::Get();
  {
    pqxx::connection c(env.conninfo());
    pqxx::work tx(c);
    tx.exec("INSERT INTO schema_migrations (version, name, checksum) VALUES (9999, 'future', 'x')");
    tx.commit();
  }
  absl::Status s = ApplyMigrations(env.conninfo());
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  pqxx::connection c(env.conninfo());
  pqxx::work tx(c);
  tx.exec("DELETE FROM schema_migrations WHERE version = 9999");
  tx.commit();
}

}  // namespace
}  // namespace temper
