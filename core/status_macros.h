// Early-return helpers for absl::Status and absl::StatusOr.
//
// Debian's Abseil (20220623) ships no status macros, so the project carries
// this pair:
//
//   PANDA_RETURN_IF_ERROR(WriteHeader(file));
//   PANDA_ASSIGN_OR_RETURN(torch::Tensor features, cache.Load(key));
#ifndef PANDA_CORE_STATUS_MACROS_H_
#define PANDA_CORE_STATUS_MACROS_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define PANDA_STATUS_CONCAT_INNER_(x, y) x##y
#define PANDA_STATUS_CONCAT_(x, y) PANDA_STATUS_CONCAT_INNER_(x, y)

// Returns the status of `expr` from the enclosing function unless it is OK.
#define PANDA_RETURN_IF_ERROR(expr)                          \
  do {                                                       \
    const ::absl::Status panda_status_ = (expr);             \
    if (!panda_status_.ok()) return panda_status_;           \
  } while (false)

// Evaluates `rexpr` (an absl::StatusOr<T>), returns its status on error and
// otherwise moves the value into `lhs`, which may be a declaration.
#define PANDA_ASSIGN_OR_RETURN(lhs, rexpr)                                   \
  PANDA_ASSIGN_OR_RETURN_IMPL_(                                              \
      PANDA_STATUS_CONCAT_(panda_statusor_, __LINE__), lhs, rexpr)

#define PANDA_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                                 \
  if (!statusor.ok()) return std::move(statusor).status(); \
  lhs = std::move(statusor).value()

#endif  // PANDA_CORE_STATUS_MACROS_H_
