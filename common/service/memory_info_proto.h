#pragma once
// The API's MemoryInfo from a blob's metadata, and a cheap read of a stored blob's metadata
// (header only, no checksum verification) for StatMemory and ListMemories.
// Thread-safety: free functions.

#include <absl/status/statusor.h>

#include <cstdint>
#include <string>

#include "common/blob/blob_metadata.h"
#include "ctxmem/v1/memory.pb.h"

namespace ctxmem::service {

inline constexpr char kClientLabelKey[] = "x.client_label";  // BlobMetadata::extra key
// The memory an appended memory continues (incremental append), kept with it for people.
inline constexpr char kBaseMemoryIdKey[] = "x.base_memory_id";

// Every MemoryInfo field from the metadata and the blob's size (client_label from extra).
ctxmem::v1::MemoryInfo MemoryInfoFromMetadata(const blob::BlobMetadata& metadata,
                                              uint64_t blob_bytes);

// Reads the header of the blob file at `path` and parses its metadata without verifying the
// checksums (GetMemory and the decoder verify). NotFound for a missing file; DataLoss for a
// file whose header is not a memory blob header.
absl::StatusOr<blob::BlobMetadata> ReadBlobMetadataUnverified(const std::string& path);

}  // namespace ctxmem::service
