#pragma once
// Deterministic per-row top-k, the selection step of every pruner (spec §2 "Selection", §12.5).
// Thread-safety: free functions without state.

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace ctxmem::compress {

// Which entry wins among equal values.
enum class TieBreak {
  kPreferLarger,   // the larger index (the more recent entry) wins: every pruner's top-k (§12.5)
  kPreferSmaller,  // the smaller index wins (roco's "lowest std" pick, so the older entry loses)
};

// Indices of the k largest entries of each row of `values` [n_rows, n] (any float dtype, any
// device), sorted ascending: [n_rows, k] int64 on the same device. k is clamped to [0, n].
// Identical on CPU and GPU: a stable sort decides ties by `tie`, never torch.topk.
// May throw c10::Error (callers run it inside TorchCall).
at::Tensor TopKIndices(const at::Tensor& values, int64_t k, TieBreak tie = TieBreak::kPreferLarger);

}  // namespace ctxmem::compress
