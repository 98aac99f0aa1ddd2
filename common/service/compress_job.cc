#include "common/service/compress_job.h"

#include <absl/strings/str_cat.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <utility>

#include "common/blob/blob_id.h"
#include "common/blob/file_blob_store.h"
#include "common/blob/memory_blob.h"
#include "common/compress/compressor.h"
#include "common/compress/token_source.h"
#include "common/model/model.h"
#include "common/service/compressor_metrics.h"
#include "common/service/memory_info_proto.h"
#include "common/status.h"
#include "common/tokenizer/tokenizer.h"
#include "common/tokenizer/utf8.h"
#include "nlohmann/json.hpp"

namespace ctxmem::service {
namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

int64_t NowUnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

absl::Status TooManyTokens(int64_t n, int64_t limit) {
  return absl::ResourceExhaustedError(absl::StrCat("context has ", n, " tokens, over the limit of ",
                                                   limit, " (--max-context-tokens)"));
}

}  // namespace

absl::StatusOr<std::unique_ptr<CompressJob>> CompressJob::Create(
    const CompressJobEnv& env, const ctxmem::v1::CompressStart& start, std::string tenant,
    std::string request_id) {
  CTXMEM_ASSIGN_OR_RETURN(ResolvedCompressionConfig config,
                          ResolveCompressionConfig(start.config(), env.config_limits));
  std::optional<blob::BlobHandle> base;
  if (!start.base_memory_id().empty()) {
    if (!blob::IsMemoryId(start.base_memory_id())) {
      return absl::InvalidArgumentError(absl::StrCat(
          "base_memory_id '", start.base_memory_id().substr(0, 80), "' is not a memory id"));
    }
    if (start.add_bos()) {
      return absl::InvalidArgumentError(
          "add_bos with base_memory_id: an append continues a "
          "stream, a BOS token in its middle is not wanted");
    }
    CTXMEM_ASSIGN_OR_RETURN(blob::BlobHandle handle,
                            env.store->Get(start.base_memory_id(), tenant));
    if (handle.info().metadata.model_fingerprint != env.identity.model_fingerprint) {
      return absl::FailedPreconditionError(
          absl::StrCat("base memory ", start.base_memory_id(), " was made with model ",
                       handle.info().metadata.model_fingerprint, ", this server runs ",
                       env.identity.model_fingerprint));
    }
    CTXMEM_ASSIGN_OR_RETURN(ResolvedCompressionConfig base_config,
                            ResolveStoredCompressionConfig(
                                handle.info().metadata.compression_config, env.config_limits));
    if (start.has_config() && start.config().ByteSizeLong() > 0 &&
        config.canonical_json != base_config.canonical_json) {
      return absl::InvalidArgumentError(
          absl::StrCat("config differs from the base memory's (leave it unset to use the base's): ",
                       config.canonical_json, " vs ", base_config.canonical_json));
    }
    config = std::move(base_config);
    base = std::move(handle);
  }
  if (start.client_label().size() > kMaxClientLabelBytes) {
    return absl::InvalidArgumentError(absl::StrCat("client_label has ", start.client_label().size(),
                                                   " bytes; the limit is ", kMaxClientLabelBytes));
  }
  if (const int64_t bad = tokenizer::FindInvalidUtf8(start.client_label()); bad >= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("client_label is not valid UTF-8 at byte offset ", bad));
  }
  if (start.expected_tokens() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("expected_tokens=", start.expected_tokens(), " must be >= 0 (0 = unknown)"));
  }
  if (start.expected_tokens() > env.max_context_tokens) {
    return TooManyTokens(start.expected_tokens(), env.max_context_tokens);
  }
  std::unique_ptr<CompressJob> job(
      new CompressJob(env, std::move(config), std::move(tenant), std::move(request_id)));
  job->client_label_ = start.client_label();
  job->add_bos_ = start.add_bos();
  job->base_memory_id_ = start.base_memory_id();
  job->base_ = std::move(base);
  return job;
}

absl::Status CompressJob::AddText(absl::string_view piece) {
  if (kind_ == InputKind::kTokens) {
    return absl::InvalidArgumentError(
        "a text piece after token ids: send the context as text or as ids, not both");
  }
  kind_ = InputKind::kText;
  if (text_.size() + piece.size() > static_cast<size_t>(env_.max_text_bytes)) {
    return absl::ResourceExhaustedError(
        absl::StrCat("context text is over ", env_.max_text_bytes,
                     " bytes (the server allows 16 bytes per token of --max-context-tokens=",
                     env_.max_context_tokens, ")"));
  }
  text_.append(piece.data(), piece.size());
  // Validate what is complete; a character split across pieces waits for the next piece.
  const std::string_view rest(text_.data() + text_validated_, text_.size() - text_validated_);
  const size_t tail = tokenizer::IncompleteUtf8TailLength(rest);
  const int64_t bad = tokenizer::FindInvalidUtf8(rest.substr(0, rest.size() - tail));
  if (bad >= 0) {
    const size_t offset = text_validated_ + static_cast<size_t>(bad);
    return absl::InvalidArgumentError(
        absl::StrCat("context text is not valid UTF-8 at byte offset ", offset, " (byte 0x",
                     absl::Hex(static_cast<uint8_t>(text_[offset]), absl::kZeroPad2), ")"));
  }
  text_validated_ = text_.size() - tail;
  return absl::OkStatus();
}

absl::Status CompressJob::AddTokens(std::span<const int32_t> ids) {
  if (kind_ == InputKind::kText) {
    return absl::InvalidArgumentError(
        "token ids after a text piece: send the context as text or as ids, not both");
  }
  kind_ = InputKind::kTokens;
  if (static_cast<int64_t>(tokens_.size() + ids.size()) > env_.max_context_tokens) {
    return TooManyTokens(static_cast<int64_t>(tokens_.size() + ids.size()),
                         env_.max_context_tokens);
  }
  const int64_t n_vocab = env_.model->config().n_vocab;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= n_vocab) {
      return absl::InvalidArgumentError(absl::StrCat("token id ", ids[i], " at index ",
                                                     tokens_.size() + i, " is outside [0, ",
                                                     n_vocab, ") of the server's tokenizer"));
    }
  }
  tokens_.insert(tokens_.end(), ids.begin(), ids.end());
  return absl::OkStatus();
}

absl::StatusOr<bool> CompressJob::Prepare() {
  if (kind_ == InputKind::kText) {
    if (text_validated_ != text_.size()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "context text ends inside a UTF-8 character at byte offset ", text_validated_));
    }
    const tokenizer::Tokenizer* tok = env_.model->tokenizer();
    if (tok == nullptr) {
      return absl::FailedPreconditionError(
          "the server's model has no tokenizer; send token ids instead of text");
    }
    const auto start = Clock::now();
    tokenizer::EncodeOptions options;
    options.parse_special = false;  // a document's text is data, not chat control tokens
    CTXMEM_ASSIGN_OR_RETURN(tokens_, tok->Encode(text_, options));
    if (add_bos_ && tok->bos_id() >= 0) tokens_.insert(tokens_.begin(), tok->bos_id());
    outcome_.tokenize_seconds = SecondsSince(start);
    std::string().swap(text_);  // the text is not needed any more
  }
  if (tokens_.empty()) {
    return absl::InvalidArgumentError(
        "the context is empty: send at least one non-empty text piece or token id");
  }
  if (n_tokens() > env_.max_context_tokens) {
    return TooManyTokens(n_tokens(), env_.max_context_tokens);
  }
  // An append's id also hashes its base's id: the same tokens appended to two bases (or
  // compressed from nothing) are different memories.
  std::string id_config = config_.canonical_json;
  if (!base_memory_id_.empty()) {
    nlohmann::json j = nlohmann::json::parse(config_.canonical_json);
    j["base_memory_id"] = base_memory_id_;
    CTXMEM_ASSIGN_OR_RETURN(id_config, blob::CanonicalJson(j.dump()));
  }
  CTXMEM_ASSIGN_OR_RETURN(
      blob::MemoryIdBuilder builder,
      blob::MemoryIdBuilder::Create(tenant_, env_.identity.model_fingerprint, id_config));
  CTXMEM_RETURN_IF_ERROR(builder.AddTokens(tokens_));
  CTXMEM_ASSIGN_OR_RETURN(memory_id_, builder.Finish());

  absl::StatusOr<blob::BlobHandle> existing = env_.store->Get(memory_id_, tenant_);
  if (existing.ok()) {
    outcome_.memory = MemoryInfoFromMetadata(existing->info().metadata, existing->info().n_bytes);
    outcome_.existed = true;
    return true;
  }
  // NotFound: compute it. DataLoss: the store quarantined a corrupt copy; compute it again.
  if (!absl::IsNotFound(existing.status()) && !absl::IsDataLoss(existing.status())) {
    return existing.status();
  }
  return false;
}

absl::StatusOr<CompressJobOutcome> CompressJob::Run(
    const std::function<void(const ctxmem::v1::CompressProgress&)>& on_progress,
    const std::function<bool()>& should_stop) {
  if (memory_id_.empty()) return absl::FailedPreconditionError("CompressJob::Run before Prepare");
  auto start = Clock::now();
  auto last_chunk = start;
  absl::StatusOr<compress::ResumableMemory> base_memory = absl::UnknownError("no base");
  if (base_.has_value()) {
    base_memory = compress::DecodeResumableMemory(base_->bytes(), base_->info().metadata,
                                                  env_.model->transformer());
    if (!base_memory.ok()) return WithContext(base_memory.status(), "base memory");
  }
  const int64_t n_base_tokens = base_.has_value() ? base_memory->memory.n_tokens : 0;
  int64_t last_tokens = n_base_tokens;
  compress::CompressHooks hooks;
  hooks.should_stop = should_stop;
  hooks.on_progress = [&](const compress::CompressProgress& p) {
    if (env_.metrics != nullptr) {
      env_.metrics->ObserveChunkSeconds(SecondsSince(last_chunk));
      env_.metrics->AddTokens(p.n_tokens_done - last_tokens);
    }
    last_chunk = Clock::now();
    last_tokens = p.n_tokens_done;
    if (on_progress) {
      ctxmem::v1::CompressProgress event;
      event.set_tokens_read(p.n_tokens_done - n_base_tokens);
      event.set_tokens_total(n_tokens());
      event.set_chunks_done(p.step);
      event.set_memory_len(p.memory_len);
      on_progress(event);
    }
  };
  compress::SpanTokenSource source(tokens_);
  CTXMEM_ASSIGN_OR_RETURN(
      compress::CompressResult result,
      base_.has_value()
          ? compress::CompressAppend(env_.model->transformer(), source, config_.config,
                                     *base_memory, hooks)
          : compress::Compress(env_.model->transformer(), source, config_.config, hooks));
  base_memory = absl::UnknownError("consumed");  // free the base's tensors
  outcome_.compress_seconds = SecondsSince(start);
  if (should_stop && should_stop()) {
    return absl::CancelledError("compression cancelled before its blob was sealed");
  }

  start = Clock::now();
  blob::BlobMetadata base;
  base.memory_id = memory_id_;
  base.model_fingerprint = env_.identity.model_fingerprint;
  base.tokenizer_fingerprint = env_.identity.tokenizer_fingerprint;
  base.compression_config = config_.canonical_json;
  base.created_unix_ms = NowUnixMs();
  if (!client_label_.empty()) base.extra[kClientLabelKey] = client_label_;
  if (!base_memory_id_.empty()) base.extra[kBaseMemoryIdKey] = base_memory_id_;
  CTXMEM_ASSIGN_OR_RETURN(
      compress::EncodedMemory encoded,
      compress::EncodeMemory(result.memory, config_.kv_format, std::move(base), &result.state));
  result = compress::CompressResult();  // free the engine's copy before sealing
  const std::string staging =
      absl::StrCat(env_.store->staging_dir(), "/", memory_id_, ".", request_id_, ".safetensors");
  absl::StatusOr<blob::PutResult> put = [&]() -> absl::StatusOr<blob::PutResult> {
    CTXMEM_RETURN_IF_ERROR(
        blob::SealBlobToFile(encoded.tensors, encoded.metadata, staging).status());
    if (should_stop && should_stop()) {
      return absl::CancelledError("compression cancelled before its blob was stored");
    }
    return env_.store->PutFile(memory_id_, tenant_, staging);
  }();
  if (!put.ok()) {
    std::error_code ec;
    std::filesystem::remove(staging, ec);  // PutFile leaves the file to us on failure
    return put.status();
  }
  outcome_.seal_seconds = SecondsSince(start);
  outcome_.memory = MemoryInfoFromMetadata(encoded.metadata, put->n_bytes);
  outcome_.existed = false;
  return outcome_;
}

}  // namespace ctxmem::service
