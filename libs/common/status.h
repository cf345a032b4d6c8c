// Status helpers: temper's fallible functions return absl::Status / absl::StatusOr<T>.
// Exceptions from third-party libraries are caught at the adapter that calls them.
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define TEMPER_CONCAT_INNER_(a, b) a##b
#define TEMPER_CONCAT_(a, b) TEMPER_CONCAT_INNER_(a, b)

// RETURN_IF_ERROR(expr): returns the status from the enclosing function when expr is not OK.
#define RETURN_IF_ERROR(expr)                 \
  do {                                        \
    ::absl::Status temper_status_ = (expr);   \
    if (!temper_status_.ok()) return temper_status_; \
  } while (0)

// ASSIGN_OR_RETURN(lhs, expr): lhs = *expr, or returns expr's status.
#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL_(TEMPER_CONCAT_(temper_statusor_, __LINE__), lhs, expr)
#define ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                           \
  if (!tmp.ok()) return tmp.status();          \
  lhs = std::move(tmp).value()
