#pragma once
// A fixed pool of worker threads for data-parallel loops (matmuls, attention heads, k-means).
// parallel_for splits [0, n) into contiguous chunks, one per thread, and waits for all.
#include <condition_variable>
#include <exception>
#include <cstddef>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace aqlm {

class ThreadPool {
 public:
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return int(workers_.size()) + 1; }
  // fn(begin, end, thread_index); the calling thread takes part as thread 0.
  void parallel_for(size_t n, const std::function<void(size_t, size_t, int)>& fn, size_t min_chunk = 1);

  // The process-wide pool, sized by set_default_threads() or the hardware.
  static ThreadPool& global();
  static void set_default_threads(int n);  // call before the first global()

 private:
  void worker_loop(int index);

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable start_cv_, done_cv_;
  const std::function<void(size_t, size_t, int)>* job_ = nullptr;
  size_t job_n_ = 0;
  int job_parts_ = 0;
  size_t generation_ = 0;
  int pending_ = 0;
  bool stop_ = false;
  std::exception_ptr job_error_;  // the first exception a worker threw
  std::mutex call_mutex_;  // one parallel_for at a time per pool
};

}  // namespace aqlm
