// Compression config JSON: the canonical JSON every memory id and blob carries
// (common/blob/blob_id: CanonicalJson with its nesting bound, MemoryIdBuilder), the blob
// metadata's check of it (BlobMetadata::Validate), and the API's CompressionConfig message from
// raw bytes (common/service/raw_message). Properties: canonical JSON is a fixed point, equal
// configs give equal memory ids.
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/blob/blob_id.h"
#include "common/blob/blob_metadata.h"
#include "common/service/raw_message.h"
#include "ctxmem/v1/memory.pb.h"
#include "google/protobuf/stubs/logging.h"
#include "tests/fuzz/targets/fuzz_util.h"

// protobuf logs every string field with invalid UTF-8 it refuses: quiet, fuzzing is faster.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ctxmem::blob;
  const absl::string_view json(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<std::string> canonical = CanonicalJson(json);
  if (canonical.ok()) {
    absl::StatusOr<std::string> twice = CanonicalJson(*canonical);
    CTXMEM_FUZZ_CHECK(twice.ok() && *twice == *canonical);
    auto a = ComputeMemoryId("t", "model", json, {});
    auto b = ComputeMemoryId("t", "model", *canonical, {});
    CTXMEM_FUZZ_CHECK(a.ok() == b.ok());
    if (a.ok()) CTXMEM_FUZZ_CHECK(*a == *b && IsMemoryId(*a));
  }
  BlobMetadata m;
  m.model_fingerprint = "model";
  m.compression_config = std::string(json);
  m.n_kept = {1};
  (void)m.Validate();
  ctxmem::v1::CompressionConfig proto;
  if (ctxmem::service::ParseRawMessage(json, &proto).ok()) {
    CTXMEM_FUZZ_CHECK(proto.ParseFromString(proto.SerializeAsString()));
  }
  return 0;
}
