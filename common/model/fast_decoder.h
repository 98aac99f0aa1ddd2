#pragma once
// One decoding stream on the quantized CPU path: a KV cache preallocated for `capacity`
// entries and written in place, fused QKV and gate/up products on PackedWeights, logits of the
// one new position only, and every intermediate in buffers made once (no allocation and no
// ATen op per token). What it computes is Transformer::Forward's llama-family layer for one
// token, with int8-quantized activations in the products (cpu_kernels.h).
// Thread-safety: not thread-safe (one stream); many FastDecoders may share a Transformer and
// PackedWeights, which are borrowed and must outlive it.

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/model/kv_cache.h"
#include "common/model/packed_weights.h"
#include "common/model/qmatvec.h"
#include "common/model/transformer.h"

namespace ctxmem::model {

class FastDecoder {
 public:
  // A stream whose cache holds at most `capacity` entries (past + everything decoded).
  // InvalidArgument for capacity < 1 or a model PackedWeights::Supports rejects; the
  // transformer's device must be the CPU.
  static absl::StatusOr<std::unique_ptr<FastDecoder>> Create(const Transformer& transformer,
                                                             const PackedWeights& packed,
                                                             int64_t capacity);
  FastDecoder(const FastDecoder&) = delete;
  FastDecoder& operator=(const FastDecoder&) = delete;

  // Copies `cache` (per layer [1, n_kv_heads, seq_len, head_dim], any float dtype) into the
  // buffers, replacing what they held. InvalidArgument for a layout that does not fit or more
  // than `capacity` entries.
  absl::Status Load(const KvCache& cache);

  // Feeds `token` at rotary position `position`: its keys and values are written at index
  // seq_len() (which then grows by one) and the next-token logits [n_vocab] fp32 are returned,
  // valid until the next Step. InvalidArgument for a token outside the vocabulary, a negative
  // position, or a full cache (ResourceExhausted).
  absl::StatusOr<absl::Span<const float>> Step(int32_t token, int64_t position);

  // Sets cache->k / ->v to views of the first seq_len() entries (per layer
  // [1, n_kv_heads, seq_len, head_dim] fp32, sharing this decoder's storage; later Steps only
  // write beyond them). cache->next_position is left to the caller.
  void ExportTo(KvCache* cache) const;

  int64_t seq_len() const { return len_; }
  int64_t capacity() const { return capacity_; }

 private:
  FastDecoder(const Transformer& transformer, const PackedWeights& packed, int64_t capacity);
  void Attention(int64_t layer, const float* q, float* out);

  // Constant after construction.
  const Transformer& transformer_;
  const PackedWeights& packed_;
  const CpuKernelTable& kernels_;
  const ModelConfig& config_;
  int64_t capacity_;
  std::vector<float> inv_freq_;    // [rope_dim / 2]
  std::vector<at::Tensor> k_, v_;  // per layer [1, n_kv_heads, capacity, head_dim] fp32

  int64_t len_ = 0;  // entries in use
  // Scratch, made once.
  std::vector<float> x_, h_, qkv_, attn_, mlp_, act_, logits_, scores_, rope_cos_, rope_sin_;
  Q8Activations qx_;
};

}  // namespace ctxmem::model
