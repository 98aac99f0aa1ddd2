#pragma once
// Reconstruction evaluation (`ctxmem eval-recon`, docs/rcc.md): how much of a window a memory
// keeps. For each window of W tokens of the text (consecutive, each followed by its own
// continuation chunk) and each method, the memory of the window alone is built with the same
// number of entries per kv head, E = W / R:
//   "rcc"      pruner=rcc with options.rcc_bridge (W, r = R): W / R slots;
//   "stride"   pruner=rcc with the built-in stride bridge (every R-th token's KV);
//   any other  a registry pruner over the window as one chunk, n_sinks sinks + (E - n_sinks)
//              kept entries (no_compress keeps all W: the upper bound).
// The decoder (the same model) then reads the memory as its past at slot positions and gets:
//   token_accuracy    teacher-forced over the window after a hint of its first h tokens: the
//                     fraction of tokens h..W-1 that are the argmax of their logit;
//   bleu4             of the greedy continuation of the hint, greedy_tokens tokens, against
//                     window[h, h + greedy_tokens) (Bleu4, token ids);
//   continuation_ppl  exp(mean NLL) of the next `continuation` tokens after the window, read
//                     right after the memory (tokens 2.. of the chunk; the first has no logit).
// Rows average token_accuracy and bleu4 over windows; the PPL pools every scored token.
// Thread-safety: free functions; one evaluation at a time per model is the intended use.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/compress/compression_config.h"
#include "nlohmann/json.hpp"

namespace ctxmem::model {
class Transformer;
}

namespace ctxmem::eval {

struct ReconOptions {
  std::vector<std::string> methods = {"rcc", "streaming_llm", "tova", "conv"};
  int64_t rate = 8;                   // R: W / R entries per kv head
  int64_t window = 512;               // W
  int64_t hint = 16;                  // h
  int64_t greedy_tokens = 128;        // tokens of the greedy reconstruction (<= W - h)
  int64_t continuation = 128;         // tokens of the continuation chunk (>= 2)
  int64_t max_windows = 8;            // windows evaluated (fewer when the text is short)
  int64_t n_sinks = 4;                // pruners' sink tokens (inside the E entries)
  std::string rcc_bridge = "stride";  // "rcc"'s bridge: a registered name (--weights)
  compress::CompressionConfig base;   // everything else of the pruners' configs

  // InvalidArgument naming the field: W not a multiple of R, E <= n_sinks, h or greedy_tokens
  // out of range, unknown methods.
  absl::Status Validate() const;
};

struct ReconRow {
  std::string method;
  std::string bridge;  // rcc rows: the bridge name (and content id in the JSON)
  int64_t rate = 0, window = 0;
  double token_accuracy = 0, bleu4 = 0, continuation_ppl = 0;
  int64_t entries = 0;    // memory entries per kv head (per window)
  int64_t n_windows = 0;  // windows evaluated
  double seconds = 0;     // wall time of this method over all windows
};

// Evaluates every method on the windows of `tokens` (the whole text, tokenized). `progress`
// (may be empty) gets a line after every window and method. InvalidArgument when the text
// holds no window + continuation; model errors with context.
absl::StatusOr<std::vector<ReconRow>> RunReconEval(
    const model::Transformer& model, absl::Span<const int32_t> tokens, const ReconOptions& options,
    const std::function<void(const std::string&)>& progress = {});

// {"rows": [{method, rate, window, token_accuracy, bleu4, continuation_ppl, entries, ...}], ...}
nlohmann::json ReconRowsToJson(const std::vector<ReconRow>& rows, const ReconOptions& options);
std::string ReconRowsToMarkdown(const std::vector<ReconRow>& rows);

}  // namespace ctxmem::eval
