#include "common/service/memory_info_proto.h"

#include <absl/strings/str_cat.h>

#include <map>
#include <nlohmann/json.hpp>

#include "common/blob/memory_blob.h"
#include "common/blob/safetensors_writer.h"
#include "common/status.h"

namespace ctxmem::service {

ctxmem::v1::MemoryInfo MemoryInfoFromMetadata(const blob::BlobMetadata& m, uint64_t blob_bytes) {
  ctxmem::v1::MemoryInfo info;
  info.set_memory_id(m.memory_id);
  info.set_n_original_tokens(m.n_original_tokens);
  for (int64_t n : m.n_kept) info.add_n_kept(n);
  info.set_blob_bytes(blob_bytes);
  info.set_bytes_per_original_token(
      m.n_original_tokens > 0 ? static_cast<double>(blob_bytes) / m.n_original_tokens : 0.0);
  info.set_compression_ratio(!m.n_kept.empty() && m.n_kept[0] > 0
                                 ? static_cast<double>(m.n_original_tokens) / m.n_kept[0]
                                 : 0.0);
  info.set_compression_config_json(m.compression_config);
  info.set_model_fingerprint(m.model_fingerprint);
  info.set_tokenizer_fingerprint(m.tokenizer_fingerprint);
  info.set_format_version(m.format_version);
  info.set_created_unix_ms(m.created_unix_ms);
  info.set_fused_entries(m.fused_entries);
  auto it = m.extra.find(kClientLabelKey);
  if (it != m.extra.end()) info.set_client_label(it->second);
  return info;
}

absl::StatusOr<blob::BlobMetadata> ReadBlobMetadataUnverified(const blob::BlobStore& store,
                                                              const std::string& id,
                                                              const std::string& tenant) {
  CTXMEM_ASSIGN_OR_RETURN(std::string bytes, store.ReadHeader(id, tenant));
  const std::string path = absl::StrCat("blob '", id, "'");
  if (bytes.size() < 8) return absl::DataLossError(absl::StrCat(path, " has no header"));
  const std::string header = bytes.substr(8);
  if (header.compare(0, blob::kBlobHeaderPrefix.size(), std::string(blob::kBlobHeaderPrefix)) !=
      0) {
    return absl::DataLossError(absl::StrCat(path, " does not start like a memory blob"));
  }
  nlohmann::json json = nlohmann::json::parse(header, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object() || !json.contains("__metadata__") ||
      !json["__metadata__"].is_object()) {
    return absl::DataLossError(absl::StrCat(path, " has no readable metadata"));
  }
  std::map<std::string, std::string> entries;
  for (auto it = json["__metadata__"].begin(); it != json["__metadata__"].end(); ++it) {
    if (!it.value().is_string()) {
      return absl::DataLossError(absl::StrCat(path, " metadata ", it.key(), " is not a string"));
    }
    entries[it.key()] = it.value().get<std::string>();
  }
  return blob::ParseBlobMetadata(entries);
}

}  // namespace ctxmem::service
