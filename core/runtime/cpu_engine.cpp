// CpuEngine: the fp32 forward of a Llama-family decoder, token batches at a time.
//
// Per block: RMSNorm -> q/k/v projections (+ biases) -> RoPE (half-split) -> KV cache ->
// grouped-query causal attention (sliding window when configured) -> o_proj + residual ->
// RMSNorm -> gate/up -> SwiGLU -> down_proj + residual. Weights are read in place through
// Linear; every product of a batch is split over the thread pool by output rows.
#include "core/runtime/cpu_engine.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/common/error.h"
#include "core/common/thread_pool.h"
#include "core/model/model.h"
#include "core/runtime/kv_cache.h"
#include "core/runtime/linear.h"
#include "core/runtime/rope_table.h"
#include "kernels/cpu/activation.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/norm.h"
#include "kernels/cpu/rope.h"

namespace aqlm {
namespace {

// Tokens per attention work item in prefill (items are spread over the threads).
constexpr int64_t kAttentionTokensPerItem = 16;

std::vector<float> norm_weight(const WeightStore& w, const std::string& name, int64_t dim) {
  const TensorView& v = w.get(name);
  AQLM_CHECK(v.shape.size() == 1 && v.dim(0) == dim, "tensor ", name, " has shape ", shape_string(v.shape),
             " but the model needs [", dim, "]");
  return w.to_f32(name);
}

struct Block {
  std::vector<float> attn_norm, mlp_norm;
  std::unique_ptr<Linear> q, k, v, o, gate, up, down;
};

// One projection of a batch: y = lin(x).
struct LinearJob {
  const Linear* lin;
  const float* x;
  int64_t ldx;
  float* y;
  int64_t ldy;
};

class CpuEngine final : public Engine {
 public:
  CpuEngine(const Model& model, const EngineOptions& options);

  const ModelConfig& config() const override { return config_; }
  Device device() const override { return Device::Cpu; }
  int context_length() const override { return capacity_; }
  int position() const override { return position_; }
  void forward(std::span<const int32_t> tokens, float* logits, bool all_logits) override;
  void rewind(int n) override;

 private:
  void forward_batch(const int32_t* ids, int64_t n, float* logits, bool all_logits);
  void embed(const int32_t* ids, int64_t n);
  void norm_rows(const float* in, const std::vector<float>& weight, float* out, int64_t n);
  void run_linears(std::initializer_list<LinearJob> jobs, int64_t n);
  void attention_layer(int layer, int64_t n, int64_t first_pos);
  void add_into(float* dst, const float* src, size_t count);

  const ModelConfig& config_;
  std::unique_ptr<ThreadPool> own_pool_;
  ThreadPool* pool_;
  int capacity_, max_batch_, position_ = 0;
  int64_t hidden_, q_dim_, kv_dim_, ffn_, vocab_;

  TensorView embed_;
  cpu::DenseMatrix embed_matrix_;
  std::vector<Block> blocks_;
  std::vector<float> final_norm_;
  std::unique_ptr<Linear> lm_head_;
  RopeTable rope_;
  KvCache cache_;

  // Activations of one batch, [max_batch, width] each.
  std::vector<float> x_, xn_, tmp_, q_, k_, v_, att_, gate_, up_;
  std::vector<std::vector<float>> scratch_;  // per thread
  std::vector<std::vector<float>> shared_;   // per job of one run_linears call (AQLM lookup tables)
};

CpuEngine::CpuEngine(const Model& model, const EngineOptions& options)
    : config_(model.config),
      capacity_(options.context_length > 0 ? options.context_length
                                           : std::min(model.config.max_position_embeddings, 4096)),
      max_batch_(std::max(1, options.max_batch)),
      hidden_(model.config.hidden_size),
      q_dim_(model.config.q_dim()),
      kv_dim_(model.config.kv_dim()),
      ffn_(model.config.intermediate_size),
      vocab_(model.config.vocab_size),
      rope_(model.config, std::max(1, capacity_)),
      cache_(model.config.num_layers, model.config.num_kv_heads, model.config.head_dim, std::max(1, capacity_)) {
  const CpuFeatures& cpu = cpu_features();
  AQLM_CHECK(cpu.avx2 && cpu.fma && cpu.f16c, "this CPU lacks AVX2, FMA or F16C, which the CPU engine needs (x86-64-v3)");
  AQLM_CHECK(capacity_ >= 1, "context length ", options.context_length, " must be positive");
  config_.validate();
  if (options.threads > 0) {
    own_pool_ = std::make_unique<ThreadPool>(options.threads);
    pool_ = own_pool_.get();
  } else {
    pool_ = &ThreadPool::global();
  }

  const WeightStore& w = model.weights;
  embed_ = w.get("model.embed_tokens.weight");
  AQLM_CHECK(embed_.shape.size() == 2 && embed_.dim(0) == vocab_ && embed_.dim(1) == hidden_,
             "tensor model.embed_tokens.weight has shape ", shape_string(embed_.shape), " but the model needs [", vocab_,
             ", ", hidden_, "]");
  AQLM_CHECK(embed_.dtype == DType::F32 || embed_.dtype == DType::F16 || embed_.dtype == DType::BF16,
             "tensor model.embed_tokens.weight: type ", dtype_name(embed_.dtype), " is not supported (F32, F16 or BF16)");
  embed_matrix_ = {embed_.dtype == DType::F32   ? cpu::WeightType::F32
                   : embed_.dtype == DType::F16 ? cpu::WeightType::F16
                                                : cpu::WeightType::BF16,
                   embed_.data, vocab_, hidden_};

  for (int l = 0; l < config_.num_layers; ++l) {
    const std::string p = layer_prefix(l);
    Block b;
    b.attn_norm = norm_weight(w, p + "input_layernorm.weight", hidden_);
    b.mlp_norm = norm_weight(w, p + "post_attention_layernorm.weight", hidden_);
    b.q = load_linear(w, config_, p + "self_attn.q_proj", hidden_, q_dim_);
    b.k = load_linear(w, config_, p + "self_attn.k_proj", hidden_, kv_dim_);
    b.v = load_linear(w, config_, p + "self_attn.v_proj", hidden_, kv_dim_);
    b.o = load_linear(w, config_, p + "self_attn.o_proj", q_dim_, hidden_);
    b.gate = load_linear(w, config_, p + "mlp.gate_proj", hidden_, ffn_);
    b.up = load_linear(w, config_, p + "mlp.up_proj", hidden_, ffn_);
    b.down = load_linear(w, config_, p + "mlp.down_proj", ffn_, hidden_);
    blocks_.push_back(std::move(b));
  }
  final_norm_ = norm_weight(w, "model.norm.weight", hidden_);
  if (w.has("lm_head.weight") || !config_.tie_word_embeddings)
    lm_head_ = load_linear(w, config_, "lm_head", hidden_, vocab_);
  else
    lm_head_ = load_linear(w, config_, "lm_head", hidden_, vocab_, "model.embed_tokens.weight");

  const size_t B = size_t(max_batch_);
  x_.resize(B * size_t(hidden_));
  xn_.resize(B * size_t(hidden_));
  tmp_.resize(B * size_t(hidden_));
  q_.resize(B * size_t(q_dim_));
  att_.resize(B * size_t(q_dim_));
  k_.resize(B * size_t(kv_dim_));
  v_.resize(B * size_t(kv_dim_));
  gate_.resize(B * size_t(ffn_));
  up_.resize(B * size_t(ffn_));

  size_t scratch = 0, shared = 0;
  auto size_for = [&](const Linear& lin) {
    // Both sizes may depend on the token count (AQLM: tables up to 8 tokens, tiles above).
    for (int64_t n = 1; n <= max_batch_; n = n < 16 ? n + 1 : n * 2) {
      const int64_t m = std::min<int64_t>(n, max_batch_);
      scratch = std::max(scratch, lin.scratch_floats(m));
      shared = std::max(shared, lin.shared_floats(m));
    }
    scratch = std::max(scratch, lin.scratch_floats(max_batch_));
  };
  size_for(*lm_head_);
  for (const Block& b : blocks_)
    for (const Linear* lin : {b.q.get(), b.k.get(), b.v.get(), b.o.get(), b.gate.get(), b.up.get(), b.down.get()})
      size_for(*lin);
  shared_.assign(3, std::vector<float>(shared));
  const int64_t group = config_.num_heads / config_.num_kv_heads;
  scratch = std::max(scratch, cpu::attention_scratch_floats(std::min<int64_t>(max_batch_, kAttentionTokensPerItem),
                                                            group, config_.head_dim, capacity_ - 1));
  scratch_.assign(size_t(pool_->size()), std::vector<float>(scratch + 1));
}

void CpuEngine::rewind(int n) {
  AQLM_CHECK(n >= 0 && n <= position_, "cannot rewind the KV cache to position ", n, ": it holds ", position_, " tokens");
  position_ = n;
}

void CpuEngine::forward(std::span<const int32_t> tokens, float* logits, bool all_logits) {
  const int64_t n = int64_t(tokens.size());
  AQLM_CHECK(n > 0, "forward: no tokens to run");
  AQLM_CHECK(position_ + n <= capacity_, "the context is full: ", position_, " tokens cached + ", n, " new exceed the ",
             capacity_, "-token context");
  for (int32_t id : tokens)
    AQLM_CHECK(id >= 0 && id < vocab_, "token id ", id, " is outside the vocabulary (0..", vocab_ - 1, ")");
  for (int64_t t0 = 0; t0 < n; t0 += max_batch_) {
    const int64_t m = std::min<int64_t>(max_batch_, n - t0);
    const bool last = t0 + m == n;
    float* out = !logits ? nullptr : all_logits ? logits + t0 * vocab_ : (last ? logits : nullptr);
    forward_batch(tokens.data() + t0, m, out, all_logits);
  }
}

void CpuEngine::embed(const int32_t* ids, int64_t n) {
  for (int64_t t = 0; t < n; ++t) cpu::convert_weights(embed_matrix_, int64_t(ids[t]) * hidden_, hidden_, x_.data() + t * hidden_);
}

void CpuEngine::norm_rows(const float* in, const std::vector<float>& weight, float* out, int64_t n) {
  const float eps = float(config_.rms_norm_eps);
  pool_->parallel_for(
      size_t(n),
      [&](size_t b, size_t e, int) {
        for (size_t t = b; t < e; ++t) cpu::rmsnorm(in + t * hidden_, weight.data(), out + t * hidden_, hidden_, eps);
      },
      8);
}

void CpuEngine::add_into(float* dst, const float* src, size_t count) {
  for (size_t i = 0; i < count; ++i) dst[i] += src[i];
}

// All jobs' work, cut into items (prepare items, then blocks of each Linear's row
// granularity), forms one work list per phase, so q/k/v (or gate/up) share one dispatch.
void CpuEngine::run_linears(std::initializer_list<LinearJob> jobs, int64_t n) {
  AQLM_CHECK(jobs.size() <= shared_.size(), "internal: too many projections in one dispatch");
  std::vector<std::pair<size_t, int64_t>> items;  // (job index, first prepare item or row)
  size_t job_index = 0;
  for (const LinearJob& j : jobs) {
    const int64_t count = j.lin->prepare_items(n);
    const int64_t per_item = std::max<int64_t>(1, count / 64);  // ~64 items per projection
    for (int64_t i = 0; i < count; i += per_item) items.emplace_back(job_index, i);
    ++job_index;
  }
  // Phase 1: consecutive items of one job become one prepare() call.
  if (!items.empty()) {
    pool_->parallel_for(items.size(), [&](size_t begin, size_t end, int) {
      for (size_t i = begin; i < end;) {
        size_t j = i + 1;
        while (j < end && items[j].first == items[i].first) ++j;
        const LinearJob& job = jobs.begin()[items[i].first];
        const int64_t last = j < items.size() && items[j].first == items[i].first ? items[j].second
                                                                                  : job.lin->prepare_items(n);
        job.lin->prepare(job.x, n, job.ldx, shared_[items[i].first].data(), items[i].second, last);
        i = j;
      }
    });
    items.clear();
  }
  // Phase 2: output rows.
  job_index = 0;
  for (const LinearJob& j : jobs) {
    const int64_t g = j.lin->row_granularity(n);
    for (int64_t r = 0; r < j.lin->out_features(); r += g) items.emplace_back(job_index, r);
    ++job_index;
  }
  pool_->parallel_for(items.size(), [&](size_t begin, size_t end, int thread) {
    float* scratch = scratch_[size_t(thread)].data();
    for (size_t i = begin; i < end;) {
      // Merge consecutive blocks of the same projection into one call.
      size_t j = i + 1;
      while (j < end && items[j].first == items[i].first) ++j;
      const LinearJob& job = jobs.begin()[items[i].first];
      const int64_t g = job.lin->row_granularity(n);
      const int64_t r1 = std::min(job.lin->out_features(), items[j - 1].second + g);
      job.lin->forward_rows(job.x, n, job.ldx, shared_[items[i].first].data(), job.y, job.ldy, items[i].second, r1,
                            scratch);
      i = j;
    }
  });
}

void CpuEngine::attention_layer(int layer, int64_t n, int64_t first_pos) {
  const int64_t hd = config_.head_dim, kv_heads = config_.num_kv_heads;
  const int64_t group = config_.num_heads / config_.num_kv_heads;
  const int64_t tiles = (n + kAttentionTokensPerItem - 1) / kAttentionTokensPerItem;
  const float scale = float(1.0 / std::sqrt(double(hd)));
  const int64_t window = config_.sliding_window > 0 ? config_.sliding_window : 0;
  pool_->parallel_for(size_t(kv_heads * tiles), [&](size_t begin, size_t end, int thread) {
    for (size_t item = begin; item < end; ++item) {
      const int64_t h = int64_t(item) / tiles, tile = int64_t(item) % tiles;
      const int64_t t0 = tile * kAttentionTokensPerItem;
      cpu::AttentionArgs a;
      a.q = q_.data() + t0 * q_dim_ + h * group * hd;
      a.ldq = q_dim_;
      a.k = cache_.keys(layer, int(h));
      a.v = cache_.values(layer, int(h));
      a.n_tokens = std::min(kAttentionTokensPerItem, n - t0);
      a.group = group;
      a.head_dim = hd;
      a.first_pos = first_pos + t0;
      a.window = window;
      a.scale = scale;
      a.out = att_.data() + t0 * q_dim_ + h * group * hd;
      a.ldo = q_dim_;
      cpu::attention(a, scratch_[size_t(thread)].data());
    }
  });
}

void CpuEngine::forward_batch(const int32_t* ids, int64_t n, float* logits, bool all_logits) {
  const int64_t pos0 = position_;
  const int64_t hd = config_.head_dim;
  embed(ids, n);
  for (int l = 0; l < config_.num_layers; ++l) {
    const Block& b = blocks_[size_t(l)];
    norm_rows(x_.data(), b.attn_norm, xn_.data(), n);
    run_linears({{b.q.get(), xn_.data(), hidden_, q_.data(), q_dim_},
                 {b.k.get(), xn_.data(), hidden_, k_.data(), kv_dim_},
                 {b.v.get(), xn_.data(), hidden_, v_.data(), kv_dim_}},
                n);
    pool_->parallel_for(
        size_t(n),
        [&](size_t begin, size_t end, int) {
          for (size_t t = begin; t < end; ++t) {
            const int pos = int(pos0 + int64_t(t));
            cpu::rope_apply(q_.data() + t * q_dim_, config_.num_heads, hd, rope_.cos(pos), rope_.sin(pos));
            cpu::rope_apply(k_.data() + t * kv_dim_, config_.num_kv_heads, hd, rope_.cos(pos), rope_.sin(pos));
            cache_.store(l, pos, k_.data() + t * kv_dim_, v_.data() + t * kv_dim_);
          }
        },
        8);
    attention_layer(l, n, pos0);
    run_linears({{b.o.get(), att_.data(), q_dim_, tmp_.data(), hidden_}}, n);
    add_into(x_.data(), tmp_.data(), size_t(n * hidden_));

    norm_rows(x_.data(), b.mlp_norm, xn_.data(), n);
    run_linears({{b.gate.get(), xn_.data(), hidden_, gate_.data(), ffn_},
                 {b.up.get(), xn_.data(), hidden_, up_.data(), ffn_}},
                n);
    pool_->parallel_for(
        size_t(n),
        [&](size_t begin, size_t end, int) {
          for (size_t t = begin; t < end; ++t)
            cpu::swiglu(gate_.data() + t * ffn_, up_.data() + t * ffn_, gate_.data() + t * ffn_, ffn_);
        },
        8);
    run_linears({{b.down.get(), gate_.data(), ffn_, tmp_.data(), hidden_}}, n);
    add_into(x_.data(), tmp_.data(), size_t(n * hidden_));
  }
  position_ = int(pos0 + n);
  if (!logits) return;
  // Only the rows whose logits are wanted go through the final norm and the head.
  const int64_t first = all_logits ? 0 : n - 1, rows = n - first;
  norm_rows(x_.data() + first * hidden_, final_norm_, xn_.data(), rows);
  run_linears({{lm_head_.get(), xn_.data(), hidden_, logits, vocab_}}, rows);
}

}  // namespace

std::unique_ptr<Engine> create_cpu_engine(const Model& model, const EngineOptions& options) {
  return std::make_unique<CpuEngine>(model, options);
}

}  // namespace aqlm
