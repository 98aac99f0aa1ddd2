// Page tokens: a ListMemoriesRequest from raw bytes (common/service/raw_message) and its
// page_token / page_size through FileBlobStore::List over a small store made once (five blobs
// of two tenants). Properties: a malformed token is INVALID_ARGUMENT; a page is ascending,
// after the token, within the clamped size, only the tenant's, and its next token resumes it.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "common/blob/blob_id.h"
#include "common/blob/file_blob_store.h"
#include "common/service/raw_message.h"
#include "ctxmem/v1/compressor.pb.h"
#include "google/protobuf/stubs/logging.h"
#include "tests/fuzz/targets/fuzz_util.h"
#include "tests/unit/blob/test_blob.h"

namespace {

using namespace ctxmem::blob;

const FileBlobStore& Store() {
  static FileBlobStore* store = [] {
    static ctxmem::testing::TempDir dir("ctxmem_fuzz_store");
    auto s = FileBlobStore::Open({.dir = dir.path(), .list_page_size_max = 3});
    if (!s.ok()) std::abort();
    for (int i = 0; i < 5; ++i) {
      const std::string id = std::string(63, 'a' + i) + std::to_string(i);
      if (!(*s)->Put(id, i % 2 ? "bob" : "default",
                     testing::SealTestBlob(ctxmem::weights::StDtype::kBF16, 1, 2, i, id))
               .ok()) {
        std::abort();
      }
    }
    return s->release();
  }();
  return *store;
}

}  // namespace

// protobuf logs every string field with invalid UTF-8 it refuses: quiet, fuzzing is faster.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const bool bob = data[0] & 1;
  const absl::string_view wire(reinterpret_cast<const char*>(data) + 1, size - 1);
  ctxmem::v1::ListMemoriesRequest request;
  if (!ctxmem::service::ParseRawMessage(wire, &request).ok()) return 0;
  const std::string tenant = bob ? "bob" : "default";
  const std::string& token = request.page_token();
  absl::StatusOr<BlobPage> page = Store().List(tenant, request.page_size(), token);
  if (!token.empty() && !FileBlobStore::IsValidId(token)) {
    CTXMEM_FUZZ_CHECK(absl::IsInvalidArgument(page.status()));
    return 0;
  }
  CTXMEM_FUZZ_CHECK(page.ok());
  const int64_t clamped = std::clamp<int64_t>(request.page_size(), 1, 3);
  CTXMEM_FUZZ_CHECK(static_cast<int64_t>(page->blobs.size()) <= clamped);
  std::string last = token;
  for (const StoredBlobStat& s : page->blobs) {
    CTXMEM_FUZZ_CHECK(s.id > last);
    CTXMEM_FUZZ_CHECK(Store().Stat(s.id, tenant).ok());
    last = s.id;
  }
  if (!page->next_page_token.empty()) {
    CTXMEM_FUZZ_CHECK(page->next_page_token == last);
    CTXMEM_FUZZ_CHECK(Store().List(tenant, clamped, page->next_page_token).ok());
  }
  return 0;
}
