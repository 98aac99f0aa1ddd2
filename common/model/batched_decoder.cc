#include "common/model/batched_decoder.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/GradMode.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/model/dense_ops.h"
#include "common/model/rope.h"
#include "common/model/row_ops.h"
#include "common/model/spin_pool.h"
#include "common/model/torch_call.h"
#include "common/status.h"

namespace ctxmem::model {
namespace {

template <typename T>
void Grow(std::vector<T>* v, int64_t n) {
  if (static_cast<int64_t>(v->size()) < n) v->resize(n);
}

}  // namespace

BatchedDecoder::BatchedDecoder(const Transformer& transformer, const PackedWeights* packed)
    : transformer_(transformer),
      config_(transformer.config()),
      packed_(packed),
      kernels_(ActiveCpuKernels()) {}

absl::StatusOr<std::unique_ptr<BatchedDecoder>> BatchedDecoder::Create(
    const Transformer& transformer, const PackedWeights* packed) {
  const ModelConfig& c = transformer.config();
  if (packed != nullptr &&
      (!PackedWeights::Supports(c) || static_cast<int64_t>(packed->layers.size()) != c.n_layers ||
       !transformer.device().is_cpu())) {
    return absl::InvalidArgumentError(
        "BatchedDecoder: the model's packed weights have no batched path (llama family, CPU)");
  }
  std::unique_ptr<BatchedDecoder> d(new BatchedDecoder(transformer, packed));
  CTXMEM_RETURN_IF_ERROR(TorchCall("BatchedDecoder rope", [&] {
    const at::Tensor inv = Rope::Create(c, c10::Device(c10::kCPU)).inv_freq().contiguous();
    d->inv_freq_.assign(inv.data_ptr<float>(), inv.data_ptr<float>() + inv.numel());
  }));
  return d;
}

absl::StatusOr<std::unique_ptr<DecodeStream>> BatchedDecoder::NewStream(KvCache past,
                                                                        int64_t capacity) const {
  return DecodeStream::Create(config_, transformer_.device(), std::move(past), capacity);
}

absl::StatusOr<at::Tensor> BatchedDecoder::Prefill(DecodeStream* stream,
                                                   absl::Span<const int32_t> prompt) {
  if (stream->own_len() != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("prefill of a stream that already holds ", stream->own_len(), " entries"));
  }
  if (prompt.empty()) return absl::InvalidArgumentError("empty prompt: need at least one token");
  const int64_t n = static_cast<int64_t>(prompt.size());
  c10::NoGradGuard no_grad;
  at::Tensor tokens, positions;  // [1, n] int64
  CTXMEM_RETURN_IF_ERROR(TorchCall("prefill inputs", [&] {
    tokens = at::empty({1, n}, at::kLong);
    int64_t* p = tokens.data_ptr<int64_t>();
    for (int64_t i = 0; i < n; ++i) p[i] = prompt[i];
    const int64_t first = stream->next_position();
    positions = at::arange(first, first + n, at::kLong).view({1, n});
  }));
  ForwardOptions fopts;
  fopts.logits = LogitsMode::kLast;
  CTXMEM_ASSIGN_OR_RETURN(
      ForwardResult out,
      transformer_.Forward(tokens, positions, stream->past_len() > 0 ? &stream->past() : nullptr,
                           fopts));
  CTXMEM_RETURN_IF_ERROR(stream->AppendEntries(out.k, out.v));
  at::Tensor row;
  CTXMEM_RETURN_IF_ERROR(TorchCall("prefill logits", [&] {
    row = out.logits.view({-1}).to(at::kCPU).contiguous();  // [n_vocab]
  }));
  return row;
}

absl::StatusOr<absl::Span<const float>> BatchedDecoder::Step(
    absl::Span<DecodeStream* const> streams, absl::Span<const int32_t> tokens) {
  if (tokens.size() != streams.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("a step needs one token per stream: ", tokens.size(), " tokens, ",
                     streams.size(), " streams"));
  }
  std::vector<absl::Span<const int32_t>> rows;
  rows.reserve(tokens.size());
  for (size_t b = 0; b < tokens.size(); ++b) rows.emplace_back(&tokens[b], 1);
  return Feed(streams, rows);
}

absl::StatusOr<absl::Span<const float>> BatchedDecoder::Feed(
    absl::Span<DecodeStream* const> streams, absl::Span<const absl::Span<const int32_t>> tokens) {
  const ModelConfig& c = config_;
  const int64_t batch = static_cast<int64_t>(streams.size());
  if (batch == 0 || tokens.size() != streams.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("a step needs tokens for each stream: ", tokens.size(), " token lists, ",
                     batch, " streams"));
  }
  int64_t rows = 0;
  for (int64_t b = 0; b < batch; ++b) {
    const int64_t n = static_cast<int64_t>(tokens[b].size());
    if (n == 0) return absl::InvalidArgumentError(absl::StrCat("no token for stream ", b));
    if (n > 1 && !packed()) {
      return absl::FailedPreconditionError(
          "several tokens per stream in one step need the packed path; prefill on dense");
    }
    for (const int32_t t : tokens[b]) {
      if (t < 0 || t >= c.n_vocab) {
        return absl::InvalidArgumentError(
            absl::StrCat("token id ", t, " of row ", b, " outside [0, ", c.n_vocab, ")"));
      }
    }
    if (streams[b]->own_len() + n > streams[b]->capacity()) {
      return absl::ResourceExhaustedError(
          absl::StrCat("stream of row ", b, " is full: ", streams[b]->own_len(), " + ", n,
                       " entries, capacity ", streams[b]->capacity()));
    }
    rows += n;
  }
  row_stream_.resize(rows);
  row_index_.resize(rows);
  last_row_.resize(batch);
  c10::NoGradGuard no_grad;
  at::Tensor token_ids, positions;  // [rows] and [rows, 1] int64, CPU
  CTXMEM_RETURN_IF_ERROR(TorchCall("step inputs", [&] {
    token_ids = at::empty({rows}, at::kLong);
    positions = at::empty({rows, 1}, at::kLong);
    int64_t r = 0;
    for (int64_t b = 0; b < batch; ++b) {
      for (int64_t i = 0; i < static_cast<int64_t>(tokens[b].size()); ++i, ++r) {
        token_ids.data_ptr<int64_t>()[r] = tokens[b][i];
        positions.data_ptr<int64_t>()[r] = streams[b]->next_position() + i;
        row_stream_[r] = b;
        row_index_[r] = i;
      }
      last_row_[b] = r - 1;
    }
  }));
  CTXMEM_RETURN_IF_ERROR(packed() ? PackedStep(streams, token_ids)
                                  : DenseStep(streams, token_ids, positions));
  for (int64_t b = 0; b < batch; ++b) streams[b]->Advance(static_cast<int64_t>(tokens[b].size()));
  if (packed()) return absl::Span<const float>(logits_rows_.data(), batch * c.n_vocab);
  return absl::Span<const float>(logits_.data_ptr<float>(), batch * c.n_vocab);
}

void BatchedDecoder::AttendAll(absl::Span<DecodeStream* const> streams, int64_t layer,
                               const float* q, int64_t q_stride, float* attn) {
  const ModelConfig& c = config_;
  const int64_t rows = static_cast<int64_t>(row_stream_.size());
  const int64_t hd = c.head_dim, q_dim = c.n_heads * hd, group = c.n_heads / c.n_kv_heads;
  const int64_t n_tasks = rows * c.n_kv_heads;  // (step row, kv head): one GQA group each
  int64_t max_total = 0, work = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const DecodeStream* s = streams[row_stream_[r]];
    const int64_t total = s->past_len() + s->own_len() + row_index_[r] + 1;
    max_total = std::max(max_total, total);
    work += total * c.n_heads;
  }
  // Split once there is enough work for a wake-up (FastDecoder::Attention's bounds).
  SpinPool& pool = SpinPool::Shared();
  const int threads = at::get_num_threads();
  const bool split = work >= (pool.spins() ? 1024 : 8192) && threads > 1;
  const int64_t slots = split ? threads : 1;
  Grow(&scores_, slots * group * max_total);  // [threads, group, max_total]
  const auto task = [&](int64_t i, float* scores) {
    const int64_t r = i / c.n_kv_heads, g = i % c.n_kv_heads;
    streams[row_stream_[r]]->AttendGroup(kernels_, layer, g, row_index_[r],
                                         q + r * q_stride + g * group * hd,
                                         attn + r * q_dim + g * group * hd, scores);
  };
  if (split) {
    pool.ParallelFor(n_tasks, 1, threads, [&](int64_t begin, int64_t end, int slot) {
      float* scores = scores_.data() + slot * group * max_total;
      for (int64_t i = begin; i < end; ++i) task(i, scores);
    });
  } else {
    for (int64_t i = 0; i < n_tasks; ++i) task(i, scores_.data());
  }
}

absl::Status BatchedDecoder::DenseStep(absl::Span<DecodeStream* const> streams,
                                       const at::Tensor& tokens, const at::Tensor& positions) {
  const ModelConfig& c = config_;
  const int64_t batch = static_cast<int64_t>(streams.size());
  const int64_t hd = c.head_dim, q_dim = c.n_heads * hd, kv_dim = c.n_kv_heads * hd;
  return TorchCall("batched decode step", [&] {
    const Transformer& t = transformer_;
    const ModelWeights& w = t.weights();
    const c10::Device device = t.device();
    const bool cpu_attention = device.is_cpu() && !tensor_attention_;
    const at::Tensor pos = positions.to(device);                                 // [batch, 1]
    at::Tensor x = at::embedding(w.tok_embd, tokens.to(device)).to(at::kFloat);  // [batch, hidden]
    for (int64_t li = 0; li < c.n_layers; ++li) {
      const LayerWeights& L = w.layers[li];
      const at::Tensor h = DenseNorm(c, x, L.attn_norm_w, L.attn_norm_b);  // [batch, hidden]
      at::Tensor q = DenseLinear(h, L.wq, L.bq).view({batch, c.n_heads, 1, hd});
      at::Tensor k = DenseLinear(h, L.wk, L.bk).view({batch, c.n_kv_heads, 1, hd});
      at::Tensor v = DenseLinear(h, L.wv, L.bv).view({batch, c.n_kv_heads, 1, hd}).contiguous();
      q = t.RotateKeys(q, pos).contiguous();  // [batch, n_heads, 1, head_dim]
      k = t.RotateKeys(k, pos).contiguous();  // [batch, n_kv_heads, 1, head_dim]
      at::Tensor attn;                        // [batch, n_heads * head_dim]
      if (cpu_attention) {
        attn = at::empty({batch, q_dim}, at::kFloat);
        for (int64_t b = 0; b < batch; ++b) {
          streams[b]->WriteEntry(li, 0, k.data_ptr<float>() + b * kv_dim,
                                 v.data_ptr<float>() + b * kv_dim);
        }
        AttendAll(streams, li, q.data_ptr<float>(), q_dim, attn.data_ptr<float>());
      } else {
        std::vector<at::Tensor> rows;
        for (int64_t b = 0; b < batch; ++b) {
          rows.push_back(streams[b]->WriteAndAttendTensor(li, q[b].view({c.n_heads, hd}),
                                                          k[b].view({c.n_kv_heads, hd}),
                                                          v[b].view({c.n_kv_heads, hd})));
        }
        attn = at::stack(rows);
      }
      const at::Tensor o = DenseLinear(attn, L.wo, L.bo);  // [batch, hidden]
      // The residual and MLP variants of Transformer::Forward.
      if (c.parallel_residual) {
        const at::Tensor h2 = DenseNorm(c, x, L.ffn_norm_w, L.ffn_norm_b);
        x = x + o + DenseLinear(at::gelu(DenseLinear(h2, L.w_up, L.b_up)), L.w_down, L.b_down);
      } else {
        x = x + o;
        const at::Tensor h2 = DenseNorm(c, x, L.ffn_norm_w, L.ffn_norm_b);
        at::Tensor mlp;  // [batch, hidden]
        if (L.w_gate.defined()) {
          mlp = DenseLinear(at::silu(DenseLinear(h2, L.w_gate, {})) * DenseLinear(h2, L.w_up, {}),
                            L.w_down, {});
        } else {
          mlp = DenseLinear(at::gelu(DenseLinear(h2, L.w_up, L.b_up)), L.w_down, L.b_down);
        }
        x = x + mlp;
      }
    }
    const at::Tensor xs = DenseNorm(c, x, w.out_norm_w, w.out_norm_b);
    logits_ = DenseLinear(xs, w.lm_head, {}).to(at::kCPU).contiguous();  // [batch, n_vocab]
  });
}

absl::Status BatchedDecoder::PackedStep(absl::Span<DecodeStream* const> streams,
                                        const at::Tensor& tokens) {
  const ModelConfig& c = config_;
  const int64_t batch = static_cast<int64_t>(streams.size());
  const int64_t rows = static_cast<int64_t>(row_stream_.size());
  const int64_t hidden = c.hidden, hd = c.head_dim;
  const int64_t q_dim = c.n_heads * hd, kv_dim = c.n_kv_heads * hd;
  const int64_t qkv_dim = q_dim + 2 * kv_dim, half = c.rope_dim / 2;
  Grow(&x_, rows * hidden);                   // [rows, hidden]
  Grow(&h_, rows * std::max(hidden, q_dim));  // [rows, hidden]
  Grow(&qkv_, rows * qkv_dim);                // [rows, qkv_dim]
  Grow(&attn_, rows * q_dim);                 // [rows, q_dim]
  Grow(&mlp_, rows * 2 * c.ffn);              // [rows, 2 * ffn]
  Grow(&act_, rows * c.ffn);                  // [rows, ffn]
  Grow(&logits_rows_, batch * c.n_vocab);     // [batch, n_vocab]
  Grow(&rope_, rows * 2 * half);              // [rows, cos | sin]
  CTXMEM_RETURN_IF_ERROR(TorchCall("batched step embedding", [&] {
    const at::Tensor e =
        at::embedding(transformer_.weights().tok_embd, tokens).to(at::kFloat).contiguous();
    std::memcpy(x_.data(), e.data_ptr<float>(), rows * hidden * sizeof(float));
  }));
  for (int64_t r = 0; r < rows; ++r) {
    const float pos = static_cast<float>(streams[row_stream_[r]]->next_position() + row_index_[r]);
    for (int64_t i = 0; i < half; ++i) {
      const float f = pos * inv_freq_[i];
      rope_[r * 2 * half + i] = std::cos(f);
      rope_[r * 2 * half + half + i] = std::sin(f);
    }
  }
  const auto norm_rows = [&](const std::vector<float>& w) {
    for (int64_t r = 0; r < rows; ++r) {
      RmsNormRow(x_.data() + r * hidden, w.data(), hidden, c.norm_eps, h_.data() + r * hidden);
    }
  };
  const auto add_rows = [&](const float* y) {
    for (int64_t i = 0; i < rows * hidden; ++i) x_[i] += y[i];
  };
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const PackedLayer& L = packed_->layers[l];
    norm_rows(L.attn_norm);
    qx_.Quantize(kernels_, h_.data(), rows, hidden);
    QMatMul(kernels_, L.qkv, qx_, qkv_.data(), qkv_dim);
    for (int64_t r = 0; r < rows; ++r) {
      float* q = qkv_.data() + r * qkv_dim;
      if (!L.bqkv.empty()) {
        for (int64_t i = 0; i < qkv_dim; ++i) q[i] += L.bqkv[i];
      }
      float* k = q + q_dim;
      const float* cos = rope_.data() + r * 2 * half;  // [cos[half], sin[half]] of row r
      RotateRow(q, c.n_heads, hd, c.rope_dim, cos, cos + half);
      RotateRow(k, c.n_kv_heads, hd, c.rope_dim, cos, cos + half);
      streams[row_stream_[r]]->WriteEntry(l, row_index_[r], k, k + kv_dim);
    }
    AttendAll(streams, l, qkv_.data(), qkv_dim, attn_.data());
    qx_.Quantize(kernels_, attn_.data(), rows, q_dim);
    QMatMul(kernels_, L.o, qx_, h_.data(), hidden);
    add_rows(h_.data());

    norm_rows(L.ffn_norm);
    qx_.Quantize(kernels_, h_.data(), rows, hidden);
    QMatMul(kernels_, L.gate_up, qx_, mlp_.data(), 2 * c.ffn);
    for (int64_t r = 0; r < rows; ++r) {
      const float* gu = mlp_.data() + r * 2 * c.ffn;
      float* a = act_.data() + r * c.ffn;
      kernels_.silu_mul(gu, gu + c.ffn, a, c.ffn);
    }
    qx_.Quantize(kernels_, act_.data(), rows, c.ffn);
    QMatMul(kernels_, L.down, qx_, h_.data(), hidden);
    add_rows(h_.data());
  }
  // Logits of each stream's last row only: [batch, hidden] normed rows, then the output matrix.
  for (int64_t b = 0; b < batch; ++b) {
    RmsNormRow(x_.data() + last_row_[b] * hidden, packed_->out_norm.data(), hidden, c.norm_eps,
               h_.data() + b * hidden);
  }
  qx_.Quantize(kernels_, h_.data(), batch, hidden);
  QMatMul(kernels_, packed_->lm_head, qx_, logits_rows_.data(), c.n_vocab);
  return absl::OkStatus();
}

}  // namespace ctxmem::model
