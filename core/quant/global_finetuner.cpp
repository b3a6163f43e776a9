#include "core/quant/global_finetuner.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>
#include <random>
#include <set>
#include <span>

#include "core/common/error.h"
#include "core/common/half.h"
#include "core/common/thread_pool.h"
#include "core/format/aqlm_reader.h"
#include "core/jobs/cancelled.h"
#include "core/model/model.h"
#include "core/quant/block_aqlm.h"
#include "core/quant/pipeline_block.h"
#include "core/quant/pipeline_checkpoint.h"

namespace aqlm {

namespace {

constexpr const char* kEmbedding = "model.embed_tokens.weight";
constexpr const char* kFinalNorm = "model.norm.weight";
constexpr const char* kHead = "lm_head.weight";

// Rows of `embedding` for `count` windows of `seqlen` tokens (window ids index `tokens`).
void embed(const std::vector<float>& embedding, int64_t vocab, int64_t hidden, const std::vector<int32_t>& tokens,
           const int64_t* window_ids, int64_t count, int64_t seqlen, float* x) {
  for (int64_t w = 0; w < count; ++w)
    for (int64_t t = 0; t < seqlen; ++t) {
      const int32_t id = tokens[size_t(window_ids[w] * seqlen + t)];
      AQLM_CHECK(id >= 0 && id < vocab, "global fine-tuning: token id ", id, " is outside the vocabulary of ", vocab);
      const float* row = embedding.data() + size_t(id) * size_t(hidden);
      std::copy(row, row + hidden, x + size_t((w * seqlen + t) * hidden));
    }
}

std::vector<float> head_of(const Model& model) {
  return model.weights.has(kHead) ? model.weights.to_f32(kHead) : model.weights.to_f32(kEmbedding);
}

// Rounds `values` to fp16 in place (what the file will hold); Error naming the tensor when a
// value is beyond fp16's range.
void round_for_file(const std::string& name, std::vector<float>& values) {
  for (float v : values)
    AQLM_CHECK(std::isfinite(f16_to_f32(f32_to_f16(v))), "global fine-tuning: ", name, " holds ", v,
               ", which fp16 cannot store");
  round_to_f16(values);
}

void replace_tensor(Model& model, TensorBuffer t) {
  model.weights.remove(t.name);
  model.weights.add_owned(t.name, t.dtype, std::move(t.shape), std::move(t.bytes));
}

// A 1-D tensor (norm, bias), rounded to fp16 in place and stored as F16.
void store_f16(Model& model, const std::string& name, std::vector<float>& values) {
  round_for_file(name, values);
  replace_tensor(model, f16_tensor(name, {int64_t(values.size())}, values));
}

}  // namespace

FinetuneModel finetune_model_of(const Model& model) {
  const ModelConfig& c = model.config;
  AQLM_CHECK(c.aqlm.has_value(), model.source_path,
             " is not an AQLM model: global fine-tuning tunes a model that aqlm-cli quantize --method aqlm wrote");
  const std::vector<std::string> quantized = quantized_prefixes(model.weights, c);
  AQLM_CHECK(!quantized.empty(), model.source_path, " holds no AQLM projection");
  const std::set<std::string> is_quantized(quantized.begin(), quantized.end());
  FinetuneModel m;
  m.config = c;
  const BlockShape shape = BlockShape::from_config(c);
  const auto& names = block_linear_names();
  m.blocks.resize(size_t(c.num_layers));
  for (int b = 0; b < c.num_layers; ++b) {
    FinetuneBlock& block = m.blocks[size_t(b)];
    block.shape = shape;
    const std::string prefix = layer_prefix(b);
    for (int l = 0; l < kBlockLinearCount; ++l) {
      const std::string name = prefix + names[size_t(l)];
      if (is_quantized.count(name))
        block.aqlm[size_t(l)] = read_quantized_layer(model, name);
      else
        block.dense[size_t(l)] = model.weights.to_f32(name + ".weight");
    }
    if (c.attention_bias)
      for (int i = 0; i < 3; ++i) block.bias[size_t(i)] = model.weights.to_f32(prefix + names[size_t(i)] + ".bias");
    block.input_norm = model.weights.to_f32(prefix + "input_layernorm.weight");
    block.post_attention_norm = model.weights.to_f32(prefix + "post_attention_layernorm.weight");
    block.validate();
  }
  m.embedding = model.weights.to_f32(kEmbedding);
  if (model.weights.has(kHead)) m.head = model.weights.to_f32(kHead);
  m.final_norm = model.weights.to_f32(kFinalNorm);
  const size_t table = size_t(c.vocab_size) * size_t(c.hidden_size);
  AQLM_CHECK(m.embedding.size() == table && (m.head.empty() || m.head.size() == table) &&
                 m.final_norm.size() == size_t(c.hidden_size),
             model.source_path, ": the embedding, head or final norm does not fit the config");
  return m;
}

void store_finetuned(FinetuneModel& tuned, Model& model) {
  const auto& names = block_linear_names();
  for (size_t b = 0; b < tuned.blocks.size(); ++b) {
    FinetuneBlock& block = tuned.blocks[b];
    const std::string prefix = layer_prefix(int(b));
    for (int l = 0; l < kBlockLinearCount; ++l) {
      if (!block.aqlm[size_t(l)]) continue;
      QuantizedLayer& q = *block.aqlm[size_t(l)];
      const std::string name = prefix + names[size_t(l)];
      round_for_file(name + ".codebooks", q.codebooks);
      round_for_file(name + ".scales", q.scales);
      for (TensorBuffer& t : aqlm_tensors(name, q)) replace_tensor(model, std::move(t));  // codes as they were
    }
    if (tuned.config.attention_bias)
      for (int i = 0; i < 3; ++i) store_f16(model, prefix + names[size_t(i)] + ".bias", block.bias[size_t(i)]);
    store_f16(model, prefix + "input_layernorm.weight", block.input_norm);
    store_f16(model, prefix + "post_attention_layernorm.weight", block.post_attention_norm);
  }
  store_f16(model, kFinalNorm, tuned.final_norm);
}

void check_teacher_fits(const ModelConfig& t, const ModelConfig& s) {
  AQLM_CHECK(!t.aqlm.has_value(), "the teacher is itself AQLM-compressed: give the original (uncompressed) model");
  const auto same = [](const char* what, int64_t a, int64_t b) {
    AQLM_CHECK(a == b, "the teacher does not fit the compressed model: ", what, " ", a, " vs ", b);
  };
  AQLM_CHECK(t.arch == s.arch, "the teacher does not fit the compressed model: a different architecture");
  same("vocabulary size", t.vocab_size, s.vocab_size);
  same("hidden size", t.hidden_size, s.hidden_size);
  same("intermediate size", t.intermediate_size, s.intermediate_size);
  same("layers", t.num_layers, s.num_layers);
  same("attention heads", t.num_heads, s.num_heads);
  same("key/value heads", t.num_kv_heads, s.num_kv_heads);
  same("head size", t.head_dim, s.head_dim);
}

TeacherOutputs run_teacher(const Model& teacher, const std::vector<int32_t>& tokens, int64_t windows, int64_t seqlen,
                           ThreadPool& pool, const std::atomic<bool>* cancel) {
  const ModelConfig& c = teacher.config;
  AQLM_CHECK(!c.aqlm.has_value(), "the teacher is itself AQLM-compressed: give the original (uncompressed) model");
  AQLM_CHECK(int64_t(tokens.size()) == windows * seqlen, "global fine-tuning: ", tokens.size(), " tokens for ", windows,
             " windows of ", seqlen);
  TeacherOutputs out;
  out.windows = windows;
  out.seqlen = seqlen;
  out.hidden = c.hidden_size;
  out.vocab = c.vocab_size;
  const size_t per_window = size_t(seqlen * out.hidden);
  std::vector<float> x(size_t(windows) * per_window), y(x.size());
  {
    const std::vector<float> embedding = teacher.weights.to_f32(kEmbedding);
    std::vector<int64_t> ids(static_cast<size_t>(windows));
    std::iota(ids.begin(), ids.end(), int64_t(0));
    embed(embedding, out.vocab, out.hidden, tokens, ids.data(), windows, seqlen, x.data());
  }
  const BlockShape shape = BlockShape::from_config(c);
  TrainableBlock<float> block(shape, &pool);
  const int64_t micro = std::min(windows, micro_batch_windows(seqlen));
  for (int b = 0; b < c.num_layers; ++b) {
    const BlockWeights<float> w = load_block_weights(teacher, b);  // one block's fp weights at a time
    for (int64_t first = 0; first < windows; first += micro) {
      if (cancel && cancel->load()) throw Cancelled("stopped while the teacher ran");
      const int64_t m = std::min(micro, windows - first);
      block.forward(w, x.data() + size_t(first) * per_window, m, seqlen, y.data() + size_t(first) * per_window);
    }
    x.swap(y);
  }
  out.normed.resize(x.size());
  std::vector<float> inv_rms(size_t(windows * seqlen));
  block_ops::rmsnorm_forward(pool, x.data(), windows * seqlen, out.hidden, teacher.weights.to_f32(kFinalNorm).data(),
                             c.rms_norm_eps, out.normed.data(), inv_rms.data());
  out.head = head_of(teacher);
  return out;
}

int64_t global_finetune_memory_bytes(const ModelConfig& c, int64_t windows, int64_t seqlen, int64_t micro) {
  const BlockShape shape = BlockShape::from_config(c);
  int64_t projection_weights = 0;
  for (int l = 0; l < kBlockLinearCount; ++l)
    projection_weights += shape.out_features(BlockLinear(l)) * shape.in_features(BlockLinear(l));
  projection_weights *= c.num_layers;
  const int64_t table = int64_t(c.vocab_size) * c.hidden_size;
  const int64_t tokens = micro * seqlen;
  const int64_t floats = 2 * projection_weights                               // weights + gradients
                         + (c.tie_word_embeddings ? 2 : 3) * table             // embedding, head(s)
                         + windows * seqlen * c.hidden_size                     // teacher states
                         + c.num_layers * tokens * int64_t(shape.activation_floats_per_token())
                         + 2 * tokens * c.vocab_size + 4 * tokens * c.hidden_size;  // logits, buffers
  // The buffers above, plus 30% for what they leave out (the allocator's slack, Eigen's
  // product scratch, Adam's moments, the best parameters' copy): on SmolLM2-135M this put the
  // three measured runs (docs/benchmarks.md) within -2%..+10% of their peak RSS above the loaded models.
  return int64_t(double(floats) * 4.0 * 1.3);
}

GlobalKd::GlobalKd(const FinetuneModel& model, int64_t micro_batch_windows, int64_t seqlen, ThreadPool& pool)
    : model_(model), micro_(micro_batch_windows), seqlen_(seqlen), pool_(pool) {
  AQLM_CHECK(micro_ >= 1 && seqlen_ >= 1, "global fine-tuning: micro-batch of ", micro_, " windows of ", seqlen_, " tokens");
  blocks_.reserve(model.blocks.size());
  for (const FinetuneBlock& b : model.blocks) blocks_.emplace_back(b.shape, &pool);
  refresh();
}

void GlobalKd::refresh() {
  weights_.resize(model_.blocks.size());
  for (size_t b = 0; b < model_.blocks.size(); ++b) refresh_block_weights(pool_, model_.blocks[b], weights_[b]);
}

double GlobalKd::run(const std::vector<int32_t>& tokens, const TeacherOutputs& teacher,
                     const std::vector<int64_t>& window_ids, bool backward, std::vector<BlockGradients<float>>* grads,
                     std::vector<float>* final_norm_grad) {
  const int64_t hidden = model_.config.hidden_size, vocab = model_.config.vocab_size;
  AQLM_CHECK(teacher.seqlen == seqlen_ && teacher.hidden == hidden && teacher.vocab == vocab,
             "global fine-tuning: the teacher outputs do not fit the model");
  const size_t per_window = size_t(seqlen_ * hidden);
  const int64_t total_tokens = int64_t(window_ids.size()) * seqlen_;
  const double gradient_scale = 1.0 / double(total_tokens);  // d(mean KL)/d(logits) per token
  std::vector<double> token_kl(size_t(micro_ * seqlen_));
  double kl_sum = 0;
  for (size_t first = 0; first < window_ids.size(); first += size_t(micro_)) {
    const int64_t m = std::min<int64_t>(micro_, int64_t(window_ids.size() - first));
    const int64_t n = m * seqlen_;
    x_.resize(size_t(m) * per_window);
    final_hidden_.resize(x_.size());
    embed(model_.embedding, vocab, hidden, tokens, window_ids.data() + first, m, seqlen_, x_.data());
    // Forward through every block; each keeps its own activations for backward.
    for (size_t b = 0; b < blocks_.size(); ++b) {
      blocks_[b].forward(weights_[b], x_.data(), m, seqlen_, final_hidden_.data());
      if (b + 1 < blocks_.size()) x_.swap(final_hidden_);
    }
    if (blocks_.empty()) final_hidden_ = x_;
    normed_.resize(final_hidden_.size());
    inv_rms_.resize(size_t(n));
    block_ops::rmsnorm_forward(pool_, final_hidden_.data(), n, hidden, model_.final_norm.data(),
                               model_.config.rms_norm_eps, normed_.data(), inv_rms_.data());
    logits_.resize(size_t(n * vocab));
    teacher_logits_.resize(logits_.size());
    block_ops::linear_forward(pool_, normed_.data(), n, hidden, model_.head_weights(), static_cast<const float*>(nullptr),
                              vocab, logits_.data());
    d_normed_.resize(size_t(m) * per_window);  // the teacher's normed rows of these windows, then the gradient
    for (int64_t w = 0; w < m; ++w) {
      const int64_t id = window_ids[first + size_t(w)];
      std::copy(teacher.normed.begin() + ptrdiff_t(size_t(id) * per_window),
                teacher.normed.begin() + ptrdiff_t(size_t(id + 1) * per_window), d_normed_.begin() + ptrdiff_t(size_t(w) * per_window));
    }
    block_ops::linear_forward(pool_, d_normed_.data(), n, hidden, teacher.head.data(), static_cast<const float*>(nullptr),
                              vocab, teacher_logits_.data());
    // KL per token, in double; the student's logits become d(mean KL)/d(logits).
    pool_.parallel_for(size_t(n), [&](size_t r0, size_t r1, int) {
      for (size_t r = r0; r < r1; ++r) {
        float* s = logits_.data() + r * size_t(vocab);
        const float* u = teacher_logits_.data() + r * size_t(vocab);
        double s_max = s[0], u_max = u[0];
        for (int64_t j = 1; j < vocab; ++j) {
          s_max = std::max(s_max, double(s[j]));
          u_max = std::max(u_max, double(u[j]));
        }
        double s_sum = 0, u_sum = 0;
        for (int64_t j = 0; j < vocab; ++j) {
          s_sum += std::exp(double(s[j]) - s_max);
          u_sum += std::exp(double(u[j]) - u_max);
        }
        const double s_lse = s_max + std::log(s_sum), u_lse = u_max + std::log(u_sum);
        double kl = 0;
        for (int64_t j = 0; j < vocab; ++j) {
          const double log_pu = double(u[j]) - u_lse, log_ps = double(s[j]) - s_lse;
          const double pu = std::exp(log_pu);
          kl += pu * (log_pu - log_ps);
          s[j] = float((std::exp(log_ps) - pu) * gradient_scale);
        }
        token_kl[r] = kl;
      }
    }, 16);
    for (int64_t r = 0; r < n; ++r) kl_sum += token_kl[size_t(r)];
    if (!backward) continue;
    block_ops::linear_backward_input(pool_, logits_.data(), n, vocab, model_.head_weights(), hidden, d_normed_.data(),
                                     false);
    // d(final hidden) into x_ (free now), then back through the blocks in place.
    block_ops::rmsnorm_backward(pool_, final_hidden_.data(), inv_rms_.data(), n, hidden, model_.final_norm.data(),
                                d_normed_.data(), x_.data(), false, final_norm_grad->data());
    for (size_t b = blocks_.size(); b-- > 0;) blocks_[b].backward(weights_[b], x_.data(), (*grads)[b], x_.data());
  }
  return kl_sum / double(total_tokens);
}

GlobalFinetuner::GlobalFinetuner(const GlobalFinetuneOptions& o) : options_(o) {
  [[maybe_unused]] const Adam adam_options_check(o.adam);
  AQLM_CHECK(o.max_epochs >= 1, "global fine-tuning: epochs ", o.max_epochs, " must be at least 1");
  AQLM_CHECK(o.batch_windows >= 1, "global fine-tuning: batch of ", o.batch_windows, " windows");
  AQLM_CHECK(o.micro_batch_windows >= 1 && o.micro_batch_windows <= o.batch_windows, "global fine-tuning: micro-batch of ",
             o.micro_batch_windows, " windows must be between 1 and the batch (", o.batch_windows, " windows)");
  AQLM_CHECK(o.patience >= 1, "global fine-tuning: patience ", o.patience, " must be at least 1");
}

GlobalFinetuneResult GlobalFinetuner::run(FinetuneModel& model, const std::vector<int32_t>& train_tokens,
                                          const TeacherOutputs& train_teacher, const std::vector<int32_t>& heldout_tokens,
                                          const TeacherOutputs& heldout_teacher,
                                          const std::function<void(const GlobalFinetuneProgress&)>& progress) {
  const auto start = std::chrono::steady_clock::now();
  const auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
  const GlobalFinetuneOptions& o = options_;
  ThreadPool& pool = o.pool ? *o.pool : ThreadPool::global();
  const int64_t seqlen = train_teacher.seqlen;
  AQLM_CHECK(train_teacher.windows > 0, "global fine-tuning: no training windows");
  AQLM_CHECK(int64_t(train_tokens.size()) == train_teacher.windows * seqlen &&
                 int64_t(heldout_tokens.size()) == heldout_teacher.windows * seqlen &&
                 (heldout_teacher.windows == 0 || heldout_teacher.seqlen == seqlen),
             "global fine-tuning: the token windows do not match the teacher's outputs");
  for (const FinetuneBlock& b : model.blocks) b.validate();

  // Parameters and their gradients: Adam updates the model's own vectors in place.
  std::vector<BlockGradients<float>> grads(model.blocks.size());
  std::vector<std::array<std::vector<float>, kBlockLinearCount>> d_codebooks(model.blocks.size()),
      d_scales(model.blocks.size());
  std::vector<float> d_final_norm(model.final_norm.size(), 0.0f);
  Adam adam(o.adam);
  std::vector<std::span<float>> trainable;
  const auto add = [&](std::vector<float>& value, const std::vector<float>& gradient) {
    adam.add(value, gradient);
    trainable.emplace_back(value);
  };
  for (size_t b = 0; b < model.blocks.size(); ++b) {
    FinetuneBlock& block = model.blocks[b];
    std::array<bool, kBlockLinearCount> want{};
    for (int l = 0; l < kBlockLinearCount; ++l)
      want[size_t(l)] = block.aqlm[size_t(l)].has_value() && (o.train_codebooks || o.train_scales);
    grads[b].allocate(block.shape, want);
    for (int l = 0; l < kBlockLinearCount; ++l) {
      if (!block.aqlm[size_t(l)]) continue;
      QuantizedLayer& q = *block.aqlm[size_t(l)];
      d_codebooks[b][size_t(l)].assign(q.codebooks.size(), 0.0f);
      d_scales[b][size_t(l)].assign(q.scales.size(), 0.0f);
      if (o.train_codebooks) add(q.codebooks, d_codebooks[b][size_t(l)]);
      if (o.train_scales) add(q.scales, d_scales[b][size_t(l)]);
    }
    if (o.train_norms) {
      add(block.input_norm, grads[b].input_norm);
      add(block.post_attention_norm, grads[b].post_attention_norm);
    }
    if (o.train_biases && block.shape.attention_bias)
      for (int i = 0; i < 3; ++i) add(block.bias[size_t(i)], grads[b].bias[size_t(i)]);
  }
  if (o.train_norms) add(model.final_norm, d_final_norm);
  AQLM_CHECK(!trainable.empty(), "global fine-tuning: nothing to train");

  GlobalKd kd(model, o.micro_batch_windows, seqlen, pool);
  GlobalFinetuneResult result;
  std::vector<std::vector<float>> best;
  HeldoutTracker tracker(o.patience);
  bool stop = false;
  std::vector<int64_t> heldout_ids(size_t(heldout_teacher.windows));
  std::iota(heldout_ids.begin(), heldout_ids.end(), int64_t(0));
  // The first evaluation is the baseline; a lower one becomes the best (its parameters copied);
  // `patience` evaluations without improvement stop the run (block fine-tuning's rule).
  const auto evaluate_heldout = [&](int64_t step) {
    const double kl = kd.run(heldout_tokens, heldout_teacher, heldout_ids, false, nullptr, nullptr);
    AQLM_CHECK(std::isfinite(kl), "global fine-tuning: the held-out KL became ", kl, " after step ", step);
    if (step == 0) result.initial_heldout_kl = kl;
    if (tracker.record(step, kl)) {
      result.best_heldout_kl = kl;
      result.best_step = step;
      best.resize(trainable.size());
      for (size_t i = 0; i < trainable.size(); ++i) best[i].assign(trainable[i].begin(), trainable[i].end());
    }
    stop = stop || tracker.stop();
    result.stopped_early = tracker.stop();
    return kl;
  };
  if (heldout_teacher.windows > 0) evaluate_heldout(0);

  std::mt19937_64 rng(o.seed);
  std::vector<int64_t> order(size_t(train_teacher.windows));
  std::iota(order.begin(), order.end(), int64_t(0));
  const int64_t steps_per_epoch = (train_teacher.windows + o.batch_windows - 1) / o.batch_windows;
  for (int epoch = 0; epoch < o.max_epochs && !stop; ++epoch) {
    std::shuffle(order.begin(), order.end(), rng);
    for (int64_t s = 0; s < steps_per_epoch && !stop; ++s) {
      const int64_t begin = s * o.batch_windows, end = std::min(train_teacher.windows, begin + o.batch_windows);
      const std::vector<int64_t> batch(order.begin() + begin, order.begin() + end);
      for (auto& g : grads) g.zero();
      std::fill(d_final_norm.begin(), d_final_norm.end(), 0.0f);
      const double kl = kd.run(train_tokens, train_teacher, batch, true, &grads, &d_final_norm);
      AQLM_CHECK(std::isfinite(kl), "global fine-tuning: the loss became ", kl, " at step ", result.steps + 1,
                 " (learning rate ", o.adam.learning_rate, " too high?)");
      for (size_t b = 0; b < model.blocks.size(); ++b)
        for (int l = 0; l < kBlockLinearCount; ++l) {
          if (grads[b].linear[size_t(l)].empty()) continue;
          std::fill(d_codebooks[b][size_t(l)].begin(), d_codebooks[b][size_t(l)].end(), 0.0f);
          std::fill(d_scales[b][size_t(l)].begin(), d_scales[b][size_t(l)].end(), 0.0f);
          aqlm_backward(pool, aqlm_view(*model.blocks[b].aqlm[size_t(l)]), grads[b].linear[size_t(l)].data(),
                        d_codebooks[b][size_t(l)].data(), d_scales[b][size_t(l)].data());
        }
      adam.step();
      kd.refresh();
      ++result.steps;

      GlobalFinetuneProgress p;
      p.epoch = epoch;
      p.step = result.steps;
      p.steps_per_epoch = steps_per_epoch;
      p.train_kl = kl;
      if (heldout_teacher.windows > 0 && s == steps_per_epoch - 1) p.heldout_kl = evaluate_heldout(result.steps);
      p.best_heldout_kl = result.best_heldout_kl;
      p.seconds = elapsed();
      if (progress) progress(p);
      if (o.cancel && o.cancel->load()) stop = result.cancelled = true;
    }
    ++result.epochs_run;
  }
  if (heldout_teacher.windows > 0)
    for (size_t i = 0; i < trainable.size(); ++i) std::copy(best[i].begin(), best[i].end(), trainable[i].begin());
  result.seconds = elapsed();
  return result;
}

}  // namespace aqlm
