#include "common/blob/file_blob_store.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/unit/blob/test_blob.h"

namespace ctxmem::blob {
namespace {

using testing::ListFiles;
using testing::ReadBytes;
using testing::SealTestBlob;
using testing::TempDir;
using testing::WriteBytes;
using weights::StDtype;

constexpr char kAlice[] = "alice";
constexpr char kBob[] = "bob";

std::unique_ptr<FileBlobStore> OpenStore(const std::string& dir, uint64_t max_bytes = 0) {
  auto store = FileBlobStore::Open({.dir = dir, .max_bytes = max_bytes});
  EXPECT_TRUE(store.ok()) << store.status();
  return store.ok() ? *std::move(store) : nullptr;
}

// A distinct sealed blob per salt, all of the same size.
std::string Blob(int salt) { return SealTestBlob(StDtype::kBF16, 2, 3, 100 + salt); }

void SetMtime(const std::string& path, int64_t unix_s) {
  struct timespec times[2] = {{unix_s, 0}, {unix_s, 0}};
  ASSERT_EQ(utimensat(AT_FDCWD, path.c_str(), times, 0), 0) << path;
}

TEST(FileBlobStoreTest, PutGetRoundTrip) {
  TempDir dir;
  auto store = OpenStore(dir.path());
  const std::string bytes = Blob(0);
  const PutResult put = store->Put("m1", kAlice, bytes).value();
  EXPECT_TRUE(put.created);
  EXPECT_EQ(put.n_bytes, bytes.size());
  BlobHandle handle = store->Get("m1", kAlice).value();
  EXPECT_EQ(handle.id(), "m1");
  EXPECT_EQ(std::string(handle.bytes()), bytes);
  EXPECT_EQ(handle.info().metadata.n_original_tokens, 1100);
  EXPECT_EQ(ReadBytes(store->BlobPath("m1")), bytes);
  EXPECT_EQ(store->n_blobs(), 1);
  EXPECT_EQ(store->total_bytes(), bytes.size());
  const StoredBlobStat stat = store->Stat("m1", kAlice).value();
  EXPECT_EQ(stat.n_bytes, bytes.size());
  EXPECT_EQ(stat.n_pins, 1);
}

TEST(FileBlobStoreTest, PutOfTheSameIdIsIdempotent) {
  TempDir dir;
  auto store = OpenStore(dir.path());
  ASSERT_TRUE(store->Put("m1", kAlice, Blob(0)).value().created);
  const PutResult again = store->Put("m1", kAlice, Blob(0)).value();
  EXPECT_FALSE(again.created);
  EXPECT_EQ(store->n_blobs(), 1);
  EXPECT_EQ(store->total_bytes(), Blob(0).size());
  // The existing bytes win even if a second compression produced other bytes.
  EXPECT_FALSE(store->Put("m1", kAlice, Blob(1)).value().created);
  EXPECT_EQ(std::string(store->Get("m1", kAlice).value().bytes()), Blob(0));
}

TEST(FileBlobStoreTest, TenantsSeeOnlyTheirBlobs) {
  TempDir dir;
  auto store = OpenStore(dir.path());
  ASSERT_TRUE(store->Put("m1", kAlice, Blob(0)).ok());
  EXPECT_EQ(store->Get("m1", kBob).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store->Stat("m1", kBob).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store->Delete("m1", kBob).code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(store->List(kBob, 10, "").value().blobs.empty());
  // The message is the same as for an id that does not exist at all.
  EXPECT_EQ(store->Get("m1", kBob).status().message(), "no blob 'm1'");
  EXPECT_TRUE(store->Get("m1", kAlice).ok());

  // Bob compressing the same input adopts the blob; deleting is per tenant.
  EXPECT_FALSE(store->Put("m1", kBob, Blob(0)).value().created);
  EXPECT_TRUE(store->Get("m1", kBob).ok());
  ASSERT_TRUE(store->Delete("m1", kAlice).ok());
  EXPECT_EQ(store->Get("m1", kAlice).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(store->Get("m1", kBob).ok());
  ASSERT_TRUE(store->Delete("m1", kBob).ok());
  EXPECT_EQ(store->n_blobs(), 0);
  EXPECT_EQ(ListFiles(dir.path() + "/blobs"), std::vector<std::string>{});
}

TEST(FileBlobStoreTest, OwnersSurviveRestart) {
  TempDir dir;
  {
    auto store = OpenStore(dir.path());
    ASSERT_TRUE(store->Put("m1", kAlice, Blob(0)).ok());
    ASSERT_TRUE(store->Put("m1", kBob, Blob(0)).ok());
    ASSERT_TRUE(store->Put("m2", kBob, Blob(1)).ok());
  }
  auto store = OpenStore(dir.path());
  EXPECT_TRUE(store->Get("m1", kAlice).ok());
  EXPECT_TRUE(store->Get("m1", kBob).ok());
  EXPECT_EQ(store->Get("m2", kAlice).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store->n_blobs(), 2);
}

TEST(FileBlobStoreTest, CorruptBlobIsQuarantinedNeverServed) {
  TempDir dir;
  auto store = OpenStore(dir.path());
  const std::string bytes = Blob(0);
  // Any byte, header or data.
  for (size_t pos : {size_t{3}, size_t{100}, bytes.size() / 2, bytes.size() - 1}) {
    const std::string id = absl::StrCat("m", pos);
    ASSERT_TRUE(store->Put(id, kAlice, bytes).ok());
    std::string bad = bytes;
    bad[pos] ^= 0x04;
    ASSERT_TRUE(WriteBytes(store->BlobPath(id), bad));
    const absl::Status status = store->Get(id, kAlice).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << pos;
    EXPECT_NE(status.message().find("quarantined"), absl::string_view::npos) << status;
    EXPECT_EQ(store->Get(id, kAlice).status().code(), absl::StatusCode::kNotFound);
  }
  EXPECT_EQ(store->n_blobs(), 0);
  EXPECT_EQ(store->total_bytes(), 0u);
  EXPECT_EQ(ListFiles(dir.path() + "/blobs"), std::vector<std::string>{});
  EXPECT_EQ(ListFiles(dir.path() + "/quarantine").size(), 8u);  // 4 blobs + 4 owners files
}

TEST(FileBlobStoreTest, TruncatedBlobIsDataLoss) {
  TempDir dir;
  auto store = OpenStore(dir.path());
  const std::string bytes = Blob(0);
  ASSERT_TRUE(store->Put("m1", kAlice, bytes).ok());
  ASSERT_EQ(truncate(store->BlobPath("m1").c_str(), static_cast<off_t>(bytes.size() - 10)), 0);
  EXPECT_EQ(store->Get("m1", kAlice).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(ListFiles(dir.path() + "/quarantine").size(), 2u);
}

TEST(FileBlobStoreTest, CorruptAfterRestartIsDetected) {
  TempDir dir;
  {
    auto store = OpenStore(dir.path());
    ASSERT_TRUE(store->Put("m1", kAlice, Blob(0)).ok());
  }
  std::string bytes = ReadBytes(dir.path() + "/blobs/m1.safetensors");
  bytes[bytes.size() - 5] ^= 1;
  ASSERT_TRUE(WriteBytes(dir.path() + "/blobs/m1.safetensors", bytes));
  auto store = OpenStore(dir.path());
  EXPECT_EQ(store->n_blobs(), 1);  // not verified until read
  EXPECT_EQ(store->Get("m1", kAlice).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(store->n_blobs(), 0);
}

TEST(FileBlobStoreTest, RefusesToStoreBadBlobs) {
  TempDir dir;
  auto store = OpenStore(dir.path());
  std::string bad = Blob(0);
  bad[bad.size() - 1] ^= 1;
  EXPECT_EQ(store->Put("m1", kAlice, bad).status().code(), absl::StatusCode::kDataLoss);
  const std::string named = SealTestBlob(StDtype::kBF16, 2, 3, 0, "real-id");
  EXPECT_EQ(store->Put("other-id", kAlice, named).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(store->Put("real-id", kAlice, named).ok());
  EXPECT_EQ(store->Put("../evil", kAlice, Blob(0)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store->Put("m2", "bad\xff", Blob(0)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store->Get("a/b", kAlice).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store->n_blobs(), 1);
}

TEST(FileBlobStoreTest, FailedWritesLeaveNothingAndReopenCleanly) {
  TempDir dir;
  const std::string bytes = Blob(0);
  {
    auto store = OpenStore(dir.path());
    ASSERT_TRUE(store->Put("keep", kAlice, Blob(9)).ok());
    for (int64_t limit : {int64_t{0}, int64_t{8}, static_cast<int64_t>(bytes.size() / 2),
                          static_cast<int64_t>(bytes.size() - 1)}) {
      store->ForTesting_SetNextWriteFault({.fail_after_bytes = limit});
      EXPECT_EQ(store->Put("m1", kAlice, bytes).status().code(), absl::StatusCode::kInternal);
      EXPECT_EQ(store->Get("m1", kAlice).status().code(), absl::StatusCode::kNotFound);
      EXPECT_EQ(ListFiles(dir.path() + "/blobs"),
                (std::vector<std::string>{"keep.owners.json", "keep.safetensors"}))
          << limit;
    }
    store->ForTesting_SetNextWriteFault({.fail_before_rename = true});
    EXPECT_FALSE(store->Put("m1", kAlice, bytes).ok());
    EXPECT_EQ(store->n_blobs(), 1);
    EXPECT_EQ(store->total_bytes(), Blob(9).size());
    // The budget reserved by the failed Puts was given back, and the next Put works.
    EXPECT_TRUE(store->Put("m1", kAlice, bytes).value().created);
  }
  auto store = OpenStore(dir.path());
  EXPECT_EQ(store->n_blobs(), 2);
  EXPECT_TRUE(store->Get("keep", kAlice).ok());
  EXPECT_TRUE(store->Get("m1", kAlice).ok());
}

TEST(FileBlobStoreTest, CrashMidWriteLeavesNoPartialBlob) {
  TempDir dir;
  const std::string bytes = Blob(0);
  {
    auto store = OpenStore(dir.path());
    ASSERT_TRUE(store->Put("keep", kAlice, Blob(9)).ok());
    // kill -9 in the middle of writing m1: its owners file and a temp file stay behind.
    store->ForTesting_SetNextWriteFault(
        {.fail_after_bytes = static_cast<int64_t>(bytes.size() / 2), .abandon_temp = true});
    EXPECT_FALSE(store->Put("m1", kAlice, bytes).ok());
    ASSERT_TRUE(WriteBytes(dir.path() + "/blobs/m1.owners.json", R"({"owners":["alice"]})"));
    ASSERT_TRUE(WriteBytes(dir.path() + "/staging/half-sealed.safetensors", "partial"));
  }
  const std::vector<std::string> before = ListFiles(dir.path() + "/blobs");
  EXPECT_EQ(before.size(), 4u);  // keep + owners, m1 owners, one temp file
  auto store = OpenStore(dir.path());
  EXPECT_EQ(ListFiles(dir.path() + "/blobs"),
            (std::vector<std::string>{"keep.owners.json", "keep.safetensors"}));
  EXPECT_TRUE(ListFiles(dir.path() + "/staging").empty());
  EXPECT_EQ(store->n_blobs(), 1);
  EXPECT_EQ(std::string(store->Get("keep", kAlice).value().bytes()), Blob(9));
  EXPECT_EQ(store->Get("m1", kAlice).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(store->Put("m1", kAlice, bytes).value().created);
}

TEST(FileBlobStoreTest, BlobWithoutOwnersIsKeptAndAdoptedByPut) {
  TempDir dir;
  {
    auto store = OpenStore(dir.path());
    ASSERT_TRUE(store->Put("m1", kAlice, Blob(0)).ok());
  }
  ASSERT_EQ(unlink((dir.path() + "/blobs/m1.owners.json").c_str()), 0);
  auto store = OpenStore(dir.path());
  EXPECT_EQ(store->n_blobs(), 1);
  EXPECT_EQ(store->Get("m1", kAlice).status().code(), absl::StatusCode::kNotFound);
  EXPECT_FALSE(store->Put("m1", kBob, Blob(0)).value().created);
  EXPECT_TRUE(store->Get("m1", kBob).ok());
}

TEST(FileBlobStoreTest, EvictsLeastRecentlyUsedFirst) {
  TempDir dir;
  const uint64_t size = Blob(0).size();
  auto store = OpenStore(dir.path(), 3 * size);
  ASSERT_TRUE(store->Put("a", kAlice, Blob(0)).ok());
  ASSERT_TRUE(store->Put("b", kAlice, Blob(1)).ok());
  ASSERT_TRUE(store->Put("c", kAlice, Blob(2)).ok());
  ASSERT_TRUE(store->Get("a", kAlice).ok());  // a is now the most recently used
  ASSERT_TRUE(store->Put("d", kAlice, Blob(3)).ok());
  EXPECT_EQ(store->Stat("b", kAlice).status().code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(store->Put("c", kBob, Blob(2)).ok());  // an idempotent Put also counts as a use
  ASSERT_TRUE(store->Put("e", kAlice, Blob(4)).ok());
  std::vector<std::string> ids;
  const BlobPage page = store->List(kAlice, 10, "").value();
  for (const StoredBlobStat& stat : page.blobs) {
    ids.push_back(stat.id);
  }
  EXPECT_EQ(ids, (std::vector<std::string>{"c", "d", "e"}));
  EXPECT_EQ(store->total_bytes(), 3 * size);
  EXPECT_EQ(ListFiles(dir.path() + "/blobs").size(), 6u);
}

TEST(FileBlobStoreTest, PinnedBlobsAreNotEvicted) {
  TempDir dir;
  const uint64_t size = Blob(0).size();
  auto store = OpenStore(dir.path(), 2 * size);
  ASSERT_TRUE(store->Put("a", kAlice, Blob(0)).ok());
  ASSERT_TRUE(store->Put("b", kAlice, Blob(1)).ok());
  {
    BlobHandle a = store->Get("a", kAlice).value();
    BlobHandle b = store->Get("b", kAlice).value();
    const absl::Status full = store->Put("c", kAlice, Blob(2)).status();
    EXPECT_EQ(full.code(), absl::StatusCode::kResourceExhausted);
    EXPECT_NE(full.message().find("pinned"), absl::string_view::npos) << full;
    EXPECT_EQ(store->n_blobs(), 2);  // a failed Put evicts nothing
    b = BlobHandle();                // unpin b only (move-assign releases)
    ASSERT_TRUE(store->Put("c", kAlice, Blob(2)).ok());
    EXPECT_EQ(store->Stat("b", kAlice).status().code(), absl::StatusCode::kNotFound);
    EXPECT_EQ(std::string(a.bytes()), Blob(0));
    EXPECT_EQ(store->Stat("a", kAlice).value().n_pins, 1);
  }
  EXPECT_EQ(store->Stat("a", kAlice).value().n_pins, 0);
  ASSERT_TRUE(store->Put("d", kAlice, Blob(3)).ok());
  EXPECT_EQ(store->Stat("a", kAlice).status().code(), absl::StatusCode::kNotFound);
  const absl::Status too_big = store->Put("e", kAlice, Blob(4) + std::string(1, ' ')).status();
  EXPECT_FALSE(too_big.ok());  // a corrupt blob is refused before the budget check
  auto big = FileBlobStore::Open({.dir = dir.path() + "/small", .max_bytes = size - 1}).value();
  EXPECT_EQ(big->Put("a", kAlice, Blob(0)).status().code(), absl::StatusCode::kResourceExhausted);
}

TEST(FileBlobStoreTest, HandlesOutliveDeleteAndMoves) {
  TempDir dir;
  auto store = OpenStore(dir.path());
  ASSERT_TRUE(store->Put("m1", kAlice, Blob(0)).ok());
  BlobHandle first = store->Get("m1", kAlice).value();
  BlobHandle second = store->Get("m1", kAlice).value();
  EXPECT_EQ(first.bytes().data(), second.bytes().data());  // one verified mapping, shared
  EXPECT_EQ(store->Stat("m1", kAlice).value().n_pins, 2);
  ASSERT_TRUE(store->Delete("m1", kAlice).ok());
  EXPECT_EQ(std::string(first.bytes()), Blob(0));
  // Re-creating the id while old handles live: their unpins do not touch the new entry.
  ASSERT_TRUE(store->Put("m1", kAlice, Blob(0)).ok());
  BlobHandle moved = std::move(first);
  moved = std::move(second);
  EXPECT_EQ(store->Stat("m1", kAlice).value().n_pins, 0);
}

TEST(FileBlobStoreTest, ListIsSortedAndPaged) {
  TempDir dir;
  auto store = OpenStore(dir.path());
  const std::string bytes = Blob(0);
  for (const char* id : {"e", "a", "d", "b", "c"}) ASSERT_TRUE(store->Put(id, kAlice, bytes).ok());
  ASSERT_TRUE(store->Put("bb", kBob, bytes).ok());
  std::vector<std::string> ids;
  std::string token;
  int pages = 0;
  do {
    BlobPage page = store->List(kAlice, 2, token).value();
    for (const StoredBlobStat& stat : page.blobs) ids.push_back(stat.id);
    token = page.next_page_token;
    ++pages;
  } while (!token.empty());
  EXPECT_EQ(ids, (std::vector<std::string>{"a", "b", "c", "d", "e"}));
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(store->List(kAlice, 0, "").value().blobs.size(), 1u);  // clamped to >= 1
  EXPECT_EQ(store->List(kAlice, 100, "").value().next_page_token, "");
  EXPECT_EQ(store->List(kAlice, 2, "../x").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(FileBlobStoreTest, RestartKeepsBlobsInMtimeLruOrder) {
  TempDir dir;
  const uint64_t size = Blob(0).size();
  {
    auto store = OpenStore(dir.path());
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(store->Put(absl::StrCat("m", i), kAlice, Blob(i)).ok());
  }
  SetMtime(dir.path() + "/blobs/m0.safetensors", 3000);
  SetMtime(dir.path() + "/blobs/m1.safetensors", 1000);
  SetMtime(dir.path() + "/blobs/m2.safetensors", 2000);
  // A smaller budget on restart evicts the least recently used (m1) at once.
  auto store = OpenStore(dir.path(), 2 * size);
  EXPECT_EQ(store->n_blobs(), 2);
  EXPECT_EQ(store->Stat("m1", kAlice).status().code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(store->Put("m3", kAlice, Blob(3)).ok());
  EXPECT_EQ(store->Stat("m2", kAlice).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(store->Stat("m0", kAlice).ok());
}

TEST(FileBlobStoreTest, OneStorePerDirectory) {
  TempDir dir;
  auto store = OpenStore(dir.path());
  EXPECT_EQ(FileBlobStore::Open({.dir = dir.path()}).status().code(),
            absl::StatusCode::kFailedPrecondition);
  store.reset();
  EXPECT_TRUE(FileBlobStore::Open({.dir = dir.path()}).ok());
  EXPECT_EQ(FileBlobStore::Open({.dir = ""}).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(FileBlobStoreTest, PutFileMovesAStagedBlob) {
  TempDir dir;
  auto store = OpenStore(dir.path());
  const std::string staged = store->staging_dir() + "/m1.safetensors";
  ASSERT_TRUE(WriteBytes(staged, Blob(0)));
  EXPECT_TRUE(store->PutFile("m1", kAlice, staged).value().created);
  EXPECT_TRUE(ListFiles(store->staging_dir()).empty());
  EXPECT_EQ(std::string(store->Get("m1", kAlice).value().bytes()), Blob(0));
  ASSERT_TRUE(WriteBytes(staged, Blob(0)));
  EXPECT_FALSE(store->PutFile("m1", kBob, staged).value().created);
  EXPECT_TRUE(ListFiles(store->staging_dir()).empty());  // consumed even when it existed
  std::string bad = Blob(1);
  bad[20] ^= 1;
  ASSERT_TRUE(WriteBytes(staged, bad));
  EXPECT_EQ(store->PutFile("m2", kAlice, staged).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(ListFiles(store->staging_dir()).size(), 1u);  // left for the caller
  EXPECT_EQ(store->PutFile("m1", kAlice, store->BlobPath("m1")).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(store->Get("m1", kAlice).ok());
}

TEST(FileBlobStoreTest, ConcurrentPutGetDelete) {
  TempDir dir;
  const uint64_t size = Blob(0).size();
  auto store = OpenStore(dir.path(), 6 * size);
  constexpr int kIds = 8;
  std::vector<std::string> blobs;
  for (int i = 0; i < kIds; ++i) blobs.push_back(Blob(i));
  std::atomic<int> created{0};
  std::atomic<int> unexpected{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 40; ++round) {
        const int i = (t * 7 + round * 3) % kIds;
        const std::string id = absl::StrCat("id", i);
        auto put = store->Put(id, kAlice, blobs[i]);
        if (put.ok() && put->created) ++created;
        // ResourceExhausted is possible while other threads pin most of the budget.
        if (!put.ok() && !absl::IsResourceExhausted(put.status())) ++unexpected;
        auto got = store->Get(id, kAlice);
        if (got.ok()) {
          if (std::string(got->bytes()) != blobs[i]) ++unexpected;
        } else if (!absl::IsNotFound(got.status())) {
          ++unexpected;  // evicted or deleted meanwhile is fine; anything else is not
        }
        if (round % 10 == t % 10) {
          const absl::Status deleted = store->Delete(id, kAlice);
          if (!deleted.ok() && !absl::IsNotFound(deleted)) ++unexpected;
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(unexpected.load(), 0);
  EXPECT_GE(created.load(), kIds);
  EXPECT_LE(store->total_bytes(), 6 * size);
  EXPECT_EQ(store->total_bytes(), static_cast<uint64_t>(store->n_blobs()) * size);
  // What the store believes is exactly what is on disk.
  EXPECT_EQ(ListFiles(dir.path() + "/blobs").size(), 2u * static_cast<size_t>(store->n_blobs()));
  store.reset();
  auto reopened = OpenStore(dir.path(), 6 * size);
  const BlobPage page = reopened->List(kAlice, 100, "").value();
  for (const StoredBlobStat& stat : page.blobs) {
    EXPECT_TRUE(reopened->Get(stat.id, kAlice).ok()) << stat.id;
  }
}

TEST(FileBlobStoreTest, ConcurrentPutsOfOneIdCreateItOnce) {
  TempDir dir;
  auto store = OpenStore(dir.path());
  const std::string bytes = Blob(0);
  std::atomic<int> created{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      auto put = store->Put("same", t % 2 == 0 ? kAlice : kBob, bytes);
      if (put.ok() && put->created) ++created;
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(created.load(), 1);
  EXPECT_TRUE(store->Get("same", kAlice).ok());
  EXPECT_TRUE(store->Get("same", kBob).ok());
}

}  // namespace
}  // namespace ctxmem::blob
