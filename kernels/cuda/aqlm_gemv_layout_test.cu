// The lookup-table gemv's index arithmetic (aqlm_gemv_layout.h), checked on the CPU (no GPU
// needed): the host re-layout of the codes, then an emulation of the kernel that builds the
// tables and does the lookups through the same functions the kernel calls, compared with
// the double-precision CPU reference; and every shared-memory access of a warp (table stores,
// lookups on random codes) checked free of bank conflicts, the property the design relies on.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "core/common/error.h"
#include "core/common/half.h"
#include "kernels/cpu/aqlm_gemv.h"
#include "kernels/cpu/aqlm_test_data.h"
#include "kernels/cuda/aqlm_gemv_layout.h"

namespace aqlm::cuda::lut {
namespace {

// Shared memory serves a warp's access in phases: all 32 lanes for 4-byte accesses, half
// warps for 8 bytes, quarter warps for 16. Within a phase, two lanes touching different
// 4-byte words of one bank conflict. Returns the number of conflicting banks over the phases;
// lanes at offset ~0u take no part (threads that skip the access).
int conflicts(const std::vector<uint32_t>& lane_offsets, int bytes) {
  const int lanes_per_phase = 32 / (bytes / 4);
  int bad = 0;
  for (int phase = 0; phase < 32 / lanes_per_phase; ++phase) {
    std::vector<std::set<uint32_t>> words(32);
    for (int l = phase * lanes_per_phase; l < (phase + 1) * lanes_per_phase; ++l)
      for (int k = 0; k < bytes / 4 && lane_offsets[size_t(l)] != ~0u; ++k) {
        const uint32_t word = lane_offsets[size_t(l)] / 4 + uint32_t(k);
        words[word % 32].insert(word);
      }
    for (const auto& w : words) bad += w.size() > 1;
  }
  return bad;
}

struct Case {
  int64_t out, in;
  int M, B, T, n;
};

// Emulates aqlm_lut_kernel<T, K> on layer `l` and x [n][in]; returns y [n][out] (fp32,
// before rounding to the activation type) and counts bank conflicts.
std::vector<float> emulate(const test::AqlmLayer& l, const std::vector<float>& x, int n, int T, int K,
                           int& store_conflicts, int& lookup_conflicts) {
  const AqlmView w = l.view();
  const SlabGeometry g = slab_geometry(w);
  std::vector<uint8_t> codes(size_t(g.slabs * g.rows_pad) * 16);
  relayout_to_slabs(w, g, codes.data());
  const int M = l.M, gps = g.gps, codewords = 1 << l.B;
  const int64_t groups = w.groups();
  const int sets = int((g.slabs + K - 1) / K);
  const int tiles = int((g.rows_pad + kThreads - 1) / kThreads);
  std::vector<float> partial(size_t(sets) * T * size_t(g.rows_pad), 0.0f);
  std::vector<uint8_t> tables(size_t(table_bytes(T, K)));
  auto entry = [&](uint32_t offset) { return reinterpret_cast<float*>(tables.data() + offset); };
  for (int set = 0; set < sets; ++set) {
    // Build, thread by thread, exactly as build_tables (poisoned first: a missed entry shows).
    std::fill(tables.begin(), tables.end(), uint8_t(0xff));
    const int k_eff = std::min<int>(K, int(g.slabs) - set * K);
    const int iterations = (codewords + build_codeword_stride(T) - 1) / build_codeword_stride(T);
    std::vector<std::vector<uint32_t>> warp_stores(size_t(kWarps * regions(T, K) * iterations));  // [warp][region][i]
    for (int tid = 0; tid < kThreads; ++tid) {
      const int slot = build_slot(T, tid), t = build_table(T, tid);
      const int g_local = t / M, m = t % M;
      for (int region = 0; region < regions(T, K); ++region) {
        const int sl = build_slab(T, K, region, slot);
        if (sl < 0) continue;
        const bool live = g_local < gps && sl < k_eff;
        const int64_t group = (int64_t(set) * K + sl) * gps + g_local;
        int it = 0;
        for (int c = build_first_codeword(T, tid); c < codewords; c += build_codeword_stride(T), ++it) {
          const uint32_t off = entry_offset(T, sl, slot, t, c);
          for (int tok = 0; tok < T; ++tok) {
            float d = 0.0f;
            if (live && group < groups && tok < n)
              for (int k = 0; k < 8; ++k)
                d = std::fma(f16_to_f32(l.codebooks[(size_t(m) * codewords + c) * 8 + k]),
                             x[size_t(tok * l.in + group * 8 + k)], d);
            entry(off)[tok] = d;
          }
          auto& lanes = warp_stores[size_t(((tid / 32) * regions(T, K) + region) * iterations + it)];
          if (lanes.empty()) lanes.assign(32, uint32_t(-1));
          lanes[size_t(tid % 32)] = off;
        }
      }
    }
    for (const auto& lanes : warp_stores)
      if (!lanes.empty()) store_conflicts += conflicts(lanes, entry_bytes(T));
    // Lookups, thread by thread, as the kernel's unit loop; the warp's addresses of each
    // (unit, r, q, p) step are collected for the bank check.
    for (int tile = 0; tile < tiles; ++tile) {
      for (int warp = 0; warp < kWarps; ++warp) {
        if (unit_row(tile, warp * 32) >= g.rows_pad) continue;
        std::vector<std::vector<uint32_t>> step_lanes(size_t(K * 16), std::vector<uint32_t>(32));
        for (int lane = 0; lane < 32; ++lane) {
          const int64_t row = unit_row(tile, warp * 32 + lane);
          double acc[4] = {0, 0, 0, 0};
          for (int q = 0; q < k_eff; ++q) {
            const int sl = slab_at(T, K, q, lane);
            const uint8_t* chunk = codes.data() + ((int64_t(set) * K + sl) * g.rows_pad + row) * 16;
            for (int p = 0; p < 16; ++p) {
              const int c = chunk[p];
              const uint32_t off = lookup_offset(T, K, q, p, lane, c);
              EXPECT_EQ(off, entry_offset(T, sl, slot_of(T, K, sl, lane), table_at(p, lane), c));
              step_lanes[size_t(q * 16 + p)][size_t(lane)] = off;
              for (int tok = 0; tok < T; ++tok) acc[tok] += entry(off)[tok];
            }
          }
          const int64_t group = tile * kWarps + warp;
          for (int tok = 0; tok < T; ++tok) partial[size_t(partial_index(group, set, sets, T, tok, lane))] = float(acc[tok]);
        }
        for (int s = 0; s < k_eff * 16; ++s) lookup_conflicts += conflicts(step_lanes[size_t(s)], entry_bytes(T));
      }
    }
  }
  std::vector<float> y(size_t(n * l.out));
  for (int tok = 0; tok < n; ++tok)
    for (int64_t row = 0; row < l.out; ++row) {
      double sum = 0;
      for (int set = 0; set < sets; ++set) sum += partial[size_t(partial_index(row / 32, set, sets, T, tok, int(row % 32)))];
      y[size_t(tok * l.out + row)] = float(sum * f16_to_f32(l.scales[size_t(row)]));
    }
  return y;
}

class LutEmulation : public ::testing::TestWithParam<Case> {};

// Every slab count per set the kernel has for T tokens, on a layer with odd sizes.
TEST_P(LutEmulation, MatchesReferenceWithoutBankConflicts) {
  const Case c = GetParam();
  const test::AqlmLayer l = test::random_layer(c.out, c.in, c.M, c.B, 8, uint64_t(c.out * 3 + c.in + c.M * 7 + c.B));
  std::mt19937_64 rng(uint64_t(c.in + c.T));
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(size_t(c.n * c.in));
  for (auto& v : x) v = f16_to_f32(f32_to_f16(normal(rng)));
  std::vector<float> ref(size_t(c.n * c.out));
  cpu::aqlm_gemv_reference(l.view(), x.data(), c.n, c.in, ref.data(), c.out, 0, c.out);
  const auto abs_sum = test::abs_products(l.view(), x.data(), c.n, c.in);
  int instances = 0;
  for (int K : {1, 2, 4, 8}) {
    if (K * c.T > 8) continue;
    SCOPED_TRACE(str("K = ", K));
    ++instances;
    int store_conflicts = 0, lookup_conflicts = 0;
    const std::vector<float> y = emulate(l, x, c.n, c.T, K, store_conflicts, lookup_conflicts);
    EXPECT_EQ(store_conflicts, 0);
    EXPECT_EQ(lookup_conflicts, 0);
    for (size_t i = 0; i < y.size(); ++i) {
      // fp32 table entries and the emulation's double sums: the fp32 accumulation bound.
      const double bound = test::fp32_sum_bound(l.view(), abs_sum[i]);
      ASSERT_NEAR(y[i], ref[i], bound) << "token " << i / size_t(c.out) << " row " << i % size_t(c.out);
    }
    // The kernel merges the code and the column with one PRMT: columns are bytes.
    for (int lane = 0; lane < 32; ++lane)
      for (int p = 0; p < 16; ++p)
        for (int qb = 0; qb < 2; ++qb) EXPECT_LT(lookup_column(c.T, K, qb, p, lane), 256u);
  }
  EXPECT_GT(instances, 0);
}

INSTANTIATE_TEST_SUITE_P(
    Layers, LutEmulation,
    ::testing::Values(Case{1000, 576, 2, 8, 1, 1},   // 9 slabs (padded to 10): partial last sets
                      Case{1000, 576, 2, 8, 2, 2}, Case{600, 576, 2, 8, 4, 3},
                      Case{70, 128, 2, 6, 1, 1},     // 64-word codebooks
                      Case{90, 72, 1, 8, 1, 1},      // 1x8: 16 groups per slab, one partial slab
                      Case{100, 200, 3, 8, 2, 2},    // 3x8: 5 groups (15 bytes) per slab
                      Case{64, 1024, 4, 8, 4, 4},    // 4x8
                      Case{37, 8, 2, 8, 1, 1},       // a single group
                      Case{1100, 256, 1, 8, 1, 1}),  // rows past one tile of 1024
    [](const ::testing::TestParamInfo<Case>& info) {
      const Case& c = info.param;
      return str(c.M, "x", c.B, "g8_", c.out, "x", c.in, "_T", c.T, "_n", c.n);
    });

// The stored chunk of row r holds table (p + r) mod 16 at byte p; padding rows, groups and
// slabs hold code 0.
TEST(LutLayout, RelayoutPlacesEveryCode) {
  const test::AqlmLayer l = test::random_layer(45, 13 * 8, 2, 8, 8, 3);
  const AqlmView w = l.view();
  const SlabGeometry g = slab_geometry(w);
  EXPECT_EQ(g.gps, 8);
  EXPECT_EQ(g.rows_pad, 64);
  EXPECT_EQ(g.slabs, 2);
  std::vector<uint8_t> codes(size_t(g.slabs * g.rows_pad) * 16, 0xee);
  relayout_to_slabs(w, g, codes.data());
  for (int64_t slab = 0; slab < g.slabs; ++slab)
    for (int64_t row = 0; row < g.rows_pad; ++row)
      for (int t = 0; t < 16; ++t) {
        const int64_t group = slab * 8 + t / 2;
        const uint32_t expected = row < w.out && group < w.groups() ? w.code(row, group, t % 2) : 0;
        ASSERT_EQ(codes[size_t((slab * g.rows_pad + row) * 16 + stored_position(t, int(row)))], expected)
            << "slab " << slab << " row " << row << " table " << t;
      }
}

}  // namespace
}  // namespace aqlm::cuda::lut
