#include "common/service/generate_call.h"

#include <chrono>
#include <string_view>
#include <utility>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/model/generator.h"
#include "common/service/decode_batcher.h"
#include "common/service/request_id.h"
#include "common/service/service_log.h"
#include "common/status.h"

namespace ctxmem::service {
namespace {

using Clock = std::chrono::steady_clock;

// Payload marking a capacity refusal (IsOverloaded); gRPC drops payloads, the code stays.
constexpr absl::string_view kOverloadedPayload = "type.ctxmem.dev/overloaded";

absl::Status Overloaded(absl::Status status) {
  status.SetPayload(kOverloadedPayload, absl::Cord("1"));
  return status;
}

double SecondsSince(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

std::string PromptText(const v1::GenerateRequest& request) {
  if (request.has_chat()) {
    std::string text;
    for (const auto& m : request.chat().messages())
      absl::StrAppend(&text, m.role(), ": ", m.content(), " | ");
    return text;
  }
  return request.prompt();
}

// One call. Created by Start, deleted by Finish (its last act before handing the status to the
// sink). Once the job is queued only the worker touches it.
class Call {
 public:
  Call(const DecoderDeps& deps, GenerateCallOptions options, GenerateSink sink)
      : deps_(deps),
        options_(std::move(options)),
        sink_(std::move(sink)),
        start_(Clock::now()),
        request_id_(options_.request_id.empty() ? NewRequestId() : options_.request_id) {
    deps_.metrics->AddActiveStreams(1);
  }

  // Admits and queues; on error the caller finishes the call.
  absl::Status Admit(absl::StatusOr<v1::GenerateRequest> request) {
    CTXMEM_ASSIGN_OR_RETURN(tenant_, deps_.auth->Authenticate(options_.authorization));
    CTXMEM_RETURN_IF_ERROR(request.status());
    CTXMEM_ASSIGN_OR_RETURN(
        inputs_, ParseGenerateRequest(*request, *deps_.model->tokenizer(), deps_.limits));
    absl::StatusOr<StreamLease> lease = deps_.limiter->Acquire(tenant_);
    if (!lease.ok()) return Overloaded(lease.status());
    lease_ = *std::move(lease);
    LogInfo(absl::StrFormat("rid=%s %s tenant=%s memories=%d prompt_tokens=%d max_tokens=%d%s%s",
                            request_id_, options_.method, tenant_, inputs_.memory_ids.size(),
                            inputs_.prompt_ids.size(), inputs_.options.max_new_tokens,
                            deps_.log_content ? " prompt=" : "",
                            deps_.log_content ? PromptText(*request) : ""));
    // Once submitted, the job may finish the call and delete `this` at any moment: nothing
    // after TrySubmit touches a member.
    WorkQueue* queue = deps_.queue;
    DecoderMetrics* metrics = deps_.metrics;
    if (absl::Status s = queue->TrySubmit([this] { Run(); }); !s.ok()) return Overloaded(s);
    metrics->SetQueueDepth(queue->pending());
    return absl::OkStatus();
  }

  // Counts, logs, deletes `this`, then hands `status` to the sink.
  void Finish(const absl::Status& status) {
    const grpc::StatusCode code = static_cast<grpc::StatusCode>(status.code());
    if (!status.ok()) {
      LogInfo(absl::StrFormat("rid=%s %s error tenant=%s code=%s message=%s", request_id_,
                              options_.method, tenant_, StatusCodeName(code), status.message()));
    }
    deps_.endpoint->CountRequest(options_.method, code);
    deps_.metrics->AddActiveStreams(-1);
    LogInfo(absl::StrFormat("rid=%s %s done code=%s tenant=%s seconds=%.3f", request_id_,
                            options_.method, StatusCodeName(code), tenant_, SecondsSince(start_)));
    std::function<void(const absl::Status&)> on_finish = std::move(sink_.on_finish);
    delete this;  // releases the stream lease
    on_finish(status);
  }

 private:
  bool cancelled() const {
    return options_.cancelled != nullptr && options_.cancelled->load(std::memory_order_relaxed);
  }

  // On a worker: loads the memories, then generates here or hands the stream to the batcher,
  // whose thread then owns the call (and finishes it).
  void Run() {
    deps_.metrics->SetQueueDepth(deps_.queue->pending());
    absl::Status status = cancelled() ? absl::CancelledError("cancelled while queued") : Load();
    if (status.ok() && deps_.batcher != nullptr) {
      BatchStream stream;
      stream.prompt = inputs_.prompt_ids;
      stream.options = inputs_.options;
      stream.past = std::move(loaded_.past);
      stream.on_token = [this](int32_t id, std::string_view delta) { return OnToken(id, delta); };
      stream.cancelled = [this] { return cancelled(); };
      stream.on_done = [this](absl::StatusOr<model::GenerateResult> result) {
        Complete(std::move(result));
      };
      status = deps_.batcher->Submit(std::move(stream));
      if (status.ok()) return;  // the batcher finishes the call
      status = Overloaded(status);
    } else if (status.ok()) {
      return Complete(model::Generate(
          *deps_.model, inputs_.prompt_ids, &loaded_.past, inputs_.options,
          [this](int32_t id, std::string_view delta) { return OnToken(id, delta); }));
    }
    if (!status.ok() && cancelled()) status = absl::CancelledError("cancelled by the client");
    Finish(status);
  }

  absl::Status Load() {
    CTXMEM_ASSIGN_OR_RETURN(
        loaded_, deps_.loader->Load(inputs_.memory_ids, tenant_, options_.authorization));
    if (cancelled()) return absl::CancelledError("cancelled by the client");
    return CheckFitsContext(*deps_.model, loaded_.past,
                            static_cast<int64_t>(inputs_.prompt_ids.size()), 0, "prompt");
  }

  // Streams one token; false once the client has cancelled.
  bool OnToken(int32_t id, std::string_view delta) {
    if (!first_token_seen_) {
      ttft_ = SecondsSince(start_);
      first_token_seen_ = true;
    }
    v1::GenerateEvent event;
    event.mutable_delta()->set_text(std::string(delta));
    event.mutable_delta()->add_token_ids(id);
    sink_.on_event(std::move(event));
    return !cancelled();
  }

  // The generation's outcome -> the done event, the log line and the final status.
  void Complete(absl::StatusOr<model::GenerateResult> generated) {
    absl::Status status = Done(std::move(generated));
    if (!status.ok() && cancelled()) status = absl::CancelledError("cancelled by the client");
    Finish(status);  // the last use of `this`
  }

  absl::Status Done(absl::StatusOr<model::GenerateResult> generated) {
    CTXMEM_RETURN_IF_ERROR(generated.status());
    const model::GenerateResult& result = *generated;
    const LoadedPast& loaded = loaded_;
    const double ttft = ttft_;
    const bool from_memory = !inputs_.memory_ids.empty();
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
    LogInfo(absl::StrFormat(
        "rid=%s %s finished stop=%s prompt_tokens=%d memory_entries=%d generated=%d "
        "fetch=%.3fs load=%.3fs ttft=%.3fs decode=%.1ftok/s cache_hit=%v%s%s",
        request_id_, options_.method, done->stop_reason(), result.n_prompt_tokens,
        loaded.memory_entries, result.ids.size(), loaded.fetch_seconds, loaded.load_seconds, ttft,
        result.decode_tokens_per_second(), loaded.cache_hit, deps_.log_content ? " answer=" : "",
        deps_.log_content ? result.text : ""));
    sink_.on_event(std::move(event));
    return absl::OkStatus();
  }

  const DecoderDeps& deps_;
  const GenerateCallOptions options_;
  GenerateSink sink_;
  const Clock::time_point start_;
  const std::string request_id_;
  std::string tenant_;
  GenerateInputs inputs_;
  LoadedPast loaded_;  // the past moves to the batcher; the counts and timings stay
  double ttft_ = 0;
  bool first_token_seen_ = false;
  StreamLease lease_;  // released when the call is deleted
};

}  // namespace

void GenerateCall::Start(const DecoderDeps& deps, GenerateCallOptions options,
                         absl::StatusOr<v1::GenerateRequest> request, GenerateSink sink) {
  auto* call = new Call(deps, std::move(options), std::move(sink));
  if (absl::Status s = call->Admit(std::move(request)); !s.ok()) call->Finish(s);
}

bool IsOverloaded(const absl::Status& status) {
  return absl::IsResourceExhausted(status) && status.GetPayload(kOverloadedPayload).has_value();
}

absl::Status CheckFitsContext(const model::Model& model, const model::KvCache& past,
                              int64_t n_tokens, int64_t reserve, absl::string_view what) {
  const int64_t limit = model.config().max_positions;
  if (limit > 0 && past.next_position + n_tokens + reserve > limit) {
    return absl::ResourceExhaustedError(
        absl::StrCat(what, " of ", n_tokens, " tokens after memories taking ", past.next_position,
                     " positions", reserve > 0 ? absl::StrCat(" (+", reserve, " to generate)") : "",
                     " does not fit the model's context of ", limit, " positions"));
  }
  return absl::OkStatus();
}

}  // namespace ctxmem::service
