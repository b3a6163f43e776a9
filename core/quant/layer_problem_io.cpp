// Layer problems on disk: a .safetensors file with tensors `W` and `XTX`, read and written
// through the model room's safetensors reader and writer.
#include <filesystem>

#include "core/common/error.h"
#include "core/model/safetensors.h"
#include "core/quant/layer_problem.h"

namespace aqlm {

namespace {
bool is_float(DType t) { return t == DType::F32 || t == DType::F16 || t == DType::BF16 || t == DType::F64; }
}  // namespace

LayerProblem load_layer_problem(const std::string& path) {
  const SafetensorsFile file(path);
  const SafetensorsTensor* w = file.find("W");
  const SafetensorsTensor* x = file.find("XTX");
  AQLM_CHECK(w, path, ": no tensor 'W' (a layer problem holds W [out, in] and XTX [in, in])");
  AQLM_CHECK(x, path, ": no tensor 'XTX' (a layer problem holds W [out, in] and XTX [in, in])");
  AQLM_CHECK(is_float(w->view.dtype), path, ": tensor W has dtype ", dtype_name(w->view.dtype),
             "; a float dtype is needed");
  AQLM_CHECK(is_float(x->view.dtype), path, ": tensor XTX has dtype ", dtype_name(x->view.dtype),
             "; a float dtype is needed");
  AQLM_CHECK(w->view.shape.size() == 2, path, ": tensor W has shape ", shape_string(w->view.shape),
             "; [out, in] is needed");
  const int64_t out = w->view.shape[0], in = w->view.shape[1];
  AQLM_CHECK(x->view.shape == std::vector<int64_t>({in, in}), path, ": tensor XTX has shape ",
             shape_string(x->view.shape), " but W ", shape_string(w->view.shape), " needs [", in, ", ", in, "]");
  LayerProblem p;
  p.name = std::filesystem::path(path).filename().string();
  p.out_features = out;
  p.in_features = in;
  p.weight.resize(size_t(out * in));
  convert_float_dtype(w->view.dtype, w->view.data, DType::F32, p.weight.data(), p.weight.size());
  p.xtx.resize(size_t(in * in));
  convert_float_dtype(x->view.dtype, x->view.data, DType::F64, p.xtx.data(), p.xtx.size());
  p.validate();
  return p;
}

void save_layer_problem(const LayerProblem& problem, const std::string& path) {
  problem.validate();
  const int64_t out = problem.out_features, in = problem.in_features;
  SafetensorsWriter writer(path, {{"W", DType::F32, {out, in}}, {"XTX", DType::F64, {in, in}}},
                           {{"layer", problem.name}});
  writer.write("W", TensorView{DType::F32, {out, in}, problem.weight.data()});
  writer.write("XTX", TensorView{DType::F64, {in, in}, problem.xtx.data()});
  writer.finish();
}

}  // namespace aqlm
