#include "core/quant/kmeans.h"

#include <algorithm>

#include "core/common/error.h"
#include "core/common/thread_pool.h"
#include "core/quant/candidate_search.h"
#include "core/quant/quant_random.h"

namespace aqlm {

namespace {
CandidateSet centroid_set(const float* centroids, int64_t k, int g) {
  std::vector<float> norms(static_cast<size_t>(k));
  for (int64_t c = 0; c < k; ++c) {
    float s = 0;
    for (int d = 0; d < g; ++d) s += centroids[c * g + d] * centroids[c * g + d];
    norms[size_t(c)] = s;
  }
  return CandidateSet(g, k, centroids, norms.data());
}
}  // namespace

std::vector<uint32_t> assign_nearest(ThreadPool& pool, const float* points, int64_t n, int g, const float* centroids, int64_t k) {
  const CandidateSet set = centroid_set(centroids, k, g);
  std::vector<uint32_t> index(static_cast<size_t>(n));
  std::vector<float> score(static_cast<size_t>(n));
  search_nearest(pool, set, points, n, index.data(), score.data());
  return index;
}

KMeansResult kmeans(ThreadPool& pool, const float* points, int64_t n, int g, int64_t k, const KMeansOptions& options) {
  AQLM_CHECK(n > 0 && k > 0 && g > 0, "k-means of ", n, " points into ", k, " clusters");
  AQLM_CHECK(options.max_iterations >= 0, "k-means: max iterations ", options.max_iterations, " is negative");
  QuantRandom rng(options.seed);

  // The fitting sample: all points, or a seeded random subset.
  std::vector<int64_t> order = rng.permutation(n);
  int64_t sample = n;
  if (options.max_points_per_centroid > 0) sample = std::min(n, std::max(k, options.max_points_per_centroid * k));
  std::vector<float> data(static_cast<size_t>(sample * g));
  for (int64_t i = 0; i < sample; ++i) std::copy_n(points + order[size_t(i)] * g, g, &data[size_t(i * g)]);

  // Centroids start at distinct sample points; with fewer points than centroids the rest
  // repeat points (they stay unused unless a later residual needs them).
  KMeansResult result;
  result.centroids.resize(size_t(k * g));
  for (int64_t c = 0; c < k; ++c) {
    const int64_t src = c < sample ? c : int64_t(rng.below(uint64_t(sample)));
    std::copy_n(&data[size_t(src * g)], g, &result.centroids[size_t(c * g)]);
  }

  std::vector<uint32_t> assign(static_cast<size_t>(sample), UINT32_MAX);
  std::vector<int64_t> offsets(static_cast<size_t>(k) + 1), members(static_cast<size_t>(sample));
  for (int it = 0; it < options.max_iterations; ++it) {
    std::vector<uint32_t> next = assign_nearest(pool, data.data(), sample, g, result.centroids.data(), k);
    const bool changed = next != assign;
    assign.swap(next);
    if (!changed) break;
    result.iterations = it + 1;
    // Members of each cluster in sample order (counting sort), then each mean in that order.
    std::fill(offsets.begin(), offsets.end(), 0);
    for (uint32_t a : assign) ++offsets[a + 1];
    for (int64_t c = 0; c < k; ++c) offsets[size_t(c + 1)] += offsets[size_t(c)];
    std::vector<int64_t> fill(offsets.begin(), offsets.end() - 1);
    for (int64_t i = 0; i < sample; ++i) members[size_t(fill[assign[size_t(i)]]++)] = i;
    pool.parallel_for(size_t(k), [&](size_t c0, size_t c1, int) {
      std::vector<double> sum(static_cast<size_t>(g));
      for (size_t c = c0; c < c1; ++c) {
        const int64_t b = offsets[c], e = offsets[c + 1];
        if (b == e) continue;  // empty: keep the previous centroid
        std::fill(sum.begin(), sum.end(), 0.0);
        for (int64_t m = b; m < e; ++m)
          for (int d = 0; d < g; ++d) sum[size_t(d)] += data[size_t(members[size_t(m)] * g + d)];
        for (int d = 0; d < g; ++d) result.centroids[c * size_t(g) + size_t(d)] = float(sum[size_t(d)] / double(e - b));
      }
    });
  }
  result.assignment = assign_nearest(pool, points, n, g, result.centroids.data(), k);
  return result;
}

}  // namespace aqlm
