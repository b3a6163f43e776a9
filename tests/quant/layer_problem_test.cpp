#include "core/quant/layer_problem.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "core/common/error.h"
#include "core/model/safetensors.h"
#include "core/quant/synthetic_layer.h"
#include "tests/support/test_paths.h"

namespace aqlm {
namespace {

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(LayerProblem, RoundTripsThroughSafetensors) {
  SyntheticLayerOptions o;
  o.out_features = 12;
  o.in_features = 16;
  const LayerProblem p = make_synthetic_layer(o);
  const std::string path = (test::temp_dir("quant_problem") / "layer.safetensors").string();
  save_layer_problem(p, path);
  const LayerProblem q = load_layer_problem(path);
  EXPECT_EQ(q.name, "layer.safetensors");
  EXPECT_EQ(q.out_features, 12);
  EXPECT_EQ(q.in_features, 16);
  EXPECT_EQ(q.weight, p.weight);
  EXPECT_EQ(q.xtx, p.xtx);
}

// The relative error against a float64 hand computation on a 2x2 layer:
// W = [[1, 2], [3, 4]], XTX = [[2, 1], [1, 3]]: tr(W XTX W^T) = (2+4+12) + (18+24+48) = 108;
// W' = W + [[1, 0], [0, -1]]: tr(E XTX E^T) = 2 + 3 = 5.
TEST(LayerProblem, RelativeErrorIsTheOutputErrorRatio) {
  LayerProblem p;
  p.name = "hand";
  p.out_features = p.in_features = 2;
  p.weight = {1, 2, 3, 4};
  p.xtx = {2, 1, 1, 3};
  EXPECT_DOUBLE_EQ(p.reference_energy(), 108.0);
  EXPECT_DOUBLE_EQ(p.relative_error({2, 2, 3, 3}), 5.0 / 108.0);
  EXPECT_DOUBLE_EQ(p.relative_error(p.weight), 0.0);
  EXPECT_DOUBLE_EQ(p.relative_error({0, 0, 0, 0}), 1.0);
  EXPECT_THROW(p.relative_error({1, 2, 3}), Error);
}

TEST(LayerProblem, LoadErrorsNameTheFileAndTensor) {
  const auto dir = test::temp_dir("quant_problem_errors");
  const std::string missing = (dir / "missing.safetensors").string();
  {
    SafetensorsWriter w(missing, {{"W", DType::F32, {2, 2}}});
    const float v[4] = {1, 2, 3, 4};
    w.write("W", TensorView{DType::F32, {2, 2}, v});
    w.finish();
  }
  EXPECT_EQ(error_of([&] { load_layer_problem(missing); }),
            missing + ": no tensor 'XTX' (a layer problem holds W [out, in] and XTX [in, in])");
  const std::string shape = (dir / "shape.safetensors").string();
  {
    SafetensorsWriter w(shape, {{"W", DType::F32, {2, 2}}, {"XTX", DType::F64, {3, 3}}});
    const float v[4] = {1, 2, 3, 4};
    const double x[9] = {};
    w.write("W", TensorView{DType::F32, {2, 2}, v});
    w.write("XTX", TensorView{DType::F64, {3, 3}, x});
    w.finish();
  }
  EXPECT_EQ(error_of([&] { load_layer_problem(shape); }),
            shape + ": tensor XTX has shape [3, 3] but W [2, 2] needs [2, 2]");
  const std::string dtype = (dir / "dtype.safetensors").string();
  {
    SafetensorsWriter w(dtype, {{"W", DType::I32, {2, 2}}, {"XTX", DType::F64, {2, 2}}});
    const int32_t v[4] = {1, 2, 3, 4};
    const double x[4] = {1, 0, 0, 1};
    w.write("W", TensorView{DType::I32, {2, 2}, v});
    w.write("XTX", TensorView{DType::F64, {2, 2}, x});
    w.finish();
  }
  EXPECT_EQ(error_of([&] { load_layer_problem(dtype); }), dtype + ": tensor W has dtype I32; a float dtype is needed");
  const std::string nan = (dir / "nan.safetensors").string();
  {
    SafetensorsWriter w(nan, {{"W", DType::F32, {1, 2}}, {"XTX", DType::F64, {2, 2}}});
    const float v[2] = {1, NAN};
    const double x[4] = {1, 0, 0, 1};
    w.write("W", TensorView{DType::F32, {1, 2}, v});
    w.write("XTX", TensorView{DType::F64, {2, 2}, x});
    w.finish();
  }
  EXPECT_EQ(error_of([&] { load_layer_problem(nan); }), "nan.safetensors: weight[0, 1] is nan; the weight must be finite");
  EXPECT_THROW(load_layer_problem((dir / "absent.safetensors").string()), Error);
}

// The generator's structure: seeded, symmetric XTX, outlier channels 10-50x (so their XTX
// diagonal is 100-2500x that of a plain channel), heavy-tailed row norms.
TEST(SyntheticLayer, HasTheStructureItPromises) {
  SyntheticLayerOptions o;
  o.out_features = 256;
  o.in_features = 128;
  o.outlier_channels = 5;
  o.seed = 4;
  const LayerProblem a = make_synthetic_layer(o), b = make_synthetic_layer(o);
  EXPECT_EQ(a.weight, b.weight);
  EXPECT_EQ(a.xtx, b.xtx);
  o.seed = 5;
  EXPECT_NE(make_synthetic_layer(o).weight, a.weight);
  std::vector<double> diag;
  for (int64_t i = 0; i < 128; ++i) {
    diag.push_back(a.xtx[size_t(i * 128 + i)]);
    for (int64_t j = 0; j < 128; ++j) EXPECT_EQ(a.xtx[size_t(i * 128 + j)], a.xtx[size_t(j * 128 + i)]);
  }
  std::vector<double> sorted = diag;
  std::sort(sorted.begin(), sorted.end());
  const double median = sorted[64];
  int outliers = 0;
  for (double d : diag) outliers += d > 50 * median;
  EXPECT_EQ(outliers, 5);
  // Correlated inputs: the shared factors give off-diagonal mass well above sampling noise.
  double off = 0, on = 0;
  for (int64_t i = 0; i < 128; ++i)
    for (int64_t j = 0; j < 128; ++j) {
      const double v = a.xtx[size_t(i * 128 + j)] / std::sqrt(diag[size_t(i)] * diag[size_t(j)]);
      (i == j ? on : off) += v * v;
    }
  EXPECT_GT(off / on, 2.0);
  std::vector<double> norms;
  for (int64_t r = 0; r < 256; ++r) {
    double n = 0;
    for (int64_t c = 0; c < 128; ++c) n += double(a.weight[size_t(r * 128 + c)]) * a.weight[size_t(r * 128 + c)];
    norms.push_back(std::sqrt(n));
  }
  std::sort(norms.begin(), norms.end());
  EXPECT_GT(norms.back() / norms[128], 4.0);  // Student-t(3) rows: the largest far above the median
  EXPECT_THROW(make_synthetic_layer(SyntheticLayerOptions{0, 4}), Error);
}

}  // namespace
}  // namespace aqlm
