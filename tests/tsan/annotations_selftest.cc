// Shows that the TSan build can fail (ctest tsan_selftest_clean / tsan_selftest_race): two
// threads update a counter under an absl::Mutex and hand a value over through an
// absl::Notification. Without tests/tsan/absl_mutex_annotations.cc TSan reports both as races
// (the system Abseil is not instrumented); with it, none. Given any argument, both threads
// also update an unguarded counter, a real race that TSan must still report.
#include <absl/synchronization/mutex.h>
#include <absl/synchronization/notification.h>

#include <cstdio>
#include <thread>

namespace {

absl::Mutex mu;
int guarded = 0;    // under mu
int unguarded = 0;  // the race, when asked for
int handed = 0;     // written before Notify, read after WaitForNotification

}  // namespace

int main(int argc, char**) {
  const bool race = argc > 1;
  absl::Notification done;
  std::thread worker([&] {
    for (int i = 0; i < 1000; ++i) {
      absl::MutexLock lock(&mu);
      ++guarded;
    }
    if (race) ++unguarded;
    handed = 1;
    done.Notify();
  });
  for (int i = 0; i < 1000; ++i) {
    absl::MutexLock lock(&mu);
    ++guarded;
  }
  if (race) ++unguarded;
  done.WaitForNotification();
  const int seen = handed;
  worker.join();
  std::printf("guarded=%d handed=%d\n", guarded, seen);
  return guarded == 2000 && seen == 1 ? 0 : 1;
}
