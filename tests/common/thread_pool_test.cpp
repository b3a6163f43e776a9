#include "core/common/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace aqlm {
namespace {

struct Chunk {
  size_t begin = 0, end = 0;
  int thread = -1;
};

// The chunks parallel_for made, indexed by thread.
std::vector<Chunk> chunks_of(ThreadPool& pool, size_t n, size_t min_chunk) {
  std::vector<Chunk> chunks(size_t(pool.size()));
  pool.parallel_for(
      n, [&](size_t b, size_t e, int t) { chunks[size_t(t)] = {b, e, t}; }, min_chunk);
  return chunks;
}

TEST(ThreadPool, SplitsIntoEqualContiguousChunksThatDependOnlyOnTheArguments) {
  ThreadPool pool(3);
  EXPECT_EQ(pool.size(), 3);
  // n = 10 over 3 threads: chunks of ceil(10 / 3) = 4, the caller takes the first.
  auto c = chunks_of(pool, 10, 1);
  EXPECT_EQ(c[0].begin, 0u); EXPECT_EQ(c[0].end, 4u);
  EXPECT_EQ(c[1].begin, 4u); EXPECT_EQ(c[1].end, 8u);
  EXPECT_EQ(c[2].begin, 8u); EXPECT_EQ(c[2].end, 10u);
  // min_chunk 4: 10 / 4 = 2 parts of 5; thread 2 gets nothing.
  c = chunks_of(pool, 10, 4);
  EXPECT_EQ(c[0].end, 5u);
  EXPECT_EQ(c[1].begin, 5u); EXPECT_EQ(c[1].end, 10u);
  EXPECT_EQ(c[2].thread, -1);
  // Fewer items than threads, and one part: the caller runs everything itself.
  c = chunks_of(pool, 2, 1);
  EXPECT_EQ(c[0].end, 1u); EXPECT_EQ(c[1].begin, 1u); EXPECT_EQ(c[2].thread, -1);
  c = chunks_of(pool, 7, 100);
  EXPECT_EQ(c[0].begin, 0u); EXPECT_EQ(c[0].end, 7u); EXPECT_EQ(c[1].thread, -1);
}

TEST(ThreadPool, EveryIndexRunsExactlyOnceOverManyQuickDispatches) {
  // Back-to-back short regions (the decode pattern) while the workers spin between them,
  // then after pauses long enough for them to fall asleep.
  for (int threads : {1, 2, 4}) {
    ThreadPool pool(threads);
    for (int round = 0; round < 3000; ++round) {
      const size_t n = size_t(1 + round % 37);
      std::vector<std::atomic<int>> hits(n);
      pool.parallel_for(n, [&](size_t b, size_t e, int t) {
        ASSERT_GE(t, 0);
        ASSERT_LT(t, pool.size());
        for (size_t i = b; i < e; ++i) hits[i].fetch_add(1);
      });
      for (size_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 1) << "threads " << threads << " round " << round;
      if (round % 1000 == 999) std::this_thread::sleep_for(std::chrono::microseconds(20 * ThreadPool::kSpinMicros));
    }
  }
}

TEST(ThreadPool, WorkersRunInParallel) {
  // Two chunks that each wait for the other: finishes only if they run at the same time.
  ThreadPool pool(2);
  std::atomic<int> arrived{0};
  pool.parallel_for(2, [&](size_t, size_t, int) {
    arrived.fetch_add(1);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (arrived.load() < 2 && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
  });
  EXPECT_EQ(arrived.load(), 2);
}

TEST(ThreadPool, RethrowsAChunksExceptionAfterEveryChunkFinished) {
  ThreadPool pool(3);
  for (int thrower : {0, 1, 2}) {  // the caller's own chunk or a worker's
    std::atomic<int> finished{0};
    try {
      pool.parallel_for(3, [&](size_t b, size_t, int) {
        if (int(b) == thrower) throw std::runtime_error("chunk " + std::to_string(b) + " failed");
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        finished.fetch_add(1);
      });
      FAIL() << "no exception";
    } catch (const std::runtime_error& e) {
      EXPECT_EQ(std::string(e.what()), "chunk " + std::to_string(thrower) + " failed");
    }
    EXPECT_EQ(finished.load(), 2) << "returned before the other chunks ended";
    // The pool stays usable and the error does not leak into the next call.
    std::atomic<size_t> sum{0};
    pool.parallel_for(100, [&](size_t b, size_t e, int) {
      for (size_t i = b; i < e; ++i) sum.fetch_add(i);
    });
    EXPECT_EQ(sum.load(), 4950u);
  }
}

TEST(ThreadPool, CallsFromSeveralThreadsTakeTurns) {
  ThreadPool pool(2);
  std::atomic<int> inside{0}, most{0};
  std::atomic<long> total{0};
  auto caller = [&] {
    for (int r = 0; r < 500; ++r)
      pool.parallel_for(8, [&](size_t b, size_t e, int) {
        most.store(std::max(most.load(), inside.fetch_add(1) + 1));
        total.fetch_add(long(e - b));
        inside.fetch_sub(1);
      });
  };
  std::thread a(caller), b(caller);
  a.join();
  b.join();
  EXPECT_EQ(total.load(), 2 * 500 * 8);
  EXPECT_LE(most.load(), 2);  // never two calls' chunks at once on this 2-thread pool
}

TEST(ThreadPool, DestroysWhileWorkersSpinOrSleep) {
  for (int pause_us : {0, 10 * ThreadPool::kSpinMicros}) {
    ThreadPool pool(3);
    std::atomic<int> count{0};
    pool.parallel_for(3, [&](size_t, size_t, int) { count.fetch_add(1); });
    std::this_thread::sleep_for(std::chrono::microseconds(pause_us));
    EXPECT_EQ(count.load(), 3);
  }  // the destructor must return in both states
}


// A worker thread that starts only after the destructor began (a short-lived pool on a busy
// machine) must still see the stop: this loop hung within seconds before that was handled.
TEST(ThreadPool, PoolsDestroyedRightAfterConstructionDoNotHang) {
  for (int i = 0; i < 3000; ++i) ThreadPool pool(4);
  SUCCEED();
}

}  // namespace
}  // namespace aqlm
