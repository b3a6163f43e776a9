#pragma once
// AQLM linear layers (REFERENCE.md sections 1 and 5) on the CPU: the reference every other
// backend is checked against, the fast kernels the CPU runtime uses for decode and small
// batches, and dequantization for prefill (dequantize a tile of rows + dense GEMM) and for
// the quantizer.
//
//   W[o, j*g + i] = scale[o] * sum_m codebooks[m][ code(o, j, m) ][i]
//   y[t, o]       = sum_k x[t, k] * W[o, k]
//
// The fast kernels run on an AqlmCpuLayer: the layer re-laid ONCE at load time for the
// kernel that serves it (docs/benchmarks.md, "AQLM CPU kernels", has the measurements):
//   LutAvx512  B <= 8 on CPUs with AVX-512 VBMI (Zen 4, Ice Lake and later): per token, tables
//              of input-group . codeword dot products quantised to int16 (one scale per block
//              of groups), looked up 64 rows at a time with byte permutes (vpermi2b) from codes
//              stored group-major; int16 sums per block, fp32 across blocks.
//   LutAvx2    B <= 8 on any x86-64-v3 CPU: fp32 tables, one scalar lookup per code, groups
//              blocked so the tables in use stay in L1, codes stored block-major.
//   Direct     any B (the kernel for B > 8, e.g. 1x16): each group's codeword sum decoded from
//              the fp16 codebooks and multiplied with every token; codes as stored.
// Like the dense matmul, the row functions are single-threaded over a range of output rows
// and callers split rows between threads; aqlm_gemv() does both phases with a ParallelFor.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

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

// Tokens per kernel pass: aqlm_gemv handles any n in passes of this many tokens.
constexpr int64_t kAqlmLutTokens = 8;

// True when B <= 8, where lookup tables of input-group . codeword dot products pay off.
inline bool aqlm_uses_lut(const AqlmView& w) { return w.nbits <= 8; }

enum class AqlmKernel : uint8_t { Auto, LutAvx512, LutAvx2, Direct };
const char* aqlm_kernel_name(AqlmKernel k);  // "LutAvx512", ...
// Whether this CPU runs `k` (Auto, LutAvx2 and Direct need x86-64-v3; LutAvx512 AVX-512 BW+VBMI).
bool aqlm_kernel_supported(AqlmKernel k);

// The LutAvx512 table quantisation, for the error bound: each block of `block_groups`
// consecutive groups gets scale s_b = max |table entry of the block| / q_max; every table
// read is then off by at most s_b / 2 (rounding), so an output row is off by at most
// |scale[o]| * sum_b (lookups of the row in block b) * s_b / 2 from the fp32 tables' result.
// block_groups * M lookups of |q| <= q_max sum to at most 32767: int16 sums never overflow.
struct AqlmTableQuantization {
  int64_t block_groups = 0;
  int q_max = 0;
};
AqlmTableQuantization aqlm_table_quantization(int num_codebooks);

// A layer prepared for the CPU kernels: codes re-laid for `kernel`, codebooks and scales in
// fp32. Keeps `view` (its pointers must outlive the layer) for dequantize and the reference.
class AqlmCpuLayer {
 public:
  AqlmCpuLayer() = default;
  // Auto picks LutAvx512 > LutAvx2 for B <= 8 and Direct for B > 8. Throws Error naming
  // `what` for an inconsistent view, a kernel this CPU lacks, or a LUT kernel with B > 8.
  explicit AqlmCpuLayer(const AqlmView& view, AqlmKernel kernel = AqlmKernel::Auto,
                        const std::string& what = "AQLM layer");

  const AqlmView& view() const { return view_; }
  AqlmKernel kernel() const { return kernel_; }
  bool uses_tables() const { return kernel_ != AqlmKernel::Direct; }
  // Bytes this layer owns (the re-laid codes, fp32 codebooks and scales).
  size_t owned_bytes() const;

  // Phase 1 (LUT kernels; 0 items for Direct): `table_items()` independent items fill a
  // buffer of table_floats(n) floats for n <= kAqlmLutTokens tokens. Split items between threads.
  int64_t table_items() const { return uses_tables() ? blocks_ : 0; }
  size_t table_floats(int64_t n) const;
  void build_tables(const float* x, int64_t n, int64_t ldx, float* tables, int64_t item_begin, int64_t item_end) const;

  // Phase 2: y[t * ldy + o] for t < n <= kAqlmLutTokens and o in [row_begin, row_end), from the
  // tables (LUT kernels) or from x (Direct). Any range works; ranges that start and end on
  // multiples of row_block() do no redundant work. Split rows between threads.
  int64_t row_block() const { return kernel_ == AqlmKernel::LutAvx512 ? 64 : 16; }
  void rows(const float* x, int64_t n, int64_t ldx, const float* tables, float* y, int64_t ldy, int64_t row_begin,
            int64_t row_end) const;

  // Internal layout, for the kernel files (aqlm_gemv_kernels.h).
  const uint8_t* codes() const { return codes_.get(); }
  const float* codebooks_f32() const { return codebooks_t_.data(); }  // [m][i][c], c padded to kTableEntries
  const float* scales_f32() const { return scales_.data(); }
  int64_t rows_padded() const { return rows_padded_; }
  int64_t block_groups() const { return block_groups_; }
  int64_t blocks() const { return blocks_; }

 private:
  struct FreeAligned {
    void operator()(uint8_t* p) const;
  };
  AqlmView view_{};
  AqlmKernel kernel_ = AqlmKernel::Direct;
  std::unique_ptr<uint8_t[], FreeAligned> codes_;
  size_t codes_bytes_ = 0;
  std::vector<float> codebooks_t_, scales_;
  int64_t rows_padded_ = 0, block_groups_ = 0, blocks_ = 0;
};

// Both phases for all rows and any n >= 1 (in passes of kAqlmLutTokens), threads from
// `parallel`. `tables` holds layer.table_floats(min(n, kAqlmLutTokens)) floats.
void aqlm_gemv(const AqlmCpuLayer& layer, const float* x, int64_t n, int64_t ldx, float* y, int64_t ldy,
               float* tables, const ParallelFor& parallel = {});

// Rows [row_begin, row_end) of W, row-major with row stride w.in: fp32, or fp16 bits
// (rounded to nearest even from the fp32 value the fp32 version returns).
void aqlm_dequantize(const AqlmView& w, int64_t row_begin, int64_t row_end, float* out);
void aqlm_dequantize_f16(const AqlmView& w, int64_t row_begin, int64_t row_end, uint16_t* out);

}  // namespace aqlm::cpu
