#include "common/weights/mapped_file.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "tests/unit/weights/test_files.h"

namespace ctxmem::weights {
namespace {

TEST(MappedFileTest, MapsWholeFile) {
  testing::TempDir dir;
  ASSERT_TRUE(testing::WriteBytes(dir.File("a.bin"), "hello mapping"));
  absl::StatusOr<std::unique_ptr<MappedFile>> file = MappedFile::Open(dir.File("a.bin"));
  ASSERT_TRUE(file.ok()) << file.status();
  ASSERT_EQ((*file)->size(), 13u);
  EXPECT_EQ(std::memcmp((*file)->data(), "hello mapping", 13), 0);
}

TEST(MappedFileTest, EmptyFileHasNoData) {
  testing::TempDir dir;
  ASSERT_TRUE(testing::WriteBytes(dir.File("empty"), ""));
  absl::StatusOr<std::unique_ptr<MappedFile>> file = MappedFile::Open(dir.File("empty"));
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ((*file)->size(), 0u);
  EXPECT_EQ((*file)->data(), nullptr);
}

TEST(MappedFileTest, MissingFileIsNotFoundAndNamesPath) {
  testing::TempDir dir;
  const std::string path = dir.File("missing.gguf");
  absl::StatusOr<std::unique_ptr<MappedFile>> file = MappedFile::Open(path);
  EXPECT_EQ(file.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(file.status().message().find(path), absl::string_view::npos);
}

TEST(MappedFileTest, DirectoryIsInvalidArgument) {
  testing::TempDir dir;
  absl::StatusOr<std::unique_ptr<MappedFile>> file = MappedFile::Open(dir.path());
  EXPECT_FALSE(file.ok());
  EXPECT_NE(file.status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace ctxmem::weights
