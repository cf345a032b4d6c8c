#include "libs/store/pg_pool.h"

#include <thread>

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace temper {
absl::Status PgErrorToStatus(const std::exception& e, std::string_view context_sv) {
  absl::string_view context(context_sv.data(), context_sv.size());
  std::string what = absl::StrCat(context, ": ", e.what());
  while (!what.empty() && what.back() == '\n') what.pop_back();
  if (dynamic_cast<const pqxx::unique_violation*>(&e)) return absl::AlreadyExistsError(what);
  if (dynamic_cast<const pqxx::foreign_key_violation*>(&e)) return absl::NotFoundError(what);
  if (dynamic_cast<const pqxx::check_violation*>(&e) || dynamic_cast<const pqxx::data_exception*>(&e) ||
      dynamic_cast<const pqxx::not_null_violation*>(&e))
    return absl::InvalidArgumentError(what);
  if (dynamic_cast<const pqxx::broken_connection*>(&e) || dynamic_cast<const pqxx::in_doubt_error*>(&e))
    return absl::UnavailableError(what);
  return absl::InternalError(what);
}

PgPool::PgPool(std::string conninfo, int size, Statements statements,
               std::chrono::milliseconds retry_for)
    : conninfo_(std::move(conninfo)),
      size_(size),
      statements_(std::move(statements)),
      retry_for_(retry_for) {}

PgPool::~PgPool() = default;

std::unique_ptr<pqxx::connection> PgPool::Connect() {
  auto conn = std::make_unique<pqxx::connection>(conninfo_);
  for (const auto& [name, sql] : statements_) conn->prepare(name, sql);
  return conn;
}

std::unique_ptr<pqxx::connection> PgPool::Take() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return !idle_.empty() || open_ < size_; });
  if (!idle_.empty()) {
    auto conn = std::move(idle_.back());
    idle_.pop_back();
    return conn;
  }
  ++open_;
  return nullptr;  // the caller connects outside the lock
}

void PgPool::Give(std::unique_ptr<pqxx::connection> conn) {
  {
    std::lock_guard lock(mu_);
    if (conn) {
      idle_.push_back(std::move(conn));
    } else {
      --open_;
    }
  }
  cv_.notify_one();
}

absl::Status PgPool::WithTransaction(const std::function<absl::Status(pqxx::work&)>& fn) {
  auto deadline = std::chrono::steady_clock::now() + retry_for_;
  std::chrono::milliseconds backoff(20);
  for (int attempt = 0;; ++attempt) {
    std::unique_ptr<pqxx::connection> conn = Take();
    absl::Status status;
    bool retry = false;
    try {
      if (!conn || !conn->is_open()) conn = Connect();
      pqxx::work tx(*conn);
      status = fn(tx);
      if (status.ok()) {
        tx.commit();
      } else {
        tx.abort();
      }
    } catch (const pqxx::in_doubt_error& e) {
      // The commit may or may not have happened; callers' operations are fenced or idempotent, so
      // report it rather than guess.
      conn.reset();
      status = PgErrorToStatus(e, "commit in doubt");
    } catch (const pqxx::broken_connection& e) {
      conn.reset();
      status = PgErrorToStatus(e, "database connection");
      retry = true;
    } catch (const pqxx::serialization_failure& e) {
      status = PgErrorToStatus(e, "serialization");
      retry = true;
    } catch (const pqxx::deadlock_detected& e) {
      status = PgErrorToStatus(e, "deadlock");
      retry = true;
    } catch (const pqxx::sql_error& e) {
      status = PgErrorToStatus(e, "query");
      // A server shutting down answers with admin_shutdown (57P01) or cannot_connect (57P03).
      if (e.sqlstate().rfind("57P", 0) == 0 || e.sqlstate().rfind("08", 0) == 0) {
        conn.reset();
        retry = true;
      }
    } catch (const std::exception& e) {
      conn.reset();
      status = PgErrorToStatus(e, "database");
    }
    if (conn && !conn->is_open()) conn.reset();
    Give(std::move(conn));
    if (!retry || std::chrono::steady_clock::now() + backoff > deadline) return status;
    if (attempt == 0 || attempt % 10 == 0)
      spdlog::warn("database unavailable, retrying: {}", std::string(status.message()));
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, std::chrono::milliseconds(1000));
  }
}

}  // namespace temper
