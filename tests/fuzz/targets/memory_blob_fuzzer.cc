// Memory blob decode (common/blob/memory_blob: VerifyBlob, MemoryBlob::Open) and the
// MemoryInfo the compressor's StatMemory makes of its metadata
// (common/service/memory_info_proto). Random bytes rarely get past the two SHA-256 checksums,
// so when the first input byte is odd the target first fixes both checksums in place (as a
// writer would have computed them) and the parser behind them is what gets explored.
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/blob/blob_metadata.h"
#include "common/blob/memory_blob.h"
#include "common/blob/sha256.h"
#include "common/service/memory_info_proto.h"
#include "tests/fuzz/targets/fuzz_util.h"

namespace {

using namespace ctxmem::blob;

// Writes the checksums a sealer would have written, when the layout has room for them.
void FixChecksums(std::string* bytes) {
  if (bytes->size() < kDataShaOffset + 64) return;
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i)
    n |= static_cast<uint64_t>(static_cast<uint8_t>((*bytes)[i])) << 8 * i;
  if (n > bytes->size() - 8 || 8 + n < kDataShaOffset + 64) return;
  bytes->replace(8, kBlobHeaderPrefix.size(), std::string(kBlobHeaderPrefix));
  bytes->replace(kHeaderShaOffset + 64, kBlobHeaderInfix.size(), std::string(kBlobHeaderInfix));
  auto data_sha = Sha256Hex(absl::string_view(*bytes).substr(8 + n));
  if (!data_sha.ok()) return;
  bytes->replace(kDataShaOffset, 64, *data_sha);
  bytes->replace(kHeaderShaOffset, 64, std::string(64, '0'));
  auto header_sha = Sha256Hex(absl::string_view(*bytes).substr(0, 8 + n));
  if (!header_sha.ok()) return;
  bytes->replace(kHeaderShaOffset, 64, *header_sha);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] & 1) FixChecksums(&bytes);
  absl::StatusOr<BlobInfo> info = VerifyBlob(bytes);
  if (info.ok()) {
    CTXMEM_FUZZ_CHECK(info->metadata.Validate().ok());
    CTXMEM_FUZZ_CHECK(info->n_bytes == bytes.size());
    CTXMEM_FUZZ_CHECK(info->n_header_bytes <= bytes.size());
    // What VerifyBlob accepts, its metadata entries reproduce.
    std::map<std::string, std::string> entries;
    for (const auto& [k, v] : ToMetadataEntries(info->metadata)) entries[k] = v;
    absl::StatusOr<BlobMetadata> again = ParseBlobMetadata(entries);
    CTXMEM_FUZZ_CHECK(again.ok());
  }
  const std::string& path = ctxmem::fuzz::WriteScratch(
      ".blob", reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  auto blob = MemoryBlob::Open(path);
  CTXMEM_FUZZ_CHECK(blob.ok() == info.ok());
  if (blob.ok()) {
    for (int64_t layer = 0; layer < (*blob)->metadata().n_layers() && layer < 64; ++layer) {
      for (const std::string& name : {KeyTensorName(layer), ValueTensorName(layer)}) {
        const auto* t = (*blob)->file().Find(name);
        CTXMEM_FUZZ_CHECK(t != nullptr);
        (void)(*blob)->file().TensorData(*t);
      }
    }
  }
  if (info.ok()) {
    (void)ctxmem::service::MemoryInfoFromMetadata(info->metadata, bytes.size()).ByteSizeLong();
  }
  return 0;
}
