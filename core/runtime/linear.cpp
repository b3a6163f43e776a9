#include "core/runtime/linear.h"

#include <algorithm>

#include "core/common/error.h"
#include "core/common/half.h"
#include "core/common/thread_pool.h"
#include "kernels/cpu/aqlm_gemv.h"
#include "kernels/cpu/matmul.h"

namespace aqlm {
namespace {

cpu::WeightType weight_type(const TensorView& v, const std::string& name) {
  switch (v.dtype) {
    case DType::F32: return cpu::WeightType::F32;
    case DType::F16: return cpu::WeightType::F16;
    case DType::BF16: return cpu::WeightType::BF16;
    default: fail("tensor ", name, ": type ", dtype_name(v.dtype), " is not supported for a dense projection (F32, F16 or BF16)");
  }
}

void add_bias(const std::vector<float>& bias, int64_t n, float* y, int64_t ldy, int64_t r0, int64_t r1) {
  if (bias.empty()) return;
  for (int64_t t = 0; t < n; ++t)
    for (int64_t r = r0; r < r1; ++r) y[t * ldy + r] += bias[size_t(r)];
}

class DenseLinear final : public Linear {
 public:
  DenseLinear(const TensorView& w, const std::string& name, std::vector<float> bias)
      : Linear(w.dim(1), w.dim(0)), bias_(std::move(bias)) {
    matrix_.type = weight_type(w, name);
    matrix_.data = w.data;
    matrix_.rows = w.dim(0);
    matrix_.cols = w.dim(1);
  }

  std::string describe() const override {
    const char* t = matrix_.type == cpu::WeightType::F32 ? "F32" : matrix_.type == cpu::WeightType::F16 ? "F16" : "BF16";
    return str("dense ", t);
  }
  size_t weight_bytes() const override {
    return size_t(matrix_.rows * matrix_.cols) * (matrix_.type == cpu::WeightType::F32 ? 4 : 2);
  }
  size_t scratch_floats(int64_t) const override { return cpu::matmul_scratch_floats(matrix_); }

  void forward_rows(const float* x, int64_t n, int64_t ldx, const float*, float* y, int64_t ldy, int64_t row_begin,
                    int64_t row_end, float* scratch) const override {
    cpu::matmul(matrix_, x, n, ldx, y, ldy, row_begin, row_end, scratch);
    add_bias(bias_, n, y, ldy, row_begin, row_end);
  }

 private:
  cpu::DenseMatrix matrix_;
  std::vector<float> bias_;
};

// AQLM weights. Up to kAqlmLutTokens tokens (decode, small batches) run the AQLM kernels of
// kernels/cpu/aqlm_gemv.h on a copy of the layer re-laid for them at load (AqlmCpuLayer);
// longer batches (prefill) dequantize a tile of rows to fp32 per thread and multiply it
// with the dense GEMM, which is compute-bound and far faster there.
class AqlmLinear final : public Linear {
 public:
  AqlmLinear(const WeightStore& w, const AqlmQuantConfig& q, const std::string& prefix, int64_t in, int64_t out,
             std::vector<float> bias)
      : Linear(in, out), bias_(std::move(bias)) {
    const TensorView& codes = w.get(prefix + ".codes");
    AQLM_CHECK(codes.dtype == DType::I8 || codes.dtype == DType::I16 || codes.dtype == DType::U8,
               "tensor ", prefix, ".codes has type ", dtype_name(codes.dtype), " but AQLM codes are int8 or int16");
    view_.codes = codes.data;
    view_.code_bytes = int(dtype_size(codes.dtype));
    view_.codebooks = half_bits(w, prefix + ".codebooks", codebooks_f16_);
    view_.scales = half_bits(w, prefix + ".scales", scales_f16_);
    view_.out = out;
    view_.in = in;
    view_.num_codebooks = q.num_codebooks;
    view_.nbits = q.nbits_per_codebook;
    view_.group_size = q.in_group_size;
    check_aqlm_view(view_, prefix);
    AQLM_CHECK(codes.shape == std::vector<int64_t>({out, view_.groups(), q.num_codebooks}), "tensor ", prefix,
               ".codes has shape ", shape_string(codes.shape), " but the model needs [", out, ", ", view_.groups(), ", ",
               q.num_codebooks, "]");
    const TensorView& cb = w.get(prefix + ".codebooks");
    AQLM_CHECK(cb.numel() * 2 == int64_t(view_.codebooks_size_bytes()), "tensor ", prefix, ".codebooks has shape ",
               shape_string(cb.shape), " but the model needs [", q.num_codebooks, ", ", view_.codebook_size(), ", 1, ",
               q.in_group_size, "]");
    AQLM_CHECK(w.get(prefix + ".scales").numel() == out, "tensor ", prefix, ".scales has shape ",
               shape_string(w.get(prefix + ".scales").shape), " but the model needs [", out, ", 1, 1, 1]");
    layer_ = cpu::AqlmCpuLayer(view_, cpu::AqlmKernel::Auto, prefix);
  }

  std::string describe() const override {
    return str("AQLM ", view_.num_codebooks, "x", view_.nbits, "g", view_.group_size);
  }
  size_t weight_bytes() const override {
    return view_.codes_size_bytes() + view_.codebooks_size_bytes() + view_.scales_size_bytes();
  }

  bool small_batch(int64_t n) const { return n <= cpu::kAqlmLutTokens; }
  int64_t prepare_items(int64_t n) const override { return small_batch(n) ? layer_.table_items() : 0; }
  size_t shared_floats(int64_t n) const override { return small_batch(n) ? layer_.table_floats(n) : 0; }
  void prepare(const float* x, int64_t n, int64_t ldx, float* shared, int64_t item_begin,
               int64_t item_end) const override {
    layer_.build_tables(x, n, ldx, shared, item_begin, item_end);
  }
  size_t scratch_floats(int64_t n) const override {
    return n > cpu::kAqlmLutTokens ? size_t(cpu::kGemmTileRows * in_) : 0;
  }
  // Whole code vectors of the kernel per work item (64 rows for LutAvx512).
  int64_t row_granularity(int64_t n) const override { return small_batch(n) ? layer_.row_block() : 64; }

  void forward_rows(const float* x, int64_t n, int64_t ldx, const float* shared, float* y, int64_t ldy,
                    int64_t row_begin, int64_t row_end, float* scratch) const override {
    if (small_batch(n)) {
      layer_.rows(x, n, ldx, shared, y, ldy, row_begin, row_end);
    } else {
      for (int64_t r = row_begin; r < row_end; r += cpu::kGemmTileRows) {
        const int64_t rows = std::min(cpu::kGemmTileRows, row_end - r);
        cpu::aqlm_dequantize(view_, r, r + rows, scratch);
        const cpu::DenseMatrix tile{cpu::WeightType::F32, scratch, rows, in_};
        cpu::matmul(tile, x, n, ldx, y + r, ldy, 0, rows, nullptr);
      }
    }
    add_bias(bias_, n, y, ldy, row_begin, row_end);
  }

 private:
  // The kernels read fp16 bits, as the format stores codebooks and scales. Other float
  // types (an in-memory model from the quantizer) are rounded to fp16 once, into `owned`:
  // the runtime then evaluates exactly what the saved file would hold.
  static const uint16_t* half_bits(const WeightStore& w, const std::string& name, std::vector<uint16_t>& owned) {
    const TensorView& t = w.get(name);
    if (t.dtype == DType::F16) return t.as<uint16_t>();
    const std::vector<float> f = w.to_f32(name);
    owned.resize(f.size());
    for (size_t i = 0; i < f.size(); ++i) owned[i] = f32_to_f16(f[i]);
    return owned.data();
  }

  AqlmView view_;
  std::vector<float> bias_;
  std::vector<uint16_t> codebooks_f16_, scales_f16_;
  cpu::AqlmCpuLayer layer_;  // after the fp16 copies it may point into
};

}  // namespace

std::unique_ptr<Linear> load_linear(const WeightStore& weights, const ModelConfig& config, const std::string& prefix,
                                    int64_t in_features, int64_t out_features, const std::string& weight_name) {
  std::vector<float> bias;
  const std::string bias_name = prefix + ".bias";
  if (weights.has(bias_name)) {
    const TensorView& b = weights.get(bias_name);
    AQLM_CHECK(b.shape.size() == 1 && b.dim(0) == out_features, "tensor ", bias_name, " has shape ",
               shape_string(b.shape), " but the model needs [", out_features, "]");
    bias = weights.to_f32(bias_name);
  }
  if (weight_name.empty() && weights.has(prefix + ".codes")) {
    AQLM_CHECK(config.aqlm.has_value(), "tensor ", prefix,
               ".codes: the model has AQLM codes but its config has no AQLM quantization_config");
    return std::make_unique<AqlmLinear>(weights, *config.aqlm, prefix, in_features, out_features, std::move(bias));
  }
  const std::string name = weight_name.empty() ? prefix + ".weight" : weight_name;
  const TensorView& w = weights.get(name);
  AQLM_CHECK(w.shape.size() == 2 && w.dim(0) == out_features && w.dim(1) == in_features, "tensor ", name,
             " has shape ", shape_string(w.shape), " but the model needs [", out_features, ", ", in_features, "]");
  return std::make_unique<DenseLinear>(w, name, std::move(bias));
}

void run_linear(const Linear& linear, const float* x, int64_t n, int64_t ldx, float* y, int64_t ldy, ThreadPool& pool) {
  std::vector<float> shared(linear.shared_floats(n));
  const int64_t items = linear.prepare_items(n);
  if (items > 0)
    pool.parallel_for(size_t(items), [&](size_t b, size_t e, int) {
      linear.prepare(x, n, ldx, shared.data(), int64_t(b), int64_t(e));
    });
  std::vector<std::vector<float>> scratch(size_t(pool.size()), std::vector<float>(linear.scratch_floats(n) + 1));
  const int64_t g = linear.row_granularity(n);
  const int64_t blocks = (linear.out_features() + g - 1) / g;
  pool.parallel_for(size_t(blocks), [&](size_t b, size_t e, int thread) {
    linear.forward_rows(x, n, ldx, shared.data(), y, ldy, int64_t(b) * g,
                        std::min(linear.out_features(), int64_t(e) * g), scratch[size_t(thread)].data());
  });
}

}  // namespace aqlm
