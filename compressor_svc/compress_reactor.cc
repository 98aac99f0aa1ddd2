#include "compressor_svc/compress_reactor.h"

#include <absl/strings/escaping.h>
#include <absl/strings/str_cat.h>
#include <absl/strings/str_format.h>

#include <span>
#include <string>
#include <utility>
#include <vector>

#include "common/service/compress_request_parser.h"
#include "common/service/compressor_metrics.h"
#include "common/service/grpc_status.h"
#include "common/service/request_id.h"
#include "common/service/service_log.h"
#include "common/status.h"
#include "compressor_svc/compressor_service.h"

namespace ctxmem::compressor_svc {
namespace {

double SecondsSince(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

CompressReactor::CompressReactor(CompressorService* service, grpc::CallbackServerContext* context)
    : service_(service),
      context_(context),
      start_time_(std::chrono::steady_clock::now()),
      request_id_(service::NewRequestId()) {
  absl::StatusOr<std::string> tenant = service_->auth().Authenticate(*context_);
  if (!tenant.ok()) {
    FinishWith(tenant.status());
    return;
  }
  tenant_ = *std::move(tenant);
  StartRead(&request_);
}

void CompressReactor::OnReadDone(bool ok) {
  if (!ok) {  // half-close, or the call is over (then OnCancel follows or came already)
    if (cancelled() || context_->IsCancelled()) return;
    if (job_ == nullptr) {
      FinishWith(absl::InvalidArgumentError(
          "the stream ended before a CompressStart: the first message must carry `start`"));
      return;
    }
    EndOfUpload();
    return;
  }
  absl::Status status = HandleMessage();
  if (!status.ok()) {
    FinishWith(status);
    return;
  }
  StartRead(&request_);
}

absl::Status CompressReactor::HandleMessage() {
  std::vector<grpc::Slice> slices;
  if (!request_.Dump(&slices).ok()) return absl::InternalError("cannot read the request bytes");
  std::string wire;
  for (const grpc::Slice& slice : slices) {
    wire.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  CTXMEM_ASSIGN_OR_RETURN(service::CompressRequestPiece piece, service::ParseCompressRequest(wire));
  using Kind = service::CompressRequestPiece::Kind;
  if (job_ == nullptr && piece.kind != Kind::kStart) {
    return absl::InvalidArgumentError(
        "the first Compress message must be a CompressStart (`start`), before any text or ids");
  }
  switch (piece.kind) {
    case Kind::kStart:
      if (job_ != nullptr) {
        return absl::InvalidArgumentError("CompressStart sent twice; send it once, first");
      }
      return HandleStart(piece.start);
    case Kind::kText:
      if (service_->options().log_content && job_->n_text_bytes() == 0) {
        service::LogInfo(absl::StrFormat("compress request_id=%s text_preview=\"%s\"", request_id_,
                                         absl::CEscape(piece.text.substr(0, 200))));
      }
      return job_->AddText(piece.text);
    case Kind::kTokens:
      return job_->AddTokens(
          std::span<const int32_t>(piece.tokens.ids().data(), piece.tokens.ids_size()));
    default:
      return absl::InvalidArgumentError("empty CompressRequest: set start, text or tokens");
  }
}

absl::Status CompressReactor::HandleStart(const ctxmem::v1::CompressStart& start) {
  CTXMEM_ASSIGN_OR_RETURN(
      job_, service::CompressJob::Create(service_->env(), start, tenant_, request_id_));
  CTXMEM_ASSIGN_OR_RETURN(lease_, service_->limiter().Acquire(tenant_));
  CTXMEM_ASSIGN_OR_RETURN(service::AdmissionTicket ticket, service_->gate().TryAdmit());
  {
    absl::MutexLock lock(&mu_);
    ticket_ = std::move(ticket);
  }
  const service::AdmissionCounts counts = service_->gate().counts();
  service::LogInfo(
      absl::StrFormat("compress request_id=%s tenant=%s accepted config=%s label_bytes=%d queue=%d",
                      request_id_, tenant_, job_->config().canonical_json,
                      start.client_label().size(), counts.waiting + counts.running));
  ctxmem::v1::CompressEvent event;
  event.mutable_accepted()->set_request_id(request_id_);
  event.mutable_accepted()->set_queue_depth(counts.waiting + counts.running);
  Send(std::move(event));
  return absl::OkStatus();
}

void CompressReactor::EndOfUpload() {
  Ref();  // held by the job until it ends
  SetSubmitted(true);
  absl::Status status = service_->prepare_queue().TrySubmit([this] {
    if (!PrepareOnWorker()) ReleaseTicket();
    Unref();
  });
  if (!status.ok()) {
    SetSubmitted(false);
    Unref();
    FinishWith(status);
  }
}

void CompressReactor::SetSubmitted(bool submitted) {
  absl::MutexLock lock(&mu_);
  submitted_ = submitted;
}

void CompressReactor::ReleaseTicket() {
  absl::MutexLock lock(&mu_);
  ticket_.Release();
}

// The worker paths give the admission slot back before they end the call (ReleaseTicket, then
// FinishWith / SendDone), so a client that has seen its call end can be admitted again at once.

bool CompressReactor::PrepareOnWorker() {
  if (cancelled()) {
    ReleaseTicket();
    FinishWith(absl::CancelledError("cancelled before the compression started"));
    return false;
  }
  absl::StatusOr<bool> existed = job_->Prepare();
  if (!existed.ok()) {
    ReleaseTicket();
    FinishWith(existed.status());
    return false;
  }
  if (*existed) {
    service::LogInfo(
        absl::StrFormat("compress request_id=%s tenant=%s memory_id=%s existed tokens=%d",
                        request_id_, tenant_, job_->memory_id(), job_->n_tokens()));
    ReleaseTicket();
    SendDone(job_->outcome());
    return false;
  }
  queued_at_ = std::chrono::steady_clock::now();
  Ref();
  absl::Status status = service_->compute_queue().TrySubmit([this] {
    RunOnWorker();
    ReleaseTicket();
    Unref();
  });
  if (!status.ok()) {
    ReleaseTicket();
    Unref();
    FinishWith(status);
    return false;
  }
  return true;
}

void CompressReactor::RunOnWorker() {
  queue_seconds_ = SecondsSince(queued_at_);
  if (cancelled()) {
    ReleaseTicket();
    FinishWith(absl::CancelledError("cancelled while queued"));
    return;
  }
  {
    absl::MutexLock lock(&mu_);
    ticket_.MarkRunning();
  }
  service::LogInfo(absl::StrFormat(
      "compress request_id=%s tenant=%s memory_id=%s started tokens=%d queued_s=%.3f", request_id_,
      tenant_, job_->memory_id(), job_->n_tokens(), queue_seconds_));
  absl::StatusOr<service::CompressJobOutcome> outcome = job_->Run(
      [this](const ctxmem::v1::CompressProgress& progress) {
        ctxmem::v1::CompressEvent event;
        *event.mutable_progress() = progress;
        Send(std::move(event));
      },
      [this] { return cancelled(); });
  ReleaseTicket();  // the worker is done with the job (sealed or not)
  if (!outcome.ok()) {
    const std::string line = absl::StrFormat("compress request_id=%s tenant=%s stopped: %s",
                                             request_id_, tenant_, outcome.status().ToString());
    if (absl::IsCancelled(outcome.status())) {
      service::LogInfo(line);
    } else {
      service::LogWarn(line);
    }
    FinishWith(outcome.status());
    return;
  }
  if (service_->metrics() != nullptr) {
    service_->metrics()->ObserveJob(SecondsSince(start_time_), outcome->memory.compression_ratio(),
                                    outcome->memory.bytes_per_original_token());
  }
  service_->RefreshStoreGauges();
  service::LogInfo(absl::StrFormat(
      "compress request_id=%s tenant=%s memory_id=%s done tokens=%d kept=%d blob_bytes=%d "
      "ratio=%.2f compress_s=%.3f seal_s=%.3f",
      request_id_, tenant_, outcome->memory.memory_id(), outcome->memory.n_original_tokens(),
      outcome->memory.n_kept_size() > 0 ? outcome->memory.n_kept(0) : 0,
      outcome->memory.blob_bytes(), outcome->memory.compression_ratio(), outcome->compress_seconds,
      outcome->seal_seconds));
  SendDone(*outcome);
}

void CompressReactor::SendDone(const service::CompressJobOutcome& outcome) {
  ctxmem::v1::CompressEvent event;
  ctxmem::v1::CompressDone* done = event.mutable_done();
  *done->mutable_memory() = outcome.memory;
  done->set_existed(outcome.existed);
  ctxmem::v1::CompressTimings* t = done->mutable_timings();
  t->set_tokenize_seconds(outcome.tokenize_seconds);
  t->set_queue_seconds(queue_seconds_);
  t->set_compress_seconds(outcome.compress_seconds);
  t->set_seal_seconds(outcome.seal_seconds);
  t->set_total_seconds(SecondsSince(start_time_));
  Send(std::move(event));
  FinishWith(absl::OkStatus());
}

void CompressReactor::Send(ctxmem::v1::CompressEvent event) {
  {
    absl::MutexLock lock(&mu_);
    if (finish_.has_value() || write_failed_) return;
    if (event.has_progress() && !pending_.empty() && pending_.back().has_progress()) {
      pending_.back() = std::move(event);
    } else {
      pending_.push_back(std::move(event));
    }
  }
  Pump();
}

void CompressReactor::FinishWith(const absl::Status& status) {
  {
    absl::MutexLock lock(&mu_);
    if (finish_.has_value()) return;
    finish_ = service::ToGrpcStatus(status);
    // A job on the queues gives its slot back itself when its worker is done with it, so the
    // running gauge stays true while a cancelled job finishes its chunk.
    if (!submitted_) ticket_.Release();
  }
  if (!status.ok() && !absl::IsCancelled(status)) {
    service::LogInfo(absl::StrFormat("compress request_id=%s tenant=%s status=%s message=%s",
                                     request_id_, tenant_, absl::StatusCodeToString(status.code()),
                                     std::string(status.message())));
  }
  Pump();
}

void CompressReactor::Pump() {
  enum class Action { kNone, kWrite, kFinish } action = Action::kNone;
  grpc::Status finish_status;
  {
    absl::MutexLock lock(&mu_);
    if (writing_ || finish_started_) return;
    if (!pending_.empty() && !write_failed_) {
      const std::string bytes = pending_.front().SerializeAsString();
      pending_.pop_front();
      grpc::Slice slice(bytes);
      in_flight_ = grpc::ByteBuffer(&slice, 1);
      writing_ = true;
      action = Action::kWrite;
    } else if (finish_.has_value()) {
      finish_started_ = true;
      finish_status = *finish_;
      action = Action::kFinish;
    }
  }
  if (action == Action::kWrite) {
    StartWrite(&in_flight_);
  } else if (action == Action::kFinish) {
    service_->CountRequest("Compress", finish_status.error_code());
    Finish(finish_status);
  }
}

void CompressReactor::OnWriteDone(bool ok) {
  {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (!ok) {
      write_failed_ = true;  // the client is gone; drop what is queued
      pending_.clear();
    }
  }
  if (!ok) cancelled_.store(true);
  Pump();
}

void CompressReactor::OnCancel() {
  cancelled_.store(true);
  service::LogInfo(
      absl::StrFormat("compress request_id=%s tenant=%s cancelled by the client or its deadline",
                      request_id_, tenant_));
  FinishWith(absl::CancelledError("the call was cancelled"));
}

void CompressReactor::OnDone() { Unref(); }

}  // namespace ctxmem::compressor_svc
