// Schema migrations: forward-only numbered SQL files from migrations/ (compiled into the binary),
// then the re-appliable views in migrations/views/.
#pragma once

#include <string>
#include <vector>

#include "libs/common/status.h"

namespace temper {

struct Migration {
  int version;
  std::string name;
  std::string sql;
};

// The migrations and views this binary was built with, in order.
const std::vector<Migration>& BuiltinMigrations();
const std::vector<Migration>& BuiltinViews();

// Applies every migration not yet recorded in schema_migrations, each in its own transaction, then
// re-creates the views. Holds a PostgreSQL advisory lock throughout, so coordinators starting
// together apply each migration exactly once. Fails when the database has a migration this binary
// does not know (a newer schema) or a recorded migration's checksum changed.
absl::Status ApplyMigrations(const std::string& conninfo);

}  // namespace temper
