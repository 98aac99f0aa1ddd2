#include "common/service/score_call.h"

#include <chrono>
#include <utility>

#include "absl/strings/str_format.h"
#include "common/compress/memory_scorer.h"
#include "common/service/generate_call.h"
#include "common/service/request_id.h"
#include "common/service/service_log.h"
#include "common/status.h"

namespace ctxmem::service {
namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// One call. Created by Start, deleted by Done (its last act before on_finish).
class Call {
 public:
  Call(const DecoderDeps& deps, ScoreCallOptions options, v1::ScoreResponse* response,
       std::function<void(const absl::Status&)> on_finish)
      : deps_(deps),
        options_(std::move(options)),
        start_(Clock::now()),
        request_id_(NewRequestId()),
        response_(response),
        on_finish_(std::move(on_finish)) {}

  absl::Status Admit(absl::StatusOr<v1::ScoreRequest> request) {
    CTXMEM_ASSIGN_OR_RETURN(tenant_, deps_.auth->Authenticate(options_.authorization));
    CTXMEM_RETURN_IF_ERROR(request.status());
    CTXMEM_ASSIGN_OR_RETURN(inputs_,
                            ParseScoreRequest(*request, *deps_.model->tokenizer(), deps_.limits));
    LogInfo(
        absl::StrFormat("rid=%s %s tenant=%s memories=%d prompt_tokens=%d continuation_tokens=%d",
                        request_id_, options_.method, tenant_, inputs_.memory_ids.size(),
                        inputs_.prompt_ids.size(), inputs_.continuation_ids.size()));
    // Once submitted, the job may finish and delete `this`: no member use after TrySubmit.
    WorkQueue* queue = deps_.queue;
    DecoderMetrics* metrics = deps_.metrics;
    CTXMEM_RETURN_IF_ERROR(queue->TrySubmit([this] { Done(Work()); }));
    metrics->SetQueueDepth(queue->pending());
    return absl::OkStatus();
  }

  // Counts, logs, deletes `this`, then calls on_finish.
  void Done(const absl::Status& status) {
    const grpc::StatusCode code = static_cast<grpc::StatusCode>(status.code());
    deps_.endpoint->CountRequest(options_.method, code);
    if (!status.ok()) {
      LogInfo(absl::StrFormat("rid=%s %s error tenant=%s code=%s message=%s", request_id_,
                              options_.method, tenant_, StatusCodeName(code), status.message()));
    }
    std::function<void(const absl::Status&)> on_finish = std::move(on_finish_);
    delete this;
    on_finish(status);
  }

 private:
  absl::Status Work() {
    deps_.metrics->SetQueueDepth(deps_.queue->pending());
    CTXMEM_ASSIGN_OR_RETURN(
        LoadedPast loaded, deps_.loader->Load(inputs_.memory_ids, tenant_, options_.authorization));
    CTXMEM_RETURN_IF_ERROR(CheckFitsContext(
        *deps_.model, loaded.past,
        static_cast<int64_t>(inputs_.prompt_ids.size() + inputs_.continuation_ids.size()), 0,
        "prompt + continuation"));
    CTXMEM_ASSIGN_OR_RETURN(
        compress::ScoreResult score,
        compress::ScoreContinuation(deps_.model->transformer(), loaded.past, inputs_.prompt_ids,
                                    inputs_.continuation_ids));
    response_->set_n_scored(score.n_scored);
    response_->set_total_nll(score.total_nll);
    response_->set_perplexity(score.perplexity);
    for (float lp : score.token_logprobs) response_->add_token_logprobs(lp);
    v1::GenerateTimings* t = response_->mutable_timings();
    t->set_fetch_seconds(loaded.fetch_seconds);
    t->set_load_seconds(loaded.load_seconds);
    t->set_total_seconds(SecondsSince(start_));
    t->set_cache_hit(loaded.cache_hit);
    LogInfo(absl::StrFormat("rid=%s %s finished n_scored=%d ppl=%.4f fetch=%.3fs load=%.3fs",
                            request_id_, options_.method, score.n_scored, score.perplexity,
                            loaded.fetch_seconds, loaded.load_seconds));
    return absl::OkStatus();
  }

  const DecoderDeps& deps_;
  const ScoreCallOptions options_;
  const Clock::time_point start_;
  const std::string request_id_;
  v1::ScoreResponse* response_;  // borrowed, valid until on_finish
  std::function<void(const absl::Status&)> on_finish_;
  std::string tenant_;
  ScoreInputs inputs_;
};

}  // namespace

void ScoreCall::Start(const DecoderDeps& deps, ScoreCallOptions options,
                      absl::StatusOr<v1::ScoreRequest> request, v1::ScoreResponse* response,
                      std::function<void(const absl::Status&)> on_finish) {
  auto* call = new Call(deps, std::move(options), response, std::move(on_finish));
  if (absl::Status s = call->Admit(std::move(request)); !s.ok()) call->Done(s);
}

}  // namespace ctxmem::service
