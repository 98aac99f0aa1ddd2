#include "common/model/spin_pool.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

// Protocol: a region is job_, then ticket_ opened for its generation, then the generation_ bump
// that wakes the workers. A worker that sees generation g joins by incrementing ticket_'s
// count, which only succeeds while ticket_ still holds g and is open; only then does it read
// job_. The caller, out of chunks, closes ticket_ (no join can succeed after that) and waits
// until done_ reaches the count it closed with, so job_ is never rewritten while a worker that
// joined still reads it, and a worker that never joined is never waited for.

namespace ctxmem::model {
namespace {

using Clock = std::chrono::steady_clock;

thread_local bool t_in_region = false;

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#endif
}

int SpinUsFromEnv() {
  const char* env = std::getenv("CTXMEM_SPIN_US");
  if (env == nullptr || *env == '\0') return 200;
  char* end = nullptr;
  const long v = std::strtol(env, &end, 10);
  if (end == env || *end != '\0' || v < 0) return 200;
  return static_cast<int>(std::min<long>(v, 100000));
}

}  // namespace

SpinPool& SpinPool::Shared() {
  static SpinPool* pool = new SpinPool(SpinUsFromEnv());  // never destroyed (see header)
  return *pool;
}

SpinPool::SpinPool(int spin_us) : spin_us_(std::max(0, spin_us)) {}

SpinPool::~SpinPool() {
  absl::MutexLock lock(&run_mu_);
  stop_.store(true);
  generation_.fetch_add(1);
  generation_.notify_all();
  for (std::thread& t : workers_) t.join();
}

void SpinPool::EnsureWorkers(int n) {
  while (static_cast<int>(workers_.size()) < n) {
    const int slot = static_cast<int>(workers_.size()) + 1;
    workers_.emplace_back([this, slot, seen = generation_.load()] {
      t_in_region = true;  // anything a worker runs is inside a region: nested calls run inline
      uint32_t last = seen;
      while (true) {
        uint32_t g = generation_.load(std::memory_order_acquire);
        Clock::time_point t0 = Clock::now();
        for (int64_t spins = 1; g == last; ++spins) {
          if ((spins & 255) == 0 && Clock::now() - t0 >= std::chrono::microseconds(spin_us_)) {
            sleeping_.fetch_add(1);
            generation_.wait(last);  // returns at once if generation_ moved meanwhile
            sleeping_.fetch_sub(1);
            t0 = Clock::now();
          } else {
            CpuRelax();
          }
          g = generation_.load(std::memory_order_acquire);
        }
        last = g;
        if (stop_.load()) return;
        if (!Join(g)) continue;  // closed already: the caller took every chunk
        const Job job = job_;
        if (slot <= job.n_workers) RunChunks(job, slot);
        done_.fetch_add(1, std::memory_order_release);
      }
    });
  }
}

bool SpinPool::Join(uint32_t g) {
  uint64_t t = ticket_.load(std::memory_order_acquire);
  while ((t >> 32) == g && (t & kClosed) == 0) {
    if (ticket_.compare_exchange_weak(t, t + 1, std::memory_order_acq_rel)) return true;
  }
  return false;
}

void SpinPool::RunChunks(const Job& job, int slot) {
  while (true) {
    const int64_t c = next_chunk_.fetch_add(1, std::memory_order_relaxed);
    if (c >= job.n_chunks) return;
    const int64_t begin = c * job.grain;
    (*job.fn)(begin, std::min(job.n, begin + job.grain), slot);
  }
}

void SpinPool::ParallelFor(int64_t n, int64_t grain, int n_threads, ChunkFn fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  const int64_t n_chunks = (n + grain - 1) / grain;
  if (n_threads <= 1 || n_chunks <= 1 || t_in_region || !run_mu_.TryLock()) {
    fn(0, n, 0);
    return;
  }
  EnsureWorkers(n_threads - 1);
  job_ = {&fn, n, grain, n_chunks,
          static_cast<int>(std::min<int64_t>(n_threads - 1, n_chunks - 1))};
  next_chunk_.store(0, std::memory_order_relaxed);
  done_.store(0, std::memory_order_relaxed);
  const uint32_t g = generation_.load(std::memory_order_relaxed) + 1;
  ticket_.store(uint64_t{g} << 32);  // open, nobody joined; publishes job_
  generation_.store(g);              // seq_cst: ordered before the sleeping_ check
  if (sleeping_.load() > 0) generation_.notify_all();
  t_in_region = true;
  RunChunks(job_, 0);
  t_in_region = false;
  const int joined = static_cast<int>(ticket_.fetch_or(kClosed) & (kClosed - 1));
  // The workers that joined finish their chunks; yield once the wait outlasts the spin window,
  // so a worker the OS has descheduled mid-chunk gets the CPU back.
  const Clock::time_point t0 = Clock::now();
  for (int64_t spins = 1; done_.load(std::memory_order_acquire) < joined; ++spins) {
    if ((spins & 255) == 0 && Clock::now() - t0 >= std::chrono::microseconds(spin_us_)) {
      std::this_thread::yield();
    } else {
      CpuRelax();
    }
  }
  run_mu_.Unlock();
}

}  // namespace ctxmem::model
