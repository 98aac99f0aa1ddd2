#pragma once
// The weights the quantized decode path (FastDecoder) reads: per layer the fused QKV
// projection [q; k; v], the output projection, the fused [gate; up] MLP input and the MLP
// output, all as QuantizedMatrix in the GGUF file's own 4/8-bit blocks, plus the output head
// and the small fp32 vectors (norms, biases). Only the llama family (llama, qwen2, mistral:
// RMSNorm, SwiGLU, sequential residual) has a packed path; gpt_neox decodes densely.
// Thread-safety: immutable after Pack; share freely (one PackedWeights serves every stream).

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "common/model/model_config.h"
#include "common/model/quantized_matrix.h"

namespace ctxmem::weights {
class GgufFile;
}

namespace ctxmem::model {

struct PackedLayer {
  std::vector<float> attn_norm, ffn_norm;  // [hidden]
  QuantizedMatrix qkv;                     // [(n_heads + 2 n_kv_heads) * head_dim, hidden], HF rows
  std::vector<float> bqkv;                 // [(n_heads + 2 n_kv_heads) * head_dim] or empty
  QuantizedMatrix o;                       // [hidden, n_heads * head_dim]
  QuantizedMatrix gate_up;                 // [2 * ffn, hidden]: gate rows, then up rows
  QuantizedMatrix down;                    // [hidden, ffn]
};

struct PackedWeights {
  QuantizedMatrix lm_head;      // [n_vocab, hidden]
  std::vector<float> out_norm;  // [hidden]
  std::vector<PackedLayer> layers;
  int64_t bytes = 0;  // total storage of the matrices

  // Whether `config` has a packed decode path (llama family, RMSNorm, no parallel residual).
  static bool Supports(const ModelConfig& config);

  // Packs the GGUF tensors of a `config` model. q4_0/q4_1/q8_0 stay as stored; other types are
  // re-quantized to q8_0 (QuantizedMatrix's fallback). InvalidArgument naming the tensor for a
  // missing tensor, a shape that does not match, or an unsupported architecture.
  static absl::StatusOr<std::unique_ptr<PackedWeights>> FromGguf(const weights::GgufFile& file,
                                                                 const ModelConfig& config);
};

}  // namespace ctxmem::model
