#include "common/model/fast_decoder.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/model/rope.h"
#include "common/model/row_ops.h"
#include "common/model/spin_pool.h"
#include "common/model/torch_call.h"
#include "common/status.h"

// Invariants: k_[l] and v_[l] are contiguous [1, n_kv_heads, capacity_, head_dim] fp32; entries
// [0, len_) of every layer are valid; Step writes entry len_ of each layer before reading it.

namespace ctxmem::model {

FastDecoder::FastDecoder(const Transformer& transformer, const PackedWeights& packed,
                         int64_t capacity)
    : transformer_(transformer),
      packed_(packed),
      kernels_(ActiveCpuKernels()),
      config_(transformer.config()),
      capacity_(capacity) {}

absl::StatusOr<std::unique_ptr<FastDecoder>> FastDecoder::Create(const Transformer& transformer,
                                                                 const PackedWeights& packed,
                                                                 int64_t capacity) {
  const ModelConfig& c = transformer.config();
  if (capacity < 1) return absl::InvalidArgumentError(absl::StrCat("capacity=", capacity, " < 1"));
  if (!PackedWeights::Supports(c) || static_cast<int64_t>(packed.layers.size()) != c.n_layers) {
    return absl::InvalidArgumentError("FastDecoder: model has no packed decode path");
  }
  if (!transformer.device().is_cpu()) {
    return absl::InvalidArgumentError("FastDecoder: the packed path runs on the CPU only");
  }
  std::unique_ptr<FastDecoder> d(new FastDecoder(transformer, packed, capacity));
  CTXMEM_RETURN_IF_ERROR(TorchCall("FastDecoder buffers", [&] {
    for (int64_t l = 0; l < c.n_layers; ++l) {
      d->k_.push_back(at::empty({1, c.n_kv_heads, capacity, c.head_dim}, at::kFloat));
      d->v_.push_back(at::empty({1, c.n_kv_heads, capacity, c.head_dim}, at::kFloat));
    }
    const at::Tensor inv = Rope::Create(c, c10::Device(c10::kCPU)).inv_freq().contiguous();
    d->inv_freq_.assign(inv.data_ptr<float>(), inv.data_ptr<float>() + inv.numel());
  }));
  const int64_t q_dim = c.n_heads * c.head_dim, kv_dim = c.n_kv_heads * c.head_dim;
  d->x_.resize(c.hidden);
  d->h_.resize(std::max(c.hidden, q_dim));
  d->qkv_.resize(q_dim + 2 * kv_dim);
  d->attn_.resize(q_dim);
  d->mlp_.resize(2 * c.ffn);
  d->act_.resize(c.ffn);
  d->logits_.resize(c.n_vocab);
  d->scores_.resize(c.n_heads * capacity);
  d->rope_cos_.resize(c.rope_dim / 2);
  d->rope_sin_.resize(c.rope_dim / 2);
  return d;
}

absl::Status FastDecoder::Load(const KvCache& cache) {
  const ModelConfig& c = config_;
  const int64_t n = cache.seq_len();
  if (n > capacity_) {
    return absl::InvalidArgumentError(
        absl::StrCat("cache of ", n, " entries does not fit capacity ", capacity_));
  }
  if (n > 0 && static_cast<int64_t>(cache.k.size()) != c.n_layers) {
    return absl::InvalidArgumentError(
        absl::StrCat("cache has ", cache.k.size(), " layers, model has ", c.n_layers));
  }
  CTXMEM_RETURN_IF_ERROR(TorchCall("FastDecoder::Load", [&]() -> absl::Status {
    for (int64_t l = 0; l < c.n_layers && n > 0; ++l) {
      const at::Tensor& k = cache.k[l];
      const at::Tensor& v = cache.v[l];
      if (k.dim() != 4 || k.size(0) != 1 || k.size(1) != c.n_kv_heads || k.size(2) != n ||
          k.size(3) != c.head_dim || v.sizes() != k.sizes()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "cache layer ", l, " must be [1, ", c.n_kv_heads, ", ", n, ", ", c.head_dim, "]"));
      }
      k_[l].narrow(2, 0, n).copy_(k);
      v_[l].narrow(2, 0, n).copy_(v);
    }
    return absl::OkStatus();
  }));
  len_ = n;
  return absl::OkStatus();
}

void FastDecoder::ExportTo(KvCache* cache) const {
  cache->k.clear();
  cache->v.clear();
  for (size_t l = 0; l < k_.size(); ++l) {
    cache->k.push_back(k_[l].narrow(2, 0, len_));
    cache->v.push_back(v_[l].narrow(2, 0, len_));
  }
}

// out[h * head_dim ..] = softmax(q_h K^T * scale) V over entries [start, len_) of the layer,
// for every query head h; kv head = h / group (kernels.attend takes a kv head's group at once).
void FastDecoder::Attention(int64_t layer, const float* q, float* out) {
  const ModelConfig& c = config_;
  const int64_t hd = c.head_dim, group = c.n_heads / c.n_kv_heads;
  const int64_t start =
      c.sliding_window > 0 && len_ > c.sliding_window ? len_ - c.sliding_window : 0;
  const int64_t n = len_ - start;
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(hd)));
  const float* kb = k_[layer].data_ptr<float>();
  const float* vb = v_[layer].data_ptr<float>();
  auto kv_head = [&](int64_t g) {
    const KernelKvSegment seg = {kb + (g * capacity_ + start) * hd,
                                 vb + (g * capacity_ + start) * hd, n};
    kernels_.attend(q + g * group * hd, group, hd, scale, &seg, 1,
                    scores_.data() + g * group * capacity_, out + g * group * hd);
  };
  // Kv heads split between threads once there is enough work for a wake-up (measured with
  // model_bench BM_Decode/512/64: a 512-entry past; 8192 when SpinPool's workers sleep).
  SpinPool& pool = SpinPool::Shared();
  const int64_t min_work = pool.spins() ? 1024 : 8192;
  if (n * c.n_heads >= min_work && at::get_num_threads() > 1 && c.n_kv_heads > 1) {
    pool.ParallelFor(c.n_kv_heads, 1, at::get_num_threads(), [&](int64_t b, int64_t e, int) {
      for (int64_t g = b; g < e; ++g) kv_head(g);
    });
  } else {
    for (int64_t g = 0; g < c.n_kv_heads; ++g) kv_head(g);
  }
}

absl::StatusOr<absl::Span<const float>> FastDecoder::Step(int32_t token, int64_t position) {
  const ModelConfig& c = config_;
  if (token < 0 || token >= c.n_vocab) {
    return absl::InvalidArgumentError(
        absl::StrCat("token id ", token, " outside [0, ", c.n_vocab, ")"));
  }
  if (position < 0) return absl::InvalidArgumentError("negative position id");
  if (len_ >= capacity_) {
    return absl::ResourceExhaustedError(
        absl::StrCat("decode cache full: capacity ", capacity_, " entries"));
  }
  const int64_t hidden = c.hidden, hd = c.head_dim;
  const int64_t q_dim = c.n_heads * hd, kv_dim = c.n_kv_heads * hd;

  // Embedding row in fp32, from the dense table in whatever dtype it is stored.
  const at::Tensor& emb = transformer_.weights().tok_embd;  // [n_vocab, hidden]
  switch (emb.scalar_type()) {
    case at::kFloat:
      std::memcpy(x_.data(), emb.data_ptr<float>() + token * hidden, hidden * sizeof(float));
      break;
    case at::kBFloat16: {
      const c10::BFloat16* p = emb.data_ptr<c10::BFloat16>() + token * hidden;
      for (int64_t i = 0; i < hidden; ++i) x_[i] = static_cast<float>(p[i]);
      break;
    }
    case at::kHalf: {
      const c10::Half* p = emb.data_ptr<c10::Half>() + token * hidden;
      for (int64_t i = 0; i < hidden; ++i) x_[i] = static_cast<float>(p[i]);
      break;
    }
    default:
      return absl::InternalError("FastDecoder: unsupported embedding dtype");
  }
  // cos/sin of this position (fp32 product as Rope::Apply computes it).
  const float pos = static_cast<float>(position);
  for (size_t i = 0; i < inv_freq_.size(); ++i) {
    const float f = pos * inv_freq_[i];
    rope_cos_[i] = std::cos(f);
    rope_sin_[i] = std::sin(f);
  }

  for (int64_t l = 0; l < c.n_layers; ++l) {
    const PackedLayer& L = packed_.layers[l];
    RmsNormRow(x_.data(), L.attn_norm.data(), hidden, c.norm_eps, h_.data());
    qx_.Quantize(kernels_, h_.data(), 1, hidden);
    QMatMul(kernels_, L.qkv, qx_, qkv_.data(), 0);
    if (!L.bqkv.empty()) {
      for (int64_t i = 0; i < q_dim + 2 * kv_dim; ++i) qkv_[i] += L.bqkv[i];
    }
    float* q = qkv_.data();
    float* k = q + q_dim;
    float* v = k + kv_dim;
    RotateRow(q, c.n_heads, hd, c.rope_dim, rope_cos_.data(), rope_sin_.data());
    RotateRow(k, c.n_kv_heads, hd, c.rope_dim, rope_cos_.data(), rope_sin_.data());
    float* kb = k_[l].data_ptr<float>();
    float* vb = v_[l].data_ptr<float>();
    for (int64_t g = 0; g < c.n_kv_heads; ++g) {
      std::memcpy(kb + (g * capacity_ + len_) * hd, k + g * hd, hd * sizeof(float));
      std::memcpy(vb + (g * capacity_ + len_) * hd, v + g * hd, hd * sizeof(float));
    }
    ++len_;  // the new entry is visible to this layer's attention
    Attention(l, q, attn_.data());
    --len_;
    qx_.Quantize(kernels_, attn_.data(), 1, q_dim);
    QMatMul(kernels_, L.o, qx_, h_.data(), 0);
    for (int64_t i = 0; i < hidden; ++i) x_[i] += h_[i];

    RmsNormRow(x_.data(), L.ffn_norm.data(), hidden, c.norm_eps, h_.data());
    qx_.Quantize(kernels_, h_.data(), 1, hidden);
    QMatMul(kernels_, L.gate_up, qx_, mlp_.data(), 0);
    kernels_.silu_mul(mlp_.data(), mlp_.data() + c.ffn, act_.data(), c.ffn);  // silu(gate) * up
    qx_.Quantize(kernels_, act_.data(), 1, c.ffn);
    QMatMul(kernels_, L.down, qx_, h_.data(), 0);
    for (int64_t i = 0; i < hidden; ++i) x_[i] += h_[i];
  }
  ++len_;
  RmsNormRow(x_.data(), packed_.out_norm.data(), hidden, c.norm_eps, h_.data());
  qx_.Quantize(kernels_, h_.data(), 1, hidden);
  QMatMul(kernels_, packed_.lm_head, qx_, logits_.data(), 0);
  return absl::Span<const float>(logits_);
}

}  // namespace ctxmem::model
