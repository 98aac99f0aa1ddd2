#include "common/eval/recon_eval.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <chrono>
#include <cmath>
#include <span>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/compress/compressor.h"
#include "common/compress/memory.h"
#include "common/compress/pruner_registry.h"
#include "common/compress/token_source.h"
#include "common/eval/recon_bleu.h"
#include "common/learned/rcc_bridge_registry.h"
#include "common/model/torch_call.h"
#include "common/model/transformer.h"
#include "common/status.h"

namespace ctxmem::eval {
namespace {

using Clock = std::chrono::steady_clock;

compress::CompressionConfig MethodConfig(const std::string& method, const ReconOptions& o) {
  compress::CompressionConfig c = o.base;
  if (method == "rcc" || method == "stride") {
    c.pruner = "rcc";
    c.rcc_bridge = method == "rcc" ? o.rcc_bridge : std::string(learned::kRccStrideBridge);
    c.rcc_window = o.window;
    c.rcc_rate = o.rate;
    return c;
  }
  c.pruner = method;
  c.memory_type = compress::MemoryType::kFm;
  c.chunk_size = o.window;  // the window is one chunk: one selection over all of it
  c.n_sink_tokens = o.n_sinks;
  c.memory_size = o.window / o.rate - o.n_sinks;
  return c;
}

at::Tensor Row(absl::Span<const int32_t> ids) {  // [1, n] int64
  return at::tensor(std::vector<int64_t>(ids.begin(), ids.end()),
                    at::TensorOptions().dtype(at::kLong))
      .unsqueeze(0);
}

at::Tensor Positions(int64_t start, int64_t n) {
  return at::arange(start, start + n, at::TensorOptions().dtype(at::kLong)).unsqueeze(0);
}

struct WindowScores {
  int64_t correct = 0, scored = 0;
  double bleu = 0, nll = 0;
  int64_t nll_tokens = 0, entries = 0;
};

absl::StatusOr<WindowScores> ScoreWindow(const model::Transformer& model,
                                         absl::Span<const int32_t> window,
                                         absl::Span<const int32_t> next,
                                         const compress::CompressionConfig& config,
                                         const ReconOptions& o) {
  compress::SpanTokenSource source(std::span<const int32_t>(window.data(), window.size()));
  CTXMEM_ASSIGN_OR_RETURN(compress::CompressResult compressed,
                          compress::Compress(model, source, config));
  CTXMEM_ASSIGN_OR_RETURN(model::KvCache cache, compress::ToKvCache(compressed.memory, model));
  WindowScores s;
  s.entries = compressed.memory.len();
  const int64_t m = cache.next_position;
  const int64_t w = static_cast<int64_t>(window.size());
  at::NoGradGuard no_grad;
  // Teacher-forced reconstruction after the hint.
  model::ForwardOptions all;
  CTXMEM_ASSIGN_OR_RETURN(model::ForwardResult tf,
                          model.Forward(Row(window), Positions(m, w), &cache, all));
  CTXMEM_RETURN_IF_ERROR(model::TorchCall("recon accuracy", [&] {
    at::Tensor pred = tf.logits[0].narrow(0, o.hint - 1, w - o.hint).argmax(-1);  // [w - h]
    at::Tensor want = Row(window)[0].narrow(0, o.hint, w - o.hint);
    s.correct = pred.eq(want).sum().item<int64_t>();
    s.scored = w - o.hint;
  }));
  // Greedy reconstruction of the tokens after the hint.
  model::ForwardOptions last;
  last.logits = model::LogitsMode::kLast;
  last.kv_with_past = true;
  model::KvCache gen = cache;
  CTXMEM_ASSIGN_OR_RETURN(
      model::ForwardResult out,
      model.Forward(Row(window.subspan(0, o.hint)), Positions(m, o.hint), &gen, last));
  std::vector<int32_t> produced;
  for (int64_t i = 0;; ++i) {
    const int32_t next_id = static_cast<int32_t>(out.logits[0][0].argmax().item<int64_t>());
    produced.push_back(next_id);
    if (i + 1 == o.greedy_tokens) break;
    gen.Extend(std::move(out.k), std::move(out.v));
    CTXMEM_ASSIGN_OR_RETURN(
        out, model.Forward(Row({next_id}), Positions(gen.next_position, 1), &gen, last));
  }
  s.bleu = Bleu4(produced, std::vector<int32_t>(window.begin() + o.hint,
                                                window.begin() + o.hint + o.greedy_tokens));
  // Continuation right after the memory.
  const int64_t c = static_cast<int64_t>(next.size());
  CTXMEM_ASSIGN_OR_RETURN(model::ForwardResult cont,
                          model.Forward(Row(next), Positions(m, c), &cache, all));
  CTXMEM_RETURN_IF_ERROR(model::TorchCall("recon continuation", [&] {
    at::Tensor logp = at::log_softmax(cont.logits[0].narrow(0, 0, c - 1), -1);  // [c-1, V]
    at::Tensor want = Row(next)[0].narrow(0, 1, c - 1).unsqueeze(1);
    s.nll = -logp.gather(1, want).sum().item<double>();
    s.nll_tokens = c - 1;
  }));
  return s;
}

}  // namespace

absl::Status ReconOptions::Validate() const {
  auto bad = [](auto&&... p) { return absl::InvalidArgumentError(absl::StrCat(p...)); };
  if (rate < 1 || window < rate || window % rate != 0) {
    return bad("--rate ", rate, " must divide --window ", window);
  }
  if (hint < 1 || hint >= window) return bad("--hint ", hint, " must be in [1, window)");
  if (greedy_tokens < 1 || hint + greedy_tokens > window) {
    return bad("greedy_tokens=", greedy_tokens, " must be in [1, window - hint]");
  }
  if (continuation < 2) return bad("continuation=", continuation, " must be >= 2");
  if (max_windows < 1) return bad("--max-windows ", max_windows, " must be >= 1");
  if (methods.empty()) return bad("--methods names no method");
  for (const std::string& m : methods) {
    if (m == "rcc" || m == "stride") continue;
    CTXMEM_RETURN_IF_ERROR(compress::PrunerRegistry::Global().Check(m));
    if (m != "no_compress" && window / rate <= n_sinks) {
      return bad("window / rate = ", window / rate, " entries leave no room beside ", n_sinks,
                 " sinks for ", m);
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<ReconRow>> RunReconEval(
    const model::Transformer& model, absl::Span<const int32_t> tokens, const ReconOptions& options,
    const std::function<void(const std::string&)>& progress) {
  CTXMEM_RETURN_IF_ERROR(options.Validate());
  const int64_t span = options.window + options.continuation;
  const int64_t n_windows =
      std::min<int64_t>(options.max_windows, static_cast<int64_t>(tokens.size()) / span);
  if (n_windows < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the text has ", tokens.size(), " tokens; one window + continuation needs ", span));
  }
  std::vector<ReconRow> rows;
  for (const std::string& method : options.methods) {
    const compress::CompressionConfig config = MethodConfig(method, options);
    CTXMEM_RETURN_IF_ERROR(WithContext(config.Validate(), method));
    ReconRow row;
    row.method = method;
    if (config.pruner == "rcc") row.bridge = config.rcc_bridge;
    row.rate = options.rate;
    row.window = options.window;
    const auto start = Clock::now();
    int64_t correct = 0, scored = 0, nll_tokens = 0;
    double bleu = 0, nll = 0;
    for (int64_t k = 0; k < n_windows; ++k) {
      absl::Span<const int32_t> window = tokens.subspan(k * span, options.window);
      absl::Span<const int32_t> next =
          tokens.subspan(k * span + options.window, options.continuation);
      absl::StatusOr<WindowScores> scores = ScoreWindow(model, window, next, config, options);
      if (!scores.ok()) return WithContext(scores.status(), absl::StrCat(method, " window ", k));
      const WindowScores& s = *scores;
      correct += s.correct;
      scored += s.scored;
      bleu += s.bleu;
      nll += s.nll;
      nll_tokens += s.nll_tokens;
      row.entries = s.entries;
      if (progress) {
        progress(absl::StrFormat("%s R=%d window %d/%d: acc %.3f bleu4 %.3f", method, options.rate,
                                 k + 1, n_windows, static_cast<double>(s.correct) / s.scored,
                                 s.bleu));
      }
    }
    row.n_windows = n_windows;
    row.token_accuracy = static_cast<double>(correct) / scored;
    row.bleu4 = bleu / n_windows;
    row.continuation_ppl = std::exp(nll / nll_tokens);
    row.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    rows.push_back(row);
  }
  return rows;
}

nlohmann::json ReconRowsToJson(const std::vector<ReconRow>& rows, const ReconOptions& options) {
  nlohmann::json j;
  j["hint"] = options.hint;
  j["greedy_tokens"] = options.greedy_tokens;
  j["continuation"] = options.continuation;
  j["n_sinks"] = options.n_sinks;
  j["rows"] = nlohmann::json::array();
  for (const ReconRow& r : rows) {
    nlohmann::json x = {{"method", r.method},   {"rate", r.rate},
                        {"window", r.window},   {"token_accuracy", r.token_accuracy},
                        {"bleu4", r.bleu4},     {"continuation_ppl", r.continuation_ppl},
                        {"entries", r.entries}, {"n_windows", r.n_windows},
                        {"seconds", r.seconds}};
    if (!r.bridge.empty()) {
      x["bridge"] = r.bridge;
      x["bridge_id"] = learned::RccBridgeContentId(r.bridge);
    }
    j["rows"].push_back(x);
  }
  return j;
}

std::string ReconRowsToMarkdown(const std::vector<ReconRow>& rows) {
  std::string md =
      "| method | R | W | entries | token_accuracy | bleu4 | continuation_ppl | windows |\n"
      "|---|---|---|---|---|---|---|---|\n";
  for (const ReconRow& r : rows) {
    absl::StrAppendFormat(&md, "| %s | %d | %d | %d | %.4f | %.4f | %.3f | %d |\n",
                          r.bridge.empty() ? r.method : absl::StrCat(r.method, " (", r.bridge, ")"),
                          r.rate, r.window, r.entries, r.token_accuracy, r.bleu4,
                          r.continuation_ppl, r.n_windows);
  }
  return md;
}

}  // namespace ctxmem::eval
