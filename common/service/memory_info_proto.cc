#include "common/service/memory_info_proto.h"

#include <absl/strings/str_cat.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>

#include "common/blob/memory_blob.h"
#include "common/blob/safetensors_writer.h"

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
  auto it = m.extra.find(kClientLabelKey);
  if (it != m.extra.end()) info.set_client_label(it->second);
  return info;
}

absl::StatusOr<blob::BlobMetadata> ReadBlobMetadataUnverified(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    std::string message = absl::StrCat("cannot open ", path, ": ", std::strerror(err));
    if (err == ENOENT) return absl::NotFoundError(message);
    return absl::InternalError(message);
  }
  struct stat st = {};
  std::string header;
  absl::Status status = absl::OkStatus();
  uint8_t length[8];
  if (fstat(fd, &st) != 0 || pread(fd, length, 8, 0) != 8) {
    status = absl::DataLossError(absl::StrCat(path, " is not a memory blob (no header length)"));
  } else {
    uint64_t n = 0;
    for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(length[i]) << (8 * i);
    if (n > blob::SafetensorsLayout::kMaxHeaderBytes || n + 8 > static_cast<uint64_t>(st.st_size)) {
      status = absl::DataLossError(
          absl::StrCat(path, " has a header length of ", n, " bytes, past its size ", st.st_size));
    } else {
      header.resize(n);
      if (pread(fd, header.data(), n, 8) != static_cast<ssize_t>(n)) {
        status = absl::DataLossError(absl::StrCat("cannot read the header of ", path));
      }
    }
  }
  close(fd);
  if (!status.ok()) return status;
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
