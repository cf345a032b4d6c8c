// PgStore: the Store on PostgreSQL through libpqxx 6.4 — prepared statements over a PgPool, every
// method one transaction. Thread-safe.
#pragma once

#include <memory>
#include <string>

#include "libs/store/store.h"

namespace temper {

// Opens a store on `conninfo` (libpq syntax or URL) with up to `pool_size` connections. The schema
// must be migrated already (ApplyMigrations). Fails when the database cannot be reached.
absl::StatusOr<std::unique_ptr<Store>> OpenPgStore(const std::string& conninfo, int pool_size);

}  // namespace temper
