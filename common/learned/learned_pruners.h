#pragma once
// The learned pruners' entries in the one PrunerRegistry (common/compress/pruner_registry.h):
// RegisterBuiltinPruners() calls RegisterLearnedPruners() so the registry lists every method,
// training-free and learned. The learned methods live here, above the engine (they implement
// compress::Pruner); the registry's call into this folder is the one link back (CMake links the
// two static libraries both ways).
// Thread-safety: called once, under the registry's std::call_once.

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/compress/pruner_registry.h"

namespace ctxmem::learned {

// Adds "perceiver" (§3.9: trained weights from CompressionConfig::perceiver_weights; none -> a
// clear error).
// Also "mean_fuser", "perceiver_fuser" and "llm_fuser" (spec §7; the learned two read
// CompressionConfig::perceiver_weights and refuse to run without it).
void RegisterLearnedPruners(compress::PrunerRegistry& registry);

// A fuser ("perceiver_fuser" | "llm_fuser") with the weights of `path` (loaded on every call;
// "" -> FailedPrecondition). InvalidArgument for a bad file or another method name.
absl::StatusOr<std::unique_ptr<compress::Pruner>> MakeFileMethod(const std::string& method,
                                                                 const std::string& path);

}  // namespace ctxmem::learned
