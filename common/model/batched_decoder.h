#pragma once
// BatchedDecoder: one decode step for many streams at once (decoder_svc's batching). Every
// stream has its own past (a memory, possibly shared with other streams), prompt and number of
// generated tokens; a step feeds one token to each and returns each one's next-token logits.
// The projections and the MLP run as one product over the stacked rows [batch, hidden] (the
// weights are read once per step, not once per stream); attention runs per stream over its own
// [past ; own entries] (DecodeStream). Two paths, as Model::packed_weights() says: the dense
// weights through ATen (any device; attention by the CPU kernels on the CPU), or the packed
// quantized weights (QMatMul over the stacked rows, CPU; what FastDecoder computes for one
// stream). On the packed path a step may feed a stream several tokens (Feed): a newly joined
// stream's prompt runs as rows of the same step as the others' decode tokens (causal attention
// within the stream), so joining costs no separate prefill; on the dense path a joiner is
// prefilled on its own (Prefill), between steps.
// Thread-safety: not thread-safe (scratch buffers); one BatchedDecoder per scheduler thread.

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/model/decode_stream.h"
#include "common/model/packed_weights.h"
#include "common/model/qmatvec.h"
#include "common/model/transformer.h"

namespace ctxmem::model {

class BatchedDecoder {
 public:
  // Steps on `packed` (Model::packed_weights(); null = the dense weights of `transformer`).
  // Both are borrowed and must outlive the decoder and its streams. InvalidArgument when
  // `packed` is given but the packed path cannot take the model (not llama-family, not CPU).
  static absl::StatusOr<std::unique_ptr<BatchedDecoder>> Create(const Transformer& transformer,
                                                                const PackedWeights* packed);
  BatchedDecoder(const BatchedDecoder&) = delete;
  BatchedDecoder& operator=(const BatchedDecoder&) = delete;

  // A stream after `past` (per layer [1, n_kv_heads, past_len, head_dim], shared, read only)
  // with room for `capacity` own entries (prompt + generated tokens). Errors as
  // DecodeStream::Create.
  absl::StatusOr<std::unique_ptr<DecodeStream>> NewStream(KvCache past, int64_t capacity) const;

  // Runs `prompt` (non-empty) through the model after the stream's past, on its own, and
  // stores its entries in the stream (which must have no own entries yet). Returns the last
  // position's logits [n_vocab] fp32 on the CPU. InvalidArgument for a stream that already
  // has entries; forward errors (bad ids, a past that does not fit) are passed through.
  absl::StatusOr<at::Tensor> Prefill(DecodeStream* stream, absl::Span<const int32_t> prompt);

  // Feeds tokens[i] to streams[i] (distinct streams, at least one) at its next position and
  // returns the logits [batch, n_vocab] fp32 row-major, valid until the next call. Each
  // stream's entries grow by one. InvalidArgument for mismatched sizes or a token outside the
  // vocabulary, ResourceExhausted for a stream at its capacity; nothing is written then.
  absl::StatusOr<absl::Span<const float>> Step(absl::Span<DecodeStream* const> streams,
                                               absl::Span<const int32_t> tokens);

  // Feeds tokens[i] (non-empty) to streams[i] (distinct) at its next positions, all in one
  // model step, and returns the logits of each stream's last token [batch, n_vocab] fp32
  // row-major, valid until the next call. Each stream's entries grow by tokens[i].size().
  // Errors as Step, and FailedPrecondition for more than one token per stream on the dense path.
  absl::StatusOr<absl::Span<const float>> Feed(absl::Span<DecodeStream* const> streams,
                                               absl::Span<const absl::Span<const int32_t>> tokens);

  bool packed() const { return packed_ != nullptr; }

  // Dense path only: attention through ATen ops (the off-CPU path) on the CPU too.
  void ForTesting_UseTensorAttention(bool on) { tensor_attention_ = on; }

 private:
  BatchedDecoder(const Transformer& transformer, const PackedWeights* packed);
  absl::Status DenseStep(absl::Span<DecodeStream* const> streams, const at::Tensor& tokens,
                         const at::Tensor& positions);
  // The step's rows: row r is token tokens[r] of stream row_stream_[r] at its step row
  // row_index_[r] (rows of one stream consecutive, in order).
  absl::Status PackedStep(absl::Span<DecodeStream* const> streams, const at::Tensor& tokens);
  // attn [rows, n_heads * head_dim] for every step row r and head h from the query rows at
  // q + r * q_stride ([n_heads * head_dim] each), after every row's WriteEntry for `layer`
  // (kernels.attend per row and kv head; those tasks split across threads).
  void AttendAll(absl::Span<DecodeStream* const> streams, int64_t layer, const float* q,
                 int64_t q_stride, float* attn);

  // Constant after construction.
  const Transformer& transformer_;
  const ModelConfig& config_;
  const PackedWeights* packed_;  // null: dense path
  const CpuKernelTable& kernels_;
  std::vector<float> inv_freq_;  // [rope_dim / 2]
  bool tensor_attention_ = false;

  // Scratch, grown to the largest batch seen.
  at::Tensor logits_;  // [batch, n_vocab] fp32 CPU (dense path)
  std::vector<float> x_, h_, qkv_, attn_, mlp_, act_, logits_rows_, scores_, rope_;
  std::vector<int64_t> row_stream_, row_index_, last_row_;  // [rows], [rows], [batch]
  Q8Activations qx_;
};

}  // namespace ctxmem::model
