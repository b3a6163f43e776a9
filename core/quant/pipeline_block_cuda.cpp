// BlockPass on the GPU (see pipeline_block_cuda.h).
#include "core/quant/pipeline_block_cuda.h"

#include "core/common/error.h"
#include "core/jobs/cancelled.h"
#include "core/quant/compute_device.h"

#ifdef AQLM_HAVE_CUDA

#include <algorithm>
#include <vector>

#include "core/quant/block_cuda.h"
#include "core/quant/pipeline_activations.h"
#include "core/quant/pipeline_xtx.h"
#include "kernels/cuda/quant_block_cuda.h"

namespace aqlm {

class CudaBlockPass {
 public:
  CudaBlockPass(const BlockShape& shape, int64_t micro_windows, const std::atomic<bool>* cancel, bool tf32)
      : block_(shape, tf32 ? cuda::GemmPrecision::Tf32 : cuda::GemmPrecision::Fp32),
        micro_windows_(micro_windows),
        cancel_(cancel) {}

  OutputError run(const BlockWeights<float>& w, const ActivationStore& inputs, int64_t first, int64_t count,
                  ActivationStore* outputs, XtxAccumulator* xtx, BlockLinear linear, const ActivationStore* targets) {
    if (count <= 0) return {};
    const BlockShape& shape = block_.shape();
    const int64_t seqlen = inputs.seqlen();
    const size_t per_window = inputs.window_values();
    const int64_t micro = std::max<int64_t>(1, std::min(micro_windows_, count));
    weights_.upload(shape, w);
    const size_t n = size_t(micro) * per_window;
    half_host_.resize(n);
    half_.resize(n, "fp16 activations");
    x_.resize(n, "block inputs");
    y_.resize(n, "block outputs");
    if (targets) t_.resize(n, "block targets");
    partials_.resize(2 * cuda::kSquarePartials, "squared-error partial sums");
    sums_.resize(2, "squared-error sums");
    sums_.zero();
    std::unique_ptr<CudaXtx> acc;
    if (xtx) acc = std::make_unique<CudaXtx>(shape.in_features(linear));
    for (int64_t begin = 0; begin < count; begin += micro) {
      if (cancel_ && cancel_->load()) throw Cancelled("cancelled");
      const int64_t m = std::min(micro, count - begin);
      load(inputs, first + begin, m, x_.data());
      block_.forward(weights_, x_.data(), m, seqlen, y_.data());
      if (acc) acc->add(block_.blas(), block_.linear_input(linear), block_.tokens());
      if (outputs) {
        cuda::float_to_half(y_.data(), size_t(m) * per_window, half_.data());
        half_.download(half_host_.data(), size_t(m) * per_window);
        for (int64_t i = 0; i < m; ++i) outputs->write_half(first + begin + i, half_host_.data() + size_t(i) * per_window);
      }
      if (targets) {
        load(*targets, first + begin, m, t_.data());
        cuda::squared_error(y_.data(), t_.data(), size_t(m) * per_window, 0.0f, nullptr, partials_.data(), sums_.data());
      }
    }
    if (acc) xtx->add_gram(acc->sum(), acc->rows());
    OutputError e;
    if (targets) {
      double s[2];
      sums_.download(s, 2);
      e.error = s[0];
      e.target = s[1];
    }
    return e;
  }

 private:
  // Windows [first, first + m) of `store` into dst (device, fp32).
  void load(const ActivationStore& store, int64_t first, int64_t m, float* dst) {
    const size_t per_window = store.window_values();
    for (int64_t i = 0; i < m; ++i) store.read_half(first + i, half_host_.data() + size_t(i) * per_window);
    half_.upload(half_host_.data(), size_t(m) * per_window);
    cuda::half_to_float(half_.data(), size_t(m) * per_window, dst);
  }

  CudaTrainableBlock block_;
  CudaBlockWeights weights_;
  int64_t micro_windows_;
  const std::atomic<bool>* cancel_;
  std::vector<uint16_t> half_host_;
  cuda::DeviceArray<uint16_t> half_;
  cuda::DeviceArray<float> x_, y_, t_;
  cuda::DeviceArray<double> partials_, sums_;
};

std::shared_ptr<CudaBlockPass> make_cuda_block_pass(const BlockShape& shape, int64_t micro_windows,
                                                    const std::atomic<bool>* cancel, bool tf32) {
  require_cuda_quantization("block passes on the GPU");
  return std::make_shared<CudaBlockPass>(shape, micro_windows, cancel, tf32);
}

OutputError run_cuda_block_pass(CudaBlockPass& pass, const BlockWeights<float>& weights, const ActivationStore& inputs,
                                int64_t first, int64_t count, ActivationStore* outputs, XtxAccumulator* xtx,
                                BlockLinear linear, const ActivationStore* targets) {
  return pass.run(weights, inputs, first, count, outputs, xtx, linear, targets);
}

}  // namespace aqlm

#else  // no CUDA in this build

namespace aqlm {
class CudaBlockPass {};
std::shared_ptr<CudaBlockPass> make_cuda_block_pass(const BlockShape&, int64_t, const std::atomic<bool>*, bool) {
  require_cuda_quantization("block passes on the GPU");
  fail("block passes on the GPU: no CUDA");
}
OutputError run_cuda_block_pass(CudaBlockPass&, const BlockWeights<float>&, const ActivationStore&, int64_t, int64_t,
                                ActivationStore*, XtxAccumulator*, BlockLinear, const ActivationStore*) {
  fail("block passes on the GPU: no CUDA");
}
}  // namespace aqlm

#endif
