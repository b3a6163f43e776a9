#include "core/common/thread_pool.h"

#include <algorithm>
#include <chrono>

#include "core/common/error.h"

namespace aqlm {

namespace {

std::atomic<int> g_default_threads{0};

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// Polls ready() for up to ThreadPool::kSpinMicros; true as soon as it holds.
template <typename Ready>
bool spin_until(Ready ready) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(ThreadPool::kSpinMicros);
  for (unsigned i = 1;; ++i) {
    if (ready()) return true;
    cpu_relax();
    if (i % 32 == 0 && std::chrono::steady_clock::now() > deadline) return ready();
  }
}

}  // namespace

ThreadPool::ThreadPool(int n_threads) {
  n_threads = std::max(1, n_threads);
  AQLM_CHECK(n_threads <= kMaxThreads, "thread pool: ", n_threads, " threads requested, at most ", kMaxThreads,
             " supported");
  for (int i = 1; i < n_threads; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_.store(true);
  }
  start_cv_.notify_all();
  for (auto& t : workers_) t.join();
}

bool ThreadPool::claim(int chunk, uint64_t generation) {
  uint64_t last = claimed_[chunk].load();
  while (last < generation)
    if (claimed_[chunk].compare_exchange_weak(last, generation)) return true;
  return false;  // already claimed for this generation (or a later one)
}

void ThreadPool::run_chunk(int chunk) noexcept {
  const size_t n = job_n_, parts = size_t(job_parts_);
  const size_t size = (n + parts - 1) / parts;
  const size_t begin = std::min(n, size * size_t(chunk));
  const size_t end = std::min(n, begin + size);
  if (begin >= end) return;
  try {
    (*job_)(begin, end, chunk);
  } catch (...) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!job_error_) job_error_ = std::current_exception();
  }
}

void ThreadPool::worker_loop(int index) {
  // Word 0 is the pool's start: a worker that starts late still sees every later job (a chunk
  // the caller already ran is simply not claimed again) and the stop.
  uint64_t seen = 0;
  for (;;) {
    auto new_job = [&] { return job_word_.load() != seen || stop_.load(); };
    if (!spin_until(new_job)) {
      std::unique_lock<std::mutex> lock(mutex_);
      sleeping_workers_.fetch_add(1);  // before the check: a caller that misses it sees the count
      start_cv_.wait(lock, new_job);
      sleeping_workers_.fetch_sub(1);
    }
    seen = job_word_.load();
    if (stop_.load()) return;
    const uint64_t generation = seen >> 16;
    const int parts = int(seen & 0xffff);
    // The job's fields are only read after the claim succeeds: the caller cannot start the
    // next job before this chunk ends.
    if (index < parts && claim(index, generation)) {
      run_chunk(index);
      if (unfinished_.fetch_sub(1) == 1 && caller_sleeping_.load()) {
        std::lock_guard<std::mutex> lock(mutex_);
        done_cv_.notify_one();
      }
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
  job_ = &fn;
  job_n_ = n;
  job_parts_ = parts;
  job_error_ = nullptr;
  unfinished_.store(parts - 1);
  const uint64_t generation = ++generation_;
  job_word_.store(generation << 16 | uint64_t(parts));
  if (sleeping_workers_.load() > 0) {
    { std::lock_guard<std::mutex> lock(mutex_); }  // a worker between its count and its wait is now waiting
    start_cv_.notify_all();
  }
  run_chunk(0);
  // Chunks whose worker has not claimed them yet run here; then wait for the running ones.
  for (int chunk = 1; chunk < parts; ++chunk)
    if (claim(chunk, generation)) {
      run_chunk(chunk);
      unfinished_.fetch_sub(1);
    }
  auto done = [&] { return unfinished_.load() == 0; };
  if (!spin_until(done)) {
    std::unique_lock<std::mutex> lock(mutex_);
    caller_sleeping_.store(true);  // before the check: a worker that finishes after it notifies
    done_cv_.wait(lock, done);
    caller_sleeping_.store(false);
  }
  std::exception_ptr error;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    error = job_error_;
    job_error_ = nullptr;
  }
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
