#pragma once
// Perplexity of chunked compression over a grid of settings: the seed's eval_all_pruners
// (spec §10.1, §12.14). Every setting compresses the first eval_len tokens chunk by chunk and
// scores every position of the window from its chunk's logits, so PPL = exp(mean NLL over the
// eval_len - 1 predicted tokens); a no_compress row per chunk size is the reference. Time and
// peak RSS are taken per setting.
// Resumable: rows of an earlier run's JSON (PplSweepOptions::previous_rows) are reused for the
// settings they match, and the progress callback hands out the whole table (finished rows plus
// pending ones) after every setting, so a caller can write it incrementally.
// KL: with PplSweepOptions::kl every row also gets KL(uncompressed || compressed) of the
// next-token distribution, per position, averaged per chunk and over the window: the no_compress
// row's log-probabilities of every position are kept ([eval_len - 1, n_vocab] fp32, e.g. 400 MB
// at eval_len 2048 with a 49k vocabulary) while the rows of its chunk size run.
// Thread-safety: free functions; run one sweep at a time per process (the peak RSS is a
// process-wide high-water mark, reset before every setting).

#include <ATen/core/Tensor.h>

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

struct PplSweepOptions {
  int64_t eval_len = 2048;                    // tokens of the window, >= 2
  std::vector<int64_t> chunk_sizes = {512};   // C values, each >= 1
  std::vector<int64_t> memory_sizes = {256};  // M values, each >= 0
  // Pruner names (registry names or aliases); empty = every registered pruner once. no_compress
  // is always run once per chunk size as the reference, whether listed or not.
  std::vector<std::string> pruners;
  // ParseMemoryType names: "FM", "IM", "IMDC", "FIXED_INCREMENTAL", ... (DOUBLE_COMPRESS needs
  // base.double_compress_size).
  std::vector<std::string> memory_types = {"FM"};
  // Everything else of every setting (schedule, sinks, positions, score mode, seed, ...).
  compress::CompressionConfig base;
  // Rows of an earlier PplSweepToJson() (its "rows" array) over the same tokens and eval_len,
  // for resuming: a planned setting whose CompressionConfigToJson() equals a finished row's
  // "config" takes that row instead of running again. Pending rows are ignored. Null = none.
  nlohmann::json previous_rows;
  // KL(no_compress || row) of the next-token distribution for every row (see the file comment).
  bool kl = true;

  // InvalidArgument naming the field and value: eval_len < 2, empty or out-of-range lists,
  // unknown pruner or memory type names.
  absl::Status Validate() const;
};

// The settings of a sweep in run order: for each chunk size the no_compress reference first,
// then every M x pruner x memory type. InvalidArgument as Validate().
absl::StatusOr<std::vector<compress::CompressionConfig>> PlanPplSweep(
    const PplSweepOptions& options);

// One setting's result.
struct PplRow {
  compress::CompressionConfig config;
  bool reference = false;  // the no_compress row of its chunk size
  // Empty when the setting ran; otherwise why it could not (e.g. an IMDC plan with a chunk
  // size <= 0, §12.8) and the numbers below are unset.
  std::string error;
  double ppl = 0;
  double nll = 0;        // nats, mean over n_scored tokens
  int64_t n_scored = 0;  // eval_len - 1
  // Mean NLL (nats) of the positions each chunk's logits predict, in chunk order: where in the
  // window a setting loses (IM's early chunks read a smaller memory than FM's, §5.1).
  std::vector<double> chunk_nll;
  // KL(uncompressed || this row) of the next-token distribution in nats, mean over the n_scored
  // positions (kl) and per chunk as chunk_nll (chunk_kl); has_kl false when not computed (kl off,
  // or a resumed row from a table without it). The reference row's is 0 by definition.
  bool has_kl = false;
  double kl = 0;
  std::vector<double> chunk_kl;
  double seconds = 0;  // wall time of the compression, logits and scoring included
  // CPU seconds (user + system, whole process) over the same span; on a shared machine the
  // figure to compare, as wall time also counts other processes' turns on the cores.
  double cpu_seconds = 0;
  double tokens_per_second = 0;
  int64_t peak_rss_bytes = -1;  // VmHWM during the setting; -1 unknown
  int64_t n_chunks = 0;
  int64_t memory_len = 0;    // final memory entries per kv head, sinks included
  std::string plan;          // ChunkPlan::Describe()
  std::string load_average;  // /proc/loadavg's 1/5/15-minute figures when the setting ended
  bool pending = false;      // not run yet (partial tables while a sweep runs)
  bool resumed = false;      // taken from PplSweepOptions::previous_rows, not run now
};

struct PplSweepResult {
  int64_t eval_len = 0;
  std::vector<PplRow> rows;  // in PlanPplSweep order
  // True when the peak RSS was reset before every setting; false: peaks are process-wide
  // (monotonic) because the kernel refused the reset.
  bool peak_rss_per_setting = false;
  double seconds = 0;  // whole sweep
};

struct PplSweepProgress {
  int64_t setting = 0;  // 0-based index of the running setting
  int64_t n_settings = 0;
  const compress::CompressionConfig* config =
      nullptr;                       // the running setting; borrowed for the call
  int64_t n_tokens_done = 0;         // of this setting
  int64_t n_tokens_total = 0;        // eval_len
  double seconds = 0;                // since the sweep started
  const PplRow* finished = nullptr;  // set once per setting, when its row is complete
  // With `finished`: the whole table so far (every planned setting; those not run yet have
  // pending = true), e.g. to write it out incrementally. Borrowed for the call.
  const PplSweepResult* table = nullptr;
};

// Next-token log-probabilities to compare against, or to keep, for the KL.
struct NextTokenLogProbs {
  // Compare: row t = log p(token t+1 | tokens[0..t]) of the reference, [eval_len - 1, n_vocab]
  // fp32 on the model's device; undefined = no KL.
  at::Tensor reference;
  // Keep: when set, receives this run's log-probabilities in the same layout.
  at::Tensor* capture = nullptr;
};

// Perplexity of one compression of tokens[0, eval_len): every chunk's logits scored (§10.1).
// InvalidArgument when tokens holds fewer than eval_len (>= 2) ids, the config is invalid or
// `kl.reference` has another shape than [eval_len - 1, n_vocab]; compression errors are returned
// as they are. peak_rss_bytes is left at -1 (the sweep sets it). `on_tokens` (may be empty) gets
// the tokens done after every chunk. With kl.reference defined, the row's kl and chunk_kl are
// KL(reference || this run) per position, averaged.
absl::StatusOr<PplRow> EvaluateCompressedPerplexity(
    const model::Transformer& model, absl::Span<const int32_t> tokens, int64_t eval_len,
    const compress::CompressionConfig& config,
    const std::function<void(int64_t)>& on_tokens = nullptr, const NextTokenLogProbs& kl = {});

// Runs every setting of PlanPplSweep(options) on tokens[0, eval_len). A setting that fails is
// recorded with its error and the sweep goes on; InvalidArgument for bad options, too few
// tokens or malformed previous_rows. Settings matched by previous_rows are not run (their rows
// come back with resumed = true). `progress` (may be empty) is called after every chunk and once
// per finished or resumed row (with `table`).
absl::StatusOr<PplSweepResult> RunPplSweep(
    const model::Transformer& model, absl::Span<const int32_t> tokens,
    const PplSweepOptions& options,
    const std::function<void(const PplSweepProgress&)>& progress = nullptr);

// {"eval_len", "seconds", "peak_rss_per_setting", "rows": [{"config": {...}, "reference",
// "ppl", "ppl_vs_reference", "nll", "n_scored", "kl", "chunk_kl" (null without KL), "seconds",
// "cpu_seconds", "tokens_per_second", "peak_rss_bytes", "n_chunks", "memory_len", "plan",
// "load_average", "error", "pending"}]}.
nlohmann::json PplSweepToJson(const PplSweepResult& result);

// Markdown: one table of every row (PPL, ratio to the reference, KL, time, tokens/s, peak RSS,
// load average), then per chunk size a pivot of PPL with memory types as columns; settings not run
// yet read "pending", and a line counts them.
std::string PplSweepToMarkdown(const PplSweepResult& result);

}  // namespace ctxmem::eval
