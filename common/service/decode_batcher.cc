#include "common/service/decode_batcher.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/model/generation_tracker.h"
#include "common/status.h"

// Invariants: only the scheduler thread (Loop) touches decoder_ and the active streams; a
// stream is in exactly one place at a time (queue_, a joiner being prefilled, or the active
// list) and its on_done runs exactly once, when it leaves the last of them. n_active_ counts
// the streams the thread holds (joiners and active), for the capacity view of queued().

namespace ctxmem::service {

// A stream the scheduler holds: the request, its bookkeeping and its KV state.
struct DecodeBatcher::Active {
  BatchStream request;
  std::unique_ptr<model::GenerationTracker> tracker;
  std::unique_ptr<model::DecodeStream> stream;
  int32_t next_id = 0;          // the token the next step feeds
  bool prompt_pending = false;  // the next step feeds request.prompt instead (no entries yet)
};

absl::Status DecodeBatcherOptions::Validate() const {
  if (max_batch < 1) {
    return absl::InvalidArgumentError(absl::StrCat("--max-batch=", max_batch, " must be >= 1"));
  }
  if (max_queued < 0) {
    return absl::InvalidArgumentError(absl::StrCat("--max-queued=", max_queued, " must be >= 0"));
  }
  if (step_prompt_rows < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--step-prompt-rows=", step_prompt_rows, " must be >= 0"));
  }
  return absl::OkStatus();
}

DecodeBatcher::DecodeBatcher(const model::Model* model, DecoderMetrics* metrics,
                             DecodeBatcherOptions options)
    : model_(model), metrics_(metrics), options_(options) {}

absl::StatusOr<std::unique_ptr<DecodeBatcher>> DecodeBatcher::Create(const model::Model* model,
                                                                     DecoderMetrics* metrics,
                                                                     DecodeBatcherOptions options) {
  CTXMEM_RETURN_IF_ERROR(options.Validate());
  std::unique_ptr<DecodeBatcher> b(new DecodeBatcher(model, metrics, options));
  CTXMEM_ASSIGN_OR_RETURN(
      b->decoder_, model::BatchedDecoder::Create(model->transformer(), model->packed_weights()));
  b->thread_ = std::thread([p = b.get()] { p->Loop(); });
  return b;
}

DecodeBatcher::~DecodeBatcher() { Shutdown(); }

absl::Status DecodeBatcher::Submit(BatchStream stream) {
  absl::MutexLock lock(&mu_);
  if (stopping_) return absl::FailedPreconditionError("decode batcher is shutting down");
  // A stream that finds a free slot does not wait: it counts against max_queued only when the
  // thread already holds max_batch streams.
  const int64_t waiting = static_cast<int64_t>(queue_.size());
  if (n_active_ + waiting >= options_.max_batch && waiting >= options_.max_queued) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "decode batch full: ", n_active_, " streams decoding (max_batch ", options_.max_batch,
        ") and ", waiting, " waiting (max_queued ", options_.max_queued, ")"));
  }
  queue_.push_back(std::move(stream));
  if (metrics_ != nullptr) metrics_->SetBatchQueued(static_cast<int64_t>(queue_.size()));
  return absl::OkStatus();
}

void DecodeBatcher::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

int64_t DecodeBatcher::queued() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int64_t>(queue_.size());
}

namespace {

bool IsCancelled(const BatchStream& s) { return s.cancelled && s.cancelled(); }

}  // namespace

bool DecodeBatcher::Emit(Active* a, int32_t id) {
  std::string delta;
  absl::StatusOr<bool> stop = a->tracker->Accept(id, a->stream->next_position(), &delta);
  if (!stop.ok()) {
    a->request.on_done(stop.status());
    return false;
  }
  if (a->request.on_token && !a->request.on_token(id, delta)) {
    a->tracker->Cancel(*stop);
    a->request.on_done(a->tracker->TakeResult());
    return false;
  }
  if (*stop) {
    a->request.on_done(a->tracker->TakeResult());
    return false;
  }
  a->next_id = id;
  return true;
}

std::unique_ptr<DecodeBatcher::Active> DecodeBatcher::Join(BatchStream request, bool in_step) {
  if (IsCancelled(request)) {
    request.on_done(absl::CancelledError("cancelled while queued"));
    return nullptr;
  }
  auto a = std::make_unique<Active>();
  a->request = std::move(request);
  BatchStream& r = a->request;
  const absl::Status status = [&]() -> absl::Status {
    CTXMEM_ASSIGN_OR_RETURN(a->tracker, model::GenerationTracker::Create(
                                            *model_, r.prompt, r.past.next_position, r.options));
    const int64_t capacity = static_cast<int64_t>(r.prompt.size()) + r.options.max_new_tokens;
    CTXMEM_ASSIGN_OR_RETURN(a->stream, decoder_->NewStream(std::move(r.past), capacity));
    r.past = model::KvCache();  // the stream holds the handles now
    if (in_step) {
      a->prompt_pending = true;
      return absl::OkStatus();
    }
    CTXMEM_ASSIGN_OR_RETURN(at::Tensor logits, decoder_->Prefill(a->stream.get(), r.prompt));
    CTXMEM_ASSIGN_OR_RETURN(int32_t id, a->tracker->Sample(logits));
    a->next_id = id;
    return absl::OkStatus();
  }();
  if (!status.ok()) {
    r.on_done(status);
    return nullptr;
  }
  if (in_step) return a;
  return Emit(a.get(), a->next_id) ? std::move(a) : nullptr;
}

void DecodeBatcher::StepAll(std::vector<std::unique_ptr<Active>>* active) {
  std::vector<std::unique_ptr<Active>> kept;
  for (std::unique_ptr<Active>& a : *active) {
    if (IsCancelled(a->request)) {
      a->tracker->Cancel(/*already_stopped=*/false);
      a->request.on_done(a->tracker->TakeResult());
    } else {
      kept.push_back(std::move(a));
    }
  }
  active->swap(kept);
  if (active->empty()) return;
  std::vector<model::DecodeStream*> streams;
  std::vector<absl::Span<const int32_t>> tokens;  // a joiner's prompt, else its next token
  int64_t prompt_tokens = 0;
  for (const std::unique_ptr<Active>& a : *active) {
    streams.push_back(a->stream.get());
    if (a->prompt_pending) prompt_tokens += static_cast<int64_t>(a->request.prompt.size());
    tokens.push_back(a->prompt_pending ? absl::Span<const int32_t>(a->request.prompt)
                                       : absl::Span<const int32_t>(&a->next_id, 1));
  }
  if (metrics_ != nullptr) {
    metrics_->ObserveBatchRows(static_cast<int64_t>(streams.size()));
    if (prompt_tokens > 0) metrics_->CountStepPromptTokens(prompt_tokens);
  }
  absl::StatusOr<absl::Span<const float>> logits = decoder_->Feed(streams, tokens);
  if (!logits.ok()) {
    for (std::unique_ptr<Active>& a : *active) a->request.on_done(logits.status());
    active->clear();
    return;
  }
  const int64_t n_vocab = model_->config().n_vocab;
  kept.clear();
  for (size_t i = 0; i < active->size(); ++i) {
    std::unique_ptr<Active>& a = (*active)[i];
    a->prompt_pending = false;
    absl::StatusOr<int32_t> id = a->tracker->Sample(logits->subspan(i * n_vocab, n_vocab));
    if (!id.ok()) {
      a->request.on_done(id.status());
      continue;
    }
    if (Emit(a.get(), *id)) kept.push_back(std::move(a));
  }
  active->swap(kept);
}

void DecodeBatcher::Loop() {
  std::vector<std::unique_ptr<Active>> active;
  while (true) {
    struct Joiner {
      BatchStream stream;
      bool in_step;  // its prompt runs as rows of the next step
    };
    std::vector<Joiner> joiners;
    {
      absl::MutexLock lock(&mu_);
      n_active_ = static_cast<int64_t>(active.size());
      if (active.empty()) {
        mu_.Await(absl::Condition(
            +[](DecodeBatcher* b) ABSL_EXCLUSIVE_LOCKS_REQUIRED(b->mu_) {
              return b->stopping_ || !b->queue_.empty();
            },
            this));
      }
      if (active.empty() && queue_.empty() && stopping_) break;
      // Joiners whose prompts fit the step's prompt-row budget are fed as rows of the next
      // step (packed path); a longer prompt is prefilled on its own; a short one that does
      // not fit this step's budget waits for the next.
      int64_t prompt_rows = 0;
      while (!queue_.empty() &&
             static_cast<int64_t>(active.size() + joiners.size()) < options_.max_batch) {
        const int64_t n = static_cast<int64_t>(queue_.front().prompt.size());
        const bool rows = decoder_->packed() && n <= options_.step_prompt_rows;
        if (rows && prompt_rows + n > options_.step_prompt_rows) break;
        if (rows) prompt_rows += n;
        joiners.push_back({std::move(queue_.front()), rows});
        queue_.pop_front();
      }
      n_active_ = static_cast<int64_t>(active.size() + joiners.size());
      if (metrics_ != nullptr) metrics_->SetBatchQueued(static_cast<int64_t>(queue_.size()));
    }
    for (Joiner& j : joiners) {
      if (std::unique_ptr<Active> a = Join(std::move(j.stream), j.in_step); a != nullptr)
        active.push_back(std::move(a));
    }
    if (!active.empty()) StepAll(&active);
  }
}

}  // namespace ctxmem::service
