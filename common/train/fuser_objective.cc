#include "common/train/fuser_objective.h"

#include <ATen/ATen.h>
#include <torch/autograd.h>
#include <torch/utils.h>

#include <optional>

#include "absl/strings/str_cat.h"
#include "common/model/kv_cache.h"
#include "common/model/torch_call.h"
#include "common/model/transformer.h"
#include "common/status.h"

namespace ctxmem::train {
namespace {

at::Tensor Positions(int64_t first, int64_t n, c10::Device device) {
  return at::arange(first, first + n, at::TensorOptions().dtype(at::kLong).device(device))
      .unsqueeze(0);  // [1, n]
}

}  // namespace

absl::StatusOr<WindowLoss> FuserWindowLoss(const model::Transformer& model, const TrainFuseFn& fuse,
                                           absl::Span<const int32_t> tokens,
                                           const PerceiverLossOptions& o, double backward_scale) {
  const model::ModelConfig& mc = model.config();
  const int64_t C = o.chunk_size, M = o.memory_size, S = o.n_sinks;
  const int64_t T = static_cast<int64_t>(tokens.size());
  if (C < 2 || M < 1 || S < 0 || S >= C) {
    return absl::InvalidArgumentError(absl::StrCat("fuser loss: chunk_size=", C, " memory_size=", M,
                                                   " n_sinks=", S,
                                                   " need C >= 2, M >= 1, 0 <= S < C"));
  }
  if (T % C != 0 || T / C < 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("fuser loss: a window of ", T, " tokens is not n >= 2 chunks of ", C));
  }
  const int64_t n_chunks = T / C, L = mc.n_layers;
  const bool train = backward_scale > 0;
  const double n_lm_total = static_cast<double>((n_chunks - 1) * (C - 1));
  WindowLoss out;
  CTXMEM_RETURN_IF_ERROR(model::TorchCall("fuser loss", [&]() -> absl::Status {
    std::optional<torch::NoGradGuard> no_grad_all;
    if (!train) no_grad_all.emplace();
    const c10::Device dev = model.device();
    const at::Tensor ids =
        at::tensor(std::vector<int32_t>(tokens.begin(), tokens.end()), at::kInt).to(at::kLong);
    std::vector<at::Tensor> mk(L), mv(L);  // memory per layer [h, len, d], sinks first
    double lm_sum = 0;
    for (int64_t t = 0; t < n_chunks; ++t) {
      const int64_t mem_len = mk[0].defined() ? mk[0].size(1) : 0;
      const at::Tensor chunk = ids.narrow(0, t * C, C).unsqueeze(0).to(dev);  // [1, C]
      model::ForwardOptions fo;
      fo.return_pre_rope_keys = true;
      fo.logits = t > 0 ? model::LogitsMode::kAll : model::LogitsMode::kNone;
      model::KvCache past;
      if (mem_len > 0) {
        const at::Tensor pos = Positions(0, mem_len, dev);
        for (int64_t l = 0; l < L; ++l) {
          past.k.push_back(model.RotateKeys(mk[l].unsqueeze(0), pos));  // [1, h, len, d]
          past.v.push_back(mv[l].unsqueeze(0));
        }
        past.next_position = mem_len;
      }
      model::ForwardResult r;
      {
        std::optional<torch::NoGradGuard> no_grad;
        if (t == 0) no_grad.emplace();  // chunk 0 reads no fused memory
        CTXMEM_ASSIGN_OR_RETURN(
            r, model.Forward(chunk, Positions(mem_len, C, dev), mem_len > 0 ? &past : nullptr, fo));
      }
      out.n_forward_tokens += C;
      if (t > 0) {
        at::Tensor logits = r.logits[0].narrow(0, 0, C - 1);  // [C - 1, n_vocab]
        at::Tensor target = chunk[0].narrow(0, 1, C - 1);     // [C - 1]
        at::Tensor nll = at::cross_entropy_loss(logits, target, {}, at::Reduction::Sum);
        lm_sum += nll.item<double>();
        if (train && nll.requires_grad()) (nll * (backward_scale / n_lm_total)).backward();
        r.logits = at::Tensor();
      }
      past = model::KvCache();
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
      r = model::ForwardResult();
      if (cand_k[0].size(1) <= M) {  // everything fits: nothing to fuse
        for (int64_t l = 0; l < L; ++l) {
          mk[l] = at::cat({sink_k[l], cand_k[l]}, 1);
          mv[l] = at::cat({sink_v[l], cand_v[l]}, 1);
        }
        continue;
      }
      CTXMEM_ASSIGN_OR_RETURN(auto fused, fuse(sink_k, sink_v, cand_k, cand_v, M));
      for (int64_t l = 0; l < L; ++l) {
        mk[l] = at::cat({sink_k[l], fused[l].first}, 1);  // [h, S + M, d]
        mv[l] = at::cat({sink_v[l], fused[l].second}, 1);
      }
    }
    out.n_lm_tokens = static_cast<int64_t>(n_lm_total);
    out.lm = lm_sum / n_lm_total;
    out.total = out.lm;
    return absl::OkStatus();
  }));
  return out;
}

}  // namespace ctxmem::train
