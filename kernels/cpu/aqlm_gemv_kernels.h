#pragma once
// Internal to the AQLM CPU kernels (aqlm_gemv*.cpp): the per-kernel entry points behind
// AqlmCpuLayer and the helpers they share. Not for other rooms: use aqlm_gemv.h.
#include <cstdint>

#include "kernels/cpu/aqlm_gemv.h"

namespace aqlm::cpu::detail {

// Lookups per row of one block of groups: the tables of a block share one int16 scale
// (LutAvx512), and both LUT kernels sweep groups in these blocks: block_groups = max(1, 8 / M).
constexpr int64_t kLookupsPerBlock = 8;

// Table entries per codebook in the fp32 codebook copy and the tables: 256 for LutAvx512
// (the byte permutes read 256-entry planes; entries past 2^B are zero), else 2^B rounded up to 16.
int64_t table_entries(AqlmKernel kernel, int nbits);

// Codes re-laid for the LUT kernels, masked to B bits (bytes).
//   LutAvx512: [group][codebook][rows_padded]; rows in chunks of 64 whose byte p holds row
//              lut_avx512_chunk_row(p), so the kernel's int32 sums come out in row order.
//   LutAvx2:   [block][row][group in block][codebook]: a row's codes of a block are contiguous.
int lut_avx512_chunk_row(int p);
int64_t lut_code_offset_avx2(const AqlmView& w, int64_t block_groups, int64_t block);

// fp32 tables of one token for group j: out[m * entries + c] = x[j*g : j*g+g] . codebook[m][c].
void group_tables_f32(const AqlmCpuLayer& layer, const float* x, int64_t j, float* out);

size_t lut_avx512_table_floats(const AqlmCpuLayer& layer, int64_t n);
void lut_avx512_tables(const AqlmCpuLayer& layer, const float* x, int64_t n, int64_t ldx, float* tables, int64_t b0,
                   int64_t b1);
void lut_avx512_rows(const AqlmCpuLayer& layer, int64_t n, const float* tables, float* y, int64_t ldy, int64_t r0,
                 int64_t r1);

size_t lut_avx2_table_floats(const AqlmCpuLayer& layer, int64_t n);
void lut_avx2_tables(const AqlmCpuLayer& layer, const float* x, int64_t n, int64_t ldx, float* tables, int64_t b0,
                   int64_t b1);
void lut_avx2_rows(const AqlmCpuLayer& layer, int64_t n, const float* tables, float* y, int64_t ldy, int64_t r0,
                 int64_t r1);

void direct_rows(const AqlmView& w, const float* x, int64_t n, int64_t ldx, float* y, int64_t ldy, int64_t r0,
                 int64_t r1);

}  // namespace aqlm::cpu::detail
