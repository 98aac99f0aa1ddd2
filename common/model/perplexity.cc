#include "common/model/perplexity.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <chrono>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/model/torch_call.h"
#include "common/status.h"

namespace ctxmem::model {

absl::Status PerplexityOptions::Validate() const {
  if (ctx < 2) return absl::InvalidArgumentError(absl::StrCat("ctx=", ctx, " must be >= 2"));
  if (max_tokens < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_tokens=", max_tokens, " must be >= 0 (0 = all)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<PerplexityResult> EvaluatePerplexity(const Model& model,
                                                    absl::Span<const int32_t> ids,
                                                    const PerplexityOptions& options) {
  using Clock = std::chrono::steady_clock;
  const Clock::time_point t_start = Clock::now();
  CTXMEM_RETURN_IF_ERROR(options.Validate());
  const ModelConfig& config = model.config();
  if (config.max_positions > 0 && options.ctx > config.max_positions) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ctx=", options.ctx, " exceeds the model's max_positions=", config.max_positions));
  }
  const int64_t n_tokens =
      options.max_tokens > 0 ? std::min<int64_t>(options.max_tokens, ids.size()) : ids.size();
  if (n_tokens < 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("need at least 2 tokens to score, got ", n_tokens));
  }
  for (int64_t i = 0; i < n_tokens; ++i) {
    if (ids[i] < 0 || ids[i] >= config.n_vocab) {
      return absl::InvalidArgumentError(absl::StrCat("token id ", ids[i], " at index ", i,
                                                     " is outside [0, ", config.n_vocab, ")"));
    }
  }
  // A trailing window of a single token has nothing to score and is dropped.
  int64_t n_windows = (n_tokens + options.ctx - 1) / options.ctx;
  if (n_tokens % options.ctx == 1) --n_windows;

  c10::InferenceMode inference_mode;
  at::Tensor all_ids;  // [n_tokens] int64, CPU
  CTXMEM_RETURN_IF_ERROR(TorchCall("perplexity: ids", [&] {
    all_ids = at::empty({n_tokens}, at::kLong);
    int64_t* p = all_ids.data_ptr<int64_t>();
    for (int64_t i = 0; i < n_tokens; ++i) p[i] = ids[i];
  }));
  PerplexityResult result;
  result.n_windows = n_windows;
  int64_t n_run = 0;  // tokens run through the model
  ForwardOptions fopts;
  fopts.logits = LogitsMode::kAll;
  for (int64_t w = 0; w < n_windows; ++w) {
    const int64_t begin = w * options.ctx;
    const int64_t len = std::min(options.ctx, n_tokens - begin);
    at::Tensor tokens, positions;  // [1, len] int64
    CTXMEM_RETURN_IF_ERROR(TorchCall("perplexity: window", [&] {
      tokens = all_ids.narrow(0, begin, len).view({1, len});
      positions = at::arange(len, at::kLong).view({1, len});
    }));
    CTXMEM_ASSIGN_OR_RETURN(ForwardResult out,
                            model.transformer().Forward(tokens, positions, nullptr, fopts));
    double window_nll = 0;
    CTXMEM_RETURN_IF_ERROR(TorchCall("perplexity: scoring", [&] {
      // Position t predicts token t + 1.
      auto logp = at::log_softmax(out.logits[0].narrow(0, 0, len - 1), -1);  // [len-1, n_vocab]
      auto target = tokens[0].narrow(0, 1, len - 1).to(logp.device()).unsqueeze(1);  // [len-1, 1]
      window_nll = -logp.gather(1, target).to(at::kDouble).sum().item<double>();
    }));
    result.total_nll += window_nll;
    result.n_scored += len - 1;
    n_run += len;
    if (options.progress) {
      PerplexityProgress p;
      p.window = w + 1;
      p.n_windows = n_windows;
      p.n_scored = result.n_scored;
      p.total_nll = result.total_nll;
      p.ppl = std::exp(result.total_nll / result.n_scored);
      p.seconds = std::chrono::duration<double>(Clock::now() - t_start).count();
      options.progress(p);
    }
  }
  result.ppl = std::exp(result.total_nll / result.n_scored);
  result.seconds = std::chrono::duration<double>(Clock::now() - t_start).count();
  result.tokens_per_second = result.seconds > 0 ? n_run / result.seconds : 0;
  return result;
}

}  // namespace ctxmem::model
