#include "core/quant/block_aqlm.h"

#include <algorithm>

#include "core/common/thread_pool.h"

namespace aqlm {
namespace {
// Output rows per task. Each chunk of the backward pass owns a double copy of the codebooks
// (M * 2^B * g values: 4 MiB for 1x16g8), so the count of chunks is bounded too.
constexpr int64_t kRowChunk = 64;
constexpr int64_t kMaxGradientChunks = 8;
}  // namespace

template <typename T>
void aqlm_dequantize(ThreadPool& pool, const AqlmTensors<T>& p, T* weight) {
  const int64_t groups = p.groups_per_row(), g = p.group_size, M = p.num_codebooks, K = p.codebook_size();
  pool.parallel_for(size_t(p.out_features), [&](size_t begin, size_t end, int) {
    for (size_t o = begin; o < end; ++o) {
      const uint16_t* code = p.codes + int64_t(o) * groups * M;
      T* row = weight + int64_t(o) * p.in_features;
      for (int64_t j = 0; j < groups; ++j) {
        T* dst = row + j * g;
        std::fill(dst, dst + g, T(0));
        for (int64_t m = 0; m < M; ++m) {
          const T* word = p.codebooks + (m * K + code[j * M + m]) * g;
          for (int64_t c = 0; c < g; ++c) dst[c] += word[c];
        }
        for (int64_t c = 0; c < g; ++c) dst[c] *= p.scales[o];
      }
    }
  });
}

template <typename T>
void aqlm_backward(ThreadPool& pool, const AqlmTensors<T>& p, const T* d_weight, T* d_codebooks, T* d_scales) {
  const int64_t groups = p.groups_per_row(), g = p.group_size, M = p.num_codebooks, K = p.codebook_size();
  const int64_t book_values = p.codebook_values();
  const int64_t row_blocks = (p.out_features + kRowChunk - 1) / kRowChunk;
  const int64_t chunks = std::min(kMaxGradientChunks, row_blocks);
  // Chunk c handles row blocks c, c + chunks, ... (a fixed assignment) into its own sums.
  std::vector<double> partial(size_t(chunks * book_values), 0.0);
  pool.parallel_for(size_t(chunks), [&](size_t begin, size_t end, int) {
    std::vector<double> unscaled(static_cast<size_t>(g));
    for (size_t chunk = begin; chunk < end; ++chunk) {
      double* book = partial.data() + int64_t(chunk) * book_values;
      for (int64_t block = int64_t(chunk); block < row_blocks; block += chunks) {
        const int64_t o1 = std::min(p.out_features, (block + 1) * kRowChunk);
        for (int64_t o = block * kRowChunk; o < o1; ++o) {
          const uint16_t* code = p.codes + o * groups * M;
          const T* d_row = d_weight + o * p.in_features;
          const double scale = double(p.scales[o]);
          double d_scale = 0;
          for (int64_t j = 0; j < groups; ++j) {
            std::fill(unscaled.begin(), unscaled.end(), 0.0);
            for (int64_t m = 0; m < M; ++m) {
              const int64_t word = (m * K + code[j * M + m]) * g;
              const T* value = p.codebooks + word;
              for (int64_t c = 0; c < g; ++c) {
                const double d = double(d_row[j * g + c]);
                book[word + c] += scale * d;
                unscaled[size_t(c)] += double(value[c]);
              }
            }
            for (int64_t c = 0; c < g; ++c) d_scale += double(d_row[j * g + c]) * unscaled[size_t(c)];
          }
          d_scales[o] = T(double(d_scales[o]) + d_scale);
        }
      }
    }
  });
  pool.parallel_for(size_t(book_values), [&](size_t begin, size_t end, int) {
    for (size_t i = begin; i < end; ++i) {
      double sum = 0;
      for (int64_t c = 0; c < chunks; ++c) sum += partial[size_t(c * book_values) + i];
      d_codebooks[i] = T(double(d_codebooks[i]) + sum);
    }
  });
}

template void aqlm_dequantize<float>(ThreadPool&, const AqlmTensors<float>&, float*);
template void aqlm_dequantize<double>(ThreadPool&, const AqlmTensors<double>&, double*);
template void aqlm_backward<float>(ThreadPool&, const AqlmTensors<float>&, const float*, float*, float*);
template void aqlm_backward<double>(ThreadPool&, const AqlmTensors<double>&, const double*, double*, double*);

}  // namespace aqlm
