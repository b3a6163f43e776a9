#include "core/common/thread_pool.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <memory>

namespace aqlm {

namespace {
std::atomic<int> g_default_threads{0};
}

ThreadPool::ThreadPool(int n_threads) {
  n_threads = std::max(1, n_threads);
  for (int i = 1; i < n_threads; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  start_cv_.notify_all();
  for (auto& t : workers_) t.join();
}

static void run_part(const std::function<void(size_t, size_t, int)>& fn, size_t n, int parts, int index) {
  const size_t chunk = (n + size_t(parts) - 1) / size_t(parts);
  const size_t begin = std::min(n, chunk * size_t(index));
  const size_t end = std::min(n, begin + chunk);
  if (begin < end) fn(begin, end, index);
}

void ThreadPool::worker_loop(int index) {
  size_t seen = 0;
  for (;;) {
    const std::function<void(size_t, size_t, int)>* job;
    size_t n;
    int parts;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      start_cv_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      job = job_;
      n = job_n_;
      parts = job_parts_;
    }
    std::exception_ptr error;
    if (index < parts) {
      try {
        run_part(*job, n, parts, index);
      } catch (...) {
        error = std::current_exception();
      }
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (error && !job_error_) job_error_ = error;
      if (--pending_ == 0) done_cv_.notify_one();
    }
  }
}

void ThreadPool::parallel_for(size_t n, const std::function<void(size_t, size_t, int)>& fn, size_t min_chunk) {
  if (n == 0) return;
  const int parts = int(std::min<size_t>(size_t(size()), std::max<size_t>(1, n / std::max<size_t>(1, min_chunk))));
  if (parts <= 1 || workers_.empty()) {
    fn(0, n, 0);
    return;
  }
  std::lock_guard<std::mutex> call_lock(call_mutex_);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    job_ = &fn;
    job_n_ = n;
    job_parts_ = parts;
    pending_ = int(workers_.size());
    job_error_ = nullptr;
    ++generation_;
  }
  start_cv_.notify_all();
  std::exception_ptr error;
  try {
    run_part(fn, n, parts, 0);
  } catch (...) {
    error = std::current_exception();
  }
  std::unique_lock<std::mutex> lock(mutex_);
  done_cv_.wait(lock, [&] { return pending_ == 0; });
  if (!error) error = job_error_;
  if (error) std::rethrow_exception(error);
}

ThreadPool& ThreadPool::global() {
  static ThreadPool pool([] {
    const int n = g_default_threads.load();
    return n > 0 ? n : int(std::max(1u, std::thread::hardware_concurrency()));
  }());
  return pool;
}

void ThreadPool::set_default_threads(int n) { g_default_threads = n; }

}  // namespace aqlm
