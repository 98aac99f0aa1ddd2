// Disk full and I/O errors in the blob writers and readers:
//  - injected faults (AtomicFileFault::write_errno / sync_errno = ENOSPC, everywhere): a full
//    disk during a seal or a Put is RESOURCE_EXHAUSTED, leaves nothing partial, and the store
//    keeps serving;
//  - a real full filesystem (a small tmpfs mounted for the test; skipped with a message where
//    mount(2) is not allowed, e.g. unprivileged CI containers): the same, from the kernel;
//  - the decoder's disk cache: a full disk costs only the disk copy, and a cached file that
//    cannot be read is fetched again instead of failing the request.

#include <errno.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/blob/atomic_file.h"
#include "common/blob/blob_cache.h"
#include "common/blob/file_blob_store.h"
#include "common/blob/memory_blob.h"
#include "tests/unit/blob/test_blob.h"

namespace ctxmem::blob {
namespace {

using testing::ListFiles;
using testing::ReadBytes;
using testing::SealTestBlob;
using testing::TempDir;
using weights::StDtype;

constexpr char kAlice[] = "alice";

std::string Id(int i) {
  std::string id(64, '0');
  const std::string tail = absl::StrCat(i);
  id.replace(64 - tail.size(), tail.size(), tail);
  return id;
}

// A blob of roughly 2 * 2 * 8 * n_kept * 2 bytes of K/V plus the header.
std::string Blob(int salt, int64_t n_kept = 64) {
  return SealTestBlob(StDtype::kBF16, 2, n_kept, salt, Id(salt));
}

std::unique_ptr<FileBlobStore> OpenStore(const std::string& dir) {
  auto store = FileBlobStore::Open({.dir = dir});
  EXPECT_TRUE(store.ok()) << store.status();
  return store.ok() ? *std::move(store) : nullptr;
}

std::vector<std::string> NonTempFiles(const std::string& dir) {
  std::vector<std::string> out;
  for (const std::string& f : ListFiles(dir)) {
    EXPECT_FALSE(IsAtomicTempName(f)) << "temp file left behind: " << f;
    out.push_back(f);
  }
  return out;
}

// A tmpfs of `bytes` mounted on a temp dir for the test's lifetime; ok() false (with why())
// where mounting is not allowed.
class SmallFilesystem {
 public:
  explicit SmallFilesystem(uint64_t bytes) {
    if (dir_.path().empty()) {
      why_ = "no temp dir";
      return;
    }
    const std::string options = absl::StrCat("size=", bytes, ",mode=0700");
    if (mount("ctxmem-test", dir_.path().c_str(), "tmpfs", MS_NOSUID | MS_NODEV, options.c_str()) !=
        0) {
      why_ = absl::StrCat("cannot mount a ", bytes, "-byte tmpfs on ", dir_.path(), ": ",
                          std::strerror(errno), " (needs root / CAP_SYS_ADMIN)");
      return;
    }
    mounted_ = true;
  }
  ~SmallFilesystem() {
    if (mounted_) umount2(dir_.path().c_str(), MNT_DETACH);
  }
  bool ok() const { return mounted_; }
  const std::string& why() const { return why_; }
  const std::string& path() const { return dir_.path(); }

 private:
  TempDir dir_;
  bool mounted_ = false;
  std::string why_;
};

// --- injected faults: run everywhere --------------------------------------------------------

TEST(DiskFullTest, AtomicFileEnospcIsResourceExhaustedAndLeavesNothing) {
  TempDir dir;
  const std::string path = dir.File("out.bin");
  ASSERT_TRUE(WriteFileAtomically(path, "old contents").ok());
  {
    auto file = AtomicFile::Create(path).value();
    file->ForTesting_SetFault({.fail_after_bytes = 5, .write_errno = ENOSPC});
    const absl::Status s = file->Append("0123456789");
    EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
    EXPECT_NE(s.message().find("No space left on device"), std::string::npos) << s;
    EXPECT_EQ(file->Commit().code(), absl::StatusCode::kFailedPrecondition);
  }
  {
    auto file = AtomicFile::Create(path).value();
    file->ForTesting_SetFault({.sync_errno = ENOSPC});  // delayed allocation fails at fsync
    ASSERT_TRUE(file->Append("0123456789").ok());
    EXPECT_EQ(file->Commit().code(), absl::StatusCode::kResourceExhausted);
  }
  {
    auto file = AtomicFile::Create(path).value();
    file->ForTesting_SetFault({.sync_errno = EIO});
    ASSERT_TRUE(file->Append("0123456789").ok());
    EXPECT_EQ(file->Commit().code(), absl::StatusCode::kInternal);
  }
  EXPECT_EQ(ReadBytes(path), "old contents");
  EXPECT_EQ(NonTempFiles(dir.path()), std::vector<std::string>{"out.bin"});
}

TEST(DiskFullTest, StorePutOnFullDiskIsResourceExhaustedAndStoreKeepsServing) {
  TempDir dir;
  auto store = OpenStore(dir.path());
  ASSERT_TRUE(store->Put(Id(1), kAlice, Blob(1)).ok());
  const std::string bytes = Blob(2);
  for (int64_t at : {int64_t{0}, static_cast<int64_t>(bytes.size() / 2)}) {
    store->ForTesting_SetNextWriteFault({.fail_after_bytes = at, .write_errno = ENOSPC});
    const absl::Status s = store->Put(Id(2), kAlice, bytes).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
    EXPECT_EQ(store->Get(Id(2), kAlice).status().code(), absl::StatusCode::kNotFound);
    EXPECT_EQ(NonTempFiles(dir.path() + "/blobs"),
              (std::vector<std::string>{Id(1) + ".owners.json", Id(1) + ".safetensors"}));
  }
  store->ForTesting_SetNextWriteFault({.sync_errno = ENOSPC});
  EXPECT_EQ(store->Put(Id(2), kAlice, bytes).status().code(), absl::StatusCode::kResourceExhausted);
  // Still serving: the old blob reads back and verifies, the failed one can be stored later.
  EXPECT_EQ(std::string(store->Get(Id(1), kAlice).value().bytes()), Blob(1));
  EXPECT_EQ(store->n_blobs(), 1);
  EXPECT_EQ(store->total_bytes(), Blob(1).size());
  EXPECT_TRUE(store->Put(Id(2), kAlice, bytes).value().created);
  EXPECT_TRUE(VerifyBlob(ReadBytes(store->BlobPath(Id(2)))).ok());
}

TEST(DiskFullTest, CacheWriteFailureCostsOnlyTheDiskCopy) {
  TempDir dir;
  // The cache directory is replaced by a file: every disk write fails (ENOTDIR), yet Get
  // serves the fetched blob.
  auto cache = BlobCache::Open({.dir = dir.File("real"),
                                .ram_max_bytes = 1 << 20,
                                .disk_max_bytes = 1 << 20,
                                .expect = {}})
                   .value();
  std::filesystem::remove_all(dir.File("real"));
  ASSERT_TRUE(testing::WriteBytes(dir.File("real"), "not a directory"));
  int fetches = 0;
  const std::string bytes = Blob(3);
  auto fetch = [&]() -> absl::StatusOr<CachedBlob> {
    ++fetches;
    CachedBlob blob;
    blob.bytes = bytes;
    blob.info = VerifyBlob(bytes).value();
    return blob;
  };
  auto got = cache->Get(Id(3), kAlice, fetch);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->blob->bytes, bytes);
  EXPECT_EQ(cache->disk_entries(), 0);
  EXPECT_EQ(cache->ram_entries(), 1);
  EXPECT_EQ(fetches, 1);
}

TEST(DiskFullTest, UnreadableCachedBlobIsFetchedAgain) {
  TempDir dir;
  const std::string bytes = Blob(4);
  int fetches = 0;
  auto fetch = [&]() -> absl::StatusOr<CachedBlob> {
    ++fetches;
    CachedBlob blob;
    blob.bytes = bytes;
    blob.info = VerifyBlob(bytes).value();
    return blob;
  };
  BlobCacheOptions options{.dir = dir.File("cache"),
                           .ram_max_bytes = 0,  // disk tier only
                           .disk_max_bytes = 1 << 20,
                           .expect = {}};
  {
    auto cache = BlobCache::Open(options).value();
    ASSERT_TRUE(cache->Get(Id(4), kAlice, fetch).ok());
    ASSERT_EQ(cache->disk_entries(), 1);
  }
  ASSERT_EQ(fetches, 1);
  // Replace the cached file by something open(2) accepts and read(2) fails on (EISDIR): a real
  // read error from the kernel, not a checksum mismatch.
  const std::vector<std::string> files = ListFiles(options.dir);
  ASSERT_EQ(files.size(), 1u);
  const std::string cached = options.dir + "/" + files[0];
  auto cache = BlobCache::Open(options).value();  // indexes the file by name and size
  ASSERT_EQ(cache->disk_entries(), 1);
  std::filesystem::remove(cached);
  ASSERT_EQ(mkdir(cached.c_str(), 0700), 0);
  auto got = cache->Get(Id(4), kAlice, fetch);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->source, CacheSource::kFetch);
  EXPECT_TRUE(got->dropped_corrupt);
  EXPECT_EQ(got->blob->bytes, bytes);
  EXPECT_EQ(fetches, 2);
}

// --- a real full filesystem: needs mount(2) -------------------------------------------------

TEST(DiskFullTest, RealFullFilesystemDuringSealAndPut) {
  SmallFilesystem fs(256 << 10);
  if (!fs.ok()) GTEST_SKIP() << fs.why();
  auto store = OpenStore(fs.path() + "/store");
  ASSERT_NE(store, nullptr);
  // Put blobs of ~32 KiB until the 256 KiB filesystem is full.
  std::vector<int> stored;
  absl::Status full;
  for (int i = 1; i <= 64 && full.ok(); ++i) {
    absl::StatusOr<PutResult> put = store->Put(Id(i), kAlice, Blob(i, 512));
    if (put.ok()) {
      stored.push_back(i);
    } else {
      full = put.status();
    }
  }
  ASSERT_FALSE(full.ok()) << "a 256 KiB tmpfs never filled up";
  EXPECT_EQ(full.code(), absl::StatusCode::kResourceExhausted) << full;
  EXPECT_NE(full.message().find("No space left on device"), std::string::npos) << full;
  ASSERT_FALSE(stored.empty());
  // Sealing straight into the full filesystem (the compressor's staging file) fails the same way.
  {
    testing::TestBlob blob = testing::MakeTestBlob(StDtype::kBF16, 2, 512, 99, Id(99));
    absl::StatusOr<uint64_t> sealed =
        SealBlobToFile(blob.tensors, blob.metadata, store->staging_dir() + "/x.safetensors");
    EXPECT_EQ(sealed.status().code(), absl::StatusCode::kResourceExhausted) << sealed.status();
  }
  // Nothing partial is visible, every stored blob still verifies, and the store keeps serving.
  EXPECT_TRUE(NonTempFiles(store->staging_dir()).empty());
  NonTempFiles(fs.path() + "/store/blobs");
  EXPECT_EQ(store->Get(Id(static_cast<int>(stored.size()) + 1), kAlice).status().code(),
            absl::StatusCode::kNotFound);
  for (int i : stored) {
    BlobHandle h = store->Get(Id(i), kAlice).value();
    EXPECT_TRUE(VerifyBlob(h.bytes()).ok()) << i;
  }
  EXPECT_EQ(store->n_blobs(), static_cast<int64_t>(stored.size()));
  // Freeing space lets the next Put through.
  ASSERT_TRUE(store->Delete(Id(stored.front()), kAlice).ok());
  const int next = static_cast<int>(stored.size()) + 1;
  EXPECT_TRUE(store->Put(Id(next), kAlice, Blob(next, 512)).ok());
  // A reopened store (restart) sees exactly the complete blobs.
  store.reset();
  store = OpenStore(fs.path() + "/store");
  EXPECT_EQ(store->n_blobs(), static_cast<int64_t>(stored.size()));
}

TEST(DiskFullTest, RealFullFilesystemUnderTheDecoderCache) {
  SmallFilesystem fs(64 << 10);
  if (!fs.ok()) GTEST_SKIP() << fs.why();
  auto cache = BlobCache::Open({.dir = fs.path() + "/cache",
                                .ram_max_bytes = 1 << 20,
                                .disk_max_bytes = 1 << 30,  // budget above the real space
                                .expect = {}})
                   .value();
  for (int i = 1; i <= 8; ++i) {
    const std::string bytes = Blob(i, 512);  // ~32 KiB: the disk holds one at most
    auto fetch = [&]() -> absl::StatusOr<CachedBlob> {
      CachedBlob blob;
      blob.bytes = bytes;
      blob.info = VerifyBlob(bytes).value();
      return blob;
    };
    auto got = cache->Get(Id(i), kAlice, fetch);
    ASSERT_TRUE(got.ok()) << i << ": " << got.status();
    EXPECT_EQ(got->blob->bytes, bytes);
  }
  EXPECT_LT(cache->disk_entries(), 8);
  EXPECT_TRUE(NonTempFiles(fs.path() + "/cache").size() <= 2u);
}

}  // namespace
}  // namespace ctxmem::blob
