#include "core/quant/layer_problem.h"

#include <cmath>

#include "core/common/error.h"
#include "core/common/thread_pool.h"
#include "core/quant/xtx_products.h"

namespace aqlm {

void LayerProblem::validate() const {
  AQLM_CHECK(out_features > 0 && in_features > 0, name, ": empty weight [", out_features, ", ", in_features, "]");
  AQLM_CHECK(int64_t(weight.size()) == out_features * in_features, name, ": weight has ", weight.size(),
             " values, expected ", out_features, " x ", in_features);
  AQLM_CHECK(int64_t(xtx.size()) == in_features * in_features, name, ": XTX has ", xtx.size(),
             " values, expected ", in_features, " x ", in_features);
  for (size_t i = 0; i < weight.size(); ++i)
    AQLM_CHECK(std::isfinite(weight[i]), name, ": weight[", int64_t(i) / in_features, ", ", int64_t(i) % in_features,
               "] is ", weight[i], "; the weight must be finite");
  for (size_t i = 0; i < xtx.size(); ++i)
    AQLM_CHECK(std::isfinite(xtx[i]), name, ": XTX[", int64_t(i) / in_features, ", ", int64_t(i) % in_features,
               "] is ", xtx[i], "; the input statistics must be finite");
}

double LayerProblem::reference_energy() const {
  return trace_quadratic_form(ThreadPool::global(), weight.data(), out_features, in_features, xtx.data());
}

double LayerProblem::relative_error(const std::vector<float>& reconstruction) const {
  AQLM_CHECK(reconstruction.size() == weight.size(), name, ": reconstruction has ", reconstruction.size(),
             " values, expected ", weight.size());
  std::vector<float> delta(weight.size());
  for (size_t i = 0; i < delta.size(); ++i) delta[i] = reconstruction[i] - weight[i];
  const double energy = reference_energy();
  AQLM_CHECK(energy > 0, name, ": ||W X||^2 is ", energy, ", so the relative error is undefined");
  return trace_quadratic_form(ThreadPool::global(), delta.data(), out_features, in_features, xtx.data()) / energy;
}

}  // namespace aqlm
