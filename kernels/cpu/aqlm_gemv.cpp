#include "kernels/cpu/aqlm_gemv.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "core/common/error.h"
#include "core/common/half.h"
#include "kernels/cpu/aqlm_gemv_kernels.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/vec_math.h"

namespace aqlm {

void check_aqlm_view(const AqlmView& w, const std::string& what) {
  AQLM_CHECK(w.codes && w.codebooks && w.scales, what, ": AQLM layer is missing its codes, codebooks or scales");
  AQLM_CHECK(w.out > 0 && w.in > 0, what, ": AQLM layer has an empty shape ", w.out, " x ", w.in);
  AQLM_CHECK(w.num_codebooks >= 1 && w.num_codebooks <= 64, what, ": num_codebooks is ", w.num_codebooks,
             " (expected 1..64)");
  AQLM_CHECK(w.nbits >= 1 && w.nbits <= 16, what, ": nbits_per_codebook is ", w.nbits, " (expected 1..16)");
  AQLM_CHECK(w.group_size >= 1, what, ": in_group_size is ", w.group_size, " (expected >= 1)");
  AQLM_CHECK(w.in % w.group_size == 0, what, ": ", w.in, " input features are not a multiple of in_group_size ",
             w.group_size);
  AQLM_CHECK(w.code_bytes == 1 || w.code_bytes == 2, what, ": codes of ", w.code_bytes,
             " bytes are not supported (expected int8 or int16)");
  AQLM_CHECK(w.nbits <= 8 * w.code_bytes, what, ": ", w.nbits, "-bit codes do not fit the ", 8 * w.code_bytes,
             "-bit integers that hold them");
}

}  // namespace aqlm

namespace aqlm::cpu {
namespace {

void check_cpu() {
  const CpuFeatures& f = cpu_features();
  AQLM_CHECK(f.avx2 && f.fma && f.f16c, "this CPU lacks AVX2/FMA/F16C, which the AQLM CPU kernels need");
}

void check_rows(const AqlmView& w, int64_t n, int64_t ldx, int64_t ldy, int64_t row_begin, int64_t row_end) {
  AQLM_CHECK(n >= 1, "AQLM gemv: token count is ", n, " (expected at least 1)");
  AQLM_CHECK(ldx >= w.in && ldy >= 1, "AQLM gemv: row strides ", ldx, "/", ldy, " are too small for ", w.in,
             " inputs");
  AQLM_CHECK(row_begin >= 0 && row_begin <= row_end && row_end <= w.out, "AQLM gemv: rows [", row_begin, ", ",
             row_end, ") are outside the layer's ", w.out, " rows");
}

int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

// ---------------------------------------------------------------------------------------

template <typename CodeT, typename Store>
void dequantize_rows(const AqlmView& w, int64_t r0, int64_t r1, Store store) {
  const int64_t groups = w.groups(), K = w.codebook_size(), g = w.group_size;
  const int M = w.num_codebooks;
  const uint32_t mask = w.code_mask();
  const CodeT* codes = static_cast<const CodeT*>(w.codes);
  for (int64_t o = r0; o < r1; ++o) {
    const __m256 scale8 = _mm256_set1_ps(f16_to_f32(w.scales[o]));
    const float scale = f16_to_f32(w.scales[o]);
    for (int64_t j = 0; j < groups; ++j) {
      const CodeT* cj = codes + (o * groups + j) * M;
      const int64_t dst = (o - r0) * w.in + j * g;
      if (g == 8) {
        __m256 v = simd::load8_f16(w.codebooks + (cj[0] & mask) * 8);
        for (int m = 1; m < M; ++m) v = _mm256_add_ps(v, simd::load8_f16(w.codebooks + (m * K + (cj[m] & mask)) * 8));
        store.vec8(dst, _mm256_mul_ps(v, scale8));
      } else {
        for (int64_t i = 0; i < g; ++i) {
          float v = 0.0f;
          for (int m = 0; m < M; ++m) v += f16_to_f32(w.codebooks[(m * K + (cj[m] & mask)) * g + i]);
          store.one(dst + i, v * scale);
        }
      }
    }
  }
}

struct StoreF32 {
  float* out;
  void vec8(int64_t i, __m256 v) const { _mm256_storeu_ps(out + i, v); }
  void one(int64_t i, float v) const { out[i] = v; }
};
struct StoreF16 {
  uint16_t* out;
  void vec8(int64_t i, __m256 v) const {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
  }
  void one(int64_t i, float v) const { out[i] = f32_to_f16(v); }
};

void run_parallel(const ParallelFor& parallel, size_t n, size_t min_chunk, const RangeFn& fn) {
  if (n == 0) return;
  if (parallel) {
    parallel(n, fn, min_chunk);
  } else {
    fn(0, n, 0);
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Shared by the LUT kernels.

namespace detail {

int64_t table_entries(AqlmKernel kernel, int nbits) {
  return kernel == AqlmKernel::LutAvx512 ? 256 : round_up(int64_t(1) << nbits, 16);
}

int lut_avx512_chunk_row(int p) {
  // Follows code byte p through the kernel's shuffles, which all stay within 128-bit lanes:
  // unpacklo/hi_epi8 make byte k of lane L word 8L + k%8 of int16 vector k/8; unpacklo/hi_epi16
  // with the other codebook's words and madd_epi16 make word 8L + w of that vector dword
  // 4L + w%4 of int32 vector 2*(k/8) + w/4. Int32 vector v holds rows 16v .. 16v+15.
  const int lane = p / 16, k = p % 16, w = k % 8;
  const int vec = 2 * (k / 8) + w / 4, dword = 4 * lane + w % 4;
  return 16 * vec + dword;
}

int64_t lut_code_offset_avx2(const AqlmView& w, int64_t block_groups, int64_t block) {
  return block * block_groups * w.num_codebooks * w.out;
}

void group_tables_f32(const AqlmCpuLayer& layer, const float* x, int64_t j, float* out) {
  const AqlmView& w = layer.view();
  const int64_t g = w.group_size, E = table_entries(layer.kernel(), w.nbits);
  const float* xg = x + j * g;
  for (int m = 0; m < w.num_codebooks; ++m) {
    const float* cb = layer.codebooks_f32() + m * g * E;  // [i][c]
    float* t = out + m * E;
    if (g == 8) {  // x in registers; eight independent FMA chains (latency 4 x 2 pipes) over 64 entries
      __m256 xi[8];
      for (int i = 0; i < 8; ++i) xi[i] = _mm256_set1_ps(xg[i]);
      int64_t c = 0;
      for (; c + 64 <= E; c += 64) {
        __m256 a[8];
        for (int u = 0; u < 8; ++u) a[u] = _mm256_mul_ps(xi[0], _mm256_loadu_ps(cb + c + 8 * u));
        for (int i = 1; i < 8; ++i)
          for (int u = 0; u < 8; ++u) a[u] = _mm256_fmadd_ps(xi[i], _mm256_loadu_ps(cb + i * E + c + 8 * u), a[u]);
        for (int u = 0; u < 8; ++u) _mm256_storeu_ps(t + c + 8 * u, a[u]);
      }
      for (; c < E; c += 8) {
        __m256 a = _mm256_mul_ps(xi[0], _mm256_loadu_ps(cb + c));
        for (int i = 1; i < 8; ++i) a = _mm256_fmadd_ps(xi[i], _mm256_loadu_ps(cb + i * E + c), a);
        _mm256_storeu_ps(t + c, a);
      }
    } else {
      for (int64_t c = 0; c < E; c += 8) {
        __m256 a = _mm256_setzero_ps();
        for (int64_t i = 0; i < g; ++i) a = _mm256_fmadd_ps(_mm256_set1_ps(xg[i]), _mm256_loadu_ps(cb + i * E + c), a);
        _mm256_storeu_ps(t + c, a);
      }
    }
  }
}

}  // namespace detail

// ---------------------------------------------------------------------------------------

const char* aqlm_kernel_name(AqlmKernel k) {
  switch (k) {
    case AqlmKernel::Auto: return "Auto";
    case AqlmKernel::LutAvx512: return "LutAvx512";
    case AqlmKernel::LutAvx2: return "LutAvx2";
    case AqlmKernel::Direct: return "Direct";
  }
  return "?";
}

bool aqlm_kernel_supported(AqlmKernel k) {
  const CpuFeatures& f = cpu_features();
  const bool v3 = f.avx2 && f.fma && f.f16c;
  if (k != AqlmKernel::LutAvx512) return v3;
#if defined(__x86_64__) || defined(__i386__)
  static const bool vbmi = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vbmi");
  }();
  return v3 && vbmi;
#else
  return false;
#endif
}

AqlmTableQuantization aqlm_table_quantization(int num_codebooks) {
  AqlmTableQuantization q;
  q.block_groups = std::max<int64_t>(1, detail::kLookupsPerBlock / num_codebooks);
  q.q_max = 32767;
  return q;
}

void AqlmCpuLayer::FreeAligned::operator()(uint8_t* p) const { std::free(p); }

AqlmCpuLayer::AqlmCpuLayer(const AqlmView& w, AqlmKernel kernel, const std::string& what) : view_(w) {
  check_aqlm_view(w, what);
  check_cpu();
  if (kernel == AqlmKernel::Auto)
    kernel = w.nbits > 8 ? AqlmKernel::Direct
                         : (aqlm_kernel_supported(AqlmKernel::LutAvx512) ? AqlmKernel::LutAvx512 : AqlmKernel::LutAvx2);
  AQLM_CHECK(aqlm_kernel_supported(kernel), what, ": this CPU cannot run the ", aqlm_kernel_name(kernel),
             " AQLM kernel (it needs AVX-512 BW and VBMI)");
  AQLM_CHECK(kernel == AqlmKernel::Direct || w.nbits <= 8, what, ": the ", aqlm_kernel_name(kernel),
             " AQLM kernel needs codes of at most 8 bits, the layer has ", w.nbits);
  kernel_ = kernel;
  scales_.resize(size_t(w.out));
  for (int64_t o = 0; o < w.out; ++o) scales_[size_t(o)] = f16_to_f32(w.scales[o]);
  if (!uses_tables()) return;

  const int64_t G = w.groups(), M = w.num_codebooks, g = w.group_size, K = w.codebook_size();
  const int64_t E = detail::table_entries(kernel, w.nbits);
  block_groups_ = aqlm_table_quantization(int(M)).block_groups;
  blocks_ = (G + block_groups_ - 1) / block_groups_;
  codebooks_t_.assign(size_t(M * g * E), 0.0f);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t c = 0; c < K; ++c)
      for (int64_t i = 0; i < g; ++i)
        codebooks_t_[size_t((m * g + i) * E + c)] = f16_to_f32(w.codebooks[(m * K + c) * g + i]);

  rows_padded_ = kernel == AqlmKernel::LutAvx512 ? round_up(w.out, 64) : w.out;
  codes_bytes_ = size_t(G * M * rows_padded_);
  codes_.reset(static_cast<uint8_t*>(std::aligned_alloc(64, size_t(round_up(int64_t(codes_bytes_), 64)))));
  AQLM_CHECK(codes_ != nullptr, what, ": out of memory for ", codes_bytes_, " bytes of re-laid codes");
  uint8_t* dst = codes_.get();
  if (kernel == AqlmKernel::LutAvx512) {
    std::memset(dst, 0, codes_bytes_);
    int chunk_row[64];
    for (int p = 0; p < 64; ++p) chunk_row[p] = detail::lut_avx512_chunk_row(p);
    for (int64_t j = 0; j < G; ++j)
      for (int64_t m = 0; m < M; ++m) {
        uint8_t* plane = dst + (j * M + m) * rows_padded_;
        for (int64_t base = 0; base < w.out; base += 64)
          for (int p = 0; p < 64; ++p) {
            const int64_t o = base + chunk_row[p];
            if (o < w.out) plane[base + p] = uint8_t(w.code(o, j, int(m)));
          }
      }
  } else {
    for (int64_t b = 0; b < blocks_; ++b) {
      const int64_t j0 = b * block_groups_, j1 = std::min(G, j0 + block_groups_);
      uint8_t* block = dst + detail::lut_code_offset_avx2(w, block_groups_, b);
      for (int64_t o = 0; o < w.out; ++o)
        for (int64_t j = j0; j < j1; ++j)
          for (int64_t m = 0; m < M; ++m) *block++ = uint8_t(w.code(o, j, int(m)));
    }
  }
}

size_t AqlmCpuLayer::owned_bytes() const {
  return codes_bytes_ + (codebooks_t_.size() + scales_.size()) * sizeof(float);
}

size_t AqlmCpuLayer::table_floats(int64_t n) const {
  n = std::min(std::max<int64_t>(n, 1), kAqlmLutTokens);
  switch (kernel_) {
    case AqlmKernel::LutAvx512: return detail::lut_avx512_table_floats(*this, n);
    case AqlmKernel::LutAvx2: return detail::lut_avx2_table_floats(*this, n);
    default: return 0;
  }
}

void AqlmCpuLayer::build_tables(const float* x, int64_t n, int64_t ldx, float* tables, int64_t item_begin,
                                int64_t item_end) const {
  if (!uses_tables()) return;
  AQLM_CHECK(n >= 1 && n <= kAqlmLutTokens, "AQLM gemv: ", n, " tokens in one table pass (expected 1..",
             kAqlmLutTokens, ")");
  AQLM_CHECK(ldx >= view_.in, "AQLM gemv: input row stride ", ldx, " is smaller than the ", view_.in, " inputs");
  AQLM_CHECK(item_begin >= 0 && item_begin <= item_end && item_end <= blocks_, "AQLM gemv: table items [",
             item_begin, ", ", item_end, ") are outside the layer's ", blocks_, " items");
  if (kernel_ == AqlmKernel::LutAvx512)
    detail::lut_avx512_tables(*this, x, n, ldx, tables, item_begin, item_end);
  else
    detail::lut_avx2_tables(*this, x, n, ldx, tables, item_begin, item_end);
}

void AqlmCpuLayer::rows(const float* x, int64_t n, int64_t ldx, const float* tables, float* y, int64_t ldy,
                        int64_t row_begin, int64_t row_end) const {
  AQLM_CHECK(view_.out > 0, "AQLM gemv: the layer was not prepared");
  check_rows(view_, n, ldx, ldy, row_begin, row_end);
  AQLM_CHECK(n <= kAqlmLutTokens, "AQLM gemv: ", n, " tokens in one pass (expected 1..", kAqlmLutTokens, ")");
  if (row_begin == row_end) return;
  switch (kernel_) {
    case AqlmKernel::LutAvx512: return detail::lut_avx512_rows(*this, n, tables, y, ldy, row_begin, row_end);
    case AqlmKernel::LutAvx2: return detail::lut_avx2_rows(*this, n, tables, y, ldy, row_begin, row_end);
    default: return detail::direct_rows(view_, x, n, ldx, y, ldy, row_begin, row_end);
  }
}

// ---------------------------------------------------------------------------------------

void aqlm_gemv_reference(const AqlmView& w, const float* x, int64_t n, int64_t ldx, float* y, int64_t ldy,
                         int64_t row_begin, int64_t row_end) {
  check_aqlm_view(w, "AQLM gemv");
  check_rows(w, n, ldx, ldy, row_begin, row_end);
  const int64_t groups = w.groups(), K = w.codebook_size(), g = w.group_size;
  std::vector<double> acc(static_cast<size_t>(n));
  std::vector<double> wg(static_cast<size_t>(g));
  for (int64_t o = row_begin; o < row_end; ++o) {
    std::fill(acc.begin(), acc.end(), 0.0);
    for (int64_t j = 0; j < groups; ++j) {
      std::fill(wg.begin(), wg.end(), 0.0);
      for (int m = 0; m < w.num_codebooks; ++m) {
        const uint16_t* cw = w.codebooks + (m * K + w.code(o, j, m)) * g;
        for (int64_t i = 0; i < g; ++i) wg[size_t(i)] += double(f16_to_f32(cw[i]));
      }
      for (int64_t t = 0; t < n; ++t)
        for (int64_t i = 0; i < g; ++i) acc[size_t(t)] += wg[size_t(i)] * double(x[t * ldx + j * g + i]);
    }
    const double scale = double(f16_to_f32(w.scales[o]));
    for (int64_t t = 0; t < n; ++t) y[t * ldy + o] = float(acc[size_t(t)] * scale);
  }
}

void aqlm_gemv(const AqlmCpuLayer& layer, const float* x, int64_t n, int64_t ldx, float* y, int64_t ldy,
               float* tables, const ParallelFor& parallel) {
  const AqlmView& w = layer.view();
  AQLM_CHECK(w.out > 0, "AQLM gemv: the layer was not prepared");
  check_rows(w, n, ldx, ldy, 0, w.out);
  const int64_t block = layer.row_block(), row_blocks = (w.out + block - 1) / block;
  for (int64_t t0 = 0; t0 < n; t0 += kAqlmLutTokens) {
    const int64_t nt = std::min(kAqlmLutTokens, n - t0);
    const float* xt = x + t0 * ldx;
    float* yt = y + t0 * ldy;
    run_parallel(parallel, size_t(layer.table_items()), 1, [&](size_t b, size_t e, int) {
      layer.build_tables(xt, nt, ldx, tables, int64_t(b), int64_t(e));
    });
    run_parallel(parallel, size_t(row_blocks), 1, [&](size_t b, size_t e, int) {
      layer.rows(xt, nt, ldx, tables, yt, ldy, int64_t(b) * block, std::min(w.out, int64_t(e) * block));
    });
  }
}

void aqlm_dequantize(const AqlmView& w, int64_t row_begin, int64_t row_end, float* out) {
  check_aqlm_view(w, "AQLM dequantize");
  check_cpu();
  AQLM_CHECK(row_begin >= 0 && row_begin <= row_end && row_end <= w.out, "AQLM dequantize: rows [", row_begin, ", ",
             row_end, ") are outside the layer's ", w.out, " rows");
  if (w.code_bytes == 1)
    dequantize_rows<uint8_t>(w, row_begin, row_end, StoreF32{out});
  else
    dequantize_rows<uint16_t>(w, row_begin, row_end, StoreF32{out});
}

void aqlm_dequantize_f16(const AqlmView& w, int64_t row_begin, int64_t row_end, uint16_t* out) {
  check_aqlm_view(w, "AQLM dequantize");
  check_cpu();
  AQLM_CHECK(row_begin >= 0 && row_begin <= row_end && row_end <= w.out, "AQLM dequantize: rows [", row_begin, ", ",
             row_end, ") are outside the layer's ", w.out, " rows");
  if (w.code_bytes == 1)
    dequantize_rows<uint8_t>(w, row_begin, row_end, StoreF16{out});
  else
    dequantize_rows<uint16_t>(w, row_begin, row_end, StoreF16{out});
}

}  // namespace aqlm::cpu
