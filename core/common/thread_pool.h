#pragma once
// A fixed pool of worker threads for data-parallel loops (matmuls, attention heads, k-means).
// parallel_for splits [0, n) into contiguous chunks, one per thread, and waits for all.
//
// Decode makes several short parallel regions per layer (tens of microseconds each), so a
// dispatch must cost far less than a futex wake-up: between regions the workers poll the
// job counter for up to kSpinMicros before they sleep on a condition variable. A chunk
// is claimed by whoever gets to it first: the calling thread runs its own chunk and then
// any chunk whose worker has not started yet (a worker that is asleep or preempted on a
// loaded machine), so it only ever waits for chunks that are already running.
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace aqlm {

class ThreadPool {
 public:
  // How long an idle thread polls for the next job (or the caller for the workers' end)
  // before it sleeps.
  static constexpr int kSpinMicros = 200;

  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return int(workers_.size()) + 1; }
  // fn(begin, end, thread_index) on chunk `thread_index` of parts = min(size(), n / min_chunk)
  // equal contiguous chunks (the split depends only on n, min_chunk and size()). Each chunk
  // runs exactly once, on the calling thread or a worker; thread_index names the chunk, so
  // per-thread scratch indexed by it is never used by two chunks at once. Rethrows the first
  // exception any chunk threw, after every chunk has finished. One parallel_for at a time
  // per pool (calls from several threads wait their turn).
  void parallel_for(size_t n, const std::function<void(size_t, size_t, int)>& fn, size_t min_chunk = 1);

  // The process-wide pool, sized by set_default_threads() or the hardware.
  static ThreadPool& global();
  static void set_default_threads(int n);  // call before the first global()

 private:
  static constexpr int kMaxThreads = 256;
  void worker_loop(int index);
  bool claim(int chunk, uint64_t generation);
  void run_chunk(int chunk) noexcept;  // records a thrown exception in job_error_

  std::vector<std::thread> workers_;
  std::mutex call_mutex_;  // one parallel_for at a time per pool

  // The current job: written by the caller before it bumps generation_, read by a thread
  // only after it claimed a chunk of that generation (which the caller waits for).
  const std::function<void(size_t, size_t, int)>* job_ = nullptr;
  size_t job_n_ = 0;
  int job_parts_ = 0;
  // (generation << 16) | parts of the current job, published in one word: a worker decides
  // from it alone whether it has a chunk, so it never reads the fields of a job it has no
  // claim in (the caller does not wait for such a worker and may already be writing the next).
  std::atomic<uint64_t> job_word_{0};
  uint64_t generation_ = 0;  // the caller's count, under call_mutex_
  std::atomic<uint64_t> claimed_[kMaxThreads] = {};  // generation each chunk was last claimed for
  std::atomic<int> unfinished_{0};                   // chunks 1.. of the current job still running or unclaimed
  std::atomic<int> sleeping_workers_{0};
  std::atomic<bool> caller_sleeping_{false};
  std::atomic<bool> stop_{false};

  std::mutex mutex_;  // for sleeping on the condition variables, and job_error_
  std::condition_variable start_cv_, done_cv_;
  std::exception_ptr job_error_;  // the first exception a chunk threw
};

}  // namespace aqlm
