#pragma once
// The dense products of layer calibration with the input statistics XTX (mean of x x^T):
// the output error tr(E XTX E^T) and its gradient E XTX. Work is split into fixed tiles that
// do not depend on the number of threads, so results are bit-identical whatever the pool
// size. A CUDA backend replaces these functions.
#include <cstddef>
#include <cstdint>

namespace aqlm {

class ThreadPool;

// out[rows, n] = a[rows, n] * x[n, n] (float32, Eigen GEMM per fixed column tile).
void xtx_product(ThreadPool& pool, const float* a, int64_t rows, int64_t n, const float* x, float* out);

// sum_i a[i] * b[i], accumulated in double over fixed chunks.
double dot_double(ThreadPool& pool, const float* a, const float* b, size_t n);

// tr(a XTX a^T) for a[rows, n] and XTX[n, n], all in double (the exact objective, for
// reporting and tests; a float GEMM is used inside the optimisation loops).
double trace_quadratic_form(ThreadPool& pool, const float* a, int64_t rows, int64_t n, const double* xtx);

}  // namespace aqlm
