#include "libs/store/testing/pg_test_env.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include <pqxx/pqxx>

#include "libs/store/migrations.h"

namespace temper::testing {

PgTestEnv& PgTestEnv::Get() {
  static PgTestEnv* env = new PgTestEnv();  // lives until exit; the destructor of server_ is not run
  return *env;
}

PgTestEnv::PgTestEnv() {
  char tmpl[] = "/tmp/temper-pg-XXXXXX";
  if (!mkdtemp(tmpl)) {
    std::perror("mkdtemp");
    std::abort();
  }
  dir_ = tmpl;
  std::filesystem::permissions(dir_, std::filesystem::perms::owner_all | std::filesystem::perms::group_exec |
                                         std::filesystem::perms::others_exec);
  server_ = std::make_unique<EmbeddedPostgres>(dir_, /*fsync=*/false);
  if (auto s = server_->Start(); !s.ok()) {
    std::fprintf(stderr, "cannot start a test PostgreSQL in %s: %s\n", dir_.c_str(), s.ToString().c_str());
    std::abort();
  }
  conninfo_ = server_->conninfo();
  if (auto s = ApplyMigrations(conninfo_); !s.ok()) {
    std::fprintf(stderr, "migrations failed: %s\n", s.ToString().c_str());
    std::abort();
  }
  std::atexit([] {
    auto& env = Get();
    (void)env.server_->Stop(/*immediate=*/true);
    std::error_code ec;
    std::filesystem::remove_all(env.dir_, ec);
  });
}

void PgTestEnv::Truncate() {
  pqxx::connection c(conninfo_);
  pqxx::work tx(c);
  tx.exec("TRUNCATE run_events, metrics, checkpoints, jobs, workers, runs RESTART IDENTITY CASCADE");
  tx.exec("ALTER SEQUENCE job_epoch_seq RESTART");
  tx.commit();
}

}  // namespace temper::testing
