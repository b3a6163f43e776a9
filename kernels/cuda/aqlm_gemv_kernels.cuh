#pragma once
// Device code of the AQLM CUDA kernels (included by aqlm_gemv_cuda.cu only).
//
// Work decomposition (both gemv kernels): the input groups are cut into slabs of G groups
// and the rows into tiles of TILE_ROWS; a unit is one (slab, tile). Units are numbered
// slab-major and each block takes a contiguous, equal share, so a block mostly stays on one
// slab. Codes of the block's units stream through a kStages-deep cp.async ring in shared
// memory. Lane mapping: the LPR lanes of a row segment each own GPL groups of the slab, so a
// warp reads a row's codes as consecutive words and table reads fall in distinct banks.
// Partial sums of a tile from different slabs meet in a global buffer; the block that
// brings a tile's arrival counter to `slabs` adds them in slab order and writes y.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_pipeline.h>

#include <cstdint>

namespace aqlm::cuda::detail {

constexpr int kWarps = 8;
constexpr int kThreads = 32 * kWarps;
constexpr int kStageBytes = 8192;       // target bytes of codes per tile
constexpr int kHeadCodewords = 8192;    // SmemHead variant: 128 KB of codewords in shared memory
constexpr unsigned kFullMask = 0xffffffffu;
// Tokens per lookup-table pass: with 8 the tables leave room for only 8 groups per slab, and
// the partial sums of that many slabs cost more than a second pass over the codes (measured:
// 8192 x 28672 2x8 took 1.9 ms with 8 tokens in one pass).
constexpr int kLutMaxTokens = 4;

constexpr int pow2floor(int v) {
  int p = 1;
  while (p * 2 <= v) p *= 2;
  return p;
}
constexpr int cmin(int a, int b) { return a < b ? a : b; }
constexpr int ilog2(int v) { return v <= 1 ? 0 : 1 + ilog2(v / 2); }
constexpr int cmax(int a, int b) { return a > b ? a : b; }

enum class Mode { Lut, Direct, DirectHead };

// Compile-time geometry of one kernel instance (M codebooks, T = tokens padded to 1/2/4/8).
template <Mode MODE, int M, int T>
struct Shape {
  static constexpr bool kLut = MODE == Mode::Lut;
  static constexpr int kCodeBytes = kLut ? 1 : 2;
  // Up to 2 tokens: 64 KB of tables, so two blocks share an SM (16 warps hide the shared-
  // memory latency; measured 2x faster than one block with 128 KB tables). 4 tokens: 128 KB,
  // one block, else slabs get so narrow that their partial sums dominate.
  static constexpr int kLutFloats = T <= 2 ? 16384 : 32768;
  static constexpr int kBlocksPerSm = (kLut && T > 2) || MODE == Mode::DirectHead ? 1 : 2;
  static constexpr int kStages = kBlocksPerSm == 2 ? 4 : 3;  // codes ring depth (tiles)
  // Groups per slab: as many as the tables allow (LUT); for gathers, enough to give each
  // lane two groups while x fits in registers.
  static constexpr int G = kLut ? cmin(128, pow2floor(kLutFloats / (M * 256 * T))) : (T <= 2 ? 64 : 32);
  static constexpr int LPR = cmin(G, 32);   // lanes per row segment
  static constexpr int GPL = G / LPR;       // groups per lane
  static constexpr int P = 32 / LPR;        // rows per warp step
  static constexpr int RU = cmax(1, 8 / T); // warp steps per pass (accumulators RU*T = 8)
  static constexpr int NV = RU * T;
  static constexpr int ROW_BYTES = G * M * kCodeBytes;
  static constexpr int LANE_BYTES = GPL * M * kCodeBytes;
  static constexpr int PASS_ROWS = kWarps * RU * P;
  static constexpr int TILE_ROWS = cmax(PASS_ROWS, (kStageBytes / ROW_BYTES) / PASS_ROWS * PASS_ROWS);
  static constexpr int STAGE_BYTES = (TILE_ROWS * ROW_BYTES + 15) / 16 * 16;
  static constexpr int LUT_BYTES = kLut ? M * 256 * G * T * 4 : 0;
  static constexpr int CB_BYTES = kLut ? M * 256 * 16 : 0;  // the fp16 codebooks, copied once
  static constexpr int HEAD_BYTES = MODE == Mode::DirectHead ? kHeadCodewords * 16 : 0;
  static constexpr int SMEM_BYTES = LUT_BYTES + CB_BYTES + HEAD_BYTES + kStages * STAGE_BYTES + 16;
  static_assert(kLut || G >= 32, "gather kernels give every lane its own groups");
  static_assert(NV == 8, "every lane reduces eight values");
  static_assert(kThreads % (G * T) == 0 || !kLut, "table entries map to fixed threads");
  static_assert(LANE_BYTES <= 8, "a lane's codes fit one load");
};

struct GemvParams {
  const uint8_t* codes;       // [out, groups, M], code_bytes each
  const uint4* codebooks;     // [M, K] codewords of 8 fp16
  const uint16_t* scales;     // [out] fp16
  const uint16_t* x;          // [n, in] fp16 or bf16
  uint16_t* y;                // [n, out] fp16 or bf16
  float* partial;             // [slabs, out, T] when slabs > 1
  unsigned* counters;         // [tiles] arrivals per tile, zero between calls
  int out;
  int groups;
  int n;                      // real tokens (<= T)
  int nbits;
  uint32_t mask;              // 2^nbits - 1
  int slabs;
  int tiles;                  // tiles per slab
  int64_t units;              // slabs * tiles
  int vec;                    // cp.async bytes per copy: 16, 8 or 4; 1 = plain byte copies
  bool bf16;
};

// ---------------------------------------------------------------------------------------
// Small helpers

__device__ __forceinline__ void load_x8(const uint16_t* src, bool bf16, float (&v)[8]) {
  const uint4 raw = __ldg(reinterpret_cast<const uint4*>(src));
  const uint32_t w[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
  for (int k = 0; k < 4; ++k) {
    if (bf16) {
      v[2 * k] = __uint_as_float(w[k] << 16);
      v[2 * k + 1] = __uint_as_float(w[k] & 0xffff0000u);
    } else {
      const float2 f = __half22float2(*reinterpret_cast<const __half2*>(&w[k]));
      v[2 * k] = f.x;
      v[2 * k + 1] = f.y;
    }
  }
}

__device__ __forceinline__ void codeword_to_float(const uint4& raw, float (&v)[8]) {
  const uint32_t w[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
  for (int k = 0; k < 4; ++k) {
    const float2 f = __half22float2(*reinterpret_cast<const __half2*>(&w[k]));
    v[2 * k] = f.x;
    v[2 * k + 1] = f.y;
  }
}

__device__ __forceinline__ uint16_t to_act(float v, bool bf16) {
  return bf16 ? __bfloat16_as_ushort(__float2bfloat16_rn(v)) : __half_as_ushort(__float2half_rn(v));
}

__device__ __forceinline__ float scale_of(const GemvParams& p, int row) {
  return __half2float(__ushort_as_half(__ldg(p.scales + row)));
}

// A lane's codes of one row: BYTES consecutive bytes of shared memory (aligned to BYTES
// when BYTES is 2, 4 or 8), little-endian in a 64-bit word.
template <int BYTES>
__device__ __forceinline__ uint64_t lane_codes(const uint8_t* p) {
  if constexpr (BYTES == 8) return *reinterpret_cast<const uint64_t*>(p);
  if constexpr (BYTES == 4) return *reinterpret_cast<const uint32_t*>(p);
  if constexpr (BYTES == 2) return *reinterpret_cast<const uint16_t*>(p);
  if constexpr (BYTES == 1) return *p;
  uint64_t v = 0;
#pragma unroll
  for (int b = 0; b < BYTES; ++b) v |= uint64_t(p[b]) << (8 * b);
  return v;
}

// Sums v over the LPR lanes of each row segment, transposing on the way: each halving step
// keeps half of the values (the upper lanes the upper half) so the work shrinks with the
// count. Afterwards a lane holds NV >> H complete sums, H = min(log2 LPR, log2 NV), for the
// value indices segment_base(lane) + k.
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

template <int LPR, int NV>
struct SegmentLayout {
  static constexpr int H = cmin(ilog2(LPR), ilog2(NV));
  static constexpr int KEPT = NV >> H;
  // First value index a lane holds after segment_reduce.
  __device__ static int base(int lane) {
    int b = 0;
#pragma unroll
    for (int s = 1; s <= H; ++s)
      if (lane & (LPR >> s)) b += NV >> s;
    return b;
  }
  // One lane per set of values writes them.
  __device__ static bool writer(int lane) { return ((lane % LPR) & ((LPR >> H) - 1)) == 0; }
};

// ---------------------------------------------------------------------------------------
// Codes pipeline

template <class S, int V>
__device__ __forceinline__ void copy_rows(const uint8_t* src0, int64_t pitch, int rows, int valid_bytes,
                                          uint8_t* stage) {
  const int per_row = (valid_bytes + V - 1) / V;
  const int total = rows * per_row;
  for (int c = threadIdx.x; c < total; c += kThreads) {
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
__device__ __forceinline__ void load_tile(const GemvParams& p, int64_t unit, uint8_t* stage) {
  constexpr int kGroupBytes = S::ROW_BYTES / S::G;
  const int slab = int(unit) / p.tiles, tile = int(unit) - slab * p.tiles;
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

// ---------------------------------------------------------------------------------------
// Lookup tables: lut[((m * 256 + c) * G + pos) * T + t] = x[t, group(pos)] . codebook[m][c],
// pos = i * LPR + l for group l * GPL + i of the slab (so lane l's i-th group sits in bank
// l). For T = 8 the two halves of the 8 tokens swap places when bit 2 of pos is set: a
// quarter warp's 16-byte reads then cover all 32 banks.

template <int T>
__device__ __forceinline__ int token_slot(int t, int pos) {
  return T == 8 ? (t ^ (4 * ((pos >> 2) & 1))) : t;
}

// Each thread owns one (pos, t) entry of every codeword's row and keeps its x in registers;
// the codewords come from the block's shared-memory copy of the codebooks (`cb`), read by a
// whole warp at once (a broadcast), so no iteration waits on global memory. All 256 entries
// of a codebook are filled even when B < 8 (entry c holds codeword c mod 2^B), so lookups
// can use a code's whole byte without masking it.
template <class S, int M, int T>
__device__ __forceinline__ void build_lut(const GemvParams& p, int slab, const uint4* cb, float* lut) {
  constexpr int GT = S::G * T;
  constexpr int kStride = kThreads / GT;  // codewords apart between a thread's iterations
  const int n_idx = threadIdx.x % GT;
  const int pos = n_idx / T, t = n_idx % T;
  const int group = slab * S::G + (pos % S::LPR) * S::GPL + pos / S::LPR;
  float xv[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  if (group < p.groups && t < p.n) load_x8(p.x + (int64_t(t) * p.groups + group) * 8, p.bf16, xv);
  const int K = 1 << p.nbits;
#pragma unroll
  for (int m = 0; m < M; ++m) {
    float* dst = lut + (m * 256 * S::G + pos) * T + token_slot<T>(t, pos);
    const uint4* cbm = cb + m * K;
#pragma unroll 4
    for (int c = threadIdx.x / GT; c < 256; c += kStride) {
      float w[8];
      codeword_to_float(cbm[c & (K - 1)], w);
      float dot = 0.0f;
#pragma unroll
      for (int i = 0; i < 8; ++i) dot = fmaf(w[i], xv[i], dot);
      dst[c * GT] = dot;
    }
  }
}

// Adds the T token values of one table entry (T floats at e) to acc.
template <int T>
__device__ __forceinline__ void add_entry(float (&acc)[T], const float* e, int half_swap) {
  if constexpr (T == 1) {
    acc[0] += e[0];
  } else if constexpr (T == 2) {
    const float2 v = *reinterpret_cast<const float2*>(e);
    acc[0] += v.x, acc[1] += v.y;
  } else if constexpr (T == 4) {
    const float4 v = *reinterpret_cast<const float4*>(e);
    acc[0] += v.x, acc[1] += v.y, acc[2] += v.z, acc[3] += v.w;
  } else {
    const float4 a = *reinterpret_cast<const float4*>(e + half_swap);
    const float4 b = *reinterpret_cast<const float4*>(e + (4 - half_swap));
    acc[0] += a.x, acc[1] += a.y, acc[2] += a.z, acc[3] += a.w;
    acc[4] += b.x, acc[5] += b.y, acc[6] += b.z, acc[7] += b.w;
  }
}

// ---------------------------------------------------------------------------------------
// Writing a warp's results: y directly (one slab), or partial sums for the tile's reducer.

template <class S, int T>
__device__ __forceinline__ void write_results(const GemvParams& p, float (&v)[S::NV], int slab, int row_base,
                                              int lane) {
  using Seg = SegmentLayout<S::LPR, S::NV>;
  segment_reduce<S::LPR / 2, S::NV, S::NV>(v, lane);
  if (!Seg::writer(lane)) return;
  const int base = Seg::base(lane);
  const int q = lane / S::LPR;
#pragma unroll
  for (int k = 0; k < Seg::KEPT; ++k) {
    const int idx = base + k, r = idx / T, t = idx % T;
    const int row = row_base + r * S::P + q;
    if (row >= p.out || t >= p.n) continue;
    if (p.slabs == 1) {
      p.y[int64_t(t) * p.out + row] = to_act(v[k] * scale_of(p, row), p.bf16);
    } else {
      p.partial[(int64_t(slab) * p.out + row) * T + t] = v[k];
    }
  }
}

// After every warp wrote its partial sums for `tile`: count the arrival; the block that
// completes the tile adds the slabs' sums in slab order and writes y.
// The barrier orders every warp's partial-sum stores before thread 0's release; thread 0's
// acquire and the second barrier order the reducer's loads after the other blocks' stores.
__device__ __forceinline__ unsigned atomic_add_acq_rel(unsigned* p, unsigned v) {
  unsigned old;
  asm volatile("atom.acq_rel.gpu.global.add.u32 %0, [%1], %2;" : "=r"(old) : "l"(p), "r"(v) : "memory");
  return old;
}

template <class S, int T>
__device__ __forceinline__ void finish_tile(const GemvParams& p, int tile, int* flag) {
  __syncthreads();
  if (threadIdx.x == 0) *flag = atomic_add_acq_rel(p.counters + tile, 1u) == unsigned(p.slabs - 1);
  __syncthreads();
  if (!*flag) return;
  const int row0 = tile * S::TILE_ROWS;
  const int entries = min(S::TILE_ROWS, p.out - row0) * p.n;
  for (int e = threadIdx.x; e < entries; e += kThreads) {
    const int row = row0 + e / p.n, t = e % p.n;
    const float* src = p.partial + int64_t(row) * T + t;
    const int64_t slab_stride = int64_t(p.out) * T;
    float sum = 0.0f;
    int s = 0;
    for (; s + 8 <= p.slabs; s += 8) {  // eight loads in flight, added in slab order
      float v[8];
#pragma unroll
      for (int k = 0; k < 8; ++k) v[k] = __ldcg(src + (s + k) * slab_stride);
#pragma unroll
      for (int k = 0; k < 8; ++k) sum += v[k];
    }
    for (; s < p.slabs; ++s) sum += __ldcg(src + s * slab_stride);
    p.y[int64_t(t) * p.out + row] = to_act(sum * scale_of(p, row), p.bf16);
  }
  if (threadIdx.x == 0) p.counters[tile] = 0;  // ready for the next call
}

// ---------------------------------------------------------------------------------------
// Per-tile compute.

template <class S, int M, int T>
__device__ __forceinline__ void compute_tile_lut(const GemvParams& p, int slab, int tile, const uint8_t* codes,
                                                 const float* lut) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int l = lane % S::LPR, q = lane / S::LPR;
  const int half_swap = T == 8 ? 4 * ((l >> 2) & 1) : 0;
  const float* lut_lane = lut + l * T;
  const int rows = min(S::TILE_ROWS, p.out - tile * S::TILE_ROWS);
#pragma unroll 1
  for (int pass = 0; pass < S::TILE_ROWS / S::PASS_ROWS; ++pass) {
    const int step0 = (pass * kWarps + warp) * S::RU;
    if (step0 * S::P >= rows) break;  // warp-uniform
    float acc[S::RU][T];
#pragma unroll
    for (int r = 0; r < S::RU; ++r)
#pragma unroll
      for (int t = 0; t < T; ++t) acc[r][t] = 0.0f;
#pragma unroll
    for (int r = 0; r < S::RU; ++r) {
      const uint64_t cw = lane_codes<S::LANE_BYTES>(codes + ((step0 + r) * S::P + q) * S::ROW_BYTES + l * S::LANE_BYTES);
#pragma unroll
      for (int i = 0; i < S::GPL; ++i)
#pragma unroll
        for (int m = 0; m < M; ++m) {
          const uint32_t c = uint32_t(cw >> (8 * (i * M + m))) & 0xffu;  // tables alias c mod 2^B
          add_entry<T>(acc[r], lut_lane + (m * 256 * S::G + i * S::LPR) * T + c * (S::G * T), half_swap);
        }
    }
    float v[S::NV];
#pragma unroll
    for (int r = 0; r < S::RU; ++r)
#pragma unroll
      for (int t = 0; t < T; ++t) v[r * T + t] = acc[r][t];
    write_results<S, T>(p, v, slab, tile * S::TILE_ROWS + step0 * S::P, lane);
  }
}

template <class S, Mode MODE, int M, int T>
__device__ __forceinline__ void compute_tile_direct(const GemvParams& p, int slab, int tile, const uint8_t* codes,
                                                    const uint4* head, const float (&xr)[S::GPL][T][8]) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int rows = min(S::TILE_ROWS, p.out - tile * S::TILE_ROWS);
#pragma unroll 1
  for (int pass = 0; pass < S::TILE_ROWS / S::PASS_ROWS; ++pass) {
    const int step0 = (pass * kWarps + warp) * S::RU;
    if (step0 >= rows) break;  // P == 1 here; warp-uniform
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
          if constexpr (MODE == Mode::DirectHead) {
            cw[r][i][m] = c < kHeadCodewords ? head[c] : __ldg(p.codebooks + c);
          } else {
            cw[r][i][m] = __ldg(p.codebooks + (m << p.nbits) + c);
          }
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
    write_results<S, T>(p, v, slab, tile * S::TILE_ROWS + step0, lane);
  }
}

// x of the lane's groups of a slab, for the gather kernels (zeros beyond the inputs/tokens).
template <class S, int T>
__device__ __forceinline__ void load_slab_x(const GemvParams& p, int slab, float (&xr)[S::GPL][T][8]) {
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

// ---------------------------------------------------------------------------------------

template <Mode MODE, int M, int T>
__global__ void __launch_bounds__(kThreads, Shape<MODE, M, T>::kBlocksPerSm) aqlm_gemv_kernel(const GemvParams p) {
  using S = Shape<MODE, M, T>;
  constexpr int kStages = S::kStages;
  extern __shared__ __align__(16) uint8_t smem[];
  float* lut = reinterpret_cast<float*>(smem);
  uint4* cb = reinterpret_cast<uint4*>(smem + S::LUT_BYTES);
  uint4* head = reinterpret_cast<uint4*>(smem + S::LUT_BYTES + S::CB_BYTES);
  uint8_t* stages = smem + S::LUT_BYTES + S::CB_BYTES + S::HEAD_BYTES;
  int* flag = reinterpret_cast<int*>(stages + kStages * S::STAGE_BYTES);

  const int64_t u_begin = p.units * blockIdx.x / gridDim.x;
  const int64_t u_end = p.units * (blockIdx.x + 1) / gridDim.x;
  if (u_begin >= u_end) return;  // the whole block leaves together

  static_assert(MODE != Mode::DirectHead || M == 1, "the shared-memory head serves one codebook");
  if constexpr (MODE == Mode::DirectHead) {
    const int count = min(kHeadCodewords, 1 << p.nbits);
    for (int i = threadIdx.x; i < count; i += kThreads) head[i] = __ldg(p.codebooks + i);
  }
  if constexpr (MODE == Mode::Lut) {  // the codebooks, once: the oldest copy group
    for (int i = threadIdx.x; i < (M << p.nbits); i += kThreads) __pipeline_memcpy_async(cb + i, p.codebooks + i, 16);
    __pipeline_commit();
  }
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (u_begin + s < u_end) load_tile<S>(p, u_begin + s, stages + s * S::STAGE_BYTES);
    __pipeline_commit();
  }
  if constexpr (MODE == Mode::Lut) {
    __pipeline_wait_prior(kStages - 1);  // codebooks here; the code tiles may still be in flight
    __syncthreads();
  }

  float xr[S::GPL][T][8];  // gather kernels: x of the lane's groups of the current slab
  int current_slab = -1;
  for (int64_t u = u_begin; u < u_end; ++u) {
    const int64_t k = u - u_begin;
    const int slab = int(u) / p.tiles, tile = int(u) - slab * p.tiles;  // units < 2^31 (host-checked)
    const int64_t next = u + kStages - 1;
    if (next < u_end) load_tile<S>(p, next, stages + ((k + kStages - 1) % kStages) * S::STAGE_BYTES);
    __pipeline_commit();
    if (slab != current_slab) {  // the previous iteration's last barrier ends all reads of the old table
      if constexpr (MODE == Mode::Lut) {
        build_lut<S, M, T>(p, slab, cb, lut);
      } else {
        load_slab_x<S, T>(p, slab, xr);
      }
      current_slab = slab;
    }
    __pipeline_wait_prior(kStages - 1);
    __syncthreads();  // this tile's codes and the slab's table are visible to every warp
    const uint8_t* codes = stages + (k % kStages) * S::STAGE_BYTES;
    if constexpr (MODE == Mode::Lut) {
      compute_tile_lut<S, M, T>(p, slab, tile, codes, lut);
    } else {
      compute_tile_direct<S, MODE, M, T>(p, slab, tile, codes, head, xr);
    }
    if (p.slabs > 1) finish_tile<S, T>(p, tile, flag);
    __syncthreads();  // the stage just read is refilled by the next iteration
  }
}

}  // namespace aqlm::cuda::detail
