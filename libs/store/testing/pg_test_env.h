// A throwaway PostgreSQL cluster for the pg and e2e test tiers: one per test binary, migrated,
// with fsync off (these tests check behaviour, not durability). Tables are emptied between tests.
#pragma once

#include <memory>
#include <string>

#include "libs/store/embedded_pg.h"

namespace temper::testing {

class PgTestEnv {
 public:
  // Starts (once per process) and returns the shared cluster; aborts the test binary with a clear
  // message when PostgreSQL's binaries are missing.
  static PgTestEnv& Get();
  const std::string& conninfo() const { return conninfo_; }
  EmbeddedPostgres& server() { return *server_; }
  // Empties every table and restarts id sequences.
  void Truncate();

 private:
  PgTestEnv();
  std::string dir_;
  std::unique_ptr<EmbeddedPostgres> server_;
  std::string conninfo_;
};

}  // namespace temper::testing
