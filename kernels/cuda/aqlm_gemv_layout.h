#pragma once
// Index arithmetic of the lookup-table AQLM gemv (B <= 8), shared by the CUDA kernel, the
// load-time re-layout of the codes (host) and the CPU emulation test that checks results and
// bank conflicts without a GPU. Everything here is plain integer arithmetic.
//
// Codes ("slab layout", built once by aqlm::cuda::prepare): the input groups are cut into
// slabs of 16 / M groups, so one row's codes of one slab are 16 bytes ("a chunk"; M = 3 uses
// 15 of them). Chunks are stored [slab][row] (rows padded to 32, slabs to an even count), so
// a warp reading 32 consecutive rows of a slab reads 512 contiguous bytes. Byte b of a row's
// chunk, before rotation, is the code of (group b / M, codebook b % M) of the slab: "table" b.
// The stored chunk of row r is rotated by r: stored byte p holds table (p + r) mod 16.
//
// Kernel: each thread owns one row at a time (lane = row mod 32) and walks the bytes of its
// chunks in stored order, so at byte p lane l reads table (p + l) mod 16: the 16 lanes of a
// half warp read 16 different tables. Tables live in shared memory in "regions" of 256
// codeword rows of 256 bytes: [region][codeword c][slot][table t][token] (fp32 entries), a
// row holding 4 / T slabs ("slots") of 16 tables, so entry addresses are c * 256 + a column
// byte (one PRMT merges the code with the lane's column) and a table's entries all fall in one
// group of banks whatever the code. With one token the two half warps must also read
// different bank halves: lanes >= 16 walk the slabs of each even-odd pair in the other order
// (slab_at); a one-slab set keeps a mirrored copy in slot 1 instead. With 2 or 4 tokens an
// entry is 8 or 16 bytes, the hardware serves a half or quarter warp per phase, and 16 (8)
// consecutive tables cover all banks.
#include <cstdint>

#include "kernels/cpu/aqlm_gemv.h"

#if defined(__CUDACC__)
#define AQLM_HD __host__ __device__ __forceinline__
#else
#define AQLM_HD inline
#endif

namespace aqlm::cuda::lut {

constexpr int kThreads = 512;  // one block per SM
constexpr int kWarps = kThreads / 32;
constexpr int kTables = 16;    // code bytes per row and slab

AQLM_HD constexpr int groups_per_slab(int M) { return kTables / M; }
// Bytes of one table entry: one fp32 value per token.
AQLM_HD constexpr int entry_bytes(int T) { return 4 * T; }
constexpr int kRowBytes = 256;                  // one codeword's entries in a region
constexpr int kRegionBytes = 256 * kRowBytes;   // 64 KB
AQLM_HD constexpr int slots(int T) { return 4 / T; }
AQLM_HD constexpr int regions(int T, int K) { return (K * T + 3) / 4; }
AQLM_HD constexpr int table_bytes(int T, int K) { return regions(T, K) * kRegionBytes; }

// The slab of its set that lane `lane` processes at position q.
AQLM_HD constexpr int slab_at(int T, int K, int q, int lane) { return T == 1 && K >= 2 ? q ^ (lane >> 4) : q; }
// The slot of its region holding slab sl's tables for lane `lane` (K = 1, T = 1: lanes >= 16
// read the mirrored copy in slot 1).
AQLM_HD constexpr int slot_of(int T, int K, int sl, int lane) {
  return T == 1 ? (K == 1 ? lane >> 4 : sl & 3) : T == 2 ? sl & 1 : 0;
}
AQLM_HD constexpr int region_of(int T, int sl) { return sl / slots(T); }
// Table held by stored byte p of row `row` (only row mod 16 matters, so lane works too).
AQLM_HD constexpr int table_at(int p, int row) { return (p + row) & 15; }
// Stored byte that holds table t of row `row`.
AQLM_HD constexpr int stored_position(int t, int row) { return (t - row) & 15; }

// Byte offset of entry (slab sl of the set, stored in `slot`, table t, codeword c).
AQLM_HD constexpr uint32_t entry_offset(int T, int sl, int slot, int t, int c) {
  return uint32_t(region_of(T, sl) * kRegionBytes + c * kRowBytes + (slot * kTables + t) * entry_bytes(T));
}
// A lookup at set position q, stored byte p, code c. The kernel computes it as
//   c * 256 + lookup_column(q_base(q), p, lane)  [one PRMT: the column is a byte]
//   + lookup_constant(q)                         [an immediate offset]
// (checked equal to entry_offset of the slab, slot and table the lane reads by the test).
AQLM_HD constexpr int q_base(int T, int q) { return T == 1 ? q & 1 : 0; }
AQLM_HD constexpr uint32_t lookup_column(int T, int K, int qb, int p, int lane) {
  return uint32_t((slot_of(T, K, slab_at(T, K, qb, lane), lane) * kTables + table_at(p, lane)) * entry_bytes(T));
}
AQLM_HD constexpr uint32_t lookup_constant(int T, int q) {
  return uint32_t((T == 1 ? q >> 2 : T == 2 ? q >> 1 : q) * kRegionBytes +
                  (T == 1 ? (q & 2) * kTables * 4 : T == 2 ? (q & 1) * kTables * 8 : 0));
}
AQLM_HD constexpr uint32_t lookup_offset(int T, int K, int q, int p, int lane, int c) {
  return uint32_t(c * kRowBytes) + lookup_column(T, K, q_base(T, q), p, lane) + lookup_constant(T, q);
}

// Table build: a row of a region holds 64 / T entries; thread `tid` fills entry column
// tid % (64 / T) (slot and table below) of codewords tid / (64 / T) + 8T i, in every region.
AQLM_HD constexpr int build_columns(int T) { return 64 / T; }
AQLM_HD constexpr int build_slot(int T, int tid) { return (tid % build_columns(T)) / kTables; }
AQLM_HD constexpr int build_table(int T, int tid) { return tid % kTables; }
AQLM_HD constexpr int build_first_codeword(int T, int tid) { return tid / build_columns(T); }
AQLM_HD constexpr int build_codeword_stride(int T) { return kThreads / build_columns(T); }
// The slab of the set whose tables slot `slot` of region `region` holds (-1: none).
AQLM_HD constexpr int build_slab(int T, int K, int region, int slot) {
  return T == 1 && K == 1 ? (slot < 2 ? 0 : -1) : (region * slots(T) + slot < K ? region * slots(T) + slot : -1);
}

// Work: units are (set of K slabs, tile of kThreads rows), numbered set-major; thread `tid`
// of a unit handles row tile * kThreads + tid, so warp w covers 32-row group tile * kWarps + w.
AQLM_HD constexpr int64_t unit_row(int tile, int tid) { return int64_t(tile) * kThreads + tid; }
// Partial sums of the sets, [32-row group][set][token][32 rows] floats: a warp writes 128
// contiguous bytes per token, and the warp that completes a group reads the group's block of
// sets * T * 32 floats with 16-byte loads.
AQLM_HD constexpr int64_t partial_index(int64_t group, int set, int sets, int T, int token, int lane) {
  return ((group * sets + set) * T + token) * 32 + lane;
}

// Host side of the slab layout: padded sizes, and the re-layout of a layer's codes (host
// pointers) into slabs() * rows_padded() chunks of 16 bytes at dst (padding filled with code 0).
struct SlabGeometry {
  int64_t rows_pad = 0, slabs = 0;
  int gps = 0;
};
SlabGeometry slab_geometry(const AqlmView& w);
void relayout_to_slabs(const AqlmView& w, const SlabGeometry& g, uint8_t* dst);

}  // namespace aqlm::cuda::lut
