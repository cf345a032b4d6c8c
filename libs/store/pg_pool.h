// PgPool: a fixed-size pool of libpqxx connections with prepared statements, and the one place
// that turns libpqxx exceptions into Status. A broken connection is replaced on its next use, so
// the pool carries on after the PostgreSQL server restarts. Thread-safe.
#pragma once

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <pqxx/pqxx>

#include "libs/common/status.h"

namespace temper {

class PgPool {
 public:
  // Statements prepared on every connection: (name, sql).
  using Statements = std::vector<std::pair<std::string, std::string>>;

  // Connects lazily; `size` connections at most. `retry_for` bounds how long a transaction keeps
  // retrying while the server is unreachable.
  PgPool(std::string conninfo, int size, Statements statements,
         std::chrono::milliseconds retry_for = std::chrono::seconds(30));
  ~PgPool();

  // Runs `fn` in a transaction and commits it. Retries the whole transaction when the connection
  // breaks before the commit was sent or on serialization failures. Exceptions from `fn` become a
  // Status (see PgErrorToStatus); a non-OK Status from `fn` rolls back.
  absl::Status WithTransaction(const std::function<absl::Status(pqxx::work&)>& fn);

  const std::string& conninfo() const { return conninfo_; }

 private:
  std::unique_ptr<pqxx::connection> Take();
  void Give(std::unique_ptr<pqxx::connection> conn);
  std::unique_ptr<pqxx::connection> Connect();

  const std::string conninfo_;
  const int size_;
  const Statements statements_;
  const std::chrono::milliseconds retry_for_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<pqxx::connection>> idle_;  // GUARDED_BY(mu_)
  int open_ = 0;                                         // GUARDED_BY(mu_)
};

// Maps a libpqxx exception to a Status: unique violation -> AlreadyExists, foreign key ->
// NotFound, check/data errors -> InvalidArgument, broken connection -> Unavailable.
absl::Status PgErrorToStatus(const std::exception& e, std::string_view context);

}  // namespace temper
