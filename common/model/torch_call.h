#pragma once
// The one boundary between LibTorch's exceptions and ctxmem's Status returns (STYLE.md rule 23).

#include <c10/util/Exception.h>

#include <exception>
#include <type_traits>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace ctxmem::model {

// Runs `fn` (returning absl::Status or void) and turns any c10::Error or std::exception into
// an Internal error prefixed by `what`. c10::Error from a shape check is a bug on our side
// (inputs are validated before torch sees them), hence Internal.
template <typename Fn>
absl::Status TorchCall(absl::string_view what, Fn&& fn) {
  try {
    if constexpr (std::is_same_v<decltype(fn()), void>) {
      std::forward<Fn>(fn)();
      return absl::OkStatus();
    } else {
      return std::forward<Fn>(fn)();
    }
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat(what, ": torch: ", e.what_without_backtrace()));
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(absl::StrCat(what, ": out of memory"));
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat(what, ": ", e.what()));
  }
}

}  // namespace ctxmem::model
