#pragma once
// AQLM linear layers (REFERENCE.md sections 1 and 5) on the CPU: the reference every other
// backend is checked against, the fast kernels the CPU runtime uses for decode and small
// batches, and dequantization for prefill (dequantize a tile of rows + dense GEMM) and for
// the quantizer.
//
//   W[o, j*g + i] = scale[o] * sum_m codebooks[m][ code(o, j, m) ][i]
//   y[t, o]       = sum_k x[t, k] * W[o, k]
//
// Like the dense matmul, the row functions are single-threaded over a range of output rows
// and callers split rows between threads; aqlm_gemv() does both phases with a ParallelFor.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

namespace aqlm {

// One AQLM linear layer exactly as the Hugging Face format stores it, as plain pointers.
// Every backend takes this view: host pointers for the CPU kernels, device pointers for
// the CUDA kernels. Re-layouts (if a backend wants one) happen once at load time.
struct AqlmView {
  const void* codes = nullptr;          // [out, in/g, M], `code_bytes` each, codebook index fastest;
                                        // the unsigned code is the low B bits (two's complement storage)
  const uint16_t* codebooks = nullptr;  // [M, 2^B, 1, g] float16 bits
  const uint16_t* scales = nullptr;     // [out, 1, 1, 1] float16 bits
  int64_t out = 0;                      // output features (rows of W)
  int64_t in = 0;                       // input features (columns of W), a multiple of g
  int num_codebooks = 0;                // M
  int nbits = 0;                        // B, bits per code (1..16)
  int group_size = 0;                   // g, input weights per code group
  int code_bytes = 0;                   // 1 (int8) or 2 (int16), holding at least B bits

  int64_t groups() const { return in / group_size; }
  int64_t codebook_size() const { return int64_t(1) << nbits; }
  uint32_t code_mask() const { return uint32_t(codebook_size() - 1); }
  int64_t code_count() const { return out * groups() * num_codebooks; }
  size_t codes_size_bytes() const { return size_t(code_count()) * size_t(code_bytes); }
  size_t codebooks_size_bytes() const { return size_t(num_codebooks) * size_t(codebook_size()) * size_t(group_size) * 2; }
  size_t scales_size_bytes() const { return size_t(out) * 2; }
  // Code of row o, group j, codebook m (host pointers only).
  uint32_t code(int64_t o, int64_t j, int m) const {
    const int64_t index = (o * groups() + j) * num_codebooks + m;
    const uint32_t raw = code_bytes == 1 ? static_cast<const uint8_t*>(codes)[index]
                                         : static_cast<const uint16_t*>(codes)[index];
    return raw & code_mask();
  }
};

// Throws aqlm::Error naming `what` (e.g. the tensor prefix) when the view is inconsistent:
// missing pointers, B outside 1..16, code_bytes too small for B, `in` not a multiple of g.
void check_aqlm_view(const AqlmView& w, const std::string& what);

}  // namespace aqlm

namespace aqlm::cpu {

// The same shape as ThreadPool::parallel_for: runs fn(begin, end, thread) over chunks of
// [0, n). The runtime passes ThreadPool::global()'s; an empty one runs on the calling thread.
using RangeFn = std::function<void(size_t begin, size_t end, int thread)>;
using ParallelFor = std::function<void(size_t n, const RangeFn& fn, size_t min_chunk)>;

// The plain reference: every product and sum in double, rounded to float once.
// x is [n, in] with row stride ldx; writes y[t * ldy + o] for t < n, o in [row_begin, row_end).
void aqlm_gemv_reference(const AqlmView& w, const float* x, int64_t n, int64_t ldx, float* y, int64_t ldy,
                         int64_t row_begin, int64_t row_end);

// Tokens per lookup-table pass: aqlm_gemv handles any n in passes of this many tokens.
constexpr int64_t kAqlmLutTokens = 8;

// True when the fast path builds lookup tables (B <= 8: tables of input-group . codeword
// dot products); else the direct kernel decodes each group's codewords (B > 8, e.g. 1x16).
inline bool aqlm_uses_lut(const AqlmView& w) { return w.nbits <= 8; }

// Floats of scratch aqlm_gemv_prepare/aqlm_gemv_rows need for n <= kAqlmLutTokens tokens:
// the tables [in/g, M, 2^B, P] (P = n padded to 1, 4 or 8) for the LUT kernel, 0 for the
// direct kernel.
size_t aqlm_gemv_scratch_floats(const AqlmView& w, int64_t n);

// Phase 1 (LUT kernel only; no-op otherwise): fills the tables of groups [group_begin,
// group_end) for n <= kAqlmLutTokens tokens. Split the groups between threads.
void aqlm_gemv_prepare(const AqlmView& w, const float* x, int64_t n, int64_t ldx, float* scratch,
                       int64_t group_begin, int64_t group_end);

// Phase 2: y[t * ldy + o] for t < n <= kAqlmLutTokens and o in [row_begin, row_end), fp32
// accumulation, from the tables (LUT kernel) or from x (direct kernel). Split rows between threads.
void aqlm_gemv_rows(const AqlmView& w, const float* x, int64_t n, int64_t ldx, const float* scratch, float* y,
                    int64_t ldy, int64_t row_begin, int64_t row_end);

// Both phases for all rows and any n >= 1 (in passes of kAqlmLutTokens), threads from
// `parallel`. `scratch` holds aqlm_gemv_scratch_floats(w, min(n, kAqlmLutTokens)) floats.
void aqlm_gemv(const AqlmView& w, const float* x, int64_t n, int64_t ldx, float* y, int64_t ldy, float* scratch,
               const ParallelFor& parallel = {});

// Rows [row_begin, row_end) of W, row-major with row stride w.in: fp32, or fp16 bits
// (rounded to nearest even from the fp32 value the fp32 version returns).
void aqlm_dequantize(const AqlmView& w, int64_t row_begin, int64_t row_end, float* out);
void aqlm_dequantize_f16(const AqlmView& w, int64_t row_begin, int64_t row_end, uint16_t* out);

}  // namespace aqlm::cpu
