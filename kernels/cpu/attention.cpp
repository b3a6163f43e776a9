#include "kernels/cpu/attention.h"

#include <Eigen/Core>
#include <algorithm>
#include <cstring>

#include "kernels/cpu/activation.h"

namespace aqlm::cpu {
namespace {
using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Stride = Eigen::OuterStride<>;

int64_t first_visible(int64_t pos, int64_t window) { return window > 0 ? std::max<int64_t>(0, pos - window + 1) : 0; }
}  // namespace

size_t attention_scratch_floats(int64_t n_tokens, int64_t group, int64_t head_dim, int64_t last_pos) {
  const int64_t rows = std::min(n_tokens, kAttentionTokenBlock) * group;
  return size_t(rows * (2 * head_dim + last_pos + 1));
}

void attention(const AttentionArgs& a, float* scratch) {
  const int64_t hd = a.head_dim;
  for (int64_t t0 = 0; t0 < a.n_tokens; t0 += kAttentionTokenBlock) {
    const int64_t nt = std::min(kAttentionTokenBlock, a.n_tokens - t0);
    const int64_t rows = nt * a.group;
    // Keys any query of this block can see: [lo, hi).
    const int64_t lo = first_visible(a.first_pos + t0, a.window);
    const int64_t hi = a.first_pos + t0 + nt;
    const int64_t nk = hi - lo;
    float* qbuf = scratch;
    float* obuf = qbuf + rows * hd;
    float* scores = obuf + rows * hd;

    // Gather the block's query rows (token-major, then head) into one dense matrix.
    for (int64_t t = 0; t < nt; ++t)
      std::memcpy(qbuf + t * a.group * hd, a.q + (t0 + t) * a.ldq, size_t(a.group * hd) * sizeof(float));

    Eigen::Map<const RowMajor> Q(qbuf, rows, hd);
    Eigen::Map<const RowMajor> K(a.k + lo * hd, nk, hd);
    Eigen::Map<const RowMajor> V(a.v + lo * hd, nk, hd);
    Eigen::Map<RowMajor> S(scores, rows, nk);
    S.noalias() = (Q * K.transpose()) * a.scale;

    // Softmax over each row's visible keys; the rest get weight 0.
    for (int64_t t = 0; t < nt; ++t) {
      const int64_t pos = a.first_pos + t0 + t;
      const int64_t begin = first_visible(pos, a.window) - lo;
      const int64_t end = pos + 1 - lo;
      for (int64_t g = 0; g < a.group; ++g) {
        float* row = scores + (t * a.group + g) * nk;
        std::fill(row, row + begin, 0.0f);
        softmax(row + begin, end - begin);
        std::fill(row + end, row + nk, 0.0f);
      }
    }

    Eigen::Map<RowMajor> O(obuf, rows, hd);
    O.noalias() = S * V;
    for (int64_t t = 0; t < nt; ++t)
      std::memcpy(a.out + (t0 + t) * a.ldo, obuf + t * a.group * hd, size_t(a.group * hd) * sizeof(float));
  }
}

}  // namespace aqlm::cpu
