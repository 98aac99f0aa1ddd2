#include "common/blob/blob_cache.h"

#include <atomic>
#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/blob/test_blob.h"

namespace ctxmem::blob {
namespace {

using ::testing::HasSubstr;

std::string Id(int i) {
  std::string id(64, '0');
  const std::string tail = absl::StrCat(i);
  id.replace(64 - tail.size(), tail.size(), tail);
  return id;
}

// Sealed bytes of a small valid blob for memory Id(i) (all the same size for one n_kept).
std::string BlobBytes(int i, int64_t n_kept = 3) {
  return testing::SealTestBlob(weights::StDtype::kBF16, 2, n_kept, i, Id(i));
}

// A fetch that serves blob i, counting its calls, optionally slow or failing.
struct FakeSource {
  std::atomic<int> calls{0};
  std::chrono::milliseconds delay{0};
  absl::Status fail = absl::OkStatus();

  BlobFetchFn For(int i) {
    return [this, i]() -> absl::StatusOr<CachedBlob> {
      ++calls;
      std::this_thread::sleep_for(delay);
      if (!fail.ok()) return fail;
      CachedBlob blob;
      blob.bytes = BlobBytes(i);
      absl::StatusOr<BlobInfo> info = VerifyBlob(blob.bytes);
      if (!info.ok()) return info.status();
      blob.info = *info;
      return blob;
    };
  }
};

BlobFetchFn Failing() {
  return []() -> absl::StatusOr<CachedBlob> {
    return absl::UnavailableError("fetch must not be called");
  };
}

std::unique_ptr<BlobCache> OpenCache(const std::string& dir, uint64_t ram = 1 << 20,
                                     uint64_t disk = 1 << 20, BlobExpectations expect = {}) {
  BlobCacheOptions options;
  options.dir = dir;
  options.ram_max_bytes = ram;
  options.disk_max_bytes = disk;
  options.expect = expect;
  auto cache = BlobCache::Open(options);
  EXPECT_TRUE(cache.ok()) << cache.status();
  return cache.ok() ? *std::move(cache) : nullptr;
}

TEST(BlobCacheTest, FetchesOnceThenServesFromRam) {
  testing::TempDir dir;
  auto cache = OpenCache(dir.path());
  FakeSource source;
  auto first = cache->Get(Id(1), "alice", source.For(1));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->source, CacheSource::kFetch);
  EXPECT_TRUE(first->verified_for_tenant);
  EXPECT_EQ(first->blob->bytes, BlobBytes(1));
  EXPECT_EQ(first->blob->memory_id, Id(1));
  auto second = cache->Get(Id(1), "alice", source.For(1));
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->source, CacheSource::kRam);
  EXPECT_EQ(second->blob.get(), first->blob.get());
  EXPECT_TRUE(second->verified_for_tenant);
  EXPECT_EQ(source.calls.load(), 1);
  EXPECT_EQ(cache->ram_bytes(), BlobBytes(1).size());
  EXPECT_EQ(cache->disk_bytes(), BlobBytes(1).size());
  EXPECT_EQ(testing::ListFiles(dir.path()), std::vector<std::string>{Id(1) + ".blob"});
}

TEST(BlobCacheTest, ConcurrentGetsShareOneFetch) {
  testing::TempDir dir;
  auto cache = OpenCache(dir.path());
  FakeSource source;
  source.delay = std::chrono::milliseconds(200);
  constexpr int kThreads = 8;
  std::vector<absl::StatusOr<BlobCacheLookup>> results(kThreads, absl::UnknownError("unset"));
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] { results[t] = cache->Get(Id(7), "alice", source.For(7)); });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(source.calls.load(), 1);
  int n_shared = 0;
  for (const auto& r : results) {
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->blob.get(), results[0]->blob.get());
    if (r->shared_fetch) {
      ++n_shared;
      EXPECT_GE(r->fetch_seconds, 0.15);
    }
  }
  // Every call but the leader either waited on the flight or found the blob in RAM after it.
  EXPECT_LE(n_shared, kThreads - 1);
}

TEST(BlobCacheTest, AFailedFetchIsSharedOnlyWithTheSameTenant) {
  testing::TempDir dir;
  auto cache = OpenCache(dir.path());
  FakeSource denied;
  denied.delay = std::chrono::milliseconds(300);
  denied.fail = absl::NotFoundError("memory not found");
  FakeSource allowed;
  absl::StatusOr<BlobCacheLookup> leader = absl::UnknownError("unset");
  absl::StatusOr<BlobCacheLookup> same = absl::UnknownError("unset");
  absl::StatusOr<BlobCacheLookup> other = absl::UnknownError("unset");
  std::thread a([&] { leader = cache->Get(Id(3), "mallory", denied.For(3)); });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  std::thread b([&] { same = cache->Get(Id(3), "mallory", denied.For(3)); });
  std::thread c([&] { other = cache->Get(Id(3), "alice", allowed.For(3)); });
  a.join();
  b.join();
  c.join();
  EXPECT_EQ(leader.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(same.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(denied.calls.load(), 1);  // mallory's second call shared the failed fetch
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_EQ(allowed.calls.load(), 1);
  EXPECT_TRUE(other->verified_for_tenant);
}

TEST(BlobCacheTest, TenantsAreVerifiedPerEntry) {
  testing::TempDir dir;
  auto cache = OpenCache(dir.path());
  FakeSource source;
  ASSERT_TRUE(cache->Get(Id(2), "alice", source.For(2)).ok());
  auto bob = cache->Get(Id(2), "bob", Failing());
  ASSERT_TRUE(bob.ok());
  EXPECT_FALSE(bob->verified_for_tenant);  // the caller must check bob's ownership
  cache->MarkVerified(Id(2), "bob");
  bob = cache->Get(Id(2), "bob", Failing());
  ASSERT_TRUE(bob.ok());
  EXPECT_TRUE(bob->verified_for_tenant);
  cache->MarkVerified(Id(9), "bob");  // not cached: nothing to mark
  cache->Erase(Id(2));
  EXPECT_EQ(cache->ram_entries(), 0);
  EXPECT_EQ(cache->disk_entries(), 0);
  EXPECT_TRUE(testing::ListFiles(dir.path()).empty());
}

TEST(BlobCacheTest, DiskTierSurvivesRestartAndIsReverified) {
  testing::TempDir dir;
  {
    auto cache = OpenCache(dir.path());
    FakeSource source;
    ASSERT_TRUE(cache->Get(Id(1), "alice", source.For(1)).ok());
    ASSERT_TRUE(cache->Get(Id(2), "alice", source.For(2)).ok());
  }
  // A temp file left by a crash mid-write is swept at open.
  ASSERT_TRUE(testing::WriteBytes(dir.File(".tmp." + Id(5) + ".blob.1.1"), "partial"));
  auto cache = OpenCache(dir.path());
  EXPECT_EQ(cache->disk_entries(), 2);
  EXPECT_EQ(cache->ram_entries(), 0);
  EXPECT_EQ(testing::ListFiles(dir.path()).size(), 2u);
  auto hit = cache->Get(Id(1), "alice", Failing());
  ASSERT_TRUE(hit.ok()) << hit.status();
  EXPECT_EQ(hit->source, CacheSource::kDisk);
  EXPECT_FALSE(hit->verified_for_tenant);  // ownership is not persisted: checked again
  EXPECT_EQ(hit->blob->bytes, BlobBytes(1));
  EXPECT_EQ(cache->Get(Id(1), "alice", Failing())->source, CacheSource::kRam);

  // A corrupted file is dropped and fetched again.
  std::string bytes = testing::ReadBytes(dir.File(Id(2) + ".blob"));
  bytes[bytes.size() - 3] ^= 0x5a;
  ASSERT_TRUE(testing::WriteBytes(dir.File(Id(2) + ".blob"), bytes));
  FakeSource source;
  auto refetched = cache->Get(Id(2), "alice", source.For(2));
  ASSERT_TRUE(refetched.ok()) << refetched.status();
  EXPECT_EQ(refetched->source, CacheSource::kFetch);
  EXPECT_TRUE(refetched->dropped_corrupt);
  EXPECT_EQ(source.calls.load(), 1);
  EXPECT_EQ(testing::ReadBytes(dir.File(Id(2) + ".blob")), BlobBytes(2));
}

TEST(BlobCacheTest, DiskBlobsForAnotherModelAreDropped) {
  testing::TempDir dir;
  {
    auto cache = OpenCache(dir.path());
    FakeSource source;
    ASSERT_TRUE(cache->Get(Id(1), "alice", source.For(1)).ok());
  }
  BlobExpectations expect;
  expect.model_fingerprint = "sha256:another-model";
  auto cache = OpenCache(dir.path(), 1 << 20, 1 << 20, expect);
  auto r = cache->Get(Id(1), "alice", Failing());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);  // dropped, then fetched
  EXPECT_EQ(cache->disk_entries(), 0);
  EXPECT_TRUE(testing::ListFiles(dir.path()).empty());
}

TEST(BlobCacheTest, RamAndDiskAreLruByBytes) {
  testing::TempDir dir;
  const uint64_t size = BlobBytes(1).size();
  auto cache = OpenCache(dir.path(), 2 * size + 10, 3 * size + 10);
  FakeSource source;
  for (int i = 1; i <= 3; ++i) ASSERT_TRUE(cache->Get(Id(i), "alice", source.For(i)).ok());
  EXPECT_EQ(cache->ram_entries(), 2);
  EXPECT_EQ(cache->ram_bytes(), 2 * size);
  EXPECT_EQ(cache->disk_entries(), 3);
  // 1 fell out of RAM but not off the disk; touching 2 makes 3 the RAM victim next.
  EXPECT_EQ(cache->Get(Id(1), "alice", Failing())->source, CacheSource::kDisk);
  EXPECT_EQ(cache->Get(Id(1), "alice", Failing())->source, CacheSource::kRam);
  ASSERT_TRUE(cache->Get(Id(4), "alice", source.For(4)).ok());  // evicts disk LRU: 2
  EXPECT_EQ(cache->disk_entries(), 3);
  EXPECT_LE(cache->disk_bytes(), 3 * size + 10);
  EXPECT_FALSE(std::filesystem::exists(dir.File(Id(2) + ".blob")));
  EXPECT_TRUE(std::filesystem::exists(dir.File(Id(1) + ".blob")));
  auto gone = cache->Get(Id(2), "alice", Failing());
  EXPECT_EQ(gone.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(cache->Get(Id(3), "alice", Failing())->source, CacheSource::kDisk);
}

TEST(BlobCacheTest, BlobsLargerThanATierSkipIt) {
  testing::TempDir dir;
  auto cache = OpenCache(dir.path(), 100, 100);
  FakeSource source;
  auto r = cache->Get(Id(1), "alice", source.For(1));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->verified_for_tenant);
  EXPECT_EQ(cache->ram_entries(), 0);
  EXPECT_EQ(cache->disk_entries(), 0);
  ASSERT_TRUE(cache->Get(Id(1), "alice", source.For(1)).ok());
  EXPECT_EQ(source.calls.load(), 2);
}

TEST(BlobCacheTest, RamOnlyCacheWorksWithoutADirectory) {
  auto cache = OpenCache("");
  FakeSource source;
  ASSERT_TRUE(cache->Get(Id(1), "alice", source.For(1)).ok());
  EXPECT_EQ(cache->Get(Id(1), "alice", Failing())->source, CacheSource::kRam);
  EXPECT_EQ(cache->disk_entries(), 0);
}

TEST(BlobCacheTest, RejectsBadIdsAndMismatchedBlobs) {
  auto cache = OpenCache("");
  FakeSource source;
  auto bad = cache->Get("../etc/passwd", "alice", source.For(1));
  ASSERT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("64 lowercase hex"));
  auto mismatch = cache->Get(Id(8), "alice", source.For(1));  // serves blob 1 for id 8
  ASSERT_EQ(mismatch.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(mismatch.status().message()), HasSubstr(Id(1)));
  EXPECT_EQ(cache->ram_entries(), 0);
}

}  // namespace
}  // namespace ctxmem::blob
