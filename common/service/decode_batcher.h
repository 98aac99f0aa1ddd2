#pragma once
// DecodeBatcher: decoder_svc's scheduler for batched decoding. Generate requests hand it a
// stream (prompt, options, the past of their memories); one thread runs every active stream's
// next token as one model step (model::BatchedDecoder), so concurrent requests share the
// weight reads. Streams join between steps and leave when they finish, fail or are cancelled.
// On the packed path a joiner's prompt (up to step_prompt_rows tokens, all joiners of a step
// together) runs as rows of the next step beside the others' decode tokens, which yields its
// first token; otherwise (dense path, longer prompts) it is prefilled on its own. Each keeps
// its own sampling, stop strings, token stream and result (model::GenerationTracker), exactly
// as a request generating alone. Limits are explicit: at most max_batch streams per step, at
// most max_queued waiting for a slot (more: ResourceExhausted at Submit).
// Thread-safety: thread-safe. A stream's callbacks run on the scheduler thread only.

#include <absl/base/thread_annotations.h>
#include <absl/synchronization/mutex.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/model/batched_decoder.h"
#include "common/model/generator.h"
#include "common/model/kv_cache.h"
#include "common/model/model.h"
#include "common/service/decoder_metrics.h"

namespace ctxmem::service {

struct DecodeBatcherOptions {
  int max_batch = 8;        // streams per model step, >= 1 (1 = one request at a time)
  int64_t max_queued = 64;  // streams waiting for a slot, >= 0
  // Prompt tokens that joiners may add to one packed step as rows, >= 0 (0 = every joiner is
  // prefilled on its own). A longer prompt is prefilled on its own; short ones beyond the
  // budget wait for the next step.
  int64_t step_prompt_rows = 256;

  absl::Status Validate() const;  // InvalidArgument naming the flag
};

// One stream to decode. Every callback must not throw.
struct BatchStream {
  std::vector<int32_t> prompt;     // non-empty
  model::GenerateOptions options;  // as for model::Generate
  model::KvCache past;             // the memories (handles: shared, only read)
  // Per generated token, in order (model::TokenCallback); false stops the stream (kCancelled).
  model::TokenCallback on_token;
  // Polled before the prefill and before every step: true drops the stream (kCancelled).
  std::function<bool()> cancelled;
  // Exactly once: the result (stop_reason kCancelled when cancelled) or the error.
  std::function<void(absl::StatusOr<model::GenerateResult>)> on_done;
};

class DecodeBatcher {
 public:
  // `model` and `metrics` (may be null) are borrowed and must outlive the batcher.
  // InvalidArgument for bad options or a model the batched step cannot run.
  static absl::StatusOr<std::unique_ptr<DecodeBatcher>> Create(const model::Model* model,
                                                               DecoderMetrics* metrics,
                                                               DecodeBatcherOptions options);
  DecodeBatcher(const DecodeBatcher&) = delete;
  DecodeBatcher& operator=(const DecodeBatcher&) = delete;
  ~DecodeBatcher();  // Shutdown()

  // Queues `stream`; its on_done runs later, on the scheduler thread. ResourceExhausted when
  // max_queued streams already wait (on_done is then not called), FailedPrecondition after
  // Shutdown().
  absl::Status Submit(BatchStream stream);

  // Stops accepting streams, finishes every queued and active one, joins the thread.
  // Idempotent.
  void Shutdown();

  int64_t queued() const;
  const DecodeBatcherOptions& options() const { return options_; }

 private:
  struct Active;
  DecodeBatcher(const model::Model* model, DecoderMetrics* metrics, DecodeBatcherOptions options);
  void Loop();
  // Makes a joining stream's state. in_step: its prompt is fed by the next step (prompt_pending);
  // else it is prefilled here and its first token emitted. Null when it already finished.
  std::unique_ptr<Active> Join(BatchStream stream, bool in_step);
  // One step over `active`; finished streams are removed.
  void StepAll(std::vector<std::unique_ptr<Active>>* active);
  // Accepts `id` for `a` and streams it; false when the stream is over (its on_done has run).
  static bool Emit(Active* a, int32_t id);

  // Constant after construction.
  const model::Model* model_;
  DecoderMetrics* metrics_;
  const DecodeBatcherOptions options_;
  std::unique_ptr<model::BatchedDecoder> decoder_;  // used by the scheduler thread only

  mutable absl::Mutex mu_;
  std::deque<BatchStream> queue_ ABSL_GUARDED_BY(mu_);
  int64_t n_active_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace ctxmem::service
