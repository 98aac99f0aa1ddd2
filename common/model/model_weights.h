#pragma once
// The weights of one transformer, as dense torch tensors in the HF layout (q/k rows in HF
// order: llama.cpp's GGUF row permutation is undone on load).
// Thread-safety: immutable after load; share freely.

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/model/model_config.h"

namespace ctxmem::weights {
class GgufFile;
class SafetensorsCheckpoint;
}  // namespace ctxmem::weights

namespace ctxmem::model {

// Undefined tensors mean "not present" (biases, llama's norm biases).
struct LayerWeights {
  at::Tensor attn_norm_w, attn_norm_b;  // [hidden]
  at::Tensor wq, bq;                    // [n_heads * head_dim, hidden], [n_heads * head_dim]
  at::Tensor wk, bk;                    // [n_kv_heads * head_dim, hidden], [...]
  at::Tensor wv, bv;                    // [n_kv_heads * head_dim, hidden], [...]
  at::Tensor wo, bo;                    // [hidden, n_heads * head_dim], [hidden]
  at::Tensor ffn_norm_w, ffn_norm_b;    // [hidden]
  at::Tensor w_gate;                    // [ffn, hidden] (llama family only)
  at::Tensor w_up, b_up;                // [ffn, hidden], [ffn]
  at::Tensor w_down, b_down;            // [hidden, ffn], [hidden]
};

struct ModelWeights {
  at::Tensor tok_embd;                // [n_vocab, hidden]
  at::Tensor out_norm_w, out_norm_b;  // [hidden]
  at::Tensor lm_head;                 // [n_vocab, hidden]; same storage as tok_embd when tied
  std::vector<LayerWeights> layers;   // n_layers
};

struct WeightLoadOptions {
  c10::Device device = c10::Device(c10::kCPU);
  c10::ScalarType dtype = c10::kFloat;  // kFloat, kBFloat16 or kHalf
};

// Loads and dequantizes every tensor a `config` model needs. InvalidArgument naming the file
// and tensor for a missing tensor or a shape that does not match the config.
absl::StatusOr<ModelWeights> LoadWeightsFromGguf(const weights::GgufFile& file,
                                                 const ModelConfig& config,
                                                 const WeightLoadOptions& options);
absl::StatusOr<ModelWeights> LoadWeightsFromCheckpoint(const weights::SafetensorsCheckpoint& ckpt,
                                                       const ModelConfig& config,
                                                       const WeightLoadOptions& options);

// Reverses llama.cpp's convert-time permutation of q/k projection rows for `n_heads` heads:
// GGUF keeps each head's rotary pairs interleaved (x0,x1 | x2,x3 ...), HF keeps halves.
// [n_heads * head_dim, ...] -> same shape.
at::Tensor UnpermuteGgufQk(const at::Tensor& w, int64_t n_heads);

}  // namespace ctxmem::model
