#pragma once
// DecodeStream: the key/value state of one decoding stream in a batch (BatchedDecoder). Two
// segments per layer: the past, a memory many streams may share, which is only read (the
// stream holds tensor handles, never a copy of its own), and the stream's own entries
// (prompt and generated tokens) in a buffer preallocated for `capacity` entries and written in
// place. Attention runs over [past ; own] as if they were one sequence.
// Thread-safety: not thread-safe (one stream); distinct streams may be read and written from
// different threads, also when they share a past.

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "common/model/cpu_kernels.h"
#include "common/model/kv_cache.h"
#include "common/model/model_config.h"

namespace ctxmem::model {

class DecodeStream {
 public:
  // `past`: per layer [1, n_kv_heads, past_len, head_dim] post-RoPE (may be empty), kept as
  // shared handles (a past that is not contiguous fp32 on `device` is converted once, which
  // does copy it); the stream continues at past.next_position. `capacity`: own entries, >= 1.
  // InvalidArgument for a past whose layout does not fit `config` (borrowed: must outlive the
  // stream).
  static absl::StatusOr<std::unique_ptr<DecodeStream>> Create(const ModelConfig& config,
                                                              c10::Device device, KvCache past,
                                                              int64_t capacity);
  DecodeStream(const DecodeStream&) = delete;
  DecodeStream& operator=(const DecodeStream&) = delete;

  // The past as a KvCache (handles), what a prefill forward reads.
  const KvCache& past() const { return past_; }
  int64_t past_len() const { return past_len_; }
  int64_t own_len() const { return own_len_; }
  int64_t capacity() const { return capacity_; }
  int64_t next_position() const { return past_.next_position + own_len_; }

  // Copies a prefill's new entries (per layer [1, n_kv_heads, n, head_dim]) to own entries
  // [own_len, own_len + n) and advances. ResourceExhausted past the capacity.
  absl::Status AppendEntries(const std::vector<at::Tensor>& k, const std::vector<at::Tensor>& v);

  // One step of `n` new tokens (n = 1 to decode; a prompt's tokens in one mixed step), per
  // layer: WriteEntry stores token `row`'s k, v (each [n_kv_heads * head_dim] fp32, CPU) at own
  // index own_len() + row, for every row < n; AttendGroup for `row` then reads the entries up to
  // and including that index (causal within the step). Advance(n) after the last layer makes
  // the n entries part of the stream. The caller checks own_len() + n <= capacity() before a
  // step (BatchedDecoder does).
  void WriteEntry(int64_t layer, int64_t row, const float* k, const float* v);
  // out[i, :] = softmax(q[i, :] . K^T * scale) V for the n_heads / n_kv_heads query heads of
  // kv head `kv_head` (q, out: [group, head_dim]) of step row `row` over its visible entries
  // (a sliding window keeps the last ones), by kernels.attend; `scores` has room for group *
  // (past_len() + own_len() + row + 1) floats. CPU only.
  void AttendGroup(const CpuKernelTable& kernels, int64_t layer, int64_t kv_head, int64_t row,
                   const float* q, float* out, float* scores) const;
  // The same on any device with ATen ops: k, v [n_kv_heads, head_dim] are written, then
  // q [n_heads, head_dim] attends; returns [n_heads * head_dim] fp32.
  at::Tensor WriteAndAttendTensor(int64_t layer, const at::Tensor& q, const at::Tensor& k,
                                  const at::Tensor& v);
  void Advance(int64_t n = 1) { own_len_ += n; }

 private:
  DecodeStream(const ModelConfig& config, KvCache past, int64_t capacity);
  // Visible entries [start, past_len + own_len + row + 1) of step row `row`.
  int64_t WindowStart(int64_t row) const;

  // Constant after construction.
  const ModelConfig& config_;
  const KvCache past_;  // per layer [1, n_kv_heads, past_len, head_dim] fp32, contiguous
  const int64_t past_len_;
  const int64_t capacity_;
  std::vector<at::Tensor> own_k_, own_v_;  // per layer [n_kv_heads, capacity, head_dim] fp32

  int64_t own_len_ = 0;  // own entries in use
};

}  // namespace ctxmem::model
