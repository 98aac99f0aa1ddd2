#include "common/blob/atomic_file.h"

#include <gtest/gtest.h>

#include <string>

#include "tests/unit/blob/test_blob.h"

namespace ctxmem::blob {
namespace {

using testing::ListFiles;
using testing::ReadBytes;
using testing::TempDir;
using testing::WriteBytes;

TEST(AtomicFileTest, CommitMakesTheFileAppearWhole) {
  TempDir dir;
  const std::string path = dir.File("out.bin");
  auto file = AtomicFile::Create(path).value();
  ASSERT_TRUE(file->Append("hello ").ok());
  // Nothing is visible under the final name before Commit.
  EXPECT_EQ(ListFiles(dir.path()).size(), 1u);
  EXPECT_TRUE(IsAtomicTempName(ListFiles(dir.path())[0]));
  ASSERT_TRUE(file->Append("world").ok());
  EXPECT_EQ(file->bytes_written(), 11u);
  ASSERT_TRUE(file->Commit().ok());
  EXPECT_EQ(ReadBytes(path), "hello world");
  EXPECT_EQ(ListFiles(dir.path()), std::vector<std::string>{"out.bin"});
  EXPECT_EQ(file->Commit().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(AtomicFileTest, DestroyingWithoutCommitLeavesNothing) {
  TempDir dir;
  {
    auto file = AtomicFile::Create(dir.File("out.bin")).value();
    ASSERT_TRUE(file->Append("partial").ok());
  }
  EXPECT_TRUE(ListFiles(dir.path()).empty());
}

TEST(AtomicFileTest, ReplacesAnExistingFileAtomically) {
  TempDir dir;
  const std::string path = dir.File("out.bin");
  ASSERT_TRUE(WriteBytes(path, "old"));
  ASSERT_TRUE(WriteFileAtomically(path, "new contents").ok());
  EXPECT_EQ(ReadBytes(path), "new contents");
  EXPECT_EQ(ListFiles(dir.path()), std::vector<std::string>{"out.bin"});
}

TEST(AtomicFileTest, FailAfterBytesLeavesOldFileAndNoTemp) {
  TempDir dir;
  const std::string path = dir.File("out.bin");
  ASSERT_TRUE(WriteBytes(path, "old"));
  for (int64_t limit : {0, 3, 9}) {
    auto file = AtomicFile::Create(path).value();
    file->ForTesting_SetFault({.fail_after_bytes = limit});
    absl::Status status = file->Append("0123456789");
    EXPECT_EQ(status.code(), absl::StatusCode::kInternal) << limit;
    EXPECT_EQ(file->bytes_written(), static_cast<uint64_t>(limit));
    EXPECT_EQ(file->Append("x").code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_EQ(file->Commit().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_EQ(ReadBytes(path), "old");
    EXPECT_EQ(ListFiles(dir.path()), std::vector<std::string>{"out.bin"});
  }
}

TEST(AtomicFileTest, FailBeforeRenameLeavesOldFileAndNoTemp) {
  TempDir dir;
  const std::string path = dir.File("out.bin");
  ASSERT_TRUE(WriteBytes(path, "old"));
  auto file = AtomicFile::Create(path).value();
  file->ForTesting_SetFault({.fail_before_rename = true});
  ASSERT_TRUE(file->Append("new").ok());
  EXPECT_EQ(file->Commit().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(ReadBytes(path), "old");
  EXPECT_EQ(ListFiles(dir.path()), std::vector<std::string>{"out.bin"});
}

TEST(AtomicFileTest, SimulatedCrashLeavesOnlyATempFile) {
  TempDir dir;
  const std::string path = dir.File("out.bin");
  {
    auto file = AtomicFile::Create(path).value();
    file->ForTesting_SetFault({.fail_after_bytes = 4, .abandon_temp = true});
    EXPECT_FALSE(file->Append("0123456789").ok());
  }
  const std::vector<std::string> files = ListFiles(dir.path());
  ASSERT_EQ(files.size(), 1u);
  EXPECT_TRUE(IsAtomicTempName(files[0]));
  EXPECT_EQ(ReadBytes(dir.File(files[0])), "0123");
}

TEST(AtomicFileTest, MissingDirectoryIsNotFound) {
  TempDir dir;
  EXPECT_EQ(AtomicFile::Create(dir.File("no/such/dir/out.bin")).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(AtomicFile::Create(dir.path() + "/").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(AtomicFileTest, RenameFileDurablyMovesTheFile) {
  TempDir dir;
  ASSERT_TRUE(WriteBytes(dir.File("a"), "payload"));
  ASSERT_TRUE(RenameFileDurably(dir.File("a"), dir.File("b")).ok());
  EXPECT_EQ(ListFiles(dir.path()), std::vector<std::string>{"b"});
  EXPECT_EQ(ReadBytes(dir.File("b")), "payload");
  EXPECT_EQ(RenameFileDurably(dir.File("a"), dir.File("c")).code(), absl::StatusCode::kNotFound);
}

TEST(AtomicFileTest, DirNameAndTempNames) {
  EXPECT_EQ(DirName("/a/b/c"), "/a/b");
  EXPECT_EQ(DirName("c"), ".");
  EXPECT_EQ(DirName("/c"), "/");
  EXPECT_TRUE(IsAtomicTempName(".tmp.x.1.2"));
  EXPECT_FALSE(IsAtomicTempName("x.tmp"));
}

}  // namespace
}  // namespace ctxmem::blob
