#include "common/train/text_windows.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <numeric>
#include <set>

#include "tests/unit/test_files.h"

namespace ctxmem::train {
namespace {

std::vector<Book> Books() {
  std::vector<Book> books(3);
  books[0].name = "a";
  books[0].ids.resize(100);
  std::iota(books[0].ids.begin(), books[0].ids.end(), 0);
  books[1].name = "short";
  books[1].ids = {1, 2, 3};
  books[2].name = "b";
  books[2].ids.resize(50);
  std::iota(books[2].ids.begin(), books[2].ids.end(), 1000);
  return books;
}

TEST(TextWindowsTest, WindowsAreReproducibleAndStayInsideOneBook) {
  auto w = TextWindows::FromBooks(Books(), 10);
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ(w->n_books(), 2);
  EXPECT_EQ(w->n_skipped(), 1);
  EXPECT_EQ(w->n_tokens(), 150);
  std::set<int32_t> firsts;
  for (int64_t i = 0; i < 200; ++i) {
    std::vector<int32_t> a = w->Window(7, i);
    ASSERT_EQ(a.size(), 10u);
    EXPECT_EQ(a, w->Window(7, i));  // a pure function of (seed, index)
    for (size_t j = 1; j < a.size(); ++j) ASSERT_EQ(a[j], a[j - 1] + 1) << "crossed a book";
    EXPECT_TRUE(a[0] <= 90 || (a[0] >= 1000 && a[0] <= 1040)) << a[0];
    firsts.insert(a[0]);
  }
  EXPECT_GT(firsts.size(), 60u);  // spread over the 91 + 41 starts
  EXPECT_NE(w->Window(7, 0), w->Window(8, 0));
}

TEST(TextWindowsTest, RejectsTooShortData) {
  EXPECT_EQ(TextWindows::FromBooks(Books(), 101).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(TextWindows::FromBooks(Books(), 1).ok());
}

TEST(TextWindowsTest, LoadsASplitFolderAsBytesWithoutATokenizer) {
  ctxmem::testing::TempDir dir;
  std::filesystem::create_directories(dir.File("train"));
  ASSERT_TRUE(ctxmem::testing::WriteBytes(dir.File("train/b.txt"), "hello world, again"));
  ASSERT_TRUE(ctxmem::testing::WriteBytes(dir.File("train/a.txt"), "abcdefgh"));
  ASSERT_TRUE(ctxmem::testing::WriteBytes(dir.File("train/notes.md"), "ignored"));
  auto w = TextWindows::Load(dir.path(), "train", nullptr, 320, 8);
  ASSERT_TRUE(w.ok()) << w.status();
  ASSERT_EQ(w->n_books(), 2);
  EXPECT_EQ(w->books()[0].name, "a");
  EXPECT_EQ(w->books()[0].ids, (std::vector<int32_t>{'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'}));
  EXPECT_EQ(TextWindows::Load(dir.path(), "validation", nullptr, 320, 8).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(TextWindows::Load(dir.path(), "train", nullptr, 100, 8).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ctxmem::train
