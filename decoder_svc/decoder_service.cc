#include "decoder_svc/decoder_service.h"

#include <atomic>
#include <chrono>
#include <deque>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "common/compress/memory_scorer.h"
#include "common/model/generator.h"
#include "common/service/grpc_status.h"
#include "common/service/raw_message.h"
#include "common/service/raw_write_reactor.h"
#include "common/service/request_id.h"
#include "common/service/service_log.h"
#include "common/status.h"

namespace ctxmem::decoder {
namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// The caller's "authorization" header, forwarded to the compressor ("" when absent).
std::string AuthorizationOf(const grpc::CallbackServerContext& context) {
  auto it = context.client_metadata().find("authorization");
  if (it == context.client_metadata().end()) return "";
  return std::string(it->second.data(), it->second.size());
}

// ResourceExhausted when the prompt (plus `reserve` tokens to generate/score after it) cannot
// follow the past inside the model's context window.
absl::Status CheckFits(const model::Model& model, const model::KvCache& past, int64_t n_tokens,
                       int64_t reserve, absl::string_view what) {
  const int64_t limit = model.config().max_positions;
  if (limit > 0 && past.next_position + n_tokens + reserve > limit) {
    return absl::ResourceExhaustedError(
        absl::StrCat(what, " of ", n_tokens, " tokens after memories taking ", past.next_position,
                     " positions", reserve > 0 ? absl::StrCat(" (+", reserve, " to generate)") : "",
                     " does not fit the model's context of ", limit, " positions"));
  }
  return absl::OkStatus();
}

// One Generate call. Lives from the handler until OnDone (which deletes it). The job on the
// work queue holds `this` until it posts the final status, and Finish is only called after that,
// so OnDone cannot run while the job still uses the reactor.
class GenerateReactor final : public service::RawWriteReactor<v1::GenerateEvent> {
 public:
  GenerateReactor(const DecoderServiceDeps& deps, grpc::CallbackServerContext* context,
                  const grpc::ByteBuffer& raw_request)
      : deps_(deps), start_(Clock::now()), request_id_(service::NewRequestId()) {
    deps_.metrics->AddActiveStreams(1);
    if (absl::Status s = Admit(*context, raw_request); !s.ok()) PostFinish(s);
  }

  void OnWriteDone(bool ok) override {
    const v1::GenerateEvent* next = nullptr;
    bool finish_now = false;
    {
      absl::MutexLock lock(&mu_);
      pending_.pop_front();
      if (!ok) {  // the client is gone: nothing more will be written
        broken_ = true;
        cancelled_ = true;
        pending_.clear();
      }
      if (!pending_.empty()) {
        next = &pending_.front();
      } else {
        writing_ = false;
        finish_now = finishing_ && !finished_;
        if (finish_now) finished_ = true;
      }
    }
    if (next != nullptr) {
      StartWrite(next);
    } else if (finish_now) {
      Finish(final_status_);
    }
  }

  void OnCancel() override { cancelled_ = true; }

  void OnDone() override {
    const grpc::StatusCode code = final_status_.error_code();
    deps_.endpoint->CountRequest("Generate", code);
    deps_.metrics->AddActiveStreams(-1);
    service::LogInfo(absl::StrFormat("rid=%s Generate done code=%s tenant=%s seconds=%.3f",
                                     request_id_, service::StatusCodeName(code), tenant_,
                                     SecondsSince(start_)));
    delete this;
  }

 private:
  absl::Status Admit(const grpc::CallbackServerContext& context,
                     const grpc::ByteBuffer& raw_request) {
    CTXMEM_ASSIGN_OR_RETURN(tenant_, deps_.auth->Authenticate(context));
    CTXMEM_ASSIGN_OR_RETURN(const v1::GenerateRequest request,
                            service::ParseRawRequest<v1::GenerateRequest>(raw_request));
    authorization_ = AuthorizationOf(context);
    CTXMEM_ASSIGN_OR_RETURN(
        inputs_, service::ParseGenerateRequest(request, *deps_.model->tokenizer(), deps_.limits));
    CTXMEM_ASSIGN_OR_RETURN(lease_, deps_.limiter->Acquire(tenant_));
    service::LogInfo(
        absl::StrFormat("rid=%s Generate tenant=%s memories=%d prompt_tokens=%d max_tokens=%d%s%s",
                        request_id_, tenant_, inputs_.memory_ids.size(), inputs_.prompt_ids.size(),
                        inputs_.options.max_new_tokens, deps_.log_content ? " prompt=" : "",
                        deps_.log_content ? PromptText(request) : ""));
    // Once submitted, the job may finish the call and OnDone delete `this` at any moment:
    // nothing after TrySubmit touches a member.
    service::WorkQueue* queue = deps_.queue;
    service::DecoderMetrics* metrics = deps_.metrics;
    CTXMEM_RETURN_IF_ERROR(queue->TrySubmit([this] { Run(); }));
    metrics->SetQueueDepth(queue->pending());
    return absl::OkStatus();
  }

  static std::string PromptText(const v1::GenerateRequest& request) {
    if (request.has_chat()) {
      std::string text;
      for (const auto& m : request.chat().messages())
        absl::StrAppend(&text, m.role(), ": ", m.content(), " | ");
      return text;
    }
    return request.prompt();
  }

  // On a worker.
  void Run() {
    deps_.metrics->SetQueueDepth(deps_.queue->pending());
    absl::Status status = cancelled_ ? absl::CancelledError("cancelled while queued") : Work();
    if (!status.ok() && cancelled_) status = absl::CancelledError("cancelled by the client");
    PostFinish(status);  // the last use of `this` by the job
  }

  absl::Status Work() {
    CTXMEM_ASSIGN_OR_RETURN(service::LoadedPast loaded,
                            deps_.loader->Load(inputs_.memory_ids, tenant_, authorization_));
    if (cancelled_) return absl::CancelledError("cancelled by the client");
    CTXMEM_RETURN_IF_ERROR(CheckFits(*deps_.model, loaded.past,
                                     static_cast<int64_t>(inputs_.prompt_ids.size()), 0, "prompt"));
    const bool from_memory = !inputs_.memory_ids.empty();
    double ttft = 0;
    bool first = true;
    const auto on_token = [&](int32_t id, std::string_view delta) {
      if (first) {
        ttft = SecondsSince(start_);
        first = false;
      }
      v1::GenerateEvent event;
      event.mutable_delta()->set_text(std::string(delta));
      event.mutable_delta()->add_token_ids(id);
      PostEvent(std::move(event));
      return !cancelled_.load();
    };
    CTXMEM_ASSIGN_OR_RETURN(
        model::GenerateResult result,
        model::Generate(*deps_.model, inputs_.prompt_ids, &loaded.past, inputs_.options, on_token));
    if (result.stop_reason == model::StopReason::kCancelled) {
      return absl::CancelledError("cancelled by the client");
    }
    if (!result.ids.empty()) deps_.metrics->ObserveTtft(from_memory, ttft);
    deps_.metrics->ObserveGeneration(static_cast<int64_t>(result.ids.size()),
                                     result.decode_tokens_per_second());
    v1::GenerateEvent event;
    v1::GenerateDone* done = event.mutable_done();
    done->set_text(result.text);
    done->set_stop_reason(std::string(model::StopReasonName(result.stop_reason)));
    done->mutable_usage()->set_prompt_tokens(result.n_prompt_tokens);
    done->mutable_usage()->set_memory_entries(loaded.memory_entries);
    done->mutable_usage()->set_generated_tokens(static_cast<int64_t>(result.ids.size()));
    v1::GenerateTimings* t = done->mutable_timings();
    t->set_fetch_seconds(loaded.fetch_seconds);
    t->set_load_seconds(loaded.load_seconds);
    t->set_ttft_seconds(ttft);
    t->set_total_seconds(SecondsSince(start_));
    t->set_cache_hit(loaded.cache_hit);
    done->set_request_id(request_id_);
    service::LogInfo(absl::StrFormat(
        "rid=%s Generate finished stop=%s prompt_tokens=%d memory_entries=%d generated=%d "
        "fetch=%.3fs load=%.3fs ttft=%.3fs decode=%.1ftok/s cache_hit=%v%s%s",
        request_id_, done->stop_reason(), result.n_prompt_tokens, loaded.memory_entries,
        result.ids.size(), loaded.fetch_seconds, loaded.load_seconds, ttft,
        result.decode_tokens_per_second(), loaded.cache_hit, deps_.log_content ? " answer=" : "",
        deps_.log_content ? result.text : ""));
    PostEvent(std::move(event));
    return absl::OkStatus();
  }

  void PostEvent(v1::GenerateEvent event) {
    const v1::GenerateEvent* to_write = nullptr;
    {
      absl::MutexLock lock(&mu_);
      if (broken_ || finishing_) return;
      pending_.push_back(std::move(event));  // deque: references to elements stay valid
      if (!writing_) {
        writing_ = true;
        to_write = &pending_.front();
      }
    }
    if (to_write != nullptr) StartWrite(to_write);
  }

  void PostFinish(const absl::Status& status) {
    if (!status.ok()) {
      service::LogInfo(absl::StrFormat("rid=%s Generate error tenant=%s code=%s message=%s",
                                       request_id_, tenant_,
                                       absl::StatusCodeToString(status.code()), status.message()));
    }
    bool finish_now = false;
    {
      absl::MutexLock lock(&mu_);
      if (finishing_) return;
      finishing_ = true;
      final_status_ = service::ToGrpcStatus(status);
      finish_now = !writing_;
      if (finish_now) finished_ = true;
    }
    if (finish_now) Finish(final_status_);
  }

  const DecoderServiceDeps& deps_;
  const Clock::time_point start_;
  const std::string request_id_;
  std::string tenant_;
  std::string authorization_;
  service::GenerateInputs inputs_;
  service::StreamLease lease_;  // released when the reactor is deleted
  std::atomic<bool> cancelled_{false};

  absl::Mutex mu_;
  std::deque<v1::GenerateEvent> pending_ ABSL_GUARDED_BY(mu_);  // front = being written
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
  bool finishing_ ABSL_GUARDED_BY(mu_) = false;  // the final status is set
  bool finished_ ABSL_GUARDED_BY(mu_) = false;   // Finish was called
  grpc::Status final_status_;                    // written once before finishing_ is set
};

// One Score call: validated in the handler, computed on a worker, finished from there.
class ScoreCall {
 public:
  // Admits the call and queues its work, or finishes it with the error at once.
  static void Start(const DecoderServiceDeps& deps, grpc::CallbackServerContext* context,
                    grpc::ServerUnaryReactor* reactor, const grpc::ByteBuffer& raw_request,
                    grpc::ByteBuffer* raw_response) {
    auto* call = new ScoreCall(deps, reactor, raw_response);
    if (absl::Status s = call->Admit(*context, raw_request); !s.ok()) call->Done(s);
  }

 private:
  ScoreCall(const DecoderServiceDeps& deps, grpc::ServerUnaryReactor* reactor,
            grpc::ByteBuffer* raw_response)
      : deps_(deps),
        start_(Clock::now()),
        request_id_(service::NewRequestId()),
        reactor_(reactor),
        raw_response_(raw_response),
        response_(&response_message_) {}

  absl::Status Admit(const grpc::CallbackServerContext& context,
                     const grpc::ByteBuffer& raw_request) {
    CTXMEM_ASSIGN_OR_RETURN(tenant_, deps_.auth->Authenticate(context));
    CTXMEM_ASSIGN_OR_RETURN(const v1::ScoreRequest request,
                            service::ParseRawRequest<v1::ScoreRequest>(raw_request));
    authorization_ = AuthorizationOf(context);
    CTXMEM_ASSIGN_OR_RETURN(
        inputs_, service::ParseScoreRequest(request, *deps_.model->tokenizer(), deps_.limits));
    service::LogInfo(absl::StrFormat(
        "rid=%s Score tenant=%s memories=%d prompt_tokens=%d continuation_tokens=%d", request_id_,
        tenant_, inputs_.memory_ids.size(), inputs_.prompt_ids.size(),
        inputs_.continuation_ids.size()));
    // Once submitted, the job may finish and delete `this`: no member use after TrySubmit.
    service::WorkQueue* queue = deps_.queue;
    service::DecoderMetrics* metrics = deps_.metrics;
    CTXMEM_RETURN_IF_ERROR(queue->TrySubmit([this] { Done(Work()); }));
    metrics->SetQueueDepth(queue->pending());
    return absl::OkStatus();
  }

  absl::Status Work() {
    deps_.metrics->SetQueueDepth(deps_.queue->pending());
    CTXMEM_ASSIGN_OR_RETURN(service::LoadedPast loaded,
                            deps_.loader->Load(inputs_.memory_ids, tenant_, authorization_));
    CTXMEM_RETURN_IF_ERROR(
        CheckFits(*deps_.model, loaded.past,
                  static_cast<int64_t>(inputs_.prompt_ids.size() + inputs_.continuation_ids.size()),
                  0, "prompt + continuation"));
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
    service::LogInfo(absl::StrFormat(
        "rid=%s Score finished n_scored=%d ppl=%.4f fetch=%.3fs load=%.3fs", request_id_,
        score.n_scored, score.perplexity, loaded.fetch_seconds, loaded.load_seconds));
    return absl::OkStatus();
  }

  // Finishes the call and deletes this object (its last use).
  void Done(absl::Status status) {
    if (status.ok()) status = service::SerializeRawMessage(response_message_, raw_response_);
    const grpc::Status g = service::ToGrpcStatus(status);
    deps_.endpoint->CountRequest("Score", g.error_code());
    if (!status.ok()) {
      service::LogInfo(absl::StrFormat("rid=%s Score error tenant=%s code=%s message=%s",
                                       request_id_, tenant_,
                                       service::StatusCodeName(g.error_code()), status.message()));
    }
    grpc::ServerUnaryReactor* reactor = reactor_;
    delete this;
    reactor->Finish(g);
  }

  const DecoderServiceDeps& deps_;
  const Clock::time_point start_;
  const std::string request_id_;
  grpc::ServerUnaryReactor* reactor_;  // owned by gRPC
  grpc::ByteBuffer* raw_response_;     // owned by gRPC, valid until Finish
  v1::ScoreResponse response_message_;
  v1::ScoreResponse* response_;  // = &response_message_
  std::string tenant_;
  std::string authorization_;
  service::ScoreInputs inputs_;
};

}  // namespace

grpc::ServerWriteReactor<grpc::ByteBuffer>* DecoderService::Generate(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request) {
  return new GenerateReactor(deps_, context, *request);
}

grpc::ServerUnaryReactor* DecoderService::Score(grpc::CallbackServerContext* context,
                                                const grpc::ByteBuffer* raw_request,
                                                grpc::ByteBuffer* raw_response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  ScoreCall::Start(deps_, context, reactor, *raw_request, raw_response);
  return reactor;
}

}  // namespace ctxmem::decoder
