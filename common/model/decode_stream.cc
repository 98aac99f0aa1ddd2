#include "common/model/decode_stream.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/model/torch_call.h"
#include "common/status.h"

// Invariants: every past_.k/v[l] is [1, n_kv_heads, past_len_, head_dim] contiguous fp32 and
// never written; own_k_/own_v_[l] are [n_kv_heads, capacity_, head_dim] contiguous fp32 with
// entries [0, own_len_) valid; entries own_len_ + row are written by WriteEntry before
// AttendGroup reads them. Logical entry j < past_len_ is past entry j, j >= past_len_ is own entry
// j - past_len_.

namespace ctxmem::model {

DecodeStream::DecodeStream(const ModelConfig& config, KvCache past, int64_t capacity)
    : config_(config), past_(std::move(past)), past_len_(past_.seq_len()), capacity_(capacity) {}

absl::StatusOr<std::unique_ptr<DecodeStream>> DecodeStream::Create(const ModelConfig& config,
                                                                   c10::Device device, KvCache past,
                                                                   int64_t capacity) {
  const ModelConfig& c = config;
  if (capacity < 1) return absl::InvalidArgumentError(absl::StrCat("capacity=", capacity, " < 1"));
  const int64_t n = past.seq_len();
  if (n > 0 &&
      (static_cast<int64_t>(past.k.size()) != c.n_layers || past.v.size() != past.k.size())) {
    return absl::InvalidArgumentError(
        absl::StrCat("past has ", past.k.size(), " layers, model has ", c.n_layers));
  }
  CTXMEM_RETURN_IF_ERROR(TorchCall("DecodeStream past", [&]() -> absl::Status {
    for (int64_t l = 0; l < c.n_layers && n > 0; ++l) {
      at::Tensor& k = past.k[l];
      at::Tensor& v = past.v[l];
      if (k.dim() != 4 || k.size(0) != 1 || k.size(1) != c.n_kv_heads || k.size(2) != n ||
          k.size(3) != c.head_dim || v.sizes() != k.sizes()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "past layer ", l, " must be [1, ", c.n_kv_heads, ", ", n, ", ", c.head_dim, "]"));
      }
      // No-ops (the same storage) for the usual fp32 contiguous past on the model's device.
      k = k.to(device, at::kFloat).contiguous();
      v = v.to(device, at::kFloat).contiguous();
    }
    return absl::OkStatus();
  }));
  if (n == 0) {
    past.k.clear();
    past.v.clear();
  }
  std::unique_ptr<DecodeStream> s(new DecodeStream(config, std::move(past), capacity));
  CTXMEM_RETURN_IF_ERROR(TorchCall("DecodeStream buffers", [&] {
    const auto opts = at::TensorOptions().dtype(at::kFloat).device(device);
    for (int64_t l = 0; l < c.n_layers; ++l) {
      s->own_k_.push_back(at::empty({c.n_kv_heads, capacity, c.head_dim}, opts));
      s->own_v_.push_back(at::empty({c.n_kv_heads, capacity, c.head_dim}, opts));
    }
  }));
  return s;
}

absl::Status DecodeStream::AppendEntries(const std::vector<at::Tensor>& k,
                                         const std::vector<at::Tensor>& v) {
  const ModelConfig& c = config_;
  if (static_cast<int64_t>(k.size()) != c.n_layers || v.size() != k.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("entries for ", k.size(), " layers, model has ", c.n_layers));
  }
  const int64_t n = k[0].size(2);
  if (own_len_ + n > capacity_) {
    return absl::ResourceExhaustedError(absl::StrCat(
        own_len_, " + ", n, " entries do not fit the stream's capacity of ", capacity_));
  }
  CTXMEM_RETURN_IF_ERROR(TorchCall("DecodeStream::AppendEntries", [&] {
    for (int64_t l = 0; l < c.n_layers; ++l) {
      own_k_[l].narrow(1, own_len_, n).copy_(k[l][0]);  // [n_kv_heads, n, head_dim]
      own_v_[l].narrow(1, own_len_, n).copy_(v[l][0]);
    }
  }));
  own_len_ += n;
  return absl::OkStatus();
}

void DecodeStream::WriteEntry(int64_t layer, int64_t row, const float* k, const float* v) {
  const int64_t hd = config_.head_dim, at = own_len_ + row;
  float* kb = own_k_[layer].data_ptr<float>();
  float* vb = own_v_[layer].data_ptr<float>();
  for (int64_t g = 0; g < config_.n_kv_heads; ++g) {
    std::memcpy(kb + (g * capacity_ + at) * hd, k + g * hd, hd * sizeof(float));
    std::memcpy(vb + (g * capacity_ + at) * hd, v + g * hd, hd * sizeof(float));
  }
}

int64_t DecodeStream::WindowStart(int64_t row) const {
  const int64_t total = past_len_ + own_len_ + row + 1;
  const int64_t window = config_.sliding_window;
  return window > 0 && total > window ? total - window : 0;
}

void DecodeStream::AttendGroup(const CpuKernelTable& kernels, int64_t layer, int64_t kv_head,
                               int64_t row, const float* q, float* out, float* scores) const {
  const ModelConfig& c = config_;
  const int64_t hd = c.head_dim, group = c.n_heads / c.n_kv_heads;
  const int64_t start = WindowStart(row);
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(hd)));
  // The visible entries as two segments: past [start, past_len), own [max(0, start - past_len),
  // own_len + row] (this row's own entry included).
  KernelKvSegment segs[2];
  int n_segs = 0;
  if (start < past_len_) {
    const int64_t off = (kv_head * past_len_ + start) * hd;
    segs[n_segs++] = {past_.k[layer].data_ptr<float>() + off,
                      past_.v[layer].data_ptr<float>() + off, past_len_ - start};
  }
  const int64_t own_first = std::max<int64_t>(0, start - past_len_);
  const int64_t off = (kv_head * capacity_ + own_first) * hd;
  segs[n_segs++] = {own_k_[layer].data_ptr<float>() + off, own_v_[layer].data_ptr<float>() + off,
                    own_len_ + row + 1 - own_first};
  kernels.attend(q, group, hd, scale, segs, n_segs, scores, out);
}

at::Tensor DecodeStream::WriteAndAttendTensor(int64_t layer, const at::Tensor& q,
                                              const at::Tensor& k, const at::Tensor& v) {
  const ModelConfig& c = config_;
  own_k_[layer].select(1, own_len_).copy_(k);  // [n_kv_heads, head_dim]
  own_v_[layer].select(1, own_len_).copy_(v);
  const int64_t start = WindowStart(0), group = c.n_heads / c.n_kv_heads;
  at::Tensor keys = own_k_[layer].narrow(1, 0, own_len_ + 1);  // [n_kv_heads, own + 1, head_dim]
  at::Tensor values = own_v_[layer].narrow(1, 0, own_len_ + 1);
  if (past_len_ > 0) {
    // Off the CPU fast path the two segments are joined for sdpa (a per-step copy).
    keys = at::cat({past_.k[layer][0], keys}, 1);  // [n_kv_heads, total, head_dim]
    values = at::cat({past_.v[layer][0], values}, 1);
  }
  keys = keys.narrow(1, start, keys.size(1) - start);
  values = values.narrow(1, start, values.size(1) - start);
  const double scale = 1.0 / std::sqrt(static_cast<double>(c.head_dim));
  auto attn = at::scaled_dot_product_attention(  // [1, n_heads, 1, head_dim]
      q.view({1, c.n_heads, 1, c.head_dim}), keys.unsqueeze(0), values.unsqueeze(0), {}, 0.0,
      /*is_causal=*/false, scale, /*enable_gqa=*/group > 1);
  return attn.reshape({c.n_heads * c.head_dim});
}

}  // namespace ctxmem::model
