#pragma once
// One linear layer to quantize: its weight W [out, in] (float32) and the statistics of its
// inputs XTX [in, in] (float64, mean of x x^T over the calibration tokens). The quality of
// any reconstruction W' is the relative output error
//
//     ||(W' - W) X||^2 / ||W X||^2 = tr(E XTX E^T) / tr(W XTX W^T),   E = W' - W.
#include <cstdint>
#include <string>
#include <vector>

namespace aqlm {

struct LayerProblem {
  std::string name;  // for messages: "model.layers.3.mlp.down_proj" or a file name
  int64_t out_features = 0, in_features = 0;
  std::vector<float> weight;  // [out, in] row-major
  std::vector<double> xtx;    // [in, in] row-major, symmetric

  // Checks shapes and that W and XTX are finite; Error naming the layer and the first bad entry.
  void validate() const;
  // tr(W XTX W^T), in double.
  double reference_energy() const;
  // ||(w - W) X||^2 / ||W X||^2 for a reconstruction w [out, in], in double.
  double relative_error(const std::vector<float>& reconstruction) const;
};

// Reads a .safetensors file holding `W` (float [out, in]) and `XTX` ([in, in]); any float
// dtype is accepted. Errors name the file and the tensor.
LayerProblem load_layer_problem(const std::string& path);
// Writes W as F32 and XTX as F64 (the layout load_layer_problem and the Python scripts read).
void save_layer_problem(const LayerProblem& problem, const std::string& path);

}  // namespace aqlm
