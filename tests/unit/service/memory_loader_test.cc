#include "common/service/memory_loader.h"

#include <ATen/ATen.h>

#include <memory>
#include <string>
#include <vector>

#include "common/blob/file_blob_store.h"
#include "common/blob/memory_blob.h"
#include "common/compress/compressor.h"
#include "common/compress/memory_codec.h"
#include "common/compress/token_source.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/service/decoder_fake_compressor.h"
#include "tests/unit/test_files.h"

namespace ctxmem::service {
namespace {

using testing::FakeCompressor;
using ::testing::HasSubstr;

const std::string kAlice = "alice-token-0123456789";
const std::string kBob = "bob-token-0123456789ab";

// The bundled model, one no_compress memory of a short text sealed as a blob (bf16), and a
// fake compressor holding it for tenant alice.
class MemoryLoaderTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!ctxmem::testing::BundledModelPresent()) return;
    auto model = model::Model::Load(ctxmem::testing::BundledModelPath());
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = model->release();
    auto ids = model_->tokenizer()->Encode(
        "It is a truth universally acknowledged, that a single man in possession of a good "
        "fortune, must be in want of a wife.");
    ASSERT_TRUE(ids.ok());
    compress::CompressionConfig config;
    config.pruner = "no_compress";
    config.chunk_size = 16;
    compress::SpanTokenSource source(*ids);
    auto result = compress::Compress(model_->transformer(), source, config);
    ASSERT_TRUE(result.ok()) << result.status();
    memory_ = new compress::Memory(result->memory);
    identity_ = new compress::ModelIdentity(*compress::ComputeModelIdentity(*model_, "smol"));
    blob::BlobMetadata base;
    base.memory_id = std::string(64, 'a');
    base.model_fingerprint = identity_->model_fingerprint;
    base.tokenizer_fingerprint = identity_->tokenizer_fingerprint;
    base.compression_config = R"({"pruner":"no_compress","position_mode":"slots"})";
    auto encoded = compress::EncodeMemory(*memory_, weights::StDtype::kBF16, base);
    ASSERT_TRUE(encoded.ok()) << encoded.status();
    auto bytes = blob::SealBlob(encoded->tensors, encoded->metadata);
    ASSERT_TRUE(bytes.ok()) << bytes.status();
    blob_ = new std::string(*bytes);
  }

  void SetUp() override {
    if (model_ == nullptr) GTEST_SKIP() << "bundled model not found";
    server_.tokens = {{kAlice, "alice"}, {kBob, "bob"}};
    server_.Add("alice", Id(), *blob_);
    ASSERT_TRUE(server_.Start());
    BlobFetcherOptions options;
    options.addresses = {server_.address()};
    options.expect = {identity_->model_fingerprint, identity_->tokenizer_fingerprint};
    auto fetcher = BlobFetcher::Create(options);
    ASSERT_TRUE(fetcher.ok());
    fetcher_ = *std::move(fetcher);
    blob::BlobCacheOptions cache_options;
    cache_options.dir = dir_.path();
    auto cache = blob::BlobCache::Open(cache_options);
    ASSERT_TRUE(cache.ok());
    cache_ = *std::move(cache);
    loader_ = std::make_unique<MemoryLoader>(cache_.get(), fetcher_.get(), model_, nullptr);
  }

  static std::string Id() { return std::string(64, 'a'); }

  static model::Model* model_;
  static compress::Memory* memory_;
  static compress::ModelIdentity* identity_;
  static std::string* blob_;
  ctxmem::testing::TempDir dir_;
  FakeCompressor server_;
  std::unique_ptr<BlobFetcher> fetcher_;
  std::unique_ptr<blob::BlobCache> cache_;
  std::unique_ptr<MemoryLoader> loader_;
};
model::Model* MemoryLoaderTest::model_ = nullptr;
compress::Memory* MemoryLoaderTest::memory_ = nullptr;
compress::ModelIdentity* MemoryLoaderTest::identity_ = nullptr;
std::string* MemoryLoaderTest::blob_ = nullptr;

TEST_F(MemoryLoaderTest, LoadsThePastOnceThenFromTheCache) {
  auto first = loader_->Load({Id()}, "alice", "Bearer " + kAlice);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_FALSE(first->cache_hit);
  EXPECT_EQ(first->memory_entries, memory_->len());
  EXPECT_EQ(first->past.seq_len(), memory_->len());
  EXPECT_EQ(first->past.next_position, memory_->len());
  // Same keys as the library's own placement of the memory (bf16 storage rounds them).
  auto expected = compress::ToKvCache(*memory_, model_->transformer());
  ASSERT_TRUE(expected.ok());
  EXPECT_TRUE(at::allclose(first->past.k[3], expected->k[3], 2e-2, 2e-2));

  auto second = loader_->Load({Id()}, "alice", "Bearer " + kAlice);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_TRUE(second->cache_hit);
  EXPECT_EQ(second->fetch_seconds, 0);
  EXPECT_EQ(server_.get_calls.load(), 1);
  EXPECT_EQ(server_.stat_calls.load(), 0);
  // Each load is a fresh past: extending one does not touch the other.
  second->past.Append(second->past.k, second->past.v);
  EXPECT_EQ(first->past.seq_len(), memory_->len());
}

TEST_F(MemoryLoaderTest, AnotherTenantIsCheckedWithTheCompressorAndGetsNotFound) {
  ASSERT_TRUE(loader_->Load({Id()}, "alice", "Bearer " + kAlice).ok());
  auto bob = loader_->Load({Id()}, "bob", "Bearer " + kBob);
  EXPECT_EQ(bob.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(server_.stat_calls.load(), 1);
  // The cache does not make bob an owner on its own: asked again, checked again.
  EXPECT_EQ(loader_->Load({Id()}, "bob", "Bearer " + kBob).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(server_.stat_calls.load(), 2);
}

TEST_F(MemoryLoaderTest, SeveralMemoriesAreConcatenated) {
  auto both = loader_->Load({Id(), Id()}, "alice", "Bearer " + kAlice);
  ASSERT_TRUE(both.ok()) << both.status();
  EXPECT_EQ(both->memory_entries, 2 * memory_->len());
  EXPECT_EQ(both->past.next_position, 2 * memory_->len());
  auto none = loader_->Load({}, "alice", "");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->past.empty());
  EXPECT_FALSE(none->cache_hit);
}

TEST_F(MemoryLoaderTest, ADecoderForAnotherModelRefusesTheBlob) {
  BlobFetcherOptions options;
  options.addresses = {server_.address()};
  options.expect = {"sha256:some-other-model", ""};
  auto fetcher = BlobFetcher::Create(options);
  ASSERT_TRUE(fetcher.ok());
  MemoryLoader loader(cache_.get(), fetcher->get(), model_, nullptr);
  auto r = loader.Load({Id()}, "alice", "Bearer " + kAlice);
  ASSERT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("sha256:some-other-model"));
}

// With a store (the S3 store in production; any BlobStore here), blobs come from the store as
// the tenant, and no compressor is asked: the fetcher may be null.
TEST_F(MemoryLoaderTest, ReadsFromTheStoreAsTheTenantWithoutACompressor) {
  ctxmem::testing::TempDir store_dir;
  auto store = blob::FileBlobStore::Open({.dir = store_dir.path()});
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_TRUE((*store)->Put(Id(), "alice", *blob_).ok());
  ctxmem::testing::TempDir cache_dir;
  blob::BlobCacheOptions cache_options;
  cache_options.dir = cache_dir.path();
  cache_options.expect = {identity_->model_fingerprint, identity_->tokenizer_fingerprint};
  auto cache = blob::BlobCache::Open(cache_options);
  ASSERT_TRUE(cache.ok());
  MemoryLoader loader(cache->get(), nullptr, model_, nullptr, store->get());
  auto first = loader.Load({Id()}, "alice", "");
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_FALSE(first->cache_hit);
  EXPECT_EQ(first->memory_entries, memory_->len());
  auto second = loader.Load({Id()}, "alice", "");
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_TRUE(second->cache_hit);
  // Bob's key holds nothing: the cached copy is not his to read.
  EXPECT_EQ(loader.Load({Id()}, "bob", "").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(server_.get_calls.load(), 0);
  EXPECT_EQ(server_.stat_calls.load(), 0);
  // A decoder for another model refuses the store's blob as it refuses a fetched one.
  ctxmem::testing::TempDir other_dir;
  blob::BlobCacheOptions other_options;
  other_options.dir = other_dir.path();
  other_options.expect = {"sha256:some-other-model", ""};
  auto other_cache = blob::BlobCache::Open(other_options);
  ASSERT_TRUE(other_cache.ok());
  MemoryLoader other(other_cache->get(), nullptr, model_, nullptr, store->get());
  EXPECT_EQ(other.Load({Id()}, "alice", "").status().code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace ctxmem::service
