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
  if (!p.rcc_bridge().empty()) c.rcc_bridge = p.rcc_bridge();
  if (p.rcc_window() != 0) c.rcc_window = p.rcc_window();
  if (p.rcc_rate() != 0) c.rcc_rate = p.rcc_rate();
  if (c.pruner != "rcc" && (!p.rcc_bridge().empty() || p.rcc_window() != 0 || p.rcc_rate() != 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("config: rcc_bridge/rcc_window/rcc_rate are read by pruner=rcc only, got "
                     "pruner=",
                     c.pruner));
  }
  absl::StatusOr<compress::KvDtype> dtype = compress::ParseKvDtypeName(p.kv_dtype());
  if (!dtype.ok()) return Field("kv_dtype", dtype.status());
  out.kv_format.dtype = *dtype;
  if (p.kv_group_size() != 0) {
    if (!out.kv_format.quantized()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "config: kv_group_size=", p.kv_group_size(), " needs kv_dtype int8 or int4, not ",
          std::string(compress::KvDtypeLabel(out.kv_format.dtype))));
    }
    out.kv_format.group_size = p.kv_group_size();
  }
  CTXMEM_RETURN_IF_ERROR(WithContext(out.kv_format.Validate(), "config"));

  CTXMEM_RETURN_IF_ERROR(WithContext(c.Validate(), "config"));
  if (c.memory_size == 0 && c.n_sink_tokens == 0) {
    return absl::InvalidArgumentError(
        "config: memory_size=0 keeps nothing unless n_sink_tokens > 0");
  }
  if (c.pruner == "rcc" && (c.rcc_window > limits.max_chunk_size ||
                            (limits.max_positions > 0 && c.rcc_window > limits.max_positions))) {
    return absl::InvalidArgumentError(
        absl::StrCat("config: rcc_window=", c.rcc_window, " is over this server's chunk limit of ",
                     limits.max_chunk_size, " or the model's window of ", limits.max_positions));
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
  json["kv_dtype"] = std::string(compress::KvDtypeLabel(out.kv_format.dtype));
  // Only for quantized formats, so the ids of float memories stay as they were.
  if (out.kv_format.quantized()) json["kv_group_size"] = out.kv_format.group_size;
  CTXMEM_ASSIGN_OR_RETURN(out.canonical_json, blob::CanonicalJson(json.dump()));
  return out;
}

absl::StatusOr<ResolvedCompressionConfig> ResolveStoredCompressionConfig(
    const std::string& canonical_json, const CompressionLimits& limits) {
  const nlohmann::json j = nlohmann::json::parse(canonical_json, nullptr, false);
  const auto bad = [&](absl::string_view why) {
    return absl::DataLossError(
        absl::StrCat("stored compression config ", why, ": ", canonical_json.substr(0, 300)));
  };
  if (j.is_discarded() || !j.is_object()) return bad("is not a JSON object");
  ctxmem::v1::CompressionConfig p;
  try {
    p.set_pruner(j.at("pruner").get<std::string>());
    p.set_memory_type(j.at("memory_type").get<std::string>());
    p.set_chunk_size(j.at("chunk_size").get<int64_t>());
    p.set_memory_size(j.at("memory_size").get<int64_t>());
    p.set_schedule(j.at("schedule").get<std::string>());
    p.set_n_sink_tokens(j.at("n_sink_tokens").get<int64_t>());
    p.set_position_mode(j.at("position_mode").get<std::string>());
    p.set_score_mode(j.at("score_mode").get<std::string>());
    p.set_score_window(j.at("score_window").get<int64_t>());
    p.set_conv_kernel_size(j.at("conv_kernel_size").get<int64_t>());
    p.set_double_compress_size(j.at("double_compress_size").get<int64_t>());
    p.set_seed(j.at("seed").get<uint64_t>());
    p.set_kv_dtype(j.at("kv_dtype").get<std::string>());
    if (j.contains("kv_group_size")) p.set_kv_group_size(j.at("kv_group_size").get<int64_t>());
    if (j.contains("rcc_bridge")) {
      p.set_rcc_bridge(j.at("rcc_bridge").get<std::string>());
      p.set_rcc_window(j.at("rcc_window").get<int64_t>());
      p.set_rcc_rate(j.at("rcc_rate").get<int64_t>());
    }
  } catch (const nlohmann::json::exception& e) {
    return bad(absl::StrCat("lacks a field: ", e.what()));
  }
  CTXMEM_ASSIGN_OR_RETURN(ResolvedCompressionConfig out, ResolveCompressionConfig(p, limits));
  if (out.canonical_json != canonical_json) {
    return bad(
        absl::StrCat("does not resolve to itself (got ", out.canonical_json.substr(0, 300), ")"));
  }
  return out;
}

}  // namespace ctxmem::service
