// EmbeddedPostgres: a private PostgreSQL cluster under a directory, run with Debian's initdb and
// pg_ctl and reached over a unix socket only. The coordinator uses it when no database URL is given;
// the pg and e2e test tiers use it for throwaway clusters. When the process runs as root the server
// runs as an unprivileged user (postgres, else nobody), since PostgreSQL refuses root.
// Not thread-safe; one owner starts and stops it.
#pragma once

#include <string>

#include "libs/common/status.h"

namespace temper {

class EmbeddedPostgres {
 public:
  // `dir` holds the cluster (created on first Start, reused after). `fsync` off only for tests.
  explicit EmbeddedPostgres(std::string dir, bool fsync = true);
  // Stops the server if this object started it.
  ~EmbeddedPostgres();
  EmbeddedPostgres(const EmbeddedPostgres&) = delete;
  EmbeddedPostgres& operator=(const EmbeddedPostgres&) = delete;

  // Initialises the cluster if needed and starts the server; a server already running on this
  // directory (e.g. after a crash of the previous owner) is reused. Creates database `temper`.
  absl::Status Start();
  // Fast shutdown. `immediate`: SIGQUIT-like stop (simulates a crash; restart recovers from WAL).
  absl::Status Stop(bool immediate = false);
  // The libpq connection string for database `temper`.
  std::string conninfo() const;
  const std::string& dir() const { return dir_; }

 private:
  absl::Status RunAsServerUser(const std::vector<std::string>& argv, const std::string& log) const;
  std::string BinDir() const;

  std::string dir_;
  bool fsync_;
  bool started_ = false;
};

}  // namespace temper
