#pragma once
// The API's MemoryInfo from a blob's metadata, and a cheap read of a stored blob's metadata
// (header only, no checksum verification) for StatMemory and ListMemories.
// Thread-safety: free functions.

#include <absl/status/statusor.h>

#include <cstdint>
#include <string>

#include "common/blob/blob_metadata.h"
#include "common/blob/blob_store.h"
#include "ctxmem/v1/memory.pb.h"

namespace ctxmem::service {

inline constexpr char kClientLabelKey[] = "x.client_label";  // BlobMetadata::extra key
// The memory an appended memory continues (incremental append), kept with it for people.
inline constexpr char kBaseMemoryIdKey[] = "x.base_memory_id";

// Every MemoryInfo field from the metadata and the blob's size (client_label from extra).
ctxmem::v1::MemoryInfo MemoryInfoFromMetadata(const blob::BlobMetadata& metadata,
                                              uint64_t blob_bytes);

// Reads the header of the tenant's blob `id` (BlobStore::ReadHeader) and parses its metadata
// without verifying the checksums (GetMemory and the decoder verify). NotFound for a missing
// blob; DataLoss for a blob whose header is not a memory blob header; store errors pass.
absl::StatusOr<blob::BlobMetadata> ReadBlobMetadataUnverified(const blob::BlobStore& store,
                                                              const std::string& id,
                                                              const std::string& tenant);

}  // namespace ctxmem::service
