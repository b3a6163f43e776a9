#pragma once
// Lloyd's k-means on short vectors (the groups of a weight matrix), seeded and deterministic:
// centroids start at distinct random points of a (seeded) subsample, assignments use the
// candidate-search kernel, centroid sums run in a fixed order. An empty cluster keeps its
// previous centroid.
#include <cstdint>
#include <vector>

namespace aqlm {

class ThreadPool;

struct KMeansOptions {
  int max_iterations = 20;
  // Fit on at most this many points per centroid (a seeded random subset); 0: all points.
  int64_t max_points_per_centroid = 0;
  uint64_t seed = 0;
};

struct KMeansResult {
  std::vector<float> centroids;     // [k, g]
  std::vector<uint32_t> assignment; // [n]: nearest centroid of every point (not only the subsample)
  int iterations = 0;
};

// points: [n, g] row-major.
KMeansResult kmeans(ThreadPool& pool, const float* points, int64_t n, int g, int64_t k, const KMeansOptions& options);

// Nearest centroid of each point (ties: lower index).
std::vector<uint32_t> assign_nearest(ThreadPool& pool, const float* points, int64_t n, int g, const float* centroids, int64_t k);

}  // namespace aqlm
