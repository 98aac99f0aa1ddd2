#pragma once
// LlmFuser ("llm_fuser", spec §7, the seed's LLMFuser; AutoCompressor/ICAE-like soft
// compression): the frozen LLM reads `target` memory tokens after the candidates, and the KV of
// those tokens becomes the new memory. The memory tokens have learned input embeddings (ids
// cycling through query_len new embeddings) and, for them only, LoRA on the q/k/v projections
// of every layer (delta = alpha / r * B A h). Decisions (docs/training.md "Fusers"):
//  - The LoRA applies to the memory tokens' pass only. Chunks and decoding run the base model,
//    so a decoder needs nothing method-specific (the seed's PEFT model changed every forward).
//  - Past of that pass = [prefix ; candidates] at slots 0..P-1 (prefix = sinks, plus the frozen
//    memory under fixed incremental); the memory tokens take positions P..P+target-1; their
//    pre-RoPE keys are stored, so they are re-placed at slots like every memory entry.
//  - No LoRA dropout (the seed used 0.3): training stays a pure function of the seed.
//  - src of memory token j = the newest token of the j-th of `target` even groups of the
//    candidates (GroupAnchors), an anchor in the stream, not a token it is.
// Weights file (LearnedFile, "ctxmem.method" = "llm_fuser"), fp32:
//   memory_embeddings [query_len, hidden]; layers.<l>.{q,k,v}.lora_a [r, hidden],
//   layers.<l>.{q,k,v}.lora_b [n_out, r] (n_out = n_heads * head_dim for q, n_kv_heads *
//   head_dim for k and v); metadata "lora_alpha" (default 2 r).
// Thread-safety: const methods only; the weights are shared read-only.

#include <ATen/core/Tensor.h>

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/compress/fuser.h"
#include "common/learned/learned_file.h"

namespace ctxmem::model {
class Transformer;
}

namespace ctxmem::learned {

struct LlmFuserTensors {
  at::Tensor embeddings;  // [query_len, hidden]
  // Per layer and projection (q, k, v): A [r, hidden], B [n_out, r].
  std::vector<std::array<at::Tensor, 3>> lora_a, lora_b;
  double scale = 1.0;  // lora_alpha / r
};

// The memory tokens' pass: past per layer [prefix ; candidates] as k (pre-RoPE) and v
// [n_kv_heads, P, head_dim] -> per layer {k pre-RoPE, v} [n_kv_heads, target, head_dim] fp32.
// Differentiable w.r.t. the tensors (not the past). Errors from the model are returned.
absl::StatusOr<std::vector<std::pair<at::Tensor, at::Tensor>>> LlmFuseForward(
    const model::Transformer& model, const LlmFuserTensors& w, const std::vector<at::Tensor>& k,
    const std::vector<at::Tensor>& v, int64_t target);

class LlmFuserWeights {
 public:
  static absl::StatusOr<LlmFuserWeights> Load(const std::string& path);
  static absl::StatusOr<LlmFuserWeights> FromFile(const LearnedFile& file,
                                                  const std::string& source);
  static LearnedFile ToFile(const LlmFuserTensors& tensors, double lora_alpha);

  const LlmFuserTensors& tensors() const { return t_; }
  int64_t n_layers() const { return static_cast<int64_t>(t_.lora_a.size()); }
  int64_t rank() const { return t_.lora_a.empty() ? 0 : t_.lora_a[0][0].size(0); }
  const std::string& source() const { return source_; }
  // InvalidArgument naming the numbers that disagree with the model's.
  absl::Status CheckFits(const model::Transformer& model) const;

 private:
  LlmFuserTensors t_;
  std::string source_;
};

class LlmFuser final : public compress::Fuser {
 public:
  explicit LlmFuser(std::shared_ptr<const LlmFuserWeights> weights)
      : weights_(std::move(weights)) {}
  std::string_view name() const override { return "llm_fuser"; }

  // FailedPrecondition: the built-in name has no weights (use --learned NAME=FILE).
  static absl::Status NoWeightsError();

 protected:
  std::vector<compress::LayerMemory> FuseLayers(const compress::FuseInput& input) const override;

 private:
  std::shared_ptr<const LlmFuserWeights> weights_;  // constant after construction
};

}  // namespace ctxmem::learned
