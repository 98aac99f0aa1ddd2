#include "common/train/perceiver_objective.h"

#include <ATen/ATen.h>
#include <torch/autograd.h>

#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/compress/top_k.h"
#include "common/model/kv_cache.h"
#include "common/model/torch_call.h"
#include "common/model/transformer.h"
#include "common/status.h"
#include "common/train/perceiver_module.h"

namespace ctxmem::train {
namespace {

// [1, n] int64 positions first..first+n-1 on `device`.
at::Tensor Positions(int64_t first, int64_t n, c10::Device device) {
  return at::arange(first, first + n, at::TensorOptions().dtype(at::kLong).device(device))
      .unsqueeze(0);
}

// The entries [h, n, d] (pre-RoPE keys, values) per layer as a batch-1 past at slots 0..n-1.
model::KvCache SlotsPast(const model::Transformer& model, const std::vector<at::Tensor>& k,
                         const std::vector<at::Tensor>& v) {
  model::KvCache past;
  const int64_t n = k[0].size(1);
  const at::Tensor pos = Positions(0, n, model.device());
  for (size_t l = 0; l < k.size(); ++l) {
    past.k.push_back(model.RotateKeys(k[l].unsqueeze(0), pos));  // [1, h, n, d]
    past.v.push_back(v[l].unsqueeze(0));
  }
  past.next_position = n;
  return past;
}

}  // namespace

absl::StatusOr<PerceiverObjective> ParsePerceiverObjective(std::string_view name) {
  if (name == "seed") return PerceiverObjective::kSeed;
  if (name == "next_mse") return PerceiverObjective::kNextMse;
  if (name == "next_kl") return PerceiverObjective::kNextKl;
  return absl::InvalidArgumentError(absl::StrCat("perceiver objective '", std::string(name),
                                                 "' unknown; valid: seed, next_mse, next_kl"));
}

std::string_view PerceiverObjectiveName(PerceiverObjective objective) {
  switch (objective) {
    case PerceiverObjective::kSeed:
      return "seed";
    case PerceiverObjective::kNextMse:
      return "next_mse";
    case PerceiverObjective::kNextKl:
      return "next_kl";
  }
  return "?";
}

absl::StatusOr<WindowLoss> PerceiverWindowLoss(const model::Transformer& model,
                                               const PerceiverModule& perceiver,
                                               absl::Span<const int32_t> tokens,
                                               const PerceiverLossOptions& o,
                                               double backward_scale) {
  const model::ModelConfig& mc = model.config();
  const int64_t C = o.chunk_size, M = o.memory_size, S = o.n_sinks;
  const int64_t T = static_cast<int64_t>(tokens.size());
  if (C < 2 || M < 1 || S < 0 || S >= C) {
    return absl::InvalidArgumentError(absl::StrCat("perceiver loss: chunk_size=", C,
                                                   " memory_size=", M, " n_sinks=", S,
                                                   " need C >= 2, M >= 1, 0 <= S < C"));
  }
  if (T % C != 0 || T / C < 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("perceiver loss: a window of ", T, " tokens is not n >= 2 chunks of ", C));
  }
  if (perceiver.shape().n_layers != mc.n_layers ||
      perceiver.shape().d_model != mc.n_kv_heads * mc.head_dim) {
    return absl::InvalidArgumentError(absl::StrCat("perceiver has ", perceiver.shape().n_layers,
                                                   " layers of d_model=", perceiver.shape().d_model,
                                                   "; the model has ", mc.n_layers, " layers of ",
                                                   mc.n_kv_heads, " x ", mc.head_dim));
  }
  const int64_t n_chunks = T / C;
  const int64_t L = mc.n_layers;
  const int64_t group = mc.n_heads / mc.n_kv_heads;
  const bool lm = o.objective != PerceiverObjective::kNextKl;
  const bool next = o.objective != PerceiverObjective::kSeed;
  const bool train = backward_scale > 0;
  const double n_lm_total = static_cast<double>((n_chunks - 1) * (C - 1));
  const double n_aux_total = static_cast<double>((n_chunks - 1) * L);
  WindowLoss out;
  CTXMEM_RETURN_IF_ERROR(model::TorchCall("perceiver loss", [&]() -> absl::Status {
    std::optional<torch::NoGradGuard> no_grad_all;
    if (!train) no_grad_all.emplace();
    const c10::Device dev = model.device();
    const at::Tensor ids =
        at::tensor(std::vector<int32_t>(tokens.begin(), tokens.end()), at::kInt).to(at::kLong);
    std::vector<at::Tensor> mk(L), mv(L);  // memory per layer [h, len, d], sinks first
    at::Tensor pending_aux;                // aux of the last selection, backpropagated with
                                           // the LM term that reads it
    double lm_sum = 0, aux_sum = 0;
    for (int64_t t = 0; t < n_chunks; ++t) {
      const int64_t mem_len = mk[0].defined() ? mk[0].size(1) : 0;
      const at::Tensor chunk = ids.narrow(0, t * C, C).unsqueeze(0).to(dev);  // [1, C]
      model::ForwardOptions fo;
      fo.return_pre_rope_keys = true;
      const bool lm_here = lm && t > 0;
      fo.logits = lm_here ? model::LogitsMode::kAll : model::LogitsMode::kNone;
      const bool seed_scores = o.objective == PerceiverObjective::kSeed && t < n_chunks - 1;
      fo.score_rows = seed_scores ? model::ScoreRows::kAll : model::ScoreRows::kNone;
      model::ForwardResult r;
      {
        std::optional<torch::NoGradGuard> no_grad;
        if (!lm_here) no_grad.emplace();
        model::KvCache past;
        if (mem_len > 0) past = SlotsPast(model, mk, mv);
        CTXMEM_ASSIGN_OR_RETURN(
            r, model.Forward(chunk, Positions(mem_len, C, dev), mem_len > 0 ? &past : nullptr, fo));
        out.n_forward_tokens += C;
        if (lm_here) {
          at::Tensor logits = r.logits[0].narrow(0, 0, C - 1);  // [C - 1, n_vocab]
          at::Tensor target = chunk[0].narrow(0, 1, C - 1);     // [C - 1]
          at::Tensor nll = at::cross_entropy_loss(logits, target, {}, at::Reduction::Sum);
          lm_sum += nll.item<double>();
          if (train) {
            at::Tensor term = nll / n_lm_total;
            if (pending_aux.defined()) term = term + pending_aux * (o.aux_weight / n_aux_total);
            if (term.requires_grad()) (term * backward_scale).backward();
            pending_aux = at::Tensor();
          }
          r.logits = at::Tensor();
        }
      }
      if (t == n_chunks - 1) break;
      // Candidates per layer, detached (§1): [memory without sinks ; chunk].
      std::vector<at::Tensor> sink_k(L), sink_v(L), cand_k(L), cand_v(L);
      for (int64_t l = 0; l < L; ++l) {
        at::Tensor ck = r.k_pre_rope[l][0].detach(), cv = r.v[l][0].detach();  // [h, C, d]
        if (mem_len == 0) {
          sink_k[l] = ck.narrow(1, 0, S);
          sink_v[l] = cv.narrow(1, 0, S);
          cand_k[l] = ck.narrow(1, S, C - S);
          cand_v[l] = cv.narrow(1, S, C - S);
        } else {
          sink_k[l] = mk[l].narrow(1, 0, S).detach();
          sink_v[l] = mv[l].narrow(1, 0, S).detach();
          cand_k[l] = at::cat({mk[l].narrow(1, S, mem_len - S).detach(), ck}, 1);
          cand_v[l] = at::cat({mv[l].narrow(1, S, mem_len - S).detach(), cv}, 1);
        }
      }
      r.k_pre_rope.clear();
      r.k.clear();
      r.v.clear();
      const int64_t n_cand = cand_k[0].size(1);
      // The next chunk's attention over every candidate (kNextMse, kNextKl).
      std::vector<at::Tensor> next_target(L);
      if (next && n_cand > M) {
        torch::NoGradGuard no_grad;
        std::vector<at::Tensor> fk(L), fv(L);
        for (int64_t l = 0; l < L; ++l) {
          fk[l] = at::cat({sink_k[l], cand_k[l]}, 1);
          fv[l] = at::cat({sink_v[l], cand_v[l]}, 1);
        }
        model::KvCache full = SlotsPast(model, fk, fv);
        model::ForwardOptions f2;
        f2.logits = model::LogitsMode::kNone;
        f2.score_rows = model::ScoreRows::kAll;
        f2.on_layer_scores = [&](int64_t l, const at::Tensor& s) -> absl::Status {
          at::Tensor a = s[0].narrow(2, S, n_cand).sum(1);  // [h, n_cand]
          next_target[l] = a / a.sum(-1, /*keepdim=*/true).clamp_min(1e-30);
          return absl::OkStatus();
        };
        const at::Tensor next_chunk = ids.narrow(0, (t + 1) * C, C).unsqueeze(0).to(dev);
        CTXMEM_RETURN_IF_ERROR(
            model.Forward(next_chunk, Positions(S + n_cand, C, dev), &full, f2).status());
        out.n_forward_tokens += C;
      }
      at::Tensor step_aux;
      for (int64_t l = 0; l < L; ++l) {
        if (n_cand <= M) {  // everything fits: no choice to learn
          mk[l] = at::cat({sink_k[l], cand_k[l]}, 1);
          mv[l] = at::cat({sink_v[l], cand_v[l]}, 1);
          continue;
        }
        at::Tensor p = perceiver.MeanAttention(l, cand_k[l], M);  // [h, n_cand] fp32
        at::Tensor aux;
        if (o.objective == PerceiverObjective::kSeed) {
          // [h, C, mem_len + C] summed over the GQA group -> mean per query head; a target
          // (the teacher), so detached from the chunk's forward graph.
          at::Tensor a =
              (r.scores[l][0].detach() / static_cast<double>(group)).narrow(2, S, n_cand).mean(1);
          aux = ((a - p) * static_cast<double>(n_cand)).pow(2).mean();
        } else if (o.objective == PerceiverObjective::kNextMse) {
          aux = ((next_target[l] - p) * static_cast<double>(n_cand)).pow(2).mean();
        } else {
          const at::Tensor& q = next_target[l];
          aux = (q * (q.clamp_min(1e-30).log() - p.clamp_min(1e-30).log())).sum(-1).mean();
        }
        step_aux = step_aux.defined() ? step_aux + aux : aux;
        const int64_t h = cand_k[l].size(0), d = cand_k[l].size(2);
        at::Tensor idx = compress::TopKIndices(p.detach(), M);  // [h, M] ascending
        at::Tensor gidx = idx.unsqueeze(-1).expand({h, M, d});
        at::Tensor sel_k = cand_k[l].gather(1, gidx), sel_v = cand_v[l].gather(1, gidx);
        if (lm && train) {
          // Straight-through (§3.9): value 1, gradient to the scorer through the next chunk.
          at::Tensor pk = p.gather(1, idx);
          at::Tensor f = (1.0 + pk - pk.detach()).unsqueeze(-1).to(sel_k.scalar_type());
          sel_k = sel_k * f;
          sel_v = sel_v * f;
        }
        mk[l] = at::cat({sink_k[l], sel_k}, 1);
        mv[l] = at::cat({sink_v[l], sel_v}, 1);
      }
      r.scores.clear();
      if (step_aux.defined()) {
        aux_sum += step_aux.item<double>();
        out.n_aux_terms += L;
        if (train) {
          if (lm) {
            pending_aux = step_aux;  // with the next chunk's LM term
          } else {
            if (step_aux.requires_grad()) {
              (step_aux * (o.aux_weight / n_aux_total * backward_scale)).backward();
            }
          }
        }
      }
    }
    out.n_lm_tokens = lm ? static_cast<int64_t>(n_lm_total) : 0;
    out.lm = lm ? lm_sum / n_lm_total : 0;
    out.aux = aux_sum / n_aux_total;
    out.total = out.lm + o.aux_weight * out.aux;
    return absl::OkStatus();
  }));
  return out;
}

}  // namespace ctxmem::train
