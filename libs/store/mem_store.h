// MemStore: an in-memory Store for unit tests and the scheduler's tests. Same contract as PgStore
// (the conformance suite holds both to it); one mutex guards everything. Thread-safe.
#pragma once

#include <map>
#include <memory>
#include <mutex>

#include "libs/store/store.h"

namespace temper {

std::unique_ptr<Store> NewMemStore();

}  // namespace temper
