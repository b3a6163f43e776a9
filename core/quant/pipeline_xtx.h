#pragma once
// XTX = mean over calibration tokens of x x^T for one linear's inputs, accumulated in float64
// as the AQLM and GPTQ papers do (sums of millions of float32 products lose digits otherwise).
// Work runs on the thread pool in fixed column tiles, so the result is bit-identical whatever
// the number of threads (a resumed run recomputes XTX and must get the same bits).
#include <cstdint>
#include <vector>

namespace aqlm {

class ThreadPool;

class XtxAccumulator {
 public:
  explicit XtxAccumulator(int64_t features);
  int64_t features() const { return n_; }
  int64_t rows() const { return rows_; }

  // Adds x [rows, features] (row-major, row stride `ld`, at least `features`).
  void add(ThreadPool& pool, const float* x, int64_t rows, int64_t ld);
  // Adds a sum of x x^T over `rows` rows computed elsewhere (the GPU, in double as here):
  // [features, features] row-major, only its lower triangle (j <= i) read.
  void add_gram(const std::vector<double>& gram, int64_t rows);
  // sum / rows, symmetric [features, features]; Error when nothing was added.
  std::vector<double> mean() const;

 private:
  int64_t n_;
  int64_t rows_ = 0;
  std::vector<double> sum_;  // lower triangle (and the diagonal tiles) filled, row-major
};

}  // namespace aqlm
