// S3BlobStore against a real S3 server (SeaweedFS on loopback, one per test binary).
#include "common/blob/s3_blob_store.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/blob/sha256.h"
#include "tests/unit/blob/test_blob.h"
#include "tests/unit/blob_s3/seaweed_server.h"

namespace ctxmem::blob {
namespace {

using testing::SealTestBlob;
using testing::SeaweedServer;
using testing::SharedSeaweed;
using weights::StDtype;

constexpr char kAlice[] = "alice";
constexpr char kBob[] = "bob";

std::string Blob(int salt, int64_t n_kept = 3) {
  return SealTestBlob(StDtype::kBF16, 2, n_kept, 100 + salt);
}

class S3BlobStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    server_ = SharedSeaweed(&why);
    if (server_ == nullptr) GTEST_SKIP() << why;
    store_ = Open();
  }
  // A store under a prefix of its own per test, so tests do not see each other's blobs.
  std::unique_ptr<S3BlobStore> Open(uint64_t multipart_threshold = uint64_t{64} << 20) {
    S3BlobStoreOptions options;
    options.client = server_->ClientOptions();
    options.prefix = absl::StrCat("store-test/",
                                  ::testing::UnitTest::GetInstance()->current_test_info()->name());
    options.staging_dir = staging_.File("staging");
    options.multipart_threshold_bytes = multipart_threshold;
    options.part_bytes = std::min<uint64_t>(multipart_threshold, options.part_bytes);
    auto store = S3BlobStore::Open(options);
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? *std::move(store) : nullptr;
  }

  SeaweedServer* server_ = nullptr;
  ctxmem::testing::TempDir staging_;
  std::unique_ptr<S3BlobStore> store_;
};

TEST_F(S3BlobStoreTest, PutGetRoundTripAndTenantIsolation) {
  const std::string bytes = Blob(0);
  const PutResult put = store_->Put("m1", kAlice, bytes).value();
  EXPECT_TRUE(put.created);
  EXPECT_EQ(put.n_bytes, bytes.size());
  const BlobHandle handle = store_->Get("m1", kAlice).value();
  EXPECT_EQ(handle.bytes(), bytes);
  EXPECT_EQ(handle.info().n_bytes, bytes.size());
  // Tenant = key prefix; the object carries its SHA-256.
  const S3Object object = store_->client().HeadObject(store_->KeyOf("m1", kAlice)).value();
  EXPECT_EQ(object.metadata.at("sha256"), Sha256Hex(bytes).value());
  EXPECT_NE(store_->KeyOf("m1", kAlice).find("/alice/m1.safetensors"), std::string::npos);
  // Bob sees nothing of Alice's.
  EXPECT_EQ(store_->Get("m1", kBob).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->Stat("m1", kBob).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->ReadHeader("m1", kBob).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->Delete("m1", kBob).code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(store_->List(kBob, 10, "")->blobs.empty());
  EXPECT_TRUE(store_->Get("m1", kAlice).ok());
}

TEST_F(S3BlobStoreTest, PutIsIdempotent) {
  ASSERT_TRUE(store_->Put("m1", kAlice, Blob(0))->created);
  const PutResult again = store_->Put("m1", kAlice, Blob(0)).value();
  EXPECT_FALSE(again.created);
  // Another replica's store on the same bucket sees it too.
  auto other = Open();
  EXPECT_FALSE(other->Put("m1", kAlice, Blob(0))->created);
  EXPECT_EQ(other->Get("m1", kAlice)->bytes(), Blob(0));
}

TEST_F(S3BlobStoreTest, StatAndReadHeader) {
  const std::string bytes = Blob(1);
  ASSERT_TRUE(store_->Put("m1", kAlice, bytes).ok());
  const StoredBlobStat stat = store_->Stat("m1", kAlice).value();
  EXPECT_EQ(stat.id, "m1");
  EXPECT_EQ(stat.n_bytes, bytes.size());
  const std::string header = store_->ReadHeader("m1", kAlice).value();
  const BlobInfo info = VerifyBlob(bytes).value();
  EXPECT_EQ(header.size(), info.n_header_bytes);
  EXPECT_EQ(header, bytes.substr(0, info.n_header_bytes));
  EXPECT_EQ(store_->Stat("nope", kAlice).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(S3BlobStoreTest, ListPagesByTenant) {
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(store_->Put(absl::StrCat("a", i), kAlice, Blob(i)).ok());
  }
  ASSERT_TRUE(store_->Put("b0", kBob, Blob(9)).ok());
  std::vector<std::string> ids;
  std::string token;
  int n_pages = 0;
  do {
    const BlobPage page = store_->List(kAlice, 2, token).value();
    for (const StoredBlobStat& s : page.blobs) ids.push_back(s.id);
    token = page.next_page_token;
    ++n_pages;
  } while (!token.empty() && n_pages < 10);
  EXPECT_EQ(ids, (std::vector<std::string>{"a0", "a1", "a2", "a3", "a4"}));
  EXPECT_EQ(n_pages, 3);
  const BlobPage bob = store_->List(kBob, 10, "").value();
  ASSERT_EQ(bob.blobs.size(), 1u);
  EXPECT_EQ(bob.blobs[0].id, "b0");
  EXPECT_EQ(store_->List(kAlice, 2, "bad/token").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(S3BlobStoreTest, DeleteRemovesTheTenantsBlob) {
  ASSERT_TRUE(store_->Put("m1", kAlice, Blob(0)).ok());
  ASSERT_TRUE(store_->Put("m1", kBob, Blob(0)).ok());
  ASSERT_TRUE(store_->Delete("m1", kAlice).ok());
  EXPECT_EQ(store_->Get("m1", kAlice).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->Delete("m1", kAlice).code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(store_->Get("m1", kBob).ok());
}

TEST_F(S3BlobStoreTest, MultipartPutRoundTrip) {
  auto store = Open(/*multipart_threshold=*/uint64_t{5} << 20);
  const std::string bytes = Blob(2, /*n_kept=*/70000);  // ~6.7 MB: two parts of 5 MiB
  ASSERT_GT(bytes.size(), size_t{5} << 20);
  const PutResult put = store->Put("big", kAlice, bytes).value();
  EXPECT_TRUE(put.created);
  EXPECT_FALSE(store->Put("big", kAlice, bytes)->created);
  const BlobHandle handle = store->Get("big", kAlice).value();
  EXPECT_TRUE(handle.bytes() == bytes);
}

TEST_F(S3BlobStoreTest, CorruptObjectIsDataLossAndRemoved) {
  const std::string bytes = Blob(3);
  std::string bad = bytes;
  bad[bad.size() - 3] ^= 0x5a;
  // Bytes that do not match their metadata checksum (e.g. damaged at rest).
  ASSERT_TRUE(store_->client()
                  .PutObject(store_->KeyOf("m1", kAlice), bad,
                             {{"sha256", Sha256Hex(bytes).value()}}, false)
                  .ok());
  const absl::Status status = store_->Get("m1", kAlice).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
  EXPECT_EQ(store_->Stat("m1", kAlice).status().code(), absl::StatusCode::kNotFound);
  // A checksum that matches bytes that are not a valid blob is caught by VerifyBlob.
  ASSERT_TRUE(
      store_->client()
          .PutObject(store_->KeyOf("m2", kAlice), bad, {{"sha256", Sha256Hex(bad).value()}}, false)
          .ok());
  EXPECT_EQ(store_->Get("m2", kAlice).status().code(), absl::StatusCode::kDataLoss);
  // Without ctxmem's checksum metadata the object is not served either.
  ASSERT_TRUE(store_->client().PutObject(store_->KeyOf("m3", kAlice), bytes, {}, false).ok());
  EXPECT_EQ(store_->Get("m3", kAlice).status().code(), absl::StatusCode::kDataLoss);
  // The next Put computes it again.
  EXPECT_TRUE(store_->Put("m1", kAlice, bytes)->created);
  EXPECT_TRUE(store_->Get("m1", kAlice).ok());
}

TEST_F(S3BlobStoreTest, RejectsBadInput) {
  std::string bad = Blob(4);
  bad[bad.size() - 1] ^= 1;
  EXPECT_EQ(store_->Put("m1", kAlice, bad).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(store_->Put("m/1", kAlice, Blob(4)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->Put("m1", "a/b", Blob(4)).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->Put("m1", "..", Blob(4)).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->Stat("m1", kAlice).status().code(), absl::StatusCode::kNotFound);
  const std::string named = SealTestBlob(StDtype::kBF16, 2, 3, 0, "the-real-id");
  EXPECT_EQ(store_->Put("other-id", kAlice, named).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(S3BlobStoreTest, PutFileConsumesTheFile) {
  const std::string path = staging_.File("staging/sealed.safetensors");
  ASSERT_TRUE(ctxmem::testing::WriteBytes(path, Blob(5)));
  EXPECT_TRUE(store_->PutFile("m1", kAlice, path)->created);
  EXPECT_NE(access(path.c_str(), F_OK), 0);
  EXPECT_EQ(store_->Get("m1", kAlice)->bytes(), Blob(5));
}

TEST(S3StoreUrlTest, Parses) {
  const S3StoreUrl url = ParseS3StoreUrl("s3://my-bucket/a/b/").value();
  EXPECT_EQ(url.bucket, "my-bucket");
  EXPECT_EQ(url.prefix, "a/b");
  EXPECT_EQ(ParseS3StoreUrl("s3://my-bucket")->prefix, "");
  for (const char* bad :
       {"my-bucket/x", "s3://", "s3://UPPER/x", "s3://b/../x", "s3://bk/a//b", "http://bucket/x"}) {
    EXPECT_EQ(ParseS3StoreUrl(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

}  // namespace
}  // namespace ctxmem::blob
