#pragma once
// The lookup-table AQLM gemv (B <= 8), device code and its launch. Layout and index
// arithmetic: aqlm_gemv_layout.h. Instantiated per token count in aqlm_gemv_lut_t{1,2,4}.cu.
//
// One block per SM (512 threads) walks a contiguous range of units (K-slab set, row tile) in
// set-major order. When the set changes, the block builds the set's tables in shared memory
// (one fp32 entry per table, codeword and token: x[group] . codebook[m][c]); in between,
// every thread handles one row at a time: it streams the row's K chunks (16 code bytes each)
// through a register ring refilled one unit ahead (coalesced 16-byte loads, evict-first),
// sums 16 table entries per chunk, and writes the row's partial sum for the set. Warps never
// wait on each other except around a table build. aqlm_gemv_cuda.cu's reduction kernel adds
// the sets' partial sums.
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/aqlm_gemv_common.cuh"
#include "kernels/cuda/aqlm_gemv_launch.h"
#include "kernels/cuda/aqlm_gemv_layout.h"
#include "kernels/cuda/cuda_check.h"

namespace aqlm::cuda::detail {

struct LutParams {
  const uint4* codes;         // [slabs][rows_pad] chunks (slab layout)
  const uint16_t* codebooks;  // [M][2^B][8] fp16
  const uint16_t* x;          // [n][groups * 8]
  float* partial;             // [sets][T][rows_pad]
  int rows_pad;               // rows, padded to 32
  int groups;                 // real input groups
  int n;                      // real tokens (<= T)
  int M, nbits, gps;          // codebooks, bits, groups per slab
  int slabs;                  // slab count (even)
  int sets, tiles, units;     // units = sets * tiles
  int xs_sets;                // most sets one block touches (x staging capacity)
  bool bf16;
};

template <int T, int K, int R>
struct LutShape {
  static constexpr int kTableBytes = lut::table_bytes(T, K);
  static constexpr int kChunks = K * R;  // ring slots: one unit of chunks per thread
  static constexpr int kTileRows = R * lut::kThreads;
  static_assert(kChunks == 4 || kChunks == 8, "a unit is 4 or 8 chunks per thread");
  static_assert(K * T <= 8, "tables of at most 128 KB");
  // Shared memory: [tables][codebooks as fp32: M * 2^B * 8][x of the block's sets as fp32].
};

// Builds the tables of set `set` (the block's set number `set_local`). Thread tid fills
// entry column build_slot/build_table(tid) of every region for codewords
// build_first_codeword(tid) + 8T i: a warp's lanes share a codeword (broadcast reads of the
// fp32 codebook copy) and store 32 consecutive entries (no bank conflicts).
template <int T, int K>
__device__ __forceinline__ void build_tables(const LutParams& p, int set, int set_local, uint32_t tables,
                                             const float* cbf, const float* xs) {
  const int tid = threadIdx.x;
  const int slot = lut::build_slot(T, tid), t = lut::build_table(T, tid);
  const int g_local = t / p.M, m = t - g_local * p.M;
  const int k_eff = min(K, p.slabs - set * K);
  const int codewords = 1 << p.nbits;
  const float* cbm = cbf + (m << p.nbits) * 8;
#pragma unroll
  for (int region = 0; region < lut::regions(T, K); ++region) {
    const int sl = lut::build_slab(T, K, region, slot);
    if (sl < 0) continue;  // an unused slot
    // x of this table's group for every token (zeros past the real groups, tokens, slabs).
    float xv[T][8];
    const bool live = g_local < p.gps && sl < k_eff;
#pragma unroll
    for (int tok = 0; tok < T; ++tok) {
      const float* src = xs + ((set_local * T + tok) * K * p.gps + sl * p.gps + g_local) * 8;
#pragma unroll
      for (int k = 0; k < 8; ++k) xv[tok][k] = live ? src[k] : 0.0f;
    }
    const uint32_t dst0 = tables + lut::entry_offset(T, sl, slot, t, 0);
#pragma unroll 4
    for (int c = lut::build_first_codeword(T, tid); c < codewords; c += lut::build_codeword_stride(T)) {
      const float4 lo = *reinterpret_cast<const float4*>(cbm + c * 8);
      const float4 hi = *reinterpret_cast<const float4*>(cbm + c * 8 + 4);
      float e[T];
#pragma unroll
      for (int tok = 0; tok < T; ++tok) {
        float d = lo.x * xv[tok][0];
        d = fmaf(lo.y, xv[tok][1], d);
        d = fmaf(lo.z, xv[tok][2], d);
        d = fmaf(lo.w, xv[tok][3], d);
        d = fmaf(hi.x, xv[tok][4], d);
        d = fmaf(hi.y, xv[tok][5], d);
        d = fmaf(hi.z, xv[tok][6], d);
        d = fmaf(hi.w, xv[tok][7], d);
        e[tok] = d;
      }
      sts<T>(dst0 + uint32_t(c) * lut::kRowBytes, e);
    }
  }
}

// The 16 lookups of one chunk: stored byte p's code c selects the entry at
//   tables + c * 256 + column(p) + constant,
// where one PRMT builds c * 256 + column(p) from the code word and `cols`, the lane's column
// bytes packed three per register (byte 3 zero). `constant` is a compile-time offset after
// unrolling (lookup_constant of the set position).
template <int T>
__device__ __forceinline__ void lookup_chunk(const uint4& chunk, const uint32_t (&cols)[6], uint32_t tables,
                                             uint32_t constant, float (&acc)[2][T]) {
  const uint32_t w[4] = {chunk.x, chunk.y, chunk.z, chunk.w};
#pragma unroll
  for (int j = 0; j < 4; ++j) {
#pragma unroll
    for (int b = 0; b < 4; ++b) {
      const int pos = 4 * j + b;
      const uint32_t selector = 0x7700u | uint32_t(b << 4) | uint32_t(4 + pos % 3);
      const uint32_t offset = __byte_perm(w[j], cols[pos / 3], selector);
      float e[T];
      lds<T>(tables + offset + constant, e);
#pragma unroll
      for (int tok = 0; tok < T; ++tok) acc[pos & 1][tok] += e[tok];
    }
  }
}

template <int T, int K, int R>
__global__ void __launch_bounds__(lut::kThreads, 1) aqlm_lut_kernel(const LutParams p) {
  using S = LutShape<T, K, R>;
  constexpr int kChunks = S::kChunks;
  extern __shared__ __align__(16) uint8_t smem[];
  float* cbf = reinterpret_cast<float*>(smem + S::kTableBytes);
  float* xs = cbf + (p.M << p.nbits) * 8;
  const uint32_t tables = shared_address(smem);

  allow_dependent_launch();  // the reduction kernel may be scheduled now; it waits for us

  const int u_begin = int(int64_t(p.units) * blockIdx.x / gridDim.x);
  const int u_end = int(int64_t(p.units) * (blockIdx.x + 1) / gridDim.x);
  if (u_begin >= u_end) return;  // the whole block leaves together
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int first_set = u_begin / p.tiles;

  // Per-thread chunk addressing: the slab this thread reads at each set position.
  int slab_offset[K];
#pragma unroll
  for (int q = 0; q < K; ++q) slab_offset[q] = lut::slab_at(T, K, q, lane) * p.rows_pad;
  auto unit_base = [&](int set, int tile) { return p.codes + int64_t(set) * K * p.rows_pad + int64_t(tile) * S::kTileRows + tid; };
  auto load_unit = [&](uint4 (&ring)[kChunks], int set, int tile) {
    const uint4* base = unit_base(set, tile);
    const int k_eff = min(K, p.slabs - set * K);
#pragma unroll
    for (int i = 0; i < kChunks; ++i) {
      const int r = i / K, q = i % K;
      const bool ok = q < k_eff && lut::unit_row(tile, R, r, warp * 32) < p.rows_pad;
      ring[i] = ok ? __ldcs(base + r * lut::kThreads + slab_offset[q]) : make_uint4(0, 0, 0, 0);
    }
  };

  // 1. The first unit's codes in flight while the codebooks and x are staged.
  uint4 ring[kChunks];
  int set = first_set, tile = u_begin - first_set * p.tiles;
  load_unit(ring, set, tile);

  // 2. Codebooks as fp32, x of the block's sets as fp32 (zeros past the real groups/tokens).
  for (int i = tid; i < (p.M << p.nbits); i += lut::kThreads) {
    float v[8];
    codeword_to_float(__ldg(reinterpret_cast<const uint4*>(p.codebooks) + i), v);
    reinterpret_cast<float4*>(cbf)[2 * i] = make_float4(v[0], v[1], v[2], v[3]);
    reinterpret_cast<float4*>(cbf)[2 * i + 1] = make_float4(v[4], v[5], v[6], v[7]);
  }
  {
    const int last_set = (u_end - 1) / p.tiles;
    const int per_set = K * p.gps;  // groups of a set
    const int vectors = (last_set - first_set + 1) * T * per_set;
    for (int i = tid; i < vectors; i += lut::kThreads) {
      const int gi = i % per_set, st = i / per_set, tok = st % T, s = st / T;
      const int group = (first_set + s) * per_set + gi;
      float v[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      if (group < p.groups && tok < p.n) load_x8(p.x + (int64_t(tok) * p.groups + group) * 8, p.bf16, v);
      reinterpret_cast<float4*>(xs)[2 * i] = make_float4(v[0], v[1], v[2], v[3]);
      reinterpret_cast<float4*>(xs)[2 * i + 1] = make_float4(v[4], v[5], v[6], v[7]);
    }
  }
  __syncthreads();

  // The lane's lookup column bytes, [q_base][stored byte], three per register.
  constexpr int kBases = T == 1 ? 2 : 1;
  uint32_t cols[kBases][6];
#pragma unroll
  for (int qb = 0; qb < kBases; ++qb)
#pragma unroll
    for (int i = 0; i < 6; ++i) {
      uint32_t packed = 0;
#pragma unroll
      for (int k = 0; k < 3; ++k)
        if (3 * i + k < 16) packed |= lut::lookup_column(T, K, qb, 3 * i + k, lane) << (8 * k);
      cols[qb][i] = packed;
    }

  int built = -1;
  int next_set = set, next_tile = tile;
  for (int u = u_begin; u < u_end; ++u) {
    if (++next_tile == p.tiles) next_tile = 0, ++next_set;
    if (set != built) {
      if (built >= 0) __syncthreads();  // every warp is done with the old tables
      build_tables<T, K>(p, set, set - first_set, tables, cbf, xs);
      __syncthreads();
      built = set;
    }
    const bool has_next = u + 1 < u_end;
    const uint4* next_base = unit_base(next_set, next_tile);
    const int next_k_eff = min(K, p.slabs - next_set * K);
    const int k_eff = min(K, p.slabs - set * K);
#pragma unroll
    for (int r = 0; r < R; ++r) {
      const int64_t row0 = lut::unit_row(tile, R, r, warp * 32);
      const bool active = row0 < p.rows_pad;  // warp-uniform
      float acc[2][T];
#pragma unroll
      for (int tok = 0; tok < T; ++tok) acc[0][tok] = acc[1][tok] = 0.0f;
#pragma unroll
      for (int q = 0; q < K; ++q) {
        const int i = r * K + q;
        const uint4 chunk = ring[i];
        const bool refill = has_next && q < next_k_eff && lut::unit_row(next_tile, R, r, warp * 32) < p.rows_pad;
        ring[i] = refill ? __ldcs(next_base + r * lut::kThreads + slab_offset[q]) : make_uint4(0, 0, 0, 0);
        if (active && q < k_eff) lookup_chunk<T>(chunk, cols[lut::q_base(T, q)], tables, lut::lookup_constant(T, q), acc);
      }
      if (active) {
        const int64_t row = lut::unit_row(tile, R, r, tid);
#pragma unroll
        for (int tok = 0; tok < T; ++tok)
          if (tok < p.n) p.partial[(int64_t(set) * T + tok) * p.rows_pad + row] = acc[0][tok] + acc[1][tok];
      }
    }
    set = next_set;
    tile = next_tile;
  }
}

template <int T, int K, int R>
void launch_lut_instance(const LutParams& p, int grid, size_t smem, cudaStream_t stream) {
  const auto kernel = aqlm_lut_kernel<T, K, R>;
  allow_dynamic_smem(reinterpret_cast<const void*>(kernel), device_properties().max_smem_per_block);
  kernel<<<unsigned(grid), lut::kThreads, smem, stream>>>(p);
  check_launch("AQLM gemv");
}

}  // namespace aqlm::cuda::detail
