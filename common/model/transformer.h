#pragma once
// Forward pass of a decoder-only transformer (llama/qwen2/mistral/gpt_neox) over a chunk of
// tokens with an explicit past KV state and arbitrary positions. Attention runs through
// scaled_dot_product_attention; attention weights for pruners come from a separate score
// path that never changes the main output.
// Thread-safety: const methods only; Forward may run concurrently on one Transformer.

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "common/model/kv_cache.h"
#include "common/model/model_config.h"
#include "common/model/model_weights.h"
#include "common/model/rope.h"

namespace ctxmem::model {

enum class LogitsMode { kAll, kLast, kNone };

// Which query rows of the chunk get attention weights computed (DESIGN.md "Attention scores").
enum class ScoreRows { kNone, kAll, kLastWindow };

// The attention input projections, for ForwardOptions::projection_delta.
enum class Projection { kQ, kK, kV };

struct ForwardOptions {
  LogitsMode logits = LogitsMode::kAll;
  bool return_pre_rope_keys = false;
  // When true, ForwardResult::k and ::v hold [past ; new] (the tensors attention used) instead
  // of the new entries only: a caller that extends its cache takes them as the next cache
  // instead of concatenating a second time (decoding copies the cache once per token, not twice).
  bool kv_with_past = false;
  ScoreRows score_rows = ScoreRows::kNone;
  int64_t score_window = 0;  // rows for kLastWindow (clamped to the chunk length)
  // When set, each layer's scores go here as soon as they are computed, instead of into
  // ForwardResult::scores: `scores` is [batch, n_kv_heads, n_rows, past_len + n_tokens] fp32,
  // borrowed for the call. Only one layer's scores then exist at a time, so a caller that
  // reduces them (a pruner's selection) never holds all layers' [n_kv, rows, S] (spec §2 "one
  // layer at a time"). An error status stops the forward and is returned as it is.
  std::function<absl::Status(int64_t layer, const at::Tensor& scores)> on_layer_scores;
  // Learned compressors (llm_fuser, spec §7). When defined, these rows are the layer-0 input
  // instead of the token embeddings: [batch, n_tokens, hidden] fp32 (tokens are still
  // validated, and ignored otherwise).
  at::Tensor input_embeddings;
  // When set, added to the q / k / v projection of every layer (before RoPE): given the
  // normalised input h [batch, n_tokens, hidden] fp32, returns [batch, n_tokens, n_out] fp32
  // (LoRA's scale * B A h), or an undefined tensor for no change. May throw c10::Error.
  std::function<at::Tensor(int64_t layer, Projection proj, const at::Tensor& h)> projection_delta;
  // When set, the residual stream x [batch, n_tokens, hidden] fp32 passes through this hook at
  // HF hidden-state index l: l = 0 after the token embedding, l = i + 1 after layer i (before
  // the final norm for the last layer). What it returns (same shape) replaces x: RCC reads the
  // encoder's states here and injects its slots into the decoder (docs/rcc.md). Differentiable.
  std::function<at::Tensor(int64_t l, const at::Tensor& x)> residual_hook;
};

struct ForwardResult {
  at::Tensor logits;  // [batch, n_out, n_vocab] fp32 (n_out = n_tokens or 1)
  // per layer [batch, n_kv_heads, n_tokens, head_dim], RoPE'd (n_tokens + past_len with
  // ForwardOptions::kv_with_past)
  std::vector<at::Tensor> k;
  std::vector<at::Tensor> v;           // per layer, the same shape
  std::vector<at::Tensor> k_pre_rope;  // per layer, same shape, before RoPE (if requested)
  // per layer [batch, n_kv_heads, n_rows, past_len + n_tokens] fp32: causal softmax weights of
  // the chosen query rows, summed over the query heads of each kv head (GQA group). Empty when
  // ForwardOptions::on_layer_scores took them.
  std::vector<at::Tensor> scores;
};

class Transformer {
 public:
  Transformer(ModelConfig config, ModelWeights weights, c10::Device device);
  Transformer(const Transformer&) = delete;
  Transformer& operator=(const Transformer&) = delete;

  // tokens, positions: [batch, n_tokens] int64 (positions may be any non-negative values; the
  // chunk attends to all of `past` and causally to itself). `past` may be null or empty.
  // InvalidArgument for token ids outside [0, n_vocab), negative positions, mismatched shapes
  // or a past whose layer count/shape does not fit the model.
  absl::StatusOr<ForwardResult> Forward(const at::Tensor& tokens, const at::Tensor& positions,
                                        const KvCache* past, const ForwardOptions& options) const;

  // Rotates pre-RoPE keys [batch, n_kv_heads, seq_len, head_dim] to `positions`
  // [batch, seq_len]: how a stored (position-free) memory becomes a past KvCache.
  at::Tensor RotateKeys(const at::Tensor& k_pre_rope, const at::Tensor& positions) const;

  const ModelConfig& config() const { return config_; }
  const ModelWeights& weights() const { return weights_; }
  c10::Device device() const { return device_; }
  c10::ScalarType dtype() const;

 private:
  at::Tensor Norm(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) const;

  // Constant after construction.
  ModelConfig config_;
  ModelWeights weights_;
  c10::Device device_;
  Rope rope_;
};

}  // namespace ctxmem::model
