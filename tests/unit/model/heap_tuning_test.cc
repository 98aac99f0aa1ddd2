#include "common/model/heap_tuning.h"

#include <gtest/gtest.h>
#include <malloc.h>

#include <cstdlib>
#include <cstring>

namespace ctxmem::model {
namespace {

// 100 blocks of 1 MiB, touched and freed: the free bytes the heap still holds afterwards, in MiB
// (mallinfo2's fordblks). Tuned, the blocks come from the heap (below the 64 MiB mmap threshold)
// and their 100 MiB stay mapped (below the 128 MiB trim threshold); by default they are mmapped
// (glibc's dynamic threshold starts at 128 KiB) or trimmed (its trim threshold is at most
// 64 MiB), so far less stays.
int HeldMibAfterBurst() {
  constexpr int kBlocks = 100;
  constexpr size_t kBlock = size_t{1} << 20;
  void* p[kBlocks];
  for (auto& b : p) {
    b = std::malloc(kBlock);
    std::memset(b, 1, kBlock);
  }
  for (auto* b : p) std::free(b);
  return static_cast<int>(mallinfo2().fordblks >> 20);
}

bool MallocTunablesSet() {
  const char* t = std::getenv("GLIBC_TUNABLES");
  return t != nullptr && std::strstr(t, "glibc.malloc.") != nullptr;
}

// Each check runs in a fresh process (re-executed, not forked): the tuning is once per process,
// and other tests in this binary may have applied it already by loading a model.
TEST(HeapTuningTest, FreedActivationBuffersStayMapped) {
  if (MallocTunablesSet()) GTEST_SKIP() << "GLIBC_TUNABLES sets malloc tunables";
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        ::unsetenv("CTXMEM_HEAP_TUNING");
        if (!TuneHeapForTensors()) std::_Exit(2);
        std::_Exit(HeldMibAfterBurst() >= 90 ? 0 : 3);
      },
      ::testing::ExitedWithCode(0), "");
}

// CTXMEM_HEAP_TUNING=0 leaves glibc's defaults, under which the check above fails.
TEST(HeapTuningTest, DisabledLeavesGlibcDefaults) {
  if (MallocTunablesSet()) GTEST_SKIP() << "GLIBC_TUNABLES sets malloc tunables";
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        ::setenv("CTXMEM_HEAP_TUNING", "0", 1);
        if (TuneHeapForTensors()) std::_Exit(2);
        std::_Exit(HeldMibAfterBurst() < 90 ? 0 : 3);
      },
      ::testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace ctxmem::model
