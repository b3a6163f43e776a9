// CudaEngine: the forward pass of cpu_engine.cpp on one GPU.
//
// Per block: [residual add +] RMSNorm -> q/k/v (one fused cuBLAS GEMM when all three are
// dense; AQLM projections run aqlm::cuda::aqlm_gemv up to 8 tokens, dequantize + cuBLAS
// above) -> RoPE + KV-cache store -> attention (split-K decode / tiled prefill) -> o_proj ->
// residual add + RMSNorm -> gate/up (fused when dense) -> SwiGLU -> down_proj. The residual
// stream is fp32; weights, activations and the KV cache are fp16 (bf16 when the model's
// torch_dtype is bfloat16); every product accumulates in fp32. Single-token steps read the
// position and token from device memory, so one captured CUDA graph serves every step.
#ifdef AQLM_HAVE_CUDA

#include "core/runtime/cuda_engine.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "core/common/error.h"
#include "core/common/half.h"
#include "core/model/model.h"
#include "core/runtime/cuda_engine_plan.h"
#include "core/runtime/rope_table.h"
#include "kernels/cpu/aqlm_gemv.h"
#include "kernels/cuda/activation_cuda.h"
#include "kernels/cuda/aqlm_gemv_cuda.h"
#include "kernels/cuda/argmax_cuda.h"
#include "kernels/cuda/attention_cuda.h"
#include "kernels/cuda/convert_cuda.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/dense_gemm_cuda.h"
#include "kernels/cuda/norm_cuda.h"
#include "kernels/cuda/rope_cuda.h"

namespace aqlm {
namespace {

using Act = cuda::DType;
using cuda::ElementType;
using namespace cuda_plan;

class DeviceMemory {
 public:
  DeviceMemory() = default;
  DeviceMemory(size_t bytes, const std::string& what) : p_(cuda::device_alloc(std::max<size_t>(bytes, 16), what)) {}
  DeviceMemory(DeviceMemory&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
  DeviceMemory& operator=(DeviceMemory&& o) noexcept {
    std::swap(p_, o.p_);
    return *this;
  }
  ~DeviceMemory() { cuda::device_free(p_); }
  void* get() const { return p_; }
  template <typename T>
  T* as() const { return static_cast<T*>(p_); }

 private:
  void* p_ = nullptr;
};

class PinnedMemory {
 public:
  PinnedMemory() = default;
  explicit PinnedMemory(size_t bytes) {
    cuda::check(cudaMallocHost(&p_, std::max<size_t>(bytes, 16)), "allocating pinned host memory for the CUDA engine");
  }
  PinnedMemory(PinnedMemory&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
  PinnedMemory& operator=(PinnedMemory&& o) noexcept {
    std::swap(p_, o.p_);
    return *this;
  }
  ~PinnedMemory() {
    if (p_) cudaFreeHost(p_);
  }
  template <typename T>
  T* as() const { return static_cast<T*>(p_); }

 private:
  void* p_ = nullptr;
};

ElementType element_of(DType t) {
  switch (t) {
    case DType::F32: return ElementType::F32;
    case DType::F16: return ElementType::F16;
    case DType::BF16: return ElementType::BF16;
    default: fail("internal: tensor type ", dtype_name(t), " has no GPU element type");
  }
}

// ---------------------------------------------------------------------------------------

// Parts whose outputs sit side by side in one row of width `width` (q|k|v, gate|up).
struct GpuPart {
  int64_t in = 0, out = 0;
  const void* dense = nullptr;  // [out, in] of the activation type
  const cuda::AqlmCudaPlan* aqlm = nullptr;  // an AQLM layer prepared for the CUDA kernels
};
struct Projection {
  std::vector<GpuPart> parts;
  std::vector<int64_t> offsets;
  int64_t in = 0, width = 0;
  const float* bias = nullptr;  // [width] or null
};

struct GpuBlock {
  const float* attn_norm = nullptr;
  const float* mlp_norm = nullptr;
  Projection qkv, o, gate_up, down;
};

enum class Tail { Logits, Argmax };

class CudaEngine final : public Engine {
 public:
  CudaEngine(const Model& model, const EngineOptions& options, const CudaEngineSettings& settings, ModelPlan plan);
  ~CudaEngine() override;

  const ModelConfig& config() const override { return config_; }
  Device device() const override { return Device::Cuda; }
  int context_length() const override { return capacity_; }
  int position() const override { return position_; }
  void forward(std::span<const int32_t> tokens, float* logits, bool all_logits) override;
  int32_t forward_argmax(std::span<const int32_t> tokens) override;
  void rewind(int n) override;

 private:
  void check_tokens(std::span<const int32_t> tokens) const;
  // Runs tokens [0, n) of one chunk; the tail copies logits or the argmax of the last row.
  void run_chunk(const int32_t* ids, int n, float* logits, bool all_logits, Tail tail);
  void enqueue_step(int n, Tail tail, bool want_output);
  void enqueue_layers(int n);
  void enqueue_head(int row0, int rows);
  void run_projection(const Projection& p, const void* x, int n, void* y, int64_t ldy);
  void launch_decode_graph(Tail tail);

  // Loading.
  void* alloc(size_t bytes, const std::string& what);
  void upload(const void* src, ElementType from, size_t count, void* dst, ElementType to);
  const float* upload_norm(const std::string& name);
  Projection load_projection(const std::vector<LinearSource>& parts);
  void upload_dense_rows(const LinearSource& s, void* dst);
  const cuda::AqlmCudaPlan* upload_aqlm(const LinearSource& s);

  const Model& model_;
  const ModelConfig& config_;
  const WeightStore& weights_;
  CudaEngineSettings settings_;
  ModelPlan plan_;
  Act act_;
  ElementType act_elem_;
  int capacity_, max_batch_, position_ = 0;
  int64_t hidden_, q_dim_, kv_dim_, ffn_, vocab_;

  cudaStream_t stream_ = nullptr;
  std::unique_ptr<cuda::Blas> blas_;
  std::vector<DeviceMemory> memory_;
  std::vector<std::unique_ptr<cuda::AqlmCudaPlan>> aqlm_layers_;
  DeviceMemory staging_;

  const void* embed_ = nullptr;
  std::vector<GpuBlock> blocks_;
  const float* final_norm_ = nullptr;
  Projection head_;
  bool head_f32_ = false;  // one dense matrix without bias: cuBLAS writes fp32 logits directly
  const float *rope_cos_ = nullptr, *rope_sin_ = nullptr;
  void *k_cache_ = nullptr, *v_cache_ = nullptr;

  // Activations, [max_batch, width] each.
  int32_t* d_step_ = nullptr;  // [0] = position of the first token, [1..] = token ids
  float* x_ = nullptr;         // fp32 residual stream
  void *xn_ = nullptr, *qkv_ = nullptr, *att_ = nullptr, *tmp_ = nullptr, *gate_up_ = nullptr, *h_ = nullptr;
  void *aqlm_out_ = nullptr, *dequant_ = nullptr, *head_act_ = nullptr;
  float* logits_ = nullptr;
  float* attention_ws_ = nullptr;
  int32_t* d_argmax_ = nullptr;
  cuda::AqlmGemvWorkspace gemv_ws_one_, gemv_ws_batch_;  // single-token steps (graphs) / batches

  PinnedMemory host_step_, host_logits_, host_argmax_;
  cudaGraphExec_t graphs_[2] = {nullptr, nullptr};
  bool warmed_up_ = false;  // one eager single-token step ran (one-time kernel setup outside capture)
};

CudaEngine::CudaEngine(const Model& model, const EngineOptions&, const CudaEngineSettings& settings, ModelPlan plan)
    : model_(model),
      config_(model.config),
      weights_(model.weights),
      settings_(settings),
      plan_(std::move(plan)),
      act_(plan_.act),
      act_elem_(cuda::element_type(plan_.act)),
      capacity_(plan_.capacity),
      max_batch_(plan_.max_batch),
      hidden_(config_.hidden_size),
      q_dim_(config_.q_dim()),
      kv_dim_(config_.kv_dim()),
      ffn_(config_.intermediate_size),
      vocab_(config_.vocab_size) {
  cuda::check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "creating the CUDA engine's stream");
  blas_ = std::make_unique<cuda::Blas>(stream_);
  staging_ = DeviceMemory(kStagingBytes, "the weight upload staging buffer");

  const TensorView& embed = weights_.get("model.embed_tokens.weight");
  void* table = alloc(size_t(vocab_ * hidden_) * 2, "the embedding table");
  upload(embed.data, element_of(embed.dtype), size_t(vocab_ * hidden_), table, act_elem_);
  embed_ = table;
  for (int l = 0; l < config_.num_layers; ++l) {
    const std::string pre = layer_prefix(l);
    const BlockSources& src = plan_.blocks[size_t(l)];
    GpuBlock b;
    b.attn_norm = upload_norm(pre + "input_layernorm.weight");
    b.mlp_norm = upload_norm(pre + "post_attention_layernorm.weight");
    b.qkv = load_projection(src.qkv);
    b.o = load_projection(src.o);
    b.gate_up = load_projection(src.gate_up);
    b.down = load_projection(src.down);
    blocks_.push_back(std::move(b));
  }
  final_norm_ = upload_norm("model.norm.weight");
  head_ = load_projection(plan_.head);
  head_f32_ = head_.parts.size() == 1 && head_.parts[0].dense && !head_.bias;

  const RopeTable rope(config_, capacity_);
  const size_t angles = size_t(capacity_) * size_t(rope.half_dim());
  float* cs = static_cast<float*>(alloc(angles * 4, "the RoPE table"));
  float* sn = static_cast<float*>(alloc(angles * 4, "the RoPE table"));
  upload(rope.cos(0), ElementType::F32, angles, cs, ElementType::F32);
  upload(rope.sin(0), ElementType::F32, angles, sn, ElementType::F32);
  rope_cos_ = cs;
  rope_sin_ = sn;
  const size_t cache = size_t(config_.num_layers) * size_t(kv_dim_) * size_t(capacity_) * 2;
  k_cache_ = alloc(cache, "the KV cache");
  v_cache_ = alloc(cache, "the KV cache");

  const size_t B = size_t(max_batch_);
  d_step_ = static_cast<int32_t*>(alloc((B + 1) * 4, "the token buffer"));
  x_ = static_cast<float*>(alloc(B * size_t(hidden_) * 4, "activations"));
  xn_ = alloc(B * size_t(hidden_) * 2, "activations");
  qkv_ = alloc(B * size_t(q_dim_ + 2 * kv_dim_) * 2, "activations");
  att_ = alloc(B * size_t(q_dim_) * 2, "activations");
  tmp_ = alloc(B * size_t(hidden_) * 2, "activations");
  gate_up_ = alloc(B * size_t(2 * ffn_) * 2, "activations");
  h_ = alloc(B * size_t(ffn_) * 2, "activations");
  size_t max_aqlm_out = 0, max_aqlm_matrix = 0;
  std::vector<const Projection*> projections = {&head_};
  for (const GpuBlock& b : blocks_) projections.insert(projections.end(), {&b.qkv, &b.o, &b.gate_up, &b.down});
  for (const Projection* p : projections)
    for (const GpuPart& part : p->parts)
      if (part.aqlm) {
        max_aqlm_out = std::max(max_aqlm_out, size_t(part.out));
        max_aqlm_matrix = std::max(max_aqlm_matrix, size_t(part.out * part.in));
      }
  if (max_aqlm_out > 0)
    aqlm_out_ = alloc(size_t(std::min(max_batch_, kAqlmKernelTokens)) * max_aqlm_out * 2, "AQLM outputs");
  if (max_aqlm_out > 0 && max_batch_ > kAqlmKernelTokens)
    dequant_ = alloc(max_aqlm_matrix * 2, "the AQLM dequantization scratch");
  const size_t logit_rows = size_t(std::min(max_batch_, kLogitRows));
  logits_ = static_cast<float*>(alloc(logit_rows * size_t(vocab_) * 4, "the logits"));
  if (!head_f32_) head_act_ = alloc(logit_rows * size_t(vocab_) * 2, "the LM head output");
  attention_ws_ = static_cast<float*>(
      alloc(cuda::attention_decode_workspace_floats(config_.num_heads, config_.head_dim, plan_.splits) * 4,
            "the attention workspace"));
  d_argmax_ = static_cast<int32_t*>(alloc(4, "the argmax"));
  host_step_ = PinnedMemory((B + 1) * 4);
  host_logits_ = PinnedMemory(size_t(vocab_) * 4);
  host_argmax_ = PinnedMemory(4);
  // Device-wide: the AQLM layers were copied by cuda::prepare on the legacy stream.
  cuda::check(cudaDeviceSynchronize(), "uploading the model to the GPU");
  staging_ = DeviceMemory();
}

CudaEngine::~CudaEngine() {
  for (cudaGraphExec_t g : graphs_)
    if (g) cudaGraphExecDestroy(g);
  if (stream_) cudaStreamSynchronize(stream_);
  blas_.reset();
  if (stream_) cudaStreamDestroy(stream_);
}

void* CudaEngine::alloc(size_t bytes, const std::string& what) {
  memory_.emplace_back(bytes, what);
  return memory_.back().get();
}

void CudaEngine::upload(const void* src, ElementType from, size_t count, void* dst, ElementType to) {
  // Every copy goes on the engine's stream. A plain cudaMemcpy from pageable memory may return
  // before its DMA has landed, and the engine's stream does not wait for the legacy stream, so
  // a conversion launched after it could read a half-filled staging buffer (it did: the 113 MB
  // float32 embedding of a GGUF model came out partly stale).
  if (from == to) {
    cuda::check(cudaMemcpyAsync(dst, src, count * cuda::element_size(from), cudaMemcpyHostToDevice, stream_),
                "uploading weights");
    cuda::check(cudaStreamSynchronize(stream_), "uploading weights");  // the caller may free `src` next
    return;
  }
  const size_t in_size = cuda::element_size(from), out_size = cuda::element_size(to);
  const size_t chunk = kStagingBytes / in_size;
  for (size_t i = 0; i < count; i += chunk) {
    const size_t m = std::min(chunk, count - i);
    // The staging buffer is free once the previous chunk's conversion ran.
    cuda::check(cudaStreamSynchronize(stream_), "uploading weights");
    cuda::check(cudaMemcpyAsync(staging_.get(), static_cast<const uint8_t*>(src) + i * in_size, m * in_size,
                                cudaMemcpyHostToDevice, stream_),
                "uploading weights");
    cuda::convert(staging_.get(), from, static_cast<uint8_t*>(dst) + i * out_size, to, m, stream_);
  }
  cuda::check(cudaStreamSynchronize(stream_), "uploading weights");  // the caller may free `src` next
}

const float* CudaEngine::upload_norm(const std::string& name) {
  const std::vector<float> v = weights_.to_f32(name);
  float* d = static_cast<float*>(alloc(v.size() * 4, "norm weights"));
  upload(v.data(), ElementType::F32, v.size(), d, ElementType::F32);
  return d;
}

// Fp16 bits of a codebook or scale tensor, as the CPU's AqlmLinear reads them.
const uint16_t* half_bits(const TensorView& t, const std::vector<float>& f32, std::vector<uint16_t>& owned) {
  if (t.dtype == DType::F16) return t.as<uint16_t>();
  owned.resize(f32.size());
  for (size_t i = 0; i < f32.size(); ++i) owned[i] = f32_to_f16(f32[i]);
  return owned.data();
}

AqlmView host_aqlm_view(const WeightStore& w, const AqlmQuantConfig& q, const LinearSource& s,
                        std::vector<uint16_t>& codebooks, std::vector<uint16_t>& scales) {
  const TensorView& codes = w.get(s.prefix + ".codes");
  const TensorView& cb = w.get(s.prefix + ".codebooks");
  const TensorView& sc = w.get(s.prefix + ".scales");
  AqlmView v;
  v.codes = codes.data;
  v.code_bytes = int(dtype_size(codes.dtype));
  v.codebooks = half_bits(cb, cb.dtype == DType::F16 ? std::vector<float>() : w.to_f32(s.prefix + ".codebooks"), codebooks);
  v.scales = half_bits(sc, sc.dtype == DType::F16 ? std::vector<float>() : w.to_f32(s.prefix + ".scales"), scales);
  v.out = s.out;
  v.in = s.in;
  v.num_codebooks = q.num_codebooks;
  v.nbits = q.nbits_per_codebook;
  v.group_size = q.in_group_size;
  return v;
}

void CudaEngine::upload_dense_rows(const LinearSource& s, void* dst) {
  const size_t count = size_t(s.out * s.in);
  if (!s.aqlm) {
    const TensorView& v = weights_.get(s.weight);
    upload(v.data, element_of(v.dtype), count, dst, act_elem_);
    return;
  }
  // An AQLM layer the CUDA kernels do not take (e.g. group size 4): dequantized once, on the
  // CPU reference path, then run as a dense projection.
  std::vector<uint16_t> cb, sc;
  const AqlmView v = host_aqlm_view(weights_, *config_.aqlm, s, cb, sc);
  std::vector<float> dense(count);
  cpu::aqlm_dequantize(v, 0, s.out, dense.data());
  upload(dense.data(), ElementType::F32, count, dst, act_elem_);  // synchronous: `dense` dies here
}

// Codes re-laid out for the kernels once, here (aqlm::cuda::prepare).
const cuda::AqlmCudaPlan* CudaEngine::upload_aqlm(const LinearSource& s) {
  std::vector<uint16_t> cb, sc;
  const AqlmView v = host_aqlm_view(weights_, *config_.aqlm, s, cb, sc);
  aqlm_layers_.push_back(std::make_unique<cuda::AqlmCudaPlan>(cuda::prepare(v, cuda::Memory::Host, s.prefix.c_str())));
  return aqlm_layers_.back().get();
}

Projection CudaEngine::load_projection(const std::vector<LinearSource>& parts) {
  Projection p;
  p.in = parts.front().in;
  for (const LinearSource& s : parts) {
    p.offsets.push_back(p.width);
    p.width += s.out;
  }
  if (parts.size() == 1 && parts[0].tied_embedding) {
    p.parts.push_back({p.in, p.width, embed_, {}});
  } else if (merged_dense(parts)) {
    // One matrix [sum of outs, in]: one GEMM instead of several.
    uint8_t* w = static_cast<uint8_t*>(alloc(size_t(p.width * p.in) * 2, "projection weights"));
    for (size_t i = 0; i < parts.size(); ++i) upload_dense_rows(parts[i], w + size_t(p.offsets[i] * p.in) * 2);
    p.parts.push_back({p.in, p.width, w, {}});
    p.offsets = {0};
  } else {
    for (const LinearSource& s : parts) {
      GpuPart part{s.in, s.out, nullptr, nullptr};
      if (s.aqlm_kernel) {
        part.aqlm = upload_aqlm(s);
      } else {
        void* w = alloc(size_t(s.out * s.in) * 2, "projection weights");
        upload_dense_rows(s, w);
        part.dense = w;
      }
      p.parts.push_back(part);
    }
  }
  if (std::any_of(parts.begin(), parts.end(), [](const LinearSource& s) { return s.has_bias; })) {
    // Zeros for the parts without a bias; offsets by source part (also when merged).
    std::vector<float> bias(size_t(p.width), 0.0f);
    int64_t off = 0;
    for (const LinearSource& s : parts) {
      if (s.has_bias) {
        const std::vector<float> b = weights_.to_f32(s.prefix + ".bias");
        std::copy(b.begin(), b.end(), bias.begin() + off);
      }
      off += s.out;
    }
    float* d = static_cast<float*>(alloc(bias.size() * 4, "biases"));
    upload(bias.data(), ElementType::F32, bias.size(), d, ElementType::F32);
    p.bias = d;
  }
  return p;
}

// ---------------------------------------------------------------------------------------

void CudaEngine::rewind(int n) {
  AQLM_CHECK(n >= 0 && n <= position_, "cannot rewind the KV cache to position ", n, ": it holds ", position_, " tokens");
  position_ = n;
}

void CudaEngine::check_tokens(std::span<const int32_t> tokens) const {
  const int64_t n = int64_t(tokens.size());
  AQLM_CHECK(n > 0, "forward: no tokens to run");
  AQLM_CHECK(position_ + n <= capacity_, "the context is full: ", position_, " tokens cached + ", n, " new exceed the ",
             capacity_, "-token context");
  for (int32_t id : tokens)
    AQLM_CHECK(id >= 0 && id < vocab_, "token id ", id, " is outside the vocabulary (0..", vocab_ - 1, ")");
}

void CudaEngine::forward(std::span<const int32_t> tokens, float* logits, bool all_logits) {
  check_tokens(tokens);
  const int n = int(tokens.size());
  for (int t0 = 0; t0 < n; t0 += max_batch_) {
    const int m = std::min(max_batch_, n - t0);
    const bool last = t0 + m == n;
    float* out = !logits ? nullptr : all_logits ? logits + int64_t(t0) * vocab_ : (last ? logits : nullptr);
    run_chunk(tokens.data() + t0, m, out, all_logits, Tail::Logits);
  }
}

int32_t CudaEngine::forward_argmax(std::span<const int32_t> tokens) {
  check_tokens(tokens);
  const int n = int(tokens.size());
  for (int t0 = 0; t0 < n; t0 += max_batch_) {
    const int m = std::min(max_batch_, n - t0);
    run_chunk(tokens.data() + t0, m, nullptr, false, t0 + m == n ? Tail::Argmax : Tail::Logits);
  }
  return *host_argmax_.as<int32_t>();
}

void CudaEngine::run_chunk(const int32_t* ids, int n, float* logits, bool all_logits, Tail tail) {
  int32_t* step = host_step_.as<int32_t>();
  step[0] = position_;
  std::memcpy(step + 1, ids, size_t(n) * 4);
  const bool want_output = tail == Tail::Argmax || logits != nullptr;
  if (n == 1 && want_output) {
    launch_decode_graph(tail);
    cuda::check(cudaStreamSynchronize(stream_), "running a decode step on the GPU");
    if (tail == Tail::Logits) std::memcpy(logits, host_logits_.as<float>(), size_t(vocab_) * 4);
  } else if (!(all_logits && logits && tail == Tail::Logits)) {  // the last row's output, or none
    enqueue_step(n, tail, want_output);
    cuda::check(cudaStreamSynchronize(stream_), "running the model on the GPU");
    if (want_output && tail == Tail::Logits) std::memcpy(logits, host_logits_.as<float>(), size_t(vocab_) * 4);
  } else {
    // Every position's logits: the head runs in blocks of kLogitRows rows, each copied out.
    cuda::check(cudaMemcpyAsync(d_step_, step, size_t(n + 1) * 4, cudaMemcpyHostToDevice, stream_), "uploading tokens");
    enqueue_layers(n);
    for (int r0 = 0; r0 < n; r0 += kLogitRows) {
      const int rows = std::min(kLogitRows, n - r0);
      enqueue_head(r0, rows);
      cuda::check(cudaMemcpyAsync(logits + int64_t(r0) * vocab_, logits_, size_t(rows) * size_t(vocab_) * 4,
                                  cudaMemcpyDeviceToHost, stream_),
                  "copying logits from the GPU");
    }
    cuda::check(cudaStreamSynchronize(stream_), "running the model on the GPU");
  }
  position_ += n;
}

// The whole single-token step as one graph per tail, captured on the second use: the first
// step runs eagerly so that one-time setup (kernel attributes, workspaces, cuBLAS plans)
// happens outside the capture and every later replay finds its buffers in place.
void CudaEngine::launch_decode_graph(Tail tail) {
  cudaGraphExec_t& exec = graphs_[tail == Tail::Argmax ? 1 : 0];
  if (!settings_.use_graphs || (!exec && !warmed_up_)) {
    enqueue_step(1, tail, true);
    warmed_up_ = true;
    return;
  }
  if (!exec) {
    cuda::check(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal), "capturing the decode step");
    cudaGraph_t graph = nullptr;
    try {
      enqueue_step(1, tail, true);
    } catch (...) {
      cudaStreamEndCapture(stream_, &graph);
      if (graph) cudaGraphDestroy(graph);
      throw;
    }
    cuda::check(cudaStreamEndCapture(stream_, &graph), "capturing the decode step");
    const cudaError_t status = cudaGraphInstantiate(&exec, graph, 0);
    cudaGraphDestroy(graph);
    cuda::check(status, "instantiating the decode-step graph");
  }
  cuda::check(cudaGraphLaunch(exec, stream_), "launching the decode-step graph");
}

void CudaEngine::enqueue_step(int n, Tail tail, bool want_output) {
  cuda::check(cudaMemcpyAsync(d_step_, host_step_.as<int32_t>(), size_t(n + 1) * 4, cudaMemcpyHostToDevice, stream_),
              "uploading tokens");
  enqueue_layers(n);
  if (!want_output) return;
  enqueue_head(n - 1, 1);
  if (tail == Tail::Argmax) {
    cuda::argmax(logits_, vocab_, d_argmax_, stream_);
    cuda::check(cudaMemcpyAsync(host_argmax_.as<int32_t>(), d_argmax_, 4, cudaMemcpyDeviceToHost, stream_),
                "copying the argmax from the GPU");
  } else {
    cuda::check(cudaMemcpyAsync(host_logits_.as<float>(), logits_, size_t(vocab_) * 4, cudaMemcpyDeviceToHost, stream_),
                "copying logits from the GPU");
  }
}

void CudaEngine::enqueue_layers(int n) {
  const int64_t qkv_width = q_dim_ + 2 * kv_dim_;
  const int hd = config_.head_dim;
  cuda::embedding_lookup(embed_, act_, d_step_ + 1, n, hidden_, x_, stream_);
  cuda::AttentionArgs attn = attention_shape(config_, capacity_);
  attn.q = qkv_;
  attn.ldq = qkv_width;
  attn.out = att_;
  attn.ldo = q_dim_;
  attn.n_tokens = n;
  attn.pos0 = d_step_;
  cuda::RopeStoreArgs rope;
  rope.qkv = qkv_;
  rope.ld = qkv_width;
  rope.k_offset = q_dim_;
  rope.v_offset = q_dim_ + kv_dim_;
  rope.n_tokens = n;
  rope.n_heads = config_.num_heads;
  rope.kv_heads = config_.num_kv_heads;
  rope.head_dim = hd;
  rope.pos0 = d_step_;
  rope.cos = rope_cos_;
  rope.sin = rope_sin_;
  rope.capacity = capacity_;
  const size_t layer_cache = size_t(kv_dim_) * size_t(capacity_) * 2;
  const float eps = float(config_.rms_norm_eps);
  for (int l = 0; l < config_.num_layers; ++l) {
    const GpuBlock& b = blocks_[size_t(l)];
    // The previous block's down_proj output (tmp_) joins the stream here.
    cuda::add_rmsnorm(x_, l == 0 ? nullptr : tmp_, b.attn_norm, xn_, act_, n, hidden_, eps, stream_);
    run_projection(b.qkv, xn_, n, qkv_, qkv_width);
    rope.k_cache = static_cast<uint8_t*>(k_cache_) + size_t(l) * layer_cache;
    rope.v_cache = static_cast<uint8_t*>(v_cache_) + size_t(l) * layer_cache;
    cuda::rope_store_kv(rope, act_, stream_);
    attn.k_cache = rope.k_cache;
    attn.v_cache = rope.v_cache;
    if (n == 1)
      cuda::attention_decode(attn, plan_.splits, attention_ws_, act_, stream_);
    else
      cuda::attention_prefill(attn, act_, stream_);
    run_projection(b.o, att_, n, tmp_, hidden_);
    cuda::add_rmsnorm(x_, tmp_, b.mlp_norm, xn_, act_, n, hidden_, eps, stream_);
    run_projection(b.gate_up, xn_, n, gate_up_, 2 * ffn_);
    cuda::swiglu(gate_up_, 2 * ffn_, ffn_, h_, n, ffn_, act_, stream_);
    run_projection(b.down, h_, n, tmp_, hidden_);
  }
}

// Final norm (with the last block's residual) and LM head for rows [row0, row0 + rows):
// fp32 logits in logits_[0, rows).
void CudaEngine::enqueue_head(int row0, int rows) {
  float* x = x_ + int64_t(row0) * hidden_;
  const void* res = static_cast<const uint8_t*>(tmp_) + size_t(row0 * hidden_) * 2;
  cuda::add_rmsnorm(x, res, final_norm_, xn_, act_, rows, hidden_, float(config_.rms_norm_eps), stream_);
  if (head_f32_) {
    blas_->linear(head_.parts[0].dense, vocab_, hidden_, xn_, hidden_, rows, logits_, vocab_, act_, true);
  } else {
    run_projection(head_, xn_, rows, head_act_, vocab_);
    cuda::convert(head_act_, act_elem_, logits_, ElementType::F32, size_t(rows) * size_t(vocab_), stream_);
  }
}

void CudaEngine::run_projection(const Projection& p, const void* x, int n, void* y, int64_t ldy) {
  for (size_t i = 0; i < p.parts.size(); ++i) {
    const GpuPart& part = p.parts[i];
    uint8_t* out = static_cast<uint8_t*>(y) + size_t(p.offsets[i]) * 2;
    if (part.dense) {
      blas_->linear(part.dense, part.out, part.in, x, part.in, n, out, ldy, act_);
    } else if (n > kAqlmKernelTokens) {
      cuda::aqlm_dequantize(*part.aqlm, dequant_, act_, stream_);
      blas_->linear(dequant_, part.out, part.in, x, part.in, n, out, ldy, act_);
    } else if (n == 1 || ldy == part.out) {
      cuda::aqlm_gemv(*part.aqlm, x, out, n, act_, n == 1 ? gemv_ws_one_ : gemv_ws_batch_, stream_);
    } else {
      // The kernel writes contiguous rows: through a scratch, then into the strided output.
      cuda::aqlm_gemv(*part.aqlm, x, aqlm_out_, n, act_, gemv_ws_batch_, stream_);
      cuda::check(cudaMemcpy2DAsync(out, size_t(ldy) * 2, aqlm_out_, size_t(part.out) * 2, size_t(part.out) * 2,
                                    size_t(n), cudaMemcpyDeviceToDevice, stream_),
                  "gathering AQLM outputs");
    }
  }
  if (p.bias) cuda::add_bias(y, ldy, p.bias, n, p.width, act_, stream_);
}

}  // namespace

size_t cuda_engine_memory_bytes(const Model& model, const EngineOptions& options) {
  return plan_bytes(plan_model(model, options), model.config);
}

std::unique_ptr<Engine> create_cuda_engine(const Model& model, const EngineOptions& options,
                                           const CudaEngineSettings& settings) {
  if (cuda::device_count() == 0) fail("--device cuda: no CUDA device found (", cuda::no_device_reason(), ")");
  ModelPlan plan = plan_model(model, options);
  const size_t need = plan_bytes(plan, model.config);
  size_t free_bytes = 0, total_bytes = 0;
  cuda::check(cudaMemGetInfo(&free_bytes, &total_bytes), "--device cuda: reading the free GPU memory");
  AQLM_CHECK(need <= free_bytes, "not enough GPU memory: the model needs ", gigabytes(need), " GB, ",
             gigabytes(free_bytes), " GB free on ", cuda::device_properties().name);
  return std::make_unique<CudaEngine>(model, options, settings, std::move(plan));
}

}  // namespace aqlm

#endif  // AQLM_HAVE_CUDA
