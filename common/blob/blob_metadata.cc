#include "common/blob/blob_metadata.h"

#include <limits>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status.h"
#include "nlohmann/json.hpp"

namespace ctxmem::blob {
namespace {

struct QuantizationEntry {
  BlobQuantization quantization;
  std::string_view name;
};

constexpr QuantizationEntry kQuantizations[] = {
    {BlobQuantization::kNone, "none"},
    {BlobQuantization::kInt8PerChannel, "int8_per_channel"},
    {BlobQuantization::kKiviInt8, "kivi_int8"},
    {BlobQuantization::kKiviInt4, "kivi_int4"},
};

bool IsFloatDtype(weights::StDtype dtype) {
  return dtype == weights::StDtype::kF32 || dtype == weights::StDtype::kF16 ||
         dtype == weights::StDtype::kBF16;
}

// Strict non-negative decimal: digits only, no sign or spaces, fits in int64.
bool ParseCount(absl::string_view text, int64_t* out) {
  if (text.empty() || text.size() > 19) return false;
  int64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    const int digit = c - '0';
    if (value > (std::numeric_limits<int64_t>::max() - digit) / 10) return false;
    value = value * 10 + digit;
  }
  *out = value;
  return true;
}

absl::Status Missing(absl::string_view key) {
  return absl::DataLossError(absl::StrCat("blob metadata has no '", key, "' entry"));
}

absl::Status Malformed(absl::string_view key, absl::string_view value, absl::string_view want) {
  return absl::DataLossError(
      absl::StrCat("blob metadata '", key, "' = '", value.substr(0, 200), "' is not ", want));
}

std::string LayerName(int64_t layer, absl::string_view part) {
  return absl::StrCat("layers.", layer, ".", part);
}

}  // namespace

absl::StatusOr<BlobQuantization> ParseBlobQuantization(std::string_view name) {
  for (const QuantizationEntry& e : kQuantizations) {
    if (e.name == name) return e.quantization;
  }
  std::vector<absl::string_view> known;
  for (const QuantizationEntry& e : kQuantizations) known.push_back(AsAbsl(e.name));
  return absl::InvalidArgumentError(absl::StrCat("unknown blob quantization '", AsAbsl(name),
                                                 "' (known: ", absl::StrJoin(known, ", "), ")"));
}

std::string_view BlobQuantizationName(BlobQuantization quantization) {
  for (const QuantizationEntry& e : kQuantizations) {
    if (e.quantization == quantization) return e.name;
  }
  return kQuantizations[0].name;  // unreachable: every enumerator is in the table
}

bool IsKivi(BlobQuantization quantization) {
  return quantization == BlobQuantization::kKiviInt8 || quantization == BlobQuantization::kKiviInt4;
}

absl::Status BlobMetadata::Validate() const {
  if (format_version < kMinBlobFormatVersion || format_version > kBlobFormatVersion) {
    return absl::InvalidArgumentError(
        absl::StrCat("format_version=", format_version, " is not supported (this build writes ",
                     kMinBlobFormatVersion, "..", kBlobFormatVersion, ")"));
  }
  if (IsKivi(quantization) && format_version < 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("quantization=", AsAbsl(BlobQuantizationName(quantization)),
                     " needs format_version >= 2, not ", format_version));
  }
  if (IsKivi(quantization) != (kv_group_size > 0) || kv_group_size < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "kv_group_size=", kv_group_size, " must be >= 1 with a KIVI quantization and 0 without"));
  }
  if (!append_state.empty()) {
    const nlohmann::json state = nlohmann::json::parse(append_state, nullptr, false);
    if (state.is_discarded() || !state.is_object()) {
      return absl::InvalidArgumentError(
          absl::StrCat("append_state is not a JSON object: '", append_state.substr(0, 200), "'"));
    }
  }
  if (model_fingerprint.empty()) {
    return absl::InvalidArgumentError("model_fingerprint is empty");
  }
  const nlohmann::json config = nlohmann::json::parse(compression_config, nullptr, false);
  if (config.is_discarded() || !config.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat("compression_config is not a JSON object: '",
                                                   compression_config.substr(0, 200), "'"));
  }
  if (n_original_tokens < 0 || n_sinks < 0) {
    return absl::InvalidArgumentError(absl::StrCat("n_original_tokens=", n_original_tokens,
                                                   " and n_sinks=", n_sinks, " must be >= 0"));
  }
  if (n_layers() > kMaxBlobLayers) {
    return absl::InvalidArgumentError(
        absl::StrCat("n_layers=", n_layers(), " exceeds the limit ", kMaxBlobLayers));
  }
  for (int64_t i = 0; i < n_layers(); ++i) {
    if (n_kept[i] < 0 || n_kept[i] < n_sinks) {
      return absl::InvalidArgumentError(
          absl::StrCat("n_kept[", i, "]=", n_kept[i], " must be >= 0 and >= n_sinks=", n_sinks));
    }
  }
  const bool int8 = quantization == BlobQuantization::kInt8PerChannel;
  const bool fits = int8                   ? kv_dtype == weights::StDtype::kI8
                    : IsKivi(quantization) ? kv_dtype == weights::StDtype::kU8
                                           : IsFloatDtype(kv_dtype);
  if (!fits) {
    return absl::InvalidArgumentError(
        absl::StrCat("kv_dtype=", AsAbsl(weights::StDtypeName(kv_dtype)),
                     " does not fit quantization=", AsAbsl(BlobQuantizationName(quantization)),
                     " (none: F32/F16/BF16; int8_per_channel: I8; kivi_int8, kivi_int4: U8)"));
  }
  if (created_unix_ms < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("created_unix_ms=", created_unix_ms, " must be >= 0"));
  }
  for (const auto& [key, value] : extra) {
    if (absl::StartsWith(key, kReservedKeyPrefix) || key.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "extra metadata key '", key, "' is empty or uses the reserved prefix 'ctxmem.'"));
    }
  }
  return absl::OkStatus();
}

bool operator==(const BlobMetadata& a, const BlobMetadata& b) {
  return a.format_version == b.format_version && a.memory_id == b.memory_id &&
         a.model_fingerprint == b.model_fingerprint &&
         a.tokenizer_fingerprint == b.tokenizer_fingerprint &&
         a.compression_config == b.compression_config &&
         a.n_original_tokens == b.n_original_tokens && a.n_sinks == b.n_sinks &&
         a.n_kept == b.n_kept && a.kv_dtype == b.kv_dtype && a.quantization == b.quantization &&
         a.created_unix_ms == b.created_unix_ms && a.kv_group_size == b.kv_group_size &&
         a.append_state == b.append_state && a.fused_entries == b.fused_entries &&
         a.extra == b.extra;
}

MetadataEntries ToMetadataEntries(const BlobMetadata& m) {
  MetadataEntries entries = {
      {std::string(kKeyMagic), std::string(kBlobMagic)},
      {std::string(kKeyHeaderSha256), std::string(64, '0')},
      {std::string(kKeyDataSha256), std::string(64, '0')},
      {std::string(kKeyFormatVersion), absl::StrCat(m.format_version)},
      {std::string(kKeyMemoryId), m.memory_id},
      {std::string(kKeyModelFingerprint), m.model_fingerprint},
      {std::string(kKeyTokenizerFingerprint), m.tokenizer_fingerprint},
      {std::string(kKeyCompressionConfig), m.compression_config},
      {std::string(kKeyNOriginalTokens), absl::StrCat(m.n_original_tokens)},
      {std::string(kKeyNSinks), absl::StrCat(m.n_sinks)},
      {std::string(kKeyNKept), absl::StrCat("[", absl::StrJoin(m.n_kept, ","), "]")},
      {std::string(kKeyKvDtype), std::string(weights::StDtypeName(m.kv_dtype))},
      {std::string(kKeyQuantization), std::string(BlobQuantizationName(m.quantization))},
      {std::string(kKeyCreatedUnixMs), absl::StrCat(m.created_unix_ms)},
  };
  if (m.kv_group_size > 0) {
    entries.emplace_back(std::string(kKeyKvGroupSize), absl::StrCat(m.kv_group_size));
  }
  if (!m.append_state.empty()) entries.emplace_back(std::string(kKeyAppendState), m.append_state);
  if (m.fused_entries) entries.emplace_back(std::string(kKeyEntries), "fused");
  for (const auto& [key, value] : m.extra) entries.emplace_back(key, value);
  return entries;
}

absl::StatusOr<BlobMetadata> ParseBlobMetadata(const std::map<std::string, std::string>& entries) {
  auto get = [&entries](absl::string_view key) -> const std::string* {
    auto it = entries.find(std::string(key));
    return it == entries.end() ? nullptr : &it->second;
  };
  auto get_count = [&get](absl::string_view key, int64_t* out) -> absl::Status {
    const std::string* value = get(key);
    if (value == nullptr) return Missing(key);
    if (!ParseCount(*value, out)) return Malformed(key, *value, "a non-negative decimal integer");
    return absl::OkStatus();
  };

  BlobMetadata m;
  const std::string* magic = get(kKeyMagic);
  if (magic == nullptr || *magic != kBlobMagic) {
    return absl::DataLossError(
        absl::StrCat("not a ctxmem memory blob: '", kKeyMagic, "' is not '", kBlobMagic, "'"));
  }
  CTXMEM_RETURN_IF_ERROR(get_count(kKeyFormatVersion, &m.format_version));
  if (m.format_version < kMinBlobFormatVersion || m.format_version > kBlobFormatVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        "blob format version ", m.format_version, " is not supported (this build reads ",
        kMinBlobFormatVersion, "..", kBlobFormatVersion, ")"));
  }
  const std::string* model = get(kKeyModelFingerprint);
  const std::string* tokenizer = get(kKeyTokenizerFingerprint);
  const std::string* config = get(kKeyCompressionConfig);
  const std::string* memory_id = get(kKeyMemoryId);
  if (model == nullptr) return Missing(kKeyModelFingerprint);
  if (tokenizer == nullptr) return Missing(kKeyTokenizerFingerprint);
  if (config == nullptr) return Missing(kKeyCompressionConfig);
  if (memory_id == nullptr) return Missing(kKeyMemoryId);
  m.model_fingerprint = *model;
  m.tokenizer_fingerprint = *tokenizer;
  m.compression_config = *config;
  m.memory_id = *memory_id;
  for (auto [key, out] :
       {std::pair{kKeyNOriginalTokens, &m.n_original_tokens}, std::pair{kKeyNSinks, &m.n_sinks},
        std::pair{kKeyCreatedUnixMs, &m.created_unix_ms}}) {
    CTXMEM_RETURN_IF_ERROR(get_count(key, out));
  }

  const std::string* n_kept = get(kKeyNKept);
  if (n_kept == nullptr) return Missing(kKeyNKept);
  const nlohmann::json kept = nlohmann::json::parse(*n_kept, nullptr, false);
  if (kept.is_discarded() || !kept.is_array() ||
      kept.size() > static_cast<size_t>(kMaxBlobLayers)) {
    return Malformed(kKeyNKept, *n_kept,
                     absl::StrCat("a JSON array of at most ", kMaxBlobLayers, " counts"));
  }
  for (const nlohmann::json& count : kept) {
    if (!count.is_number_unsigned() ||
        count.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return Malformed(kKeyNKept, *n_kept, "an array of non-negative integers");
    }
    m.n_kept.push_back(static_cast<int64_t>(count.get<uint64_t>()));
  }

  const std::string* kv_dtype = get(kKeyKvDtype);
  if (kv_dtype == nullptr) return Missing(kKeyKvDtype);
  absl::StatusOr<weights::StDtype> dtype = weights::ParseStDtype(*kv_dtype);
  if (!dtype.ok()) return Malformed(kKeyKvDtype, *kv_dtype, "a safetensors dtype name");
  m.kv_dtype = *dtype;
  const std::string* quantization = get(kKeyQuantization);
  if (quantization == nullptr) return Missing(kKeyQuantization);
  absl::StatusOr<BlobQuantization> q = ParseBlobQuantization(*quantization);
  if (!q.ok()) {
    return Malformed(kKeyQuantization, *quantization,
                     "'none', 'int8_per_channel', 'kivi_int8' or 'kivi_int4'");
  }
  m.quantization = *q;
  if (get(kKeyKvGroupSize) != nullptr) {
    CTXMEM_RETURN_IF_ERROR(get_count(kKeyKvGroupSize, &m.kv_group_size));
  }
  if (const std::string* state = get(kKeyAppendState); state != nullptr) m.append_state = *state;
  if (const std::string* e = get(kKeyEntries); e != nullptr) {
    if (*e != "fused") return Malformed(kKeyEntries, *e, "'fused'");
    m.fused_entries = true;
  }

  for (const auto& [key, value] : entries) {
    if (!absl::StartsWith(key, kReservedKeyPrefix)) m.extra.emplace(key, value);
  }
  const absl::Status status = m.Validate();
  if (!status.ok()) {
    return absl::DataLossError(absl::StrCat("blob metadata is inconsistent: ", status.message()));
  }
  return m;
}

std::string KeyTensorName(int64_t layer) { return LayerName(layer, "k"); }
std::string ValueTensorName(int64_t layer) { return LayerName(layer, "v"); }
std::string SrcTensorName(int64_t layer) { return LayerName(layer, "src"); }
std::string KeyScaleTensorName(int64_t layer) { return LayerName(layer, "k_scale"); }
std::string ValueScaleTensorName(int64_t layer) { return LayerName(layer, "v_scale"); }
std::string KeyZeroTensorName(int64_t layer) { return LayerName(layer, "k_zero"); }
std::string ValueZeroTensorName(int64_t layer) { return LayerName(layer, "v_zero"); }
std::string RankTensorName(int64_t layer) { return LayerName(layer, "rank"); }
std::string HiddenTensorName(int64_t layer, std::string_view what) {
  return absl::StrCat("hidden.", layer, ".", AsAbsl(what));
}

}  // namespace ctxmem::blob
