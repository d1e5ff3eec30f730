// Status macros with Abseil's meaning. Debian's Abseil (2022-06) ships none, so
// they live here.
//
// RETURN_IF_ERROR(expr): evaluates expr (an absl::Status); returns it from the
// enclosing function when it is not OK. ASSIGN_OR_RETURN(lhs, expr): evaluates
// expr (an absl::StatusOr<T>); returns its status when not OK, else moves its
// value into lhs (which may be a declaration).
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define FF_STATUS_CONCAT_INNER(a, b) a##b
#define FF_STATUS_CONCAT(a, b) FF_STATUS_CONCAT_INNER(a, b)

#define RETURN_IF_ERROR(expr)                                   \
  do {                                                          \
    if (::absl::Status ff_status_ = (expr); !ff_status_.ok()) { \
      return ff_status_;                                        \
    }                                                           \
  } while (false)

#define ASSIGN_OR_RETURN(lhs, expr) \
  FF_ASSIGN_OR_RETURN_IMPL(FF_STATUS_CONCAT(ff_statusor_, __LINE__), lhs, expr)

#define FF_ASSIGN_OR_RETURN_IMPL(statusor, lhs, expr) \
  auto statusor = (expr);                             \
  if (!statusor.ok()) {                               \
    return std::move(statusor).status();              \
  }                                                   \
  lhs = std::move(statusor).value()
