#include "libs/store/migrations.h"

#include <pqxx/pqxx>

#include "absl/strings/str_cat.h"
#include "libs/store/pg_pool.h"
#include "spdlog/spdlog.h"

namespace temper {
namespace {

// Any constant distinct from other users of advisory locks on the same database.
constexpr int64_t kMigrationLockKey = 0x74656d706572;  // "temper"

// FNV-1a 64: stable across builds and platforms, so an edited migration file is noticed.
std::string Checksum(const std::string& sql) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : sql) h = (h ^ c) * 0x100000001b3ULL;
  return absl::StrCat("fnv1a64:", absl::Hex(h, absl::kZeroPad16));
}

}  // namespace

absl::Status ApplyMigrations(const std::string& conninfo) {
  try {
    pqxx::connection conn(conninfo);
    pqxx::nontransaction(conn).exec("SELECT pg_advisory_lock(" + std::to_string(kMigrationLockKey) + ")");
    {
      pqxx::work tx(conn);
      tx.exec(
          "CREATE TABLE IF NOT EXISTS schema_migrations ("
          " version INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL,"
          " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())");
      tx.commit();
    }
    std::map<int, std::string> applied;
    {
      pqxx::read_transaction tx(conn);
      for (const auto& row : tx.exec("SELECT version, checksum FROM schema_migrations"))
        applied[row[0].as<int>()] = row[1].as<std::string>();
    }
    const auto& migrations = BuiltinMigrations();
    for (const auto& [version, checksum] : applied) {
      auto it = std::find_if(migrations.begin(), migrations.end(),
                             [&](const Migration& m) { return m.version == version; });
      if (it == migrations.end())
        return absl::FailedPreconditionError(absl::StrCat(
            "database has migration ", version, " which this coordinator does not know; upgrade it"));
      // A mismatch means a migration file was edited after it was applied: forward-only is broken.
      if (checksum != Checksum(it->sql))
        spdlog::warn("migration {} ({}) differs from the one applied", version, it->name);
    }
    for (const auto& m : migrations) {
      if (applied.contains(m.version)) continue;
      pqxx::work tx(conn);
      tx.exec(m.sql);
      tx.exec_params("INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                     m.version, m.name, Checksum(m.sql));
      tx.commit();
      spdlog::info("applied migration {:04d} {}", m.version, m.name);
    }
    {
      pqxx::work tx(conn);
      for (const auto& v : BuiltinViews()) tx.exec(v.sql);
      tx.commit();
    }
    pqxx::nontransaction(conn).exec("SELECT pg_advisory_unlock(" + std::to_string(kMigrationLockKey) + ")");
    return absl::OkStatus();
  } catch (const std::exception& e) {
    return PgErrorToStatus(e, "applying migrations");
  }
}

}  // namespace temper
