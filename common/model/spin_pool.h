#pragma once
// SpinPool: the worker threads of the packed decode's parallel regions (QMatMul's row split,
// the batched and single-stream attention). A decode step runs ~150 short regions back to back
// (4 products and one attention per layer, 10-500 us each); waking OpenMP's sleeping threads
// for each costs ~40 us under OMP_WAIT_POLICY=passive (docs/runtime.md "Threads"), while
// spinning OpenMP threads (libgomp's default) keep burning CPU for ~300k iterations after every
// region, in every thread that ever ran one. Here a worker spins for at most `spin_us`
// (CTXMEM_SPIN_US, default 200) after its last region, then sleeps on a futex: inside a step
// the next region finds it awake (a wake-up costs ~1 us), between steps and when the server is
// idle it costs nothing. Chunks are taken dynamically (an atomic counter), and a worker joins
// a region only while it is open: the caller closes it once the chunks are gone and then waits
// only for the workers that joined, so a worker still waking up, or one the OS has not
// scheduled (two test processes on two cores), never holds the caller back.
// Thread-safety: thread-safe. One region runs at a time; a caller that finds the pool busy
// (another thread's region) or that calls from inside a region runs its work inline.

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/synchronization/mutex.h"

namespace ctxmem::model {

class SpinPool {
 public:
  // fn(begin, end, slot): one chunk [begin, end) of the range, on slot `slot` (0 = the caller,
  // 1.. = workers; distinct among chunks running at the same time: per-thread scratch).
  using ChunkFn = absl::FunctionRef<void(int64_t begin, int64_t end, int slot)>;

  // The process-wide pool (workers start on first use; they are never joined: the pool lives
  // until exit, like OpenMP's threads).
  static SpinPool& Shared();

  // A pool with its own workers (tests); joins them on destruction.
  explicit SpinPool(int spin_us);
  ~SpinPool();
  SpinPool(const SpinPool&) = delete;
  SpinPool& operator=(const SpinPool&) = delete;

  // Runs fn over [0, n) in chunks of `grain` items (the last may be shorter) on up to
  // `n_threads` threads, the caller included, and returns when every chunk is done. n_threads
  // <= 1, one chunk, a busy pool or a nested call: fn(0, n, 0) on the caller.
  void ParallelFor(int64_t n, int64_t grain, int n_threads, ChunkFn fn);

  // True when workers spin between regions (spin_us > 0): splitting small work pays.
  bool spins() const { return spin_us_ > 0; }

 private:
  struct Job {
    const ChunkFn* fn = nullptr;
    int64_t n = 0, grain = 1, n_chunks = 0;
    int n_workers = 0;  // workers taking part (slots 1 .. n_workers)
  };
  // ticket_: generation << 32 | kClosed once closed | workers joined.
  static constexpr uint64_t kClosed = uint64_t{1} << 31;

  void EnsureWorkers(int n) ABSL_EXCLUSIVE_LOCKS_REQUIRED(run_mu_);
  void RunChunks(const Job& job, int slot);
  // Joins the region of generation g if it is still open; false when it is closed or gone.
  bool Join(uint32_t g);

  const int spin_us_;
  absl::Mutex run_mu_;  // one region at a time; guards workers_ and job_ writes
  std::vector<std::thread> workers_ ABSL_GUARDED_BY(run_mu_);
  Job job_;  // written before the region opens; read only by workers that joined it
  std::atomic<uint32_t> generation_{0};  // the futex word: bumped once per region (and at stop)
  std::atomic<uint64_t> ticket_{0};      // the open region's join state (kClosed)
  std::atomic<int64_t> next_chunk_{0};   // the region's next chunk to take
  std::atomic<int> done_{0};             // workers of the region that finished
  std::atomic<int> sleeping_{0};         // workers blocked in generation_.wait
  std::atomic<bool> stop_{false};
};

}  // namespace ctxmem::model
