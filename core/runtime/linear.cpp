#include "core/runtime/linear.h"

#include "core/common/error.h"
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
  int64_t row_granularity() const override { return cpu::kGemmTileRows; }

  void forward_rows(const float* x, int64_t n, int64_t ldx, float* y, int64_t ldy, int64_t row_begin, int64_t row_end,
                    float* scratch) const override {
    cpu::matmul(matrix_, x, n, ldx, y, ldy, row_begin, row_end, scratch);
    if (bias_.empty()) return;
    for (int64_t t = 0; t < n; ++t)
      for (int64_t r = row_begin; r < row_end; ++r) y[t * ldy + r] += bias_[size_t(r)];
  }

 private:
  cpu::DenseMatrix matrix_;
  std::vector<float> bias_;
};

}  // namespace

std::unique_ptr<Linear> load_linear(const WeightStore& weights, const std::string& prefix, int64_t in_features,
                                    int64_t out_features, const std::string& weight_name) {
  std::vector<float> bias;
  const std::string bias_name = prefix + ".bias";
  if (weights.has(bias_name)) {
    const TensorView& b = weights.get(bias_name);
    AQLM_CHECK(b.shape.size() == 1 && b.dim(0) == out_features, "tensor ", bias_name, " has shape ",
               shape_string(b.shape), " but the model needs [", out_features, "]");
    bias = weights.to_f32(bias_name);
  }
  if (weight_name.empty() && weights.has(prefix + ".codes"))
    fail("tensor ", prefix, ".codes: AQLM projections cannot run on the CPU in this build yet (the CPU AQLM kernel is not wired)");
  const std::string name = weight_name.empty() ? prefix + ".weight" : weight_name;
  const TensorView& w = weights.get(name);
  AQLM_CHECK(w.shape.size() == 2 && w.dim(0) == out_features && w.dim(1) == in_features, "tensor ", name,
             " has shape ", shape_string(w.shape), " but the model needs [", out_features, ", ", in_features, "]");
  return std::make_unique<DenseLinear>(w, name, std::move(bias));
}

}  // namespace aqlm
