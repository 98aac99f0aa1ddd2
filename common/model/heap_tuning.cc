#include "common/model/heap_tuning.h"

#include <cstdlib>
#include <cstring>
#include <mutex>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace ctxmem::model {

bool TuneHeapForTensors() {
  static std::once_flag once;
  static bool applied = false;
  std::call_once(once, [] {
    const char* off = std::getenv("CTXMEM_HEAP_TUNING");
    if (off != nullptr && std::strcmp(off, "0") == 0) return;
    const char* tunables = std::getenv("GLIBC_TUNABLES");
    if (tunables != nullptr && std::strstr(tunables, "glibc.malloc.") != nullptr) return;
#if defined(__GLIBC__)
    // mallopt returns 1 on success. Setting M_MMAP_THRESHOLD also turns glibc's dynamic
    // threshold off, so it stays where we put it.
    applied = mallopt(M_MMAP_THRESHOLD, static_cast<int>(kHeapMmapThreshold)) == 1 &&
              mallopt(M_TRIM_THRESHOLD, static_cast<int>(kHeapTrimThreshold)) == 1;
#endif
  });
  return applied;
}

}  // namespace ctxmem::model
