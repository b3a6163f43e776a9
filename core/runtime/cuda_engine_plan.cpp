// See cuda_engine_plan.h.
#ifdef AQLM_HAVE_CUDA

#include "core/runtime/cuda_engine_plan.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "core/common/error.h"
#include "core/runtime/linear.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/dense_gemm_cuda.h"

namespace aqlm::cuda_plan {

using Act = cuda::DType;

namespace {

// Whether the CUDA AQLM kernels take a layer of this configuration (group size 8, codebook
// counts and widths they are built for): asked with dummy, aligned pointers.
bool cuda_kernels_take(const AqlmQuantConfig& q, int code_bytes, int64_t in, int64_t out) {
  alignas(16) static const uint16_t dummy[8] = {};
  AqlmView v;
  v.codes = dummy;
  v.codebooks = dummy;
  v.scales = dummy;
  v.out = out;
  v.in = in;
  v.num_codebooks = q.num_codebooks;
  v.nbits = q.nbits_per_codebook;
  v.group_size = q.in_group_size;
  v.code_bytes = code_bytes;
  try {
    cuda::check_cuda_aqlm_view(v, "probe");
    return true;
  } catch (const Error&) {
    return false;
  }
}

LinearSource describe_linear(const WeightStore& w, const ModelConfig& c, const std::string& prefix, int64_t in,
                             int64_t out, const std::string& weight_name = "") {
  load_linear(w, c, prefix, in, out, weight_name);  // the CPU engine's checks and messages
  LinearSource s;
  s.prefix = prefix;
  s.in = in;
  s.out = out;
  s.has_bias = w.has(prefix + ".bias");
  if (weight_name.empty() && w.has(prefix + ".codes")) {  // load_linear's rule
    const TensorView& codes = w.get(prefix + ".codes");
    s.aqlm = true;
    s.aqlm_kernel = cuda_kernels_take(*c.aqlm, int(dtype_size(codes.dtype)), in, out);
    if (s.aqlm_kernel) {  // as prepared for the kernels (codes re-laid out and padded)
      AqlmView shape;
      shape.out = out;
      shape.in = in;
      shape.num_codebooks = c.aqlm->num_codebooks;
      shape.nbits = c.aqlm->nbits_per_codebook;
      shape.group_size = c.aqlm->in_group_size;
      shape.code_bytes = int(dtype_size(codes.dtype));
      s.aqlm_bytes = cuda::prepared_bytes(shape);
    }
  } else {
    s.weight = weight_name.empty() ? prefix + ".weight" : weight_name;
    s.tied_embedding = s.weight == "model.embed_tokens.weight";
  }
  return s;
}

}  // namespace

bool merged_dense(const std::vector<LinearSource>& parts) {
  return std::all_of(parts.begin(), parts.end(), [](const LinearSource& s) { return s.dense_on_gpu(); });
}

cuda::AttentionArgs attention_shape(const ModelConfig& c, int capacity) {
  static int dummy = 0;
  cuda::AttentionArgs a;
  a.out = &dummy;
  a.q = a.k_cache = a.v_cache = &dummy;
  a.pos0 = &dummy;
  a.ldq = a.ldo = c.q_dim();
  a.capacity = capacity;
  a.n_heads = c.num_heads;
  a.kv_heads = c.num_kv_heads;
  a.head_dim = c.head_dim;
  a.window = c.sliding_window > 0 ? c.sliding_window : 0;
  a.scale = float(1.0 / std::sqrt(double(c.head_dim)));
  return a;
}

ModelPlan plan_model(const Model& model, const EngineOptions& options) {
  const ModelConfig& c = model.config;
  c.validate();
  ModelPlan p;
  p.act = c.torch_dtype == "bfloat16" ? Act::BF16 : Act::F16;
  p.capacity = options.context_length > 0 ? options.context_length : std::min(c.max_position_embeddings, 4096);
  AQLM_CHECK(p.capacity >= 1, "context length ", options.context_length, " must be positive");
  p.max_batch = std::max(1, options.max_batch);
  cuda::check_attention_shape(attention_shape(c, p.capacity));

  const WeightStore& w = model.weights;
  const TensorView& embed = w.get("model.embed_tokens.weight");
  AQLM_CHECK(embed.shape.size() == 2 && embed.dim(0) == c.vocab_size && embed.dim(1) == c.hidden_size,
             "tensor model.embed_tokens.weight has shape ", shape_string(embed.shape), " but the model needs [",
             c.vocab_size, ", ", c.hidden_size, "]");
  AQLM_CHECK(embed.dtype == DType::F32 || embed.dtype == DType::F16 || embed.dtype == DType::BF16,
             "tensor model.embed_tokens.weight: type ", dtype_name(embed.dtype), " is not supported (F32, F16 or BF16)");
  const int64_t hidden = c.hidden_size, q = c.q_dim(), kv = c.kv_dim(), ffn = c.intermediate_size;
  for (int l = 0; l < c.num_layers; ++l) {
    const std::string pre = layer_prefix(l);
    for (const char* norm : {"input_layernorm.weight", "post_attention_layernorm.weight"}) {
      const TensorView& v = w.get(pre + norm);
      AQLM_CHECK(v.shape.size() == 1 && v.dim(0) == hidden, "tensor ", pre + norm, " has shape ",
                 shape_string(v.shape), " but the model needs [", hidden, "]");
    }
    BlockSources b;
    b.qkv = {describe_linear(w, c, pre + "self_attn.q_proj", hidden, q),
             describe_linear(w, c, pre + "self_attn.k_proj", hidden, kv),
             describe_linear(w, c, pre + "self_attn.v_proj", hidden, kv)};
    b.o = {describe_linear(w, c, pre + "self_attn.o_proj", q, hidden)};
    b.gate_up = {describe_linear(w, c, pre + "mlp.gate_proj", hidden, ffn),
                 describe_linear(w, c, pre + "mlp.up_proj", hidden, ffn)};
    b.down = {describe_linear(w, c, pre + "mlp.down_proj", ffn, hidden)};
    p.blocks.push_back(std::move(b));
  }
  const TensorView& norm = w.get("model.norm.weight");
  AQLM_CHECK(norm.shape.size() == 1 && norm.dim(0) == hidden, "tensor model.norm.weight has shape ",
             shape_string(norm.shape), " but the model needs [", hidden, "]");
  if (w.has("lm_head.weight") || !c.tie_word_embeddings)  // as the CPU engine decides
    p.head = {describe_linear(w, c, "lm_head", hidden, c.vocab_size)};
  else
    p.head = {describe_linear(w, c, "lm_head", hidden, c.vocab_size, "model.embed_tokens.weight")};
  p.splits = cuda::device_count() > 0 ? cuda::attention_decode_splits(c.num_heads, c.num_kv_heads, p.capacity) : 64;
  return p;
}

size_t plan_bytes(const ModelPlan& p, const ModelConfig& c) {
  const size_t act = 2, hidden = size_t(c.hidden_size), q = size_t(c.q_dim()), kv = size_t(c.kv_dim()),
               ffn = size_t(c.intermediate_size), vocab = size_t(c.vocab_size), B = size_t(p.max_batch);
  size_t bytes = vocab * hidden * act + size_t(2 * c.num_layers + 1) * hidden * 4;  // embedding, norms
  size_t max_aqlm_out = 0, max_aqlm_matrix = 0;
  auto add = [&](const std::vector<LinearSource>& parts) {
    for (const LinearSource& s : parts) {
      if (s.aqlm_kernel) {
        bytes += s.aqlm_bytes;
        max_aqlm_out = std::max(max_aqlm_out, size_t(s.out));
        max_aqlm_matrix = std::max(max_aqlm_matrix, size_t(s.out * s.in));
      } else if (!s.tied_embedding) {
        bytes += size_t(s.out * s.in) * act;
      }
      if (s.has_bias) bytes += size_t(s.out) * 4;
    }
  };
  for (const BlockSources& b : p.blocks)
    for (const auto* parts : {&b.qkv, &b.o, &b.gate_up, &b.down}) add(*parts);
  add(p.head);
  bytes += 2 * size_t(c.num_layers) * kv * size_t(p.capacity) * act;   // KV cache
  bytes += size_t(p.capacity) * size_t(c.head_dim) * 4;                // RoPE cos + sin
  bytes += B * (hidden * 4 + 2 * hidden * act + (q + 2 * kv) * act + q * act + 3 * ffn * act) + (B + 1) * 4;
  if (max_aqlm_out > 0) bytes += size_t(std::min(p.max_batch, kAqlmKernelTokens)) * max_aqlm_out * act;
  if (max_aqlm_out > 0 && p.max_batch > kAqlmKernelTokens) bytes += max_aqlm_matrix * act;
  const size_t logit_rows = size_t(std::min(p.max_batch, kLogitRows));
  bytes += logit_rows * vocab * (4 + act);  // fp32 logits (+ the head's own output when not fp32)
  bytes += cuda::attention_decode_workspace_floats(c.num_heads, c.head_dim, p.splits) * 4;
  bytes += cuda::Blas::kWorkspaceBytes + kStagingBytes + kUncountedBytes;
  return bytes;
}

std::string gigabytes(size_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", double(bytes) / 1e9);
  return buf;
}

}  // namespace aqlm::cuda_plan

#endif  // AQLM_HAVE_CUDA
