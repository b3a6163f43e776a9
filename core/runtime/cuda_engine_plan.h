#pragma once
// What the CUDA engine will hold for a model, decided and checked before anything is
// allocated: which projections are dense or AQLM on the GPU, and how many bytes of GPU
// memory the engine needs (for the "not enough GPU memory" check). Internal to
// cuda_engine.cpp and its tests; built only with CUDA (AQLM_HAVE_CUDA).
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/model/model.h"
#include "core/runtime/engine.h"
#include "kernels/cuda/aqlm_gemv_cuda.h"
#include "kernels/cuda/attention_cuda.h"

namespace aqlm::cuda_plan {

// Up to this many tokens AQLM projections run the AQLM gemv kernels; longer batches
// dequantize the layer into a scratch matrix and use cuBLAS (compute-bound there).
constexpr int kAqlmKernelTokens = 8;
// Rows of logits per LM-head call when every position's logits are wanted.
constexpr int kLogitRows = 64;
// Weight uploads that need a type conversion go through a device staging buffer this large.
constexpr size_t kStagingBytes = size_t(64) << 20;
// cuBLAS handle state, AQLM gemv workspaces, graphs: allowed for on top of what is counted.
constexpr size_t kUncountedBytes = size_t(96) << 20;

// One projection as stored: dense (`weight` names the tensor) or AQLM (prefix.codes ...).
struct LinearSource {
  std::string prefix, weight;
  int64_t in = 0, out = 0;
  bool aqlm = false;            // stored as AQLM codes
  bool aqlm_kernel = false;     // ... and the CUDA AQLM kernels take it (else dequantized to dense once)
  bool has_bias = false;
  bool tied_embedding = false;  // the LM head reading the embedding table
  size_t aqlm_bytes = 0;        // codes + codebooks + scales on the GPU, as cuda::prepare lays them out
  bool dense_on_gpu() const { return !aqlm_kernel; }
};

struct BlockSources {
  std::vector<LinearSource> qkv, o, gate_up, down;  // parts whose outputs sit side by side
};

struct ModelPlan {
  cuda::DType act = cuda::DType::F16;
  int capacity = 0, max_batch = 0;
  int splits = 1;  // decode attention ranges per KV head
  std::vector<BlockSources> blocks;
  std::vector<LinearSource> head;
};

// Checks the model as the CPU engine does (same messages) plus what the CUDA kernels need.
ModelPlan plan_model(const Model& model, const EngineOptions& options);
size_t plan_bytes(const ModelPlan& plan, const ModelConfig& config);

// All parts dense on the GPU: they are stored as one matrix and run as one GEMM.
bool merged_dense(const std::vector<LinearSource>& parts);
// The model's attention geometry (buffer pointers left as placeholders).
cuda::AttentionArgs attention_shape(const ModelConfig& config, int capacity);
std::string gigabytes(size_t bytes);  // "1.23"

}  // namespace aqlm::cuda_plan
