#include "common/model/transformer.h"

#include <ATen/ATen.h>

#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "common/model/dense_ops.h"
#include "common/model/torch_call.h"
#include "common/status.h"

namespace ctxmem::model {
namespace {

// The projections and norms are dense_ops.h's (shared with BatchedDecoder).
at::Tensor Linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) {
  return DenseLinear(x, w, b);
}

// Chunks at least this long attend in bf16 when the matrices are bf16 (Forward).
constexpr int64_t kBf16AttentionMinTokens = 256;

// Boolean mask [n_tokens, past_len + n_tokens]: true = may attend. The chunk sees the whole
// past and itself causally; with a sliding window, only the last `window` positions.
at::Tensor AttendMask(int64_t past_len, int64_t n_tokens, int64_t window, c10::Device device) {
  auto rows =
      at::arange(n_tokens, at::TensorOptions().dtype(at::kLong).device(device)).unsqueeze(1) +
      past_len;  // [n_tokens, 1]
  auto cols = at::arange(past_len + n_tokens, at::TensorOptions().dtype(at::kLong).device(device))
                  .unsqueeze(0);
  auto mask = cols <= rows;  // [n_tokens, past + n_tokens]
  if (window > 0) mask = mask & (cols > rows - window);
  return mask;
}

}  // namespace

Transformer::Transformer(ModelConfig config, ModelWeights weights, c10::Device device)
    : config_(std::move(config)), weights_(std::move(weights)), device_(device) {
  rope_ = Rope::Create(config_, device_);
}

// Activations, keys/values and logits are fp32 whatever the matrices' dtype (see Linear): this
// is the dtype memories are converted to (memory_codec) and learned modules work in.
c10::ScalarType Transformer::dtype() const { return at::kFloat; }

at::Tensor Transformer::Norm(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) const {
  return DenseNorm(config_, x, w, b);
}

at::Tensor Transformer::RotateKeys(const at::Tensor& k_pre_rope,
                                   const at::Tensor& positions) const {
  return rope_.Apply(k_pre_rope, positions);
}

absl::StatusOr<ForwardResult> Transformer::Forward(const at::Tensor& tokens,
                                                   const at::Tensor& positions, const KvCache* past,
                                                   const ForwardOptions& options) const {
  const ModelConfig& c = config_;
  // Validate everything a caller controls before torch sees it.
  if (tokens.dim() != 2 || positions.dim() != 2 || tokens.sizes() != positions.sizes()) {
    return absl::InvalidArgumentError("tokens and positions must both be [batch, n_tokens]");
  }
  if (tokens.size(1) == 0) return absl::InvalidArgumentError("empty chunk: n_tokens=0");
  const int64_t batch = tokens.size(0);
  const int64_t n_tokens = tokens.size(1);
  ForwardResult result;
  CTXMEM_RETURN_IF_ERROR(TorchCall("forward", [&]() -> absl::Status {
    auto tok = tokens.to(at::kLong);
    const int64_t lo = tok.min().item<int64_t>(), hi = tok.max().item<int64_t>();
    if (lo < 0 || hi >= c.n_vocab) {
      return absl::InvalidArgumentError(
          absl::StrCat("token id out of range [0, ", c.n_vocab, "): min=", lo, " max=", hi));
    }
    if (positions.min().item<int64_t>() < 0) {
      return absl::InvalidArgumentError("negative position id");
    }
    const bool has_past = past != nullptr && !past->empty();
    const int64_t past_len = has_past ? past->seq_len() : 0;
    if (has_past) {
      if (static_cast<int64_t>(past->k.size()) != c.n_layers || past->v.size() != past->k.size()) {
        return absl::InvalidArgumentError(
            absl::StrCat("past has ", past->k.size(), " layers, model has ", c.n_layers));
      }
      for (int64_t i = 0; i < c.n_layers; ++i) {
        const auto& pk = past->k[i];
        const auto& pv = past->v[i];
        if (pk.dim() != 4 || pk.size(0) != batch || pk.size(1) != c.n_kv_heads ||
            pk.size(2) != past_len || pk.size(3) != c.head_dim || pv.sizes() != pk.sizes()) {
          return absl::InvalidArgumentError(absl::StrCat("past layer ", i, " must be [", batch,
                                                         ", ", c.n_kv_heads, ", ", past_len, ", ",
                                                         c.head_dim, "]"));
        }
      }
    }
    tok = tok.to(device_);
    auto pos = positions.to(at::kLong).to(device_);
    const int64_t group = c.n_heads / c.n_kv_heads;
    // The matrices' dtype (ModelOptions::dtype; norms and biases stay fp32).
    const at::ScalarType mdt =
        weights_.layers.empty() ? at::kFloat : weights_.layers[0].wo.scalar_type();
    const double scale = 1.0 / std::sqrt(static_cast<double>(c.head_dim));
    const int64_t window =
        c.sliding_window > 0 && past_len + n_tokens > c.sliding_window ? c.sliding_window : 0;
    // sdpa's is_causal aligns the mask top-left, which is right only without a past.
    at::Tensor mask;
    if (has_past || window > 0) mask = AttendMask(past_len, n_tokens, window, device_);

    int64_t n_rows = 0;
    if (options.score_rows == ScoreRows::kAll) n_rows = n_tokens;
    if (options.score_rows == ScoreRows::kLastWindow) {
      n_rows = std::min(std::max<int64_t>(options.score_window, 1), n_tokens);
    }
    at::Tensor score_mask;  // [n_rows, past + n_tokens], additive
    if (n_rows > 0) {
      auto m = AttendMask(past_len, n_tokens, window, device_).narrow(0, n_tokens - n_rows, n_rows);
      score_mask = at::zeros(m.sizes(), at::TensorOptions().dtype(at::kFloat).device(device_))
                       .masked_fill(m.logical_not(), -std::numeric_limits<float>::infinity());
    }

    const at::Tensor& embd = options.input_embeddings;
    if (embd.defined() && (embd.dim() != 3 || embd.size(0) != batch || embd.size(1) != n_tokens ||
                           embd.size(2) != c.hidden)) {
      return absl::InvalidArgumentError(
          absl::StrCat("input_embeddings must be [", batch, ", ", n_tokens, ", ", c.hidden, "]"));
    }
    auto x = embd.defined() ? embd.to(device_).to(at::kFloat)
                            : at::embedding(weights_.tok_embd, tok).to(at::kFloat);
    // x: [batch, n_tokens, hidden]
    if (options.residual_hook) x = options.residual_hook(0, x);
    for (int64_t li = 0; li < c.n_layers; ++li) {
      const LayerWeights& L = weights_.layers[li];
      auto h = Norm(x, L.attn_norm_w, L.attn_norm_b);  // [batch, n_tokens, hidden]
      const at::Tensor hw = h.to(mdt);                 // [batch, n_tokens, hidden] in mdt
      auto project = [&](Projection p, const at::Tensor& w, const at::Tensor& b) {
        at::Tensor y = DenseLinearFrom(hw, w, b);  // [batch, n_tokens, n_out] fp32
        if (options.projection_delta) {
          at::Tensor d = options.projection_delta(li, p, h);
          if (d.defined()) y = y + d;
        }
        return y;
      };
      auto q = project(Projection::kQ, L.wq, L.bq)
                   .view({batch, n_tokens, c.n_heads, c.head_dim})
                   .transpose(1, 2);
      auto k = project(Projection::kK, L.wk, L.bk)
                   .view({batch, n_tokens, c.n_kv_heads, c.head_dim})
                   .transpose(1, 2);
      auto v = project(Projection::kV, L.wv, L.bv)
                   .view({batch, n_tokens, c.n_kv_heads, c.head_dim})
                   .transpose(1, 2);
      // q: [batch, n_heads, n_tokens, head_dim]; k, v: [batch, n_kv_heads, n_tokens, head_dim]
      if (options.return_pre_rope_keys) result.k_pre_rope.push_back(k.contiguous());
      q = rope_.Apply(q, pos);
      k = rope_.Apply(k, pos).contiguous();
      v = v.contiguous();
      auto k_all = has_past ? at::cat({past->k[li], k}, 2) : k;  // [batch, n_kv, past+n, head_dim]
      auto v_all = has_past ? at::cat({past->v[li], v}, 2) : v;
      result.k.push_back(options.kv_with_past ? k_all : k);
      result.v.push_back(options.kv_with_past ? v_all : v);
      std::optional<at::Tensor> sdpa_mask;
      if (mask.defined()) sdpa_mask = mask;
      // With bf16 matrices, a chunk of >= kBf16AttentionMinTokens runs attention on bf16 q, k, v
      // too (fp32 accumulation and softmax inside sdpa; oneDNN's AMX brgemm where the CPU has
      // it): measured on the 2-vCPU Xeon, fp32 attention was ~40 % of a bf16 prefill of 2048
      // tokens (1667 -> 2234 tokens/s). Short chunks (prompts, questions) keep fp32 attention,
      // where it costs little. The keys and values kept (result.k/v) and the score side path
      // stay fp32.
      const bool low_attn = mdt == at::kBFloat16 && n_tokens >= kBf16AttentionMinTokens;
      auto attn = at::scaled_dot_product_attention(  // [batch, n_heads, n_tokens, head_dim]
          low_attn ? q.to(mdt) : q, low_attn ? k_all.to(mdt) : k_all,
          low_attn ? v_all.to(mdt) : v_all, sdpa_mask, 0.0,
          /*is_causal=*/!mask.defined() && n_tokens > 1, scale, /*enable_gqa=*/group > 1);
      if (low_attn) attn = attn.to(at::kFloat);
      if (n_rows > 0) {
        // Side path: weights of the chosen rows only; one layer's [n_heads, rows, S] at a time.
        // The scale goes on q (head_dim values per row, not S): the multiply over the logits
        // was ~7 % of a bf16 compression (tova, C=512, M=512, exact) on the Xeon.
        auto qs = q.narrow(2, n_tokens - n_rows, n_rows)
                      .reshape({batch, c.n_kv_heads, group * n_rows, c.head_dim})
                      .to(at::kFloat) *
                  scale;  // [batch, n_kv, group * rows, head_dim]
        // [batch, n_kv, group, rows, S]; masked in place (one [.., S] buffer fewer per step,
        // which is what glibc would otherwise keep around between layers). Without a sliding
        // window every row sees the whole past, so only the chunk's own columns are masked.
        auto logits = at::matmul(qs, k_all.to(at::kFloat).transpose(2, 3))
                          .view({batch, c.n_kv_heads, group, n_rows, past_len + n_tokens});
        if (window == 0) {
          logits.narrow(-1, past_len, n_tokens).add_(score_mask.narrow(-1, past_len, n_tokens));
        } else {
          logits.add_(score_mask);
        }
        auto scores = at::softmax(logits, -1).sum(2);  // [batch, n_kv, rows, S]
        logits.reset();
        if (options.on_layer_scores) {
          CTXMEM_RETURN_IF_ERROR(options.on_layer_scores(li, scores));
        } else {
          result.scores.push_back(std::move(scores));
        }
      }
      auto o = Linear(attn.transpose(1, 2).reshape({batch, n_tokens, c.n_heads * c.head_dim}), L.wo,
                      L.bo);  // [batch, n_tokens, hidden]
      if (c.parallel_residual) {
        auto h2 = Norm(x, L.ffn_norm_w, L.ffn_norm_b);
        auto mlp = Linear(at::gelu(Linear(h2, L.w_up, L.b_up)), L.w_down, L.b_down);
        x = x + o + mlp;
      } else {
        x = x + o;
        auto h2 = Norm(x, L.ffn_norm_w, L.ffn_norm_b);
        at::Tensor mlp;
        if (L.w_gate.defined()) {
          const at::Tensor h2w = h2.to(mdt);
          mlp = Linear(
              at::silu(DenseLinearFrom(h2w, L.w_gate, {})) * DenseLinearFrom(h2w, L.w_up, {}),
              L.w_down, {});
        } else {
          mlp = Linear(at::gelu(Linear(h2, L.w_up, L.b_up)), L.w_down, L.b_down);
        }
        x = x + mlp;
      }
      if (options.residual_hook) x = options.residual_hook(li + 1, x);
    }
    if (options.logits != LogitsMode::kNone) {
      auto xs = options.logits == LogitsMode::kLast ? x.narrow(1, n_tokens - 1, 1) : x;
      xs = Norm(xs, weights_.out_norm_w, weights_.out_norm_b);
      result.logits = Linear(xs, weights_.lm_head, {});  // [batch, n_out, n_vocab] fp32
    }
    return absl::OkStatus();
  }));
  return result;
}

}  // namespace ctxmem::model
