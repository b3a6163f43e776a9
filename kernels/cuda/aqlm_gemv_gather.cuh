#pragma once
// The gather AQLM gemv (B > 8: 1x16g8, 2x16g8, 2x12g8...), device code and its launch.
// Instantiated in aqlm_gemv_gather.cu.
//
// Codes as stored. The input groups are cut into slabs of G groups and the rows into tiles
// of ~8 KB of codes; a unit is one (slab, tile); units are numbered slab-major and each block
// takes a contiguous, equal share. Codes of the block's units stream through a cp.async ring
// in shared memory. Lane l of a warp owns GPL groups of the slab (x of them in registers),
// gathers its codewords through L1/L2 (all of a pass's gathers issued before use) and the
// warp reduces each row with a transposing butterfly. With one slab the warp writes y; else
// partial sums [slab][T][out] that the reduction kernel adds.
#include <cuda_pipeline.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/aqlm_gemv_common.cuh"

namespace aqlm::cuda::detail {

constexpr int kGatherWarps = 8;
constexpr int kGatherThreads = 32 * kGatherWarps;
constexpr int kGatherStageBytes = 8192;  // target bytes of codes per tile

constexpr int pow2floor(int v) {
  int p = 1;
  while (p * 2 <= v) p *= 2;
  return p;
}
constexpr int cmin(int a, int b) { return a < b ? a : b; }
constexpr int cmax(int a, int b) { return a > b ? a : b; }
constexpr int ilog2(int v) { return v <= 1 ? 0 : 1 + ilog2(v / 2); }

// Compile-time geometry of one instance (M codebooks, T = tokens padded to 1/2/4/8).
template <int M, int T>
struct GatherShape {
  static constexpr int kBlocksPerSm = 2;
  static constexpr int kStages = 4;          // codes ring depth (tiles)
  static constexpr int G = T <= 2 ? 64 : 32; // groups per slab: two per lane while x fits in registers
  static constexpr int GPL = G / 32;         // groups per lane
  static constexpr int RU = cmax(1, 8 / T);  // rows per warp pass (accumulators RU * T = 8)
  static constexpr int NV = RU * T;
  static constexpr int ROW_BYTES = G * M * 2;
  static constexpr int LANE_BYTES = GPL * M * 2;
  static constexpr int PASS_ROWS = kGatherWarps * RU;
  static constexpr int TILE_ROWS = cmax(PASS_ROWS, (kGatherStageBytes / ROW_BYTES) / PASS_ROWS * PASS_ROWS);
  static constexpr int STAGE_BYTES = (TILE_ROWS * ROW_BYTES + 15) / 16 * 16;
  static constexpr int SMEM_BYTES = kStages * STAGE_BYTES;
  static_assert(NV == 8, "every lane reduces eight values");
  static_assert(LANE_BYTES <= 8, "a lane's codes fit one load");
};

struct GatherParams {
  const uint8_t* codes;     // [out, groups, M], 2 bytes each
  const uint4* codebooks;   // [M, K] codewords of 8 fp16
  const uint16_t* scales;   // [out] fp16
  const uint16_t* x;        // [n, in] fp16 or bf16
  uint16_t* y;              // [n, out] fp16 or bf16 (one slab)
  float* partial;           // [slabs][T][out] (several slabs)
  int out;
  int groups;
  int n;                    // real tokens (<= T)
  int nbits;
  uint32_t mask;            // 2^nbits - 1
  int slabs;
  int tiles;                // tiles per slab
  int units;                // slabs * tiles
  int vec;                  // cp.async bytes per copy: 16, 8 or 4; 1 = plain byte copies
  bool bf16;
};

// A lane's codes of one row: BYTES consecutive bytes of shared memory (aligned to BYTES
// when BYTES is 2, 4 or 8), little-endian in a 64-bit word.
template <int BYTES>
__device__ __forceinline__ uint64_t lane_codes(const uint8_t* p) {
  if constexpr (BYTES == 8) return *reinterpret_cast<const uint64_t*>(p);
  if constexpr (BYTES == 4) return *reinterpret_cast<const uint32_t*>(p);
  if constexpr (BYTES == 2) return *reinterpret_cast<const uint16_t*>(p);
  uint64_t v = 0;
#pragma unroll
  for (int b = 0; b < BYTES; ++b) v |= uint64_t(p[b]) << (8 * b);
  return v;
}

// Sums v over the 32 lanes of each row, transposing on the way: each halving step keeps
// half of the values (the upper lanes the upper half), so the work shrinks with the count.
// Afterwards lane l holds the complete sum of value index (l >> 2) (8 values over 32 lanes:
// lanes 4k..4k+3 hold value k; lane 4k writes it).
template <int MASK, int COUNT, int NV>
__device__ __forceinline__ void segment_reduce(float (&v)[NV], int lane) {
  if constexpr (MASK >= 1) {
    if constexpr (COUNT > 1) {
      constexpr int H = COUNT / 2;
      const bool upper = (lane & MASK) != 0;
#pragma unroll
      for (int k = 0; k < H; ++k) {
        const float send = upper ? v[k] : v[k + H];
        const float keep = upper ? v[k + H] : v[k];
        v[k] = keep + __shfl_xor_sync(kFullMask, send, MASK);
      }
      segment_reduce<MASK / 2, H, NV>(v, lane);
    } else {
      v[0] += __shfl_xor_sync(kFullMask, v[0], MASK);
      segment_reduce<MASK / 2, 1, NV>(v, lane);
    }
  }
}

// The value index lane `lane` holds after segment_reduce<16, 8, 8>: bits 4, 3, 2 of the lane
// select halves of 8, 4, 2 values.
__device__ __forceinline__ int reduced_index(int lane) { return ((lane >> 4) & 1) * 4 + ((lane >> 3) & 1) * 2 + ((lane >> 2) & 1); }

template <class S, int V>
__device__ __forceinline__ void copy_rows(const uint8_t* src0, int64_t pitch, int rows, int valid_bytes,
                                          uint8_t* stage) {
  const int per_row = (valid_bytes + V - 1) / V;
  const int total = rows * per_row;
  for (int c = threadIdx.x; c < total; c += kGatherThreads) {
    const int r = c / per_row, k = c - r * per_row;
    const uint8_t* src = src0 + r * pitch + k * V;
    uint8_t* dst = stage + r * S::ROW_BYTES + k * V;
    if constexpr (V == 1) {
      *dst = *src;
    } else {
      __pipeline_memcpy_async(dst, src, V);
    }
  }
}

template <class S>
__device__ __forceinline__ void load_tile(const GatherParams& p, int unit, uint8_t* stage) {
  constexpr int kGroupBytes = S::ROW_BYTES / S::G;
  const int slab = unit / p.tiles, tile = unit - slab * p.tiles;
  const int row0 = tile * S::TILE_ROWS;
  const int rows = min(S::TILE_ROWS, p.out - row0);
  const int valid_bytes = min(S::G, p.groups - slab * S::G) * kGroupBytes;
  const int64_t pitch = int64_t(p.groups) * kGroupBytes;
  const uint8_t* src0 = p.codes + int64_t(row0) * pitch + int64_t(slab) * S::ROW_BYTES;
  switch (p.vec) {
    case 16: copy_rows<S, 16>(src0, pitch, rows, valid_bytes, stage); break;
    case 8: copy_rows<S, 8>(src0, pitch, rows, valid_bytes, stage); break;
    case 4: copy_rows<S, 4>(src0, pitch, rows, valid_bytes, stage); break;
    default: copy_rows<S, 1>(src0, pitch, rows, valid_bytes, stage); break;
  }
}

template <class S, int M, int T>
__device__ __forceinline__ void compute_tile(const GatherParams& p, int slab, int tile, const uint8_t* codes,
                                             const float (&xr)[S::GPL][T][8]) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int rows = min(S::TILE_ROWS, p.out - tile * S::TILE_ROWS);
#pragma unroll 1
  for (int pass = 0; pass < S::TILE_ROWS / S::PASS_ROWS; ++pass) {
    const int step0 = (pass * kGatherWarps + warp) * S::RU;
    if (step0 >= rows) break;  // warp-uniform
    // All gathers of the pass first, so RU * GPL * M of them are in flight per lane.
    uint4 cw[S::RU][S::GPL][M];
#pragma unroll
    for (int r = 0; r < S::RU; ++r) {
      const uint64_t c16 = lane_codes<S::LANE_BYTES>(codes + (step0 + r) * S::ROW_BYTES + lane * S::LANE_BYTES);
#pragma unroll
      for (int i = 0; i < S::GPL; ++i)
#pragma unroll
        for (int m = 0; m < M; ++m) {
          const uint32_t c = uint32_t(c16 >> (16 * (i * M + m))) & p.mask;
          cw[r][i][m] = __ldg(p.codebooks + (m << p.nbits) + c);
        }
    }
    float v[S::NV];
#pragma unroll
    for (int r = 0; r < S::RU; ++r) {
#pragma unroll
      for (int t = 0; t < T; ++t) v[r * T + t] = 0.0f;
#pragma unroll
      for (int i = 0; i < S::GPL; ++i) {
        float w[8];
        codeword_to_float(cw[r][i][0], w);
#pragma unroll
        for (int m = 1; m < M; ++m) {
          float w2[8];
          codeword_to_float(cw[r][i][m], w2);
#pragma unroll
          for (int k = 0; k < 8; ++k) w[k] += w2[k];
        }
#pragma unroll
        for (int t = 0; t < T; ++t)
#pragma unroll
          for (int k = 0; k < 8; ++k) v[r * T + t] = fmaf(w[k], xr[i][t][k], v[r * T + t]);
      }
    }
    // Eight values (row r, token t) per lane, summed over the warp's 32 lanes.
    segment_reduce<16, S::NV, S::NV>(v, lane);
    if ((lane & 3) == 0) {
      const int idx = reduced_index(lane), r = idx / T, t = idx % T;
      const int row = tile * S::TILE_ROWS + step0 + r;
      if (row < p.out && t < p.n) {
        if (p.slabs == 1) {
          p.y[int64_t(t) * p.out + row] = to_act(v[0] * half_bits_to_float(__ldg(p.scales + row)), p.bf16);
        } else {
          p.partial[(int64_t(slab) * T + t) * p.out + row] = v[0];
        }
      }
    }
  }
}

// x of the lane's groups of a slab (zeros beyond the inputs/tokens).
template <class S, int T>
__device__ __forceinline__ void load_slab_x(const GatherParams& p, int slab, float (&xr)[S::GPL][T][8]) {
  const int lane = threadIdx.x % 32;
#pragma unroll
  for (int i = 0; i < S::GPL; ++i) {
    const int group = slab * S::G + lane * S::GPL + i;
#pragma unroll
    for (int t = 0; t < T; ++t) {
      if (group < p.groups && t < p.n) {
        load_x8(p.x + (int64_t(t) * p.groups + group) * 8, p.bf16, xr[i][t]);
      } else {
#pragma unroll
        for (int k = 0; k < 8; ++k) xr[i][t][k] = 0.0f;
      }
    }
  }
}

template <int M, int T>
__global__ void __launch_bounds__(kGatherThreads, GatherShape<M, T>::kBlocksPerSm) aqlm_gather_kernel(const GatherParams p) {
  using S = GatherShape<M, T>;
  constexpr int kStages = S::kStages;
  extern __shared__ __align__(16) uint8_t smem[];
  uint8_t* stages = smem;

  allow_dependent_launch();  // the reduction kernel (several slabs) may be scheduled now

  const int u_begin = int(int64_t(p.units) * blockIdx.x / gridDim.x);
  const int u_end = int(int64_t(p.units) * (blockIdx.x + 1) / gridDim.x);
  if (u_begin >= u_end) return;  // the whole block leaves together

#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (u_begin + s < u_end) load_tile<S>(p, u_begin + s, stages + s * S::STAGE_BYTES);
    __pipeline_commit();
  }

  float xr[S::GPL][T][8];  // x of the lane's groups of the current slab
  int current_slab = -1;
  for (int u = u_begin; u < u_end; ++u) {
    const int k = u - u_begin;
    const int slab = u / p.tiles, tile = u - slab * p.tiles;
    const int next = u + kStages - 1;
    if (next < u_end) load_tile<S>(p, next, stages + ((k + kStages - 1) % kStages) * S::STAGE_BYTES);
    __pipeline_commit();
    if (slab != current_slab) {
      load_slab_x<S, T>(p, slab, xr);
      current_slab = slab;
    }
    __pipeline_wait_prior(kStages - 1);
    __syncthreads();  // this tile's codes are visible to every warp
    compute_tile<S, M, T>(p, slab, tile, stages + (k % kStages) * S::STAGE_BYTES, xr);
    __syncthreads();  // the stage just read is refilled by the next iteration
  }
}

}  // namespace aqlm::cuda::detail
