#pragma once
// The pipeline's passes of calibration windows through a decoder block (pipeline_block.h's
// BlockPass) on one CUDA GPU: the fp16 windows go to the device as they are stored, the block runs
// there (core/quant/block_cuda.h, TF32 products by default), a linear's XTX is summed on the
// device in double and added to the host accumulator once per pass, outputs come back as fp16
// (rounded as ActivationStore::write rounds), and the squared errors against the targets are
// summed in double on the device. BlockPass holds one of these when its device is Cuda.
#include <atomic>
#include <cstdint>
#include <memory>

#include "core/quant/pipeline_block.h"

namespace aqlm {

class CudaBlockPass;

// Errors when the build or the machine has no usable GPU. tf32: TF32 tensor-core products (the
// default), else exact fp32 (what the tests compare with the CPU pass).
std::shared_ptr<CudaBlockPass> make_cuda_block_pass(const BlockShape& shape, int64_t micro_windows,
                                                    const std::atomic<bool>* cancel, bool tf32 = true);

// BlockPass::run's contract.
OutputError run_cuda_block_pass(CudaBlockPass& pass, const BlockWeights<float>& weights, const ActivationStore& inputs,
                                int64_t first, int64_t count, ActivationStore* outputs, XtxAccumulator* xtx,
                                BlockLinear linear, const ActivationStore* targets);

}  // namespace aqlm
