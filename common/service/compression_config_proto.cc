#include "common/service/compression_config_proto.h"

#include <absl/strings/str_cat.h>

#include "common/blob/blob_id.h"
#include "common/compress/config_json.h"
#include "common/compress/memory_codec.h"
#include "common/status.h"

namespace ctxmem::service {
namespace {

absl::Status Field(absl::string_view field, const absl::Status& status) {
  return WithContext(status, absl::StrCat("config.", field));
}

}  // namespace

absl::StatusOr<ResolvedCompressionConfig> ResolveCompressionConfig(
    const ctxmem::v1::CompressionConfig& p, const CompressionLimits& limits) {
  if (!p.model().empty() && p.model() != limits.model_name) {
    return absl::FailedPreconditionError(
        absl::StrCat("config.model '", p.model(),
                     "' is not served here; this server compresses "
                     "with '",
                     limits.model_name, "' (leave config.model empty to use it)"));
  }
  ResolvedCompressionConfig out;
  compress::CompressionConfig& c = out.config;
  if (!p.pruner().empty()) c.pruner = p.pruner();
  if (!p.memory_type().empty()) {
    absl::StatusOr<compress::MemoryTypeChoice> type = compress::ParseMemoryType(p.memory_type());
    if (!type.ok()) return Field("memory_type", type.status());
    c.memory_type = type->type;
    c.decremental_chunk = type->decremental_chunk;
  }
  if (p.chunk_size() != 0) c.chunk_size = p.chunk_size();
  if (p.has_memory_size()) c.memory_size = p.memory_size();
  if (!p.schedule().empty()) {
    absl::StatusOr<compress::Schedule> schedule = compress::ParseSchedule(p.schedule());
    if (!schedule.ok()) return Field("schedule", schedule.status());
    c.schedule = *schedule;
  }
  if (p.has_n_sink_tokens()) c.n_sink_tokens = p.n_sink_tokens();
  if (!p.position_mode().empty()) {
    absl::StatusOr<compress::PositionMode> mode = compress::ParsePositionMode(p.position_mode());
    if (!mode.ok()) return Field("position_mode", mode.status());
    c.position_mode = *mode;
  }
  if (!p.score_mode().empty()) {
    absl::StatusOr<compress::ScoreMode> mode = compress::ParseScoreMode(p.score_mode());
    if (!mode.ok()) return Field("score_mode", mode.status());
    c.score_mode = *mode;
  }
  if (p.score_window() != 0) c.score_window = p.score_window();
  if (p.conv_kernel_size() != 0) c.conv_kernel_size = p.conv_kernel_size();
  c.double_compress_size = p.double_compress_size();
  c.seed = p.seed();
  c.expected_length = 0;
  absl::StatusOr<weights::StDtype> dtype = compress::ParseKvDtype(p.kv_dtype());
  if (!dtype.ok()) return Field("kv_dtype", dtype.status());
  out.kv_dtype = *dtype;

  CTXMEM_RETURN_IF_ERROR(WithContext(c.Validate(), "config"));
  if (c.memory_size == 0 && c.n_sink_tokens == 0) {
    return absl::InvalidArgumentError(
        "config: memory_size=0 keeps nothing unless n_sink_tokens > 0");
  }
  if (c.chunk_size > limits.max_chunk_size) {
    return absl::InvalidArgumentError(absl::StrCat("config: chunk_size=", c.chunk_size,
                                                   " is over this server's limit of ",
                                                   limits.max_chunk_size));
  }
  if (c.memory_size > limits.max_memory_size) {
    return absl::InvalidArgumentError(absl::StrCat("config: memory_size=", c.memory_size,
                                                   " is over this server's limit of ",
                                                   limits.max_memory_size));
  }
  // In slot mode the model reads sinks + memory + one chunk at positions 0.. : that must fit
  // the window the model was trained for.
  const int64_t window = c.n_sink_tokens + c.memory_size + c.chunk_size;
  if (c.position_mode == compress::PositionMode::kSlots && limits.max_positions > 0 &&
      window > limits.max_positions) {
    return absl::InvalidArgumentError(
        absl::StrCat("config: n_sink_tokens=", c.n_sink_tokens, " + memory_size=", c.memory_size,
                     " + chunk_size=", c.chunk_size, " = ", window,
                     " positions do not fit the model's window of ", limits.max_positions,
                     "; lower memory_size or chunk_size"));
  }
  nlohmann::json json = compress::CompressionConfigToJson(c);
  json["kv_dtype"] = compress::KvDtypeName(out.kv_dtype);
  CTXMEM_ASSIGN_OR_RETURN(out.canonical_json, blob::CanonicalJson(json.dump()));
  return out;
}

}  // namespace ctxmem::service
