#pragma once
// RCC bridges by name: the built-in "stride" (the untrained zero residual bridge, no file) and
// the trained ones registered with `--learned NAME=FILE` (a file whose ctxmem.method is "rcc",
// learned_method.h). CompressionConfig::rcc_bridge names one; memory ids name it by content
// ("sha256:<hex>" of the file; "stride" for the built-in one).
// Thread-safety: thread-safe (one mutex).

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/learned/rcc_bridge.h"

namespace ctxmem::learned {

inline constexpr std::string_view kRccStrideBridge = "stride";

// Loads `path` and registers it as `name` with `content_id`. AlreadyExists when `name` is
// taken by other content (the same content again is OK); InvalidArgument for "stride" or a
// file RccBridge::Load refuses.
absl::Status RegisterRccBridge(const std::string& name, const std::string& path,
                               const std::string& content_id);

// The bridge `name` for a model of n_layers x hidden. InvalidArgument listing the known names
// for an unknown one, or when the bridge does not fit the model.
absl::StatusOr<std::shared_ptr<const RccBridge>> FindRccBridge(std::string_view name,
                                                               int64_t n_layers, int64_t hidden);
// OK when `name` is known (InvalidArgument as FindRccBridge otherwise).
absl::Status CheckRccBridge(std::string_view name);
// What the memory id records for `name`: "stride", the file's "sha256:<hex>", or "".
std::string RccBridgeContentId(std::string_view name);

}  // namespace ctxmem::learned
