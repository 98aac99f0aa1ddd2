#pragma once
// The model options the CLI and the servers load by default: the fast path, chosen by
// measurement (docs/runtime.md "Defaults", bench/results/peer_bench.md): bf16 weight matrices
// for prefill and compression where the CPU multiplies bf16 natively, fp32 elsewhere
// (ResolveDtype; bf16's perplexity is within 0.05 % of fp32 on the shipped 8k text), packed
// decode steps on the GGUF's own blocks where the model has them. A default-constructed
// ModelOptions stays the reference (fp32 matrices, dense decode): what the tests compare with
// transformers, and what `--dtype fp32 --decode dense` selects.
// Thread-safety: constants.

#include "common/model/model.h"

namespace ctxmem::model {

// bf16 where the device has bf16 matrix units, else fp32 (ResolveDtype).
inline constexpr char kServingDtype[] = "auto";
inline constexpr char kServingDecode[] = "auto";

inline ModelOptions ServingModelOptions() {
  ModelOptions options;
  options.dtype = kServingDtype;
  options.decode = kServingDecode;
  return options;
}

}  // namespace ctxmem::model
