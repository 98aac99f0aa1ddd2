#pragma once
// The learned pruners' entries in the one PrunerRegistry (common/compress/pruner_registry.h):
// RegisterBuiltinPruners() calls RegisterLearnedPruners() so the registry lists every method,
// training-free and learned. The learned methods live here, above the engine (they implement
// compress::Pruner); the registry's call into this folder is the one link back (CMake links the
// two static libraries both ways).
// Thread-safety: called once, under the registry's std::call_once.

#include "common/compress/pruner_registry.h"

namespace ctxmem::learned {

// Adds "perceiver" (§3.9: trained weights from CompressionConfig::perceiver_weights; none -> a
// clear error).
void RegisterLearnedPruners(compress::PrunerRegistry& registry);

}  // namespace ctxmem::learned
