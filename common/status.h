#pragma once
// The project's only control-flow macros (STYLE.md rule 22), and small Status helpers.

#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

#define CTXMEM_CONCAT_INNER_(a, b) a##b
#define CTXMEM_CONCAT_(a, b) CTXMEM_CONCAT_INNER_(a, b)

// Evaluates `expr` (an absl::Status) and returns it from the enclosing function if not OK.
#define CTXMEM_RETURN_IF_ERROR(expr)                 \
  do {                                               \
    ::absl::Status _ctxmem_status = (expr);          \
    if (!_ctxmem_status.ok()) return _ctxmem_status; \
  } while (0)

// `lhs = value of expr` where expr is an absl::StatusOr<T>; returns the status on error.
// `lhs` may declare a variable: CTXMEM_ASSIGN_OR_RETURN(auto file, GgufFile::Open(path));
#define CTXMEM_ASSIGN_OR_RETURN(lhs, expr) \
  CTXMEM_ASSIGN_OR_RETURN_IMPL_(CTXMEM_CONCAT_(_ctxmem_statusor_, __LINE__), lhs, expr)
#define CTXMEM_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                  \
  if (!tmp.ok()) return std::move(tmp).status();      \
  lhs = std::move(tmp).value()

namespace ctxmem {

// Debian's Abseil is built with its own absl::string_view (not std::string_view), so absl::StrCat
// and absl::Status do not take a std::string_view. AsAbsl converts one without copying.
inline absl::string_view AsAbsl(std::string_view s) { return {s.data(), s.size()}; }

// Returns `status` with "context: " put in front of its message; OK stays OK.
absl::Status WithContext(const absl::Status& status, absl::string_view context);

}  // namespace ctxmem
