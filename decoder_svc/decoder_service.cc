#include "decoder_svc/decoder_service.h"

#include <atomic>
#include <deque>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/service/generate_call.h"
#include "common/service/grpc_status.h"
#include "common/service/raw_message.h"
#include "common/service/raw_write_reactor.h"
#include "common/service/score_call.h"

namespace ctxmem::decoder {
namespace {

// The caller's "authorization" header, forwarded to the compressor ("" when absent).
std::string AuthorizationOf(const grpc::CallbackServerContext& context) {
  auto it = context.client_metadata().find("authorization");
  if (it == context.client_metadata().end()) return "";
  return std::string(it->second.data(), it->second.size());
}

// One Generate call's gRPC side: writes the GenerateCall's events one at a time and finishes
// with its status. Lives from the handler until OnDone (which deletes it). The call uses the
// reactor until it posts the final status, and Finish is only called after that, so OnDone
// cannot run while the call still uses it.
class GenerateReactor final : public service::RawWriteReactor<v1::GenerateEvent> {
 public:
  GenerateReactor(const DecoderServiceDeps& deps, grpc::CallbackServerContext* context,
                  const grpc::ByteBuffer& raw_request) {
    service::GenerateCallOptions options;
    options.authorization = AuthorizationOf(*context);
    options.cancelled = &cancelled_;
    service::GenerateCall::Start(
        deps, std::move(options), service::ParseRawRequest<v1::GenerateRequest>(raw_request),
        {.on_event = [this](v1::GenerateEvent event) { PostEvent(std::move(event)); },
         .on_finish = [this](const absl::Status& status) { PostFinish(status); }});
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

  void OnDone() override { delete this; }

 private:
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

  std::atomic<bool> cancelled_{false};
  absl::Mutex mu_;
  std::deque<v1::GenerateEvent> pending_ ABSL_GUARDED_BY(mu_);  // front = being written
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
  bool finishing_ ABSL_GUARDED_BY(mu_) = false;  // the final status is set
  bool finished_ ABSL_GUARDED_BY(mu_) = false;   // Finish was called
  grpc::Status final_status_;                    // written once before finishing_ is set
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
  service::ScoreCallOptions options;
  options.authorization = AuthorizationOf(*context);
  // The typed response lives until on_finish, which serializes it into the raw one.
  auto* response = new v1::ScoreResponse();
  service::ScoreCall::Start(deps_, std::move(options),
                            service::ParseRawRequest<v1::ScoreRequest>(*raw_request), response,
                            [reactor, response, raw_response](const absl::Status& status) {
                              service::FinishRawUnary(reactor, status, *response, raw_response);
                              delete response;
                            });
  return reactor;
}

}  // namespace ctxmem::decoder
