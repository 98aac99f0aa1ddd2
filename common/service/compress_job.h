#pragma once
// CompressJob: one Compress request from its first message to its sealed blob, without any
// gRPC: collects the uploaded context (text or token ids) under the server's limits, tokenizes
// it, derives the memory id (tenant, model, canonical config, tokens), answers at once when
// that memory exists for the tenant, and otherwise compresses, seals the memory into the
// store's staging directory and moves it into the store. Nothing half-written is ever visible:
// a cancelled, failed or killed job leaves at most a staging file the store sweeps at start.
// Thread-safety: not thread-safe; one thread at a time (the upload, then a worker). The
// should_stop callback given to Run() may be flipped from any thread.

#include <absl/status/statusor.h>
#include <absl/strings/string_view.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/blob/blob_store.h"
#include "common/compress/memory_codec.h"
#include "common/service/compression_config_proto.h"
#include "ctxmem/v1/compressor.pb.h"

namespace ctxmem::model {
class Model;
}

namespace ctxmem::service {

class CompressorMetrics;

inline constexpr size_t kMaxClientLabelBytes = 256;

// What every job of a server shares; borrowed pointers must outlive the jobs.
struct CompressJobEnv {
  const model::Model* model = nullptr;
  compress::ModelIdentity identity;
  blob::BlobStore* store = nullptr;
  CompressorMetrics* metrics = nullptr;  // null = no metrics
  CompressionLimits config_limits;
  int64_t max_context_tokens = 131072;   // tokens after tokenization (or ids sent)
  int64_t max_text_bytes = 131072 * 16;  // text bytes uploaded, checked as they arrive
};

struct CompressJobOutcome {
  ctxmem::v1::MemoryInfo memory;
  bool existed = false;
  double tokenize_seconds = 0;
  double compress_seconds = 0;
  double seal_seconds = 0;
};

class CompressJob {
 public:
  // Checks the start message: the config (InvalidArgument / FailedPrecondition as
  // ResolveCompressionConfig), the client label (<= 256 bytes of UTF-8), expected_tokens
  // (ResourceExhausted when above max_context_tokens, InvalidArgument when negative). With a
  // base_memory_id (incremental append) the base is looked up and pinned now: NotFound when
  // the tenant has no such memory, InvalidArgument for a malformed id, add_bos, or a config
  // that differs from the base's (the job uses the base's config).
  static absl::StatusOr<std::unique_ptr<CompressJob>> Create(const CompressJobEnv& env,
                                                             const ctxmem::v1::CompressStart& start,
                                                             std::string tenant,
                                                             std::string request_id);

  // A piece of the context. Text pieces may split UTF-8 characters; the text is validated as
  // it arrives (InvalidArgument naming the byte offset of the first invalid byte).
  // InvalidArgument when a call mixes text and token ids, for ids outside [0, n_vocab);
  // ResourceExhausted past max_text_bytes or max_context_tokens.
  absl::Status AddText(absl::string_view piece);
  absl::Status AddTokens(std::span<const int32_t> ids);

  // After the upload: tokenizes the text, checks the context is non-empty and within
  // max_context_tokens, computes the memory id and looks for it in the store. Returns true
  // when the tenant already has this memory (outcome() is then complete and Run() must not be
  // called).
  absl::StatusOr<bool> Prepare();

  // Compresses, seals and stores. `on_progress` gets an event after every chunk (may be
  // empty); `should_stop` is asked between chunks and before the blob is stored: true ends the
  // job with Cancelled and no blob. Errors of the engine or the store pass through.
  absl::StatusOr<CompressJobOutcome> Run(
      const std::function<void(const ctxmem::v1::CompressProgress&)>& on_progress,
      const std::function<bool()>& should_stop);

  const CompressJobOutcome& outcome() const { return outcome_; }
  const std::string& memory_id() const { return memory_id_; }  // "" before Prepare()
  const std::string& tenant() const { return tenant_; }
  const std::string& request_id() const { return request_id_; }
  int64_t n_tokens() const { return static_cast<int64_t>(tokens_.size()); }
  int64_t n_text_bytes() const { return static_cast<int64_t>(text_.size()); }
  const ResolvedCompressionConfig& config() const { return config_; }

 private:
  enum class InputKind { kNone, kText, kTokens };

  CompressJob(const CompressJobEnv& env, ResolvedCompressionConfig config, std::string tenant,
              std::string request_id)
      : env_(env),
        config_(std::move(config)),
        tenant_(std::move(tenant)),
        request_id_(std::move(request_id)) {}

  const CompressJobEnv env_;  // a copy: its pointers are borrowed
  const ResolvedCompressionConfig config_;
  const std::string tenant_;
  const std::string request_id_;
  std::string client_label_;
  bool add_bos_ = false;
  std::string base_memory_id_;            // "" = not an append
  std::optional<blob::BlobHandle> base_;  // pinned base blob of an append

  InputKind kind_ = InputKind::kNone;
  std::string text_;           // uploaded text (kText)
  size_t text_validated_ = 0;  // text_[0, text_validated_) is valid UTF-8 ending on a boundary
  std::vector<int32_t> tokens_;
  std::string memory_id_;
  CompressJobOutcome outcome_;
};

}  // namespace ctxmem::service
