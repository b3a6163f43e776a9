#pragma once
// The lookup-table AQLM gemv (B <= 8), device code and its launch. Layout and index
// arithmetic: aqlm_gemv_layout.h. Instantiated per token count in aqlm_gemv_lut_t{1,2,4}.cu.
//
// One block per SM (512 threads) walks a contiguous range of units (K-slab set, 512-row
// tile) in set-major order. When the set changes, the block builds the set's tables in shared
// memory (one fp32 entry per table, codeword and token: x[group] . codebook[m][c]); in
// between, every thread handles one row at a time: it streams the row's K chunks (16 code
// bytes each) through its own ring of 8-9 shared-memory slots, filled by cp.async that many
// chunks ahead (~64 KB in flight per SM; no barrier: a thread reads only its own slots), and sums
// 16 table entries per chunk. Each warp then writes its 32 rows' partial sums for the set;
// the warp that completes a 32-row group (an arrival counter) adds the group's sets in a fixed
// order and writes y. Warps never wait on each other except around a table build.
#include <cuda_pipeline.h>
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
  const uint16_t* scales;     // [out] fp16
  const uint16_t* x;          // [n][groups * 8]
  uint16_t* y;                // [n][out]
  float* partial;             // lut::partial_index layout
  unsigned* counters;         // [rows_pad / 32] arrivals, zero between calls
  int out;                    // real rows
  int rows_pad;               // rows, padded to 32
  int groups;                 // real input groups
  int n;                      // real tokens (<= T)
  int M, nbits, gps;          // codebooks, bits, groups per slab
  int slabs;                  // slab count (even)
  int sets, tiles, units;     // units = sets * tiles
  int xs_sets;                // most sets one block touches (x staging capacity)
  bool bf16;
};

template <int T, int K>
struct LutShape {
  static constexpr int kTableBytes = lut::table_bytes(T, K);
  // Chunks per thread in the ring: 9 (64 KB in flight per SM; cp.async.wait_group waits on
  // at most 8 newer groups on sm_90, so more slots would not add depth), 8 beside 128 KB of
  // tables (what shared memory leaves with 4 codebooks' staging).
  static constexpr int kRing = kTableBytes <= lut::kRegionBytes ? 9 : 8;
  static constexpr int kRingBytes = kRing * lut::kThreads * 16;
  static_assert(K * T <= 8, "tables of at most 128 KB");
  // Shared memory: [tables][ring][codebooks as fp32: M * 2^B * 8][x of the block's sets].
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

__device__ __forceinline__ unsigned atomic_add_acq_rel(unsigned* p, unsigned v) {
  unsigned old;
  asm volatile("atom.acq_rel.gpu.global.add.u32 %0, [%1], %2;" : "=r"(old) : "l"(p), "r"(v) : "memory");
  return old;
}

// Warp-wide: after the warp wrote its partial sums of 32-row group `group` for one set, counts
// the arrival; the warp that brings the count to `sets` adds the group's sets and writes y,
// then re-arms the counter. Lane l sums rows 4 (l % 8) .. +3 over sets l / 8, l / 8 + 4, ...
// (16-byte loads, 4 x 128 contiguous bytes per warp load), then two butterfly shuffles add the
// four slices: the order of the sums does not depend on which warp arrives last, so results
// are deterministic.
// Ordering: __syncwarp orders the lanes' partial-sum stores before lane 0's release; lane 0's
// acquire and the second __syncwarp order the other lanes' loads after the other warps' stores
// (loaded with .cg: L1 is not coherent).
template <int T>
__device__ __forceinline__ void finish_group(const LutParams& p, int64_t group, int lane) {
  __syncwarp();
  unsigned arrived = 0;
  if (lane == 0) arrived = atomic_add_acq_rel(p.counters + group, 1u);
  arrived = __shfl_sync(kFullMask, arrived, 0);
  if (arrived != unsigned(p.sets - 1)) return;
  __syncwarp();
  const int quad = lane & 7, slice = lane >> 3;
  const int64_t row0 = group * 32 + 4 * quad;
#pragma unroll 1
  for (int tok = 0; tok < p.n; ++tok) {
    float4 a = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
#pragma unroll 8
    for (int s = slice; s < p.sets; s += 4) {
      const float4 f = __ldcg(reinterpret_cast<const float4*>(p.partial + lut::partial_index(group, s, p.sets, T, tok, 4 * quad)));
      a.x += f.x, a.y += f.y, a.z += f.z, a.w += f.w;
    }
#pragma unroll
    for (int mask = 8; mask <= 16; mask <<= 1) {
      a.x += __shfl_xor_sync(kFullMask, a.x, mask);
      a.y += __shfl_xor_sync(kFullMask, a.y, mask);
      a.z += __shfl_xor_sync(kFullMask, a.z, mask);
      a.w += __shfl_xor_sync(kFullMask, a.w, mask);
    }
    if (slice == 0) {
      const float v[4] = {a.x, a.y, a.z, a.w};
#pragma unroll
      for (int i = 0; i < 4; ++i)
        if (row0 + i < p.out)
          p.y[int64_t(tok) * p.out + row0 + i] = to_act(v[i] * half_bits_to_float(__ldg(p.scales + row0 + i)), p.bf16);
    }
  }
  if (lane == 0) p.counters[group] = 0;  // ready for the next call
}

template <int T, int K>
__global__ void __launch_bounds__(lut::kThreads, 1) aqlm_lut_kernel(const LutParams p) {
  using S = LutShape<T, K>;
  constexpr int kRing = S::kRing;
  extern __shared__ __align__(16) uint8_t smem[];
  uint4* ring = reinterpret_cast<uint4*>(smem + S::kTableBytes);
  float* cbf = reinterpret_cast<float*>(smem + S::kTableBytes + S::kRingBytes);
  float* xs = cbf + (p.M << p.nbits) * 8;
  const uint32_t tables = shared_address(smem);

  const int u_begin = int(int64_t(p.units) * blockIdx.x / gridDim.x);
  const int u_end = int(int64_t(p.units) * (blockIdx.x + 1) / gridDim.x);
  if (u_begin >= u_end) return;  // the whole block leaves together
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int first_set = u_begin / p.tiles;

  // Codes: this thread's chunks, unit by unit (set positions 0..K-1), stream through a ring of
  // kRing shared-memory slots kRing chunks ahead of the one being summed; chunks outside the
  // layer are not copied (never summed). One cp.async group per chunk, empty or not, so
  // wait_prior counts chunks.
  struct Source {
    const uint4* base;  // the unit's chunk of the set's first slab
    int k_eff;          // set positions to copy (0: nothing, the unit is outside the range or the rows)
  };
  auto source = [&](int u) {
    Source src{p.codes, 0};
    if (u < u_end) {
      const int st = u / p.tiles, tl = u - st * p.tiles;
      src.base = p.codes + int64_t(st) * K * p.rows_pad + lut::unit_row(tl, tid);
      if (lut::unit_row(tl, warp * 32) < p.rows_pad) src.k_eff = min(K, p.slabs - st * K);
    }
    return src;
  };
  auto copy = [&](int into, const Source& src, int q) {
    if (q < src.k_eff)  // set position q: slab slab_at(q) of the set
      __pipeline_memcpy_async(ring + into * lut::kThreads + tid, src.base + lut::slab_at(T, K, q, lane) * p.rows_pad, 16);
    __pipeline_commit();
  };
  // Prefetch targets: chunk q of unit u + kAhead (q + kLeft < K), else of unit u + kAhead + 1.
  constexpr int kAhead = kRing / K, kLeft = kRing % K;

  // 1. The first kRing chunks in flight, then the codebooks and x (loads issued before use).
#pragma unroll 1
  for (int i = 0; i < kRing; ++i) copy(i, source(u_begin + i / K), i % K);
  {
    const int codewords = p.M << p.nbits;
    const int last_set = (u_end - 1) / p.tiles;
    const int per_set = K * p.gps;  // groups of a set
    const int vectors = (last_set - first_set + 1) * T * per_set;
    uint4 cw[2] = {}, xv[2] = {};
    auto x_src = [&](int i, const uint16_t*& src) {
      const int gi = i % per_set, st = i / per_set, tok = st % T, s = st / T;
      const int group = (first_set + s) * per_set + gi;
      src = group < p.groups && tok < p.n ? p.x + (int64_t(tok) * p.groups + group) * 8 : nullptr;
    };
#pragma unroll
    for (int k = 0; k < 2; ++k) {
      const int i = tid + k * lut::kThreads;
      if (i < codewords) cw[k] = __ldg(reinterpret_cast<const uint4*>(p.codebooks) + i);
      const uint16_t* src = nullptr;
      if (i < vectors) x_src(i, src);
      if (src) xv[k] = __ldg(reinterpret_cast<const uint4*>(src));
    }
    auto store8 = [](float* dst, const float (&v)[8]) {
      reinterpret_cast<float4*>(dst)[0] = make_float4(v[0], v[1], v[2], v[3]);
      reinterpret_cast<float4*>(dst)[1] = make_float4(v[4], v[5], v[6], v[7]);
    };
#pragma unroll
    for (int k = 0; k < 2; ++k) {
      const int i = tid + k * lut::kThreads;
      float v[8];
      if (i < codewords) codeword_to_float(cw[k], v), store8(cbf + i * 8, v);
      if (i < vectors) {
        const uint32_t w[4] = {xv[k].x, xv[k].y, xv[k].z, xv[k].w};
#pragma unroll
        for (int j = 0; j < 4; ++j) {  // zeros stay zeros in either type
          if (p.bf16) {
            v[2 * j] = __uint_as_float(w[j] << 16), v[2 * j + 1] = __uint_as_float(w[j] & 0xffff0000u);
          } else {
            const float2 f = __half22float2(*reinterpret_cast<const __half2*>(&w[j]));
            v[2 * j] = f.x, v[2 * j + 1] = f.y;
          }
        }
        store8(xs + i * 8, v);
      }
    }
    for (int i = tid + 2 * lut::kThreads; i < vectors; i += lut::kThreads) {  // many sets per block: rare
      const uint16_t* src = nullptr;
      x_src(i, src);
      float v[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      if (src) load_x8(src, p.bf16, v);
      store8(xs + i * 8, v);
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

  int set = first_set, tile = u_begin - first_set * p.tiles, built = -1;
  int slot = 0;
  Source ahead = source(u_begin + kAhead), after = source(u_begin + kAhead + 1);
  for (int u = u_begin; u < u_end; ++u) {
    if (set != built) {
      if (built >= 0) __syncthreads();  // every warp is done with the old tables
      build_tables<T, K>(p, set, set - first_set, tables, cbf, xs);
      __syncthreads();
      built = set;
    }
    const int k_eff = min(K, p.slabs - set * K);
    const bool active = lut::unit_row(tile, warp * 32) < p.rows_pad;  // warp-uniform
    float acc[2][T];
#pragma unroll
    for (int tok = 0; tok < T; ++tok) acc[0][tok] = acc[1][tok] = 0.0f;
#pragma unroll
    for (int q = 0; q < K; ++q) {
      __pipeline_wait_prior(kRing - 1);  // this chunk's group (kRing - 1 newer ones may be in flight)
      const uint4 chunk = ring[slot * lut::kThreads + tid];
      if (active && q < k_eff) lookup_chunk<T>(chunk, cols[lut::q_base(T, q)], tables, lut::lookup_constant(T, q), acc);
      // Refill the slot just read; the lookups consumed the chunk first, so the copy cannot
      // overwrite it early (an unused chunk may be overwritten: it is not needed).
      if (q + kLeft < K) copy(slot, ahead, q + kLeft);
      else copy(slot, after, q + kLeft - K);
      if (++slot == kRing) slot = 0;
    }
    if (active) {
      const int64_t group = int64_t(tile) * lut::kWarps + warp;
#pragma unroll
      for (int tok = 0; tok < T; ++tok)
        if (tok < p.n) p.partial[lut::partial_index(group, set, p.sets, T, tok, lane)] = acc[0][tok] + acc[1][tok];
      finish_group<T>(p, group, lane);
    }
    if (++tile == p.tiles) tile = 0, ++set;
    ahead = kLeft == 0 ? source(u + kAhead + 1) : after;
    if (kLeft != 0) after = source(u + kAhead + 2);
  }
}

template <int T, int K>
void launch_lut_instance(const LutParams& p, int grid, size_t smem, cudaStream_t stream) {
  const auto kernel = aqlm_lut_kernel<T, K>;
  allow_dynamic_smem(reinterpret_cast<const void*>(kernel), device_properties().max_smem_per_block);
  kernel<<<unsigned(grid), lut::kThreads, smem, stream>>>(p);
  check_launch("AQLM gemv");
}

}  // namespace aqlm::cuda::detail
