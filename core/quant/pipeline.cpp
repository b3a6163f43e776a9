#include "core/quant/pipeline.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <numeric>

#include "core/common/error.h"
#include "core/common/paths.h"
#include "core/common/thread_pool.h"
#include "core/eval/perplexity.h"
#include "core/jobs/cancelled.h"
#include "core/jobs/progress_event.h"
#include "core/model/model.h"
#include "core/model/safetensors.h"
#include "core/quant/aqlm_quantizer.h"
#include "core/quant/aqlm_quantizer_cuda.h"
#include "core/quant/calibration.h"
#include "core/quant/gptq.h"
#include "core/quant/pipeline_activations.h"
#include "core/quant/pipeline_block.h"
#include "core/quant/pipeline_global.h"
#include "core/quant/pipeline_checkpoint.h"
#include "core/quant/pipeline_output.h"
#include "core/quant/pipeline_xtx.h"
#include "core/quant/quant_random.h"
#include "core/quant/rtn.h"
#include "core/runtime/engine.h"
#include "core/text/tokenizer.h"

namespace aqlm {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr uint64_t kLayerSeedStream = 41, kFinetuneSeedStream = 42;
// Work units of a block for the ETA: one per layer, fine-tuning counted as this many.
constexpr double kFinetuneUnits = 4;

// Linears that share their input (and so one XTX), in the order they are quantized; each group
// sees the ones before it quantized (docs/quantization.md, "Order inside a block").
const std::vector<std::vector<BlockLinear>>& linear_groups() {
  static const std::vector<std::vector<BlockLinear>> groups = {
      {kQProj, kKProj, kVProj}, {kOProj}, {kGateProj, kUpProj}, {kDownProj}};
  return groups;
}

const std::string& linear_name(BlockLinear l) { return block_linear_names()[size_t(l)]; }

// Timing and the ETA, stamped on every event.
class Reporter {
 public:
  Reporter(ProgressSink* sink, int blocks) : sink_(sink), blocks_(blocks), start_(std::chrono::steady_clock::now()) {}
  double elapsed() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count(); }
  // Fraction of the whole run done, 0..1; the first value set is this process's starting point.
  void set_done(double fraction) {
    if (start_fraction_ < 0) start_fraction_ = fraction;
    done_ = fraction;
  }
  void emit(ProgressEvent e) {
    e.elapsed_s = elapsed();
    if (e.blocks == 0) e.blocks = blocks_;
    if (!e.eta_s && start_fraction_ >= 0 && done_ > start_fraction_ + 1e-9)
      e.eta_s = e.elapsed_s * (1 - done_) / (done_ - start_fraction_);
    if (sink_) sink_->emit(e);
  }
  void message(const std::string& text) {
    ProgressEvent e;
    e.kind = EventKind::Message;
    e.message = text;
    emit(e);
  }

 private:
  ProgressSink* sink_;
  int blocks_;
  std::chrono::steady_clock::time_point start_;
  double start_fraction_ = -1, done_ = 0;
};

// Fails before any work when the model cannot be quantized as asked.
void check_model(const Model& model, const PipelineSettings& s) {
  const ModelConfig& c = model.config;
  AQLM_CHECK(!c.aqlm, s.model, ": the model is already AQLM-quantized; quantize its original weights");
  AQLM_CHECK(model.tokenizer, s.model, ": no tokenizer, which calibration needs (for a llama2.c model pass --tokenizer tok.bin)");
  AQLM_CHECK(s.seqlen <= c.max_position_embeddings, "quantize: --seqlen ", s.seqlen, " exceeds the model's context of ",
             c.max_position_embeddings, " tokens");
  const BlockShape shape = BlockShape::from_config(c);
  if (s.method == PipelineMethod::Aqlm) {
    const int g = s.aqlm.group_size;
    for (int l = 0; l < kBlockLinearCount; ++l) {
      const int64_t in = shape.in_features(BlockLinear(l));
      if (in % g == 0) continue;
      std::string fits;
      for (int candidate : {16, 8, 4}) {
        bool divides_all = true;
        for (int k = 0; k < kBlockLinearCount; ++k) divides_all &= shape.in_features(BlockLinear(k)) % candidate == 0;
        if (divides_all && fits.empty()) fits = std::to_string(candidate);
      }
      fail(layer_prefix(0), linear_name(BlockLinear(l)), ": ", in, " input features are not a multiple of the group size ",
           g, " of ", s.aqlm.name(), "; ",
           fits.empty() ? std::string("no supported group size (4, 8, 16) divides every layer's inputs")
                        : "use a group size that divides every layer's inputs (" + fits + " does)");
    }
  }
  // NaN or Inf anywhere in the weights would poison every statistic downstream.
  std::vector<float> chunk;
  for (const std::string& name : model.weights.names()) {
    const TensorView& t = model.weights.get(name);
    if (t.dtype != DType::F32 && t.dtype != DType::F16 && t.dtype != DType::BF16 && t.dtype != DType::F64) continue;
    const size_t n = size_t(t.numel()), step = size_t(1) << 20;
    for (size_t begin = 0; begin < n; begin += step) {
      const size_t m = std::min(step, n - begin);
      chunk.resize(m);
      convert_to_f32(t.dtype, static_cast<const char*>(t.data) + begin * dtype_size(t.dtype), chunk.data(), m);
      for (size_t i = 0; i < m; ++i) {
        if (std::isfinite(chunk[i])) continue;
        const int64_t flat = int64_t(begin + i), cols = t.shape.empty() ? 1 : t.shape.back();
        fail(s.model, ": tensor ", name, " holds ", chunk[i], " at [", t.shape.size() > 1 ? str(flat / cols, ", ") : "",
             flat % cols, "]; the weights must be finite to be quantized");
      }
    }
  }
}

uint64_t layer_seed(uint64_t seed, int block, BlockLinear l) {
  return QuantRandom::derive(seed, kLayerSeedStream, uint64_t(block) * kBlockLinearCount + uint64_t(l)).next();
}

json layer_report_json(const LayerReport& r) {
  return json{{"block", r.block},       {"layer", r.layer}, {"out_features", r.out_features}, {"in_features", r.in_features},
              {"relative_error", r.relative_error}, {"bits", r.bits}, {"seconds", r.seconds}};
}

LayerReport layer_report_from_json(const json& j) {
  LayerReport r;
  r.block = j.at("block").get<int>();
  r.layer = j.at("layer").get<std::string>();
  r.out_features = j.at("out_features").get<int64_t>();
  r.in_features = j.at("in_features").get<int64_t>();
  r.relative_error = j.at("relative_error").get<double>();
  r.bits = j.at("bits").get<double>();
  r.seconds = j.at("seconds").get<double>();
  return r;
}

json block_report_json(const BlockReport& r) {
  json j{{"block", r.block}, {"train_relative_mse", r.train_relative_mse}, {"heldout_relative_mse", r.heldout_relative_mse},
         {"finetune_steps", r.finetune_steps}, {"seconds", r.seconds}};
  if (r.finetune_heldout_before) j["finetune_heldout_before"] = *r.finetune_heldout_before;
  if (r.finetune_heldout_after) j["finetune_heldout_after"] = *r.finetune_heldout_after;
  return j;
}

BlockReport block_report_from_json(const json& j) {
  BlockReport r;
  r.block = j.at("block").get<int>();
  r.train_relative_mse = j.at("train_relative_mse").get<double>();
  r.heldout_relative_mse = j.at("heldout_relative_mse").get<double>();
  r.finetune_steps = j.at("finetune_steps").get<int64_t>();
  r.seconds = j.at("seconds").get<double>();
  if (j.contains("finetune_heldout_before")) r.finetune_heldout_before = j["finetune_heldout_before"].get<double>();
  if (j.contains("finetune_heldout_after")) r.finetune_heldout_after = j["finetune_heldout_after"].get<double>();
  return r;
}

// Everything one run holds while it goes through the blocks.
class Run {
 public:
  Run(const PipelineSettings& s, const Model& model, PipelineCheckpoint& checkpoint, Reporter& reporter,
      const std::atomic<bool>* cancel)
      : s_(s),
        model_(model),
        shape_(BlockShape::from_config(model.config)),
        checkpoint_(checkpoint),
        reporter_(reporter),
        cancel_(cancel),
        pool_(ThreadPool::global()) {}

  // Makes the calibration windows and block 0's inputs (a fresh start).
  void start(CheckpointState& state);
  // Loads the inputs of the block a resumed run continues with.
  void restore(const CheckpointState& state);
  void process_block(int b, CheckpointState& state, PipelineResult& result);

 private:
  void check_cancel() const {
    if (cancel_ && cancel_->load()) throw Cancelled("cancelled");
  }
  void allocate_stores();
  void quantize_layer(int b, BlockLinear l, const BlockWeights<float>& fp, const std::vector<double>& xtx,
                      FinetuneBlock& q, LayerReport& report);
  void restore_layer(int b, BlockLinear l, FinetuneBlock& q, LayerReport& report) const;
  void finetune(int b, FinetuneBlock& q, BlockReport& report);
  void set_done(int b, double units_in_block) const {
    const double units = double(kBlockLinearCount) + (tunes() ? kFinetuneUnits : 0);
    reporter_.set_done((b + std::min(units_in_block, units) / units) / model_.config.num_layers);
  }
  bool tunes() const { return s_.method == PipelineMethod::Aqlm && s_.finetune; }

  const PipelineSettings& s_;
  const Model& model_;
  BlockShape shape_;
  PipelineCheckpoint& checkpoint_;
  Reporter& reporter_;
  const std::atomic<bool>* cancel_;
  ThreadPool& pool_;
  int64_t train_ = 0, heldout_ = 0;
  std::unique_ptr<ActivationStore> inputs_, targets_, outputs_;
};

void Run::allocate_stores() {
  const int64_t windows = train_ + heldout_;
  const size_t each = ActivationStore::bytes_for(windows, s_.seqlen, shape_.hidden);
  double budget = s_.max_ram_gb > 0 ? s_.max_ram_gb * 1e9 : INFINITY;
  std::error_code ec;
  fs::create_directories(checkpoint_.scratch_dir(), ec);
  int on_disk = 0;
  const auto make = [&](const char* name) {
    if (double(each) <= budget) {
      budget -= double(each);
      return std::make_unique<ActivationStore>(windows, s_.seqlen, shape_.hidden);
    }
    ++on_disk;
    return std::make_unique<ActivationStore>(windows, s_.seqlen, shape_.hidden, checkpoint_.scratch_dir() / name);
  };
  inputs_ = make("inputs.f16");
  targets_ = make("targets.f16");
  outputs_ = make("outputs.f16");
  reporter_.message(str("activations: 3 x ", each / 1000000.0, " MB (fp16), ", 3 - on_disk, " in memory, ", on_disk,
                        " in ", checkpoint_.scratch_dir().string()));
}

void Run::start(CheckpointState& state) {
  const std::vector<std::string> files = s_.resolved_calibration_files();
  const CalibrationSet set = make_calibration_set(*model_.tokenizer, files, s_.calibration_options());
  train_ = set.train_windows;
  heldout_ = set.heldout_windows;
  state.calibration = json{{"files", files},          {"documents", set.documents}, {"text_tokens", set.text_tokens},
                           {"train_windows", train_}, {"heldout_windows", heldout_}, {"seqlen", set.seqlen}};
  ProgressEvent e;
  e.kind = EventKind::Calibration;
  e.data = state.calibration;
  reporter_.emit(e);

  state.block = 0;
  state.layers_done.clear();
  checkpoint_.create(s_.result_settings(), state);  // clears an old checkpoint: before any scratch file
  allocate_stores();
  // Block 0's inputs: the token embeddings (as the output stores them, in fp16).
  const std::vector<float> embedding = model_.weights.to_f32("model.embed_tokens.weight");
  const int64_t hidden = shape_.hidden;
  std::vector<float> window(inputs_->window_values());
  for (int64_t w = 0; w < train_ + heldout_; ++w) {
    const int32_t* ids = w < train_ ? set.train_window(w) : set.heldout_window(w - train_);
    for (int64_t t = 0; t < s_.seqlen; ++t) {
      AQLM_CHECK(ids[t] >= 0 && ids[t] < model_.config.vocab_size, "calibration: token id ", ids[t],
                 " is outside the model's vocabulary of ", model_.config.vocab_size);
      std::copy_n(embedding.begin() + int64_t(ids[t]) * hidden, hidden, window.begin() + t * hidden);
    }
    inputs_->write(w, window.data());
  }
  inputs_->save(checkpoint_.inputs_path(0));
}

void Run::restore(const CheckpointState& state) {
  train_ = state.calibration.at("train_windows").get<int64_t>();
  heldout_ = state.calibration.at("heldout_windows").get<int64_t>();
  if (state.block >= model_.config.num_layers) return;  // only the output is left to write
  allocate_stores();
  inputs_->load(checkpoint_.inputs_path(state.block));
}

void Run::quantize_layer(int b, BlockLinear l, const BlockWeights<float>& fp, const std::vector<double>& xtx,
                         FinetuneBlock& q, LayerReport& report) {
  const auto t0 = std::chrono::steady_clock::now();
  LayerProblem p;
  p.name = layer_prefix(b) + linear_name(l);
  p.out_features = shape_.out_features(l);
  p.in_features = shape_.in_features(l);
  p.weight = fp.linear[size_t(l)];
  p.xtx = xtx;
  const auto step_event = [&](const std::string& phase, int epoch, int64_t step, int64_t steps, double loss) {
    ProgressEvent e;
    e.kind = EventKind::LayerStep;
    e.block = b;
    e.layer = linear_name(l);
    e.phase = phase;
    e.epoch = epoch;
    e.step = step;
    e.steps = steps;
    e.loss = loss;
    reporter_.emit(e);
  };
  std::vector<float> reconstruction;
  const std::string path = checkpoint_.layer_path(b, linear_name(l)).string();
  std::vector<TensorBuffer> tensors;
  if (s_.method == PipelineMethod::Aqlm) {
    AqlmOptions o;
    o.config = s_.aqlm;
    o.beam_size = s_.beam;
    o.max_epochs = s_.layer_max_epochs;
    o.relative_tolerance = s_.layer_tolerance;
    o.adam_steps = s_.layer_adam_steps;
    o.learning_rate = s_.layer_learning_rate;
    o.seed = layer_seed(s_.seed, b, l);
    o.cancel = cancel_;
    o.pool = &pool_;
    o.device = s_.device;
    AqlmResult r = quantize_aqlm(p, o, [&](const AqlmProgress& pr) {
      step_event(aqlm_phase_name(pr.phase), pr.epoch, pr.step, pr.steps, pr.relative_error);
    });
    round_to_f16(r.layer.codebooks);  // the file stores them as fp16
    round_to_f16(r.layer.scales);
    reconstruction = r.layer.dequantize();
    report.bits = r.layer.bits_per_parameter();
    tensors = aqlm_tensors(p.name, r.layer);
    q.aqlm[size_t(l)] = std::move(r.layer);
    q.dense[size_t(l)].clear();
  } else {
    DenseQuantResult r;
    if (s_.method == PipelineMethod::Gptq) {
      GptqOptions o;
      o.bits = s_.bits;
      o.group_size = s_.group_size;
      r = quantize_gptq(p, o);
    } else {
      RtnOptions o;
      o.bits = s_.bits;
      o.group_size = s_.group_size;
      r = quantize_rtn(p, o);
    }
    round_to_f16(r.weight);  // the dequantized fp16 folder holds these values
    reconstruction = r.weight;
    report.bits = r.bits_per_parameter;
    tensors.push_back(f16_tensor(p.name + ".weight", {p.out_features, p.in_features}, r.weight));
    q.dense[size_t(l)] = std::move(r.weight);
  }
  report.block = b;
  report.layer = linear_name(l);
  report.out_features = p.out_features;
  report.in_features = p.in_features;
  report.relative_error = s_.device == ComputeDevice::Cuda ? relative_error_cuda(p, reconstruction)
                                                           : p.relative_error(reconstruction);
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (s_.method != PipelineMethod::Aqlm) step_event(pipeline_method_name(s_.method), 0, 1, 1, report.relative_error);
  write_tensor_file(path, tensors, {{"report", layer_report_json(report).dump()}});
}

void Run::restore_layer(int b, BlockLinear l, FinetuneBlock& q, LayerReport& report) const {
  const fs::path path = checkpoint_.layer_path(b, linear_name(l));
  AQLM_CHECK(fs::is_regular_file(path), path.string(), ": missing, though the checkpoint lists the layer as done");
  const SafetensorsFile file(path.string());
  const std::string prefix = layer_prefix(b) + linear_name(l);
  const auto tensor = [&](const std::string& suffix) -> const TensorView& {
    const SafetensorsTensor* t = file.find(prefix + suffix);
    AQLM_CHECK(t, path.string(), ": tensor ", prefix, suffix, " is missing");
    return t->view;
  };
  const int64_t out = shape_.out_features(l), in = shape_.in_features(l);
  if (s_.method == PipelineMethod::Aqlm) {
    q.aqlm[size_t(l)] = read_aqlm_layer(tensor(".codes"), tensor(".codebooks"), tensor(".scales"), s_.aqlm, out, in,
                                        path.string());
    q.dense[size_t(l)].clear();
  } else {
    const TensorView& w = tensor(".weight");
    AQLM_CHECK(w.numel() == out * in, path.string(), ": weight has ", w.numel(), " values, expected ", out * in);
    q.dense[size_t(l)].resize(size_t(out * in));
    convert_to_f32(w.dtype, w.data, q.dense[size_t(l)].data(), q.dense[size_t(l)].size());
  }
  auto it = file.metadata().find("report");
  AQLM_CHECK(it != file.metadata().end(), path.string(), ": the layer's report is missing");
  report = layer_report_from_json(json::parse(it->second));
}

void Run::finetune(int b, FinetuneBlock& q, BlockReport& report) {
  const int64_t hidden = shape_.hidden, seqlen = s_.seqlen;
  const auto windows = [&](int64_t first, int64_t count) {
    BlockWindows w;
    w.count = count;
    w.seqlen = seqlen;
    w.hidden = hidden;
    w.load = [this, first](int64_t i, float* x, float* t) {
      inputs_->read(first + i, x);
      targets_->read(first + i, t);
    };
    return w;
  };
  BlockFinetuneOptions o;
  o.adam.learning_rate = s_.finetune_learning_rate;
  o.max_epochs = s_.finetune_epochs;
  o.batch_windows = std::min(s_.finetune_batch, train_);
  o.micro_batch_windows = std::min(micro_batch_windows(seqlen), o.batch_windows);
  o.patience = s_.finetune_patience;
  o.seed = QuantRandom::derive(s_.seed, kFinetuneSeedStream, uint64_t(b)).next();
  o.pool = &pool_;
  o.cancel = cancel_;
  o.device = s_.device;
  const int64_t total_steps = o.max_epochs * ((train_ + o.batch_windows - 1) / o.batch_windows);
  const BlockFinetuneResult r = BlockFinetuner(o).run(q, windows(0, train_), windows(train_, heldout_), [&](const BlockFinetuneProgress& p) {
    set_done(b, double(kBlockLinearCount) + kFinetuneUnits * double(p.step) / double(total_steps));
    ProgressEvent e;
    e.kind = EventKind::FinetuneStep;
    e.block = b;
    e.phase = "finetune";
    e.epoch = p.epoch;
    e.step = p.step;
    e.steps = total_steps;
    e.loss = p.train.relative_mse;
    if (p.heldout) e.heldout_loss = p.heldout->relative_mse;
    reporter_.emit(e);
  });
  if (r.cancelled) throw Cancelled("cancelled");
  // What the file will hold: fp16 codebooks, scales, norms and biases.
  for (auto& a : q.aqlm) {
    if (!a) continue;
    round_to_f16(a->codebooks);
    round_to_f16(a->scales);
  }
  round_to_f16(q.input_norm);
  round_to_f16(q.post_attention_norm);
  for (auto& bias : q.bias) round_to_f16(bias);
  report.finetune_steps = r.steps;
  if (heldout_ > 0) {
    report.finetune_heldout_before = r.initial_heldout.relative_mse;
    report.finetune_heldout_after = r.best_heldout.relative_mse;
  }
}

void Run::process_block(int b, CheckpointState& state, PipelineResult& result) {
  const auto t0 = std::chrono::steady_clock::now();
  const int L = model_.config.num_layers;
  set_done(b, double(state.layers_done.size()));
  ProgressEvent started;
  started.kind = EventKind::BlockStarted;
  started.block = b;
  if (!state.layers_done.empty()) started.message = str("resuming after ", state.layers_done.back());
  reporter_.emit(started);

  const BlockWeights<float> fp = load_block_weights(model_, b);
  FinetuneBlock q;
  q.shape = shape_;
  q.dense = fp.linear;  // replaced layer by layer
  q.bias = fp.bias;
  q.input_norm = fp.input_norm;
  q.post_attention_norm = fp.post_attention_norm;
  round_to_f16(q.input_norm);
  round_to_f16(q.post_attention_norm);
  for (auto& bias : q.bias) round_to_f16(bias);

  BlockPass pass(shape_, micro_batch_windows(s_.seqlen), pool_, cancel_, s_.device);
  const auto done = [&](BlockLinear l) {
    return std::find(state.layers_done.begin(), state.layers_done.end(), linear_name(l)) != state.layers_done.end();
  };
  std::vector<LayerReport> layer_reports;
  for (size_t g = 0; g < linear_groups().size(); ++g) {
    const std::vector<BlockLinear>& group = linear_groups()[g];
    const bool group_done = std::all_of(group.begin(), group.end(), done);
    std::vector<double> xtx;
    if (g == 0) {
      // The fp targets, needed by every block; q/k/v's XTX from the same pass.
      XtxAccumulator acc(shape_.in_features(kQProj));
      pass.run(fp, *inputs_, 0, train_, targets_.get(), group_done ? nullptr : &acc, kQProj);
      pass.run(fp, *inputs_, train_, heldout_, targets_.get());
      if (!group_done) xtx = acc.mean();
    } else if (!group_done) {
      XtxAccumulator acc(shape_.in_features(group[0]));
      pass.run(block_weights_of(pool_, q), *inputs_, 0, train_, nullptr, &acc, group[0]);
      xtx = acc.mean();
    }
    for (BlockLinear l : group) {
      LayerReport report;
      const bool restored = done(l);
      if (restored) {
        restore_layer(b, l, q, report);
      } else {
        quantize_layer(b, l, fp, xtx, q, report);
        state.layers_done.push_back(linear_name(l));
        checkpoint_.save(state);
      }
      layer_reports.push_back(report);
      set_done(b, double(layer_reports.size()));
      ProgressEvent e;
      e.kind = EventKind::LayerFinished;
      e.block = b;
      e.layer = report.layer;
      e.loss = report.relative_error;
      e.data = {{"bits", report.bits}, {"seconds", report.seconds}, {"restored", restored}};
      reporter_.emit(e);
      check_cancel();
    }
  }

  BlockReport report;
  report.block = b;
  if (tunes()) finetune(b, q, report);

  // The quantized block's outputs feed the next block; they are compared with the fp targets.
  const BlockWeights<float> qw = block_weights_of(pool_, q);
  ActivationStore* next = b + 1 < L ? outputs_.get() : nullptr;
  report.train_relative_mse = pass.run(qw, *inputs_, 0, train_, next, nullptr, kQProj, targets_.get()).relative();
  report.heldout_relative_mse =
      pass.run(qw, *inputs_, train_, heldout_, next, nullptr, kQProj, targets_.get()).relative();
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  check_cancel();

  // The finished block, as the output will store it.
  std::vector<TensorBuffer> tensors;
  const std::string prefix = layer_prefix(b);
  for (int l = 0; l < kBlockLinearCount; ++l) {
    const std::string name = prefix + linear_name(BlockLinear(l));
    if (q.aqlm[size_t(l)]) {
      for (auto& t : aqlm_tensors(name, *q.aqlm[size_t(l)])) tensors.push_back(std::move(t));
    } else {
      tensors.push_back(f16_tensor(name + ".weight", {shape_.out_features(BlockLinear(l)), shape_.in_features(BlockLinear(l))},
                                   q.dense[size_t(l)]));
    }
    if (l < 3 && shape_.attention_bias) tensors.push_back(f16_tensor(name + ".bias", {shape_.out_features(BlockLinear(l))}, q.bias[size_t(l)]));
  }
  tensors.push_back(f16_tensor(prefix + "input_layernorm.weight", {shape_.hidden}, q.input_norm));
  tensors.push_back(f16_tensor(prefix + "post_attention_layernorm.weight", {shape_.hidden}, q.post_attention_norm));
  json layers_json = json::array();
  for (const auto& r : layer_reports) layers_json.push_back(layer_report_json(r));
  write_tensor_file(checkpoint_.block_path(b), tensors,
                    {{"block_report", block_report_json(report).dump()}, {"layer_reports", layers_json.dump()}});
  if (next) next->save(checkpoint_.inputs_path(b + 1));
  state.block = b + 1;
  state.layers_done.clear();
  checkpoint_.save(state);
  checkpoint_.clean_block(b);
  std::swap(inputs_, outputs_);

  result.layers.insert(result.layers.end(), layer_reports.begin(), layer_reports.end());
  result.blocks.push_back(report);
  set_done(b + 1, 0);
  ProgressEvent e;
  e.kind = EventKind::BlockFinished;
  e.block = b;
  e.loss = report.train_relative_mse;
  if (heldout_ > 0) e.heldout_loss = report.heldout_relative_mse;
  e.data = block_report_json(report);
  reporter_.emit(e);
  ProgressEvent saved;
  saved.kind = EventKind::CheckpointSaved;
  saved.block = b;
  saved.data = {{"next_block", state.block}, {"path", checkpoint_.dir().string()}};
  reporter_.emit(saved);
}

// Reports of blocks a resumed run finished before (kept in their block files).
void read_finished_reports(const PipelineCheckpoint& checkpoint, int blocks, PipelineResult& result) {
  for (int b = 0; b < blocks; ++b) {
    const SafetensorsFile file(checkpoint.block_path(b).string());
    const auto& m = file.metadata();
    AQLM_CHECK(m.count("block_report") && m.count("layer_reports"), checkpoint.block_path(b).string(),
               ": the block's reports are missing");
    result.blocks.push_back(block_report_from_json(json::parse(m.at("block_report"))));
    for (const auto& l : json::parse(m.at("layer_reports"))) result.layers.push_back(layer_report_from_json(l));
  }
}

json studio_json(const PipelineSettings& s, const Model& source, const PipelineResult& r) {
  json layers = json::array();
  for (const auto& l : r.layers)
    layers.push_back({{"block", l.block}, {"layer", l.layer}, {"relative_error", l.relative_error}, {"bits", l.bits}});
  json blocks = json::array();
  for (const auto& b : r.blocks) {
    json j{{"block", b.block}, {"train_relative_mse", b.train_relative_mse}, {"heldout_relative_mse", b.heldout_relative_mse}};
    if (b.finetune_heldout_before) j["finetune_heldout_before"] = *b.finetune_heldout_before;
    if (b.finetune_heldout_after) j["finetune_heldout_after"] = *b.finetune_heldout_after;
    blocks.push_back(j);
  }
  json results{{"quantized_parameters", r.quantized_parameters},
               {"bits_per_parameter_predicted", r.predicted_bits},
               {"bits_per_parameter_measured", r.measured_bits},
               {"weight_bytes_predicted", r.predicted_weight_bytes},
               {"layers", layers},
               {"blocks", blocks}};
  if (r.global_finetune)
    results["global_finetune"] = {{"heldout_kl_before", r.global_finetune->heldout_kl_before},
                                  {"heldout_kl_after", r.global_finetune->heldout_kl_after},
                                  {"steps", r.global_finetune->steps},
                                  {"best_step", r.global_finetune->best_step}};
  if (r.evaluation)
    results["evaluation"] = {{"text", r.evaluation->text},        {"seqlen", r.evaluation->seqlen},
                             {"windows", r.evaluation->windows},  {"tokens", r.evaluation->tokens},
                             {"nll", r.evaluation->nll},          {"perplexity", r.evaluation->perplexity}};
  // The writer adds format, method, config, storage and bits. No times, hosts or output paths
  // here: a resumed run writes the same bytes as an uninterrupted one.
  return json{{"source_model", {{"path", s.model}, {"format", model_format_name(source.format)},
                                {"architecture", architecture_name(source.config.arch)},
                                {"parameters", source.config.num_parameters()}}},
              {"settings", s.result_settings()},
              {"results", results}};
}

}  // namespace

PipelineResult run_pipeline(const PipelineSettings& s, ProgressSink* sink, const std::atomic<bool>* cancel) {
  s.validate();
  fs::path out = fs::path(s.out_dir).lexically_normal();
  if (out.filename().empty()) out = out.parent_path();
  AQLM_CHECK(!fs::exists(out) || s.overwrite, out.string(),
             ": already exists; choose another output folder or pass --overwrite");

  LoadOptions load;
  load.tokenizer_path = s.tokenizer;
  std::unique_ptr<Model> model = load_model(s.model, load);
  const int L = model->config.num_layers;
  Reporter reporter(sink, L);
  {
    ProgressEvent e;
    e.kind = EventKind::RunStarted;
    e.data = s.to_json();
    reporter.emit(e);
  }
  check_model(*model, s);

  PipelineResult result;
  result.out_dir = out.string();
  result.method = pipeline_method_name(s.method);
  result.config = method_config_name(s);
  const BitsPlan plan = plan_bits(model->config, s);
  result.quantized_parameters = plan.quantized_parameters;
  result.predicted_bits = plan.bits_per_parameter;
  result.predicted_weight_bytes = plan.weight_bytes;
  {
    ProgressEvent e;
    e.kind = EventKind::Bits;
    e.data = {{"method", result.method},
              {"config", result.config},
              {"bits_per_parameter", plan.bits_per_parameter},
              {"quantized_parameters", plan.quantized_parameters},
              {"weight_bytes", plan.weight_bytes}};
    reporter.emit(e);
  }

  PipelineCheckpoint checkpoint(s.resolved_checkpoint_dir());
  CheckpointState state;
  Run run(s, *model, checkpoint, reporter, cancel);
  if (checkpoint.exists() && s.resume) {
    state = checkpoint.open(s.result_settings());
    result.resumed = true;
    reporter.message(str("resuming from ", checkpoint.dir().string(), " at block ", state.block, " after ",
                         state.layers_done.size(), " of its layers"));
    read_finished_reports(checkpoint, state.block, result);
    run.restore(state);
  } else {
    AQLM_CHECK(!checkpoint.exists() || s.overwrite, checkpoint.dir().string(),
               ": a checkpoint of an earlier run is there; pass --resume to continue it or --overwrite to start over");
    if (s.resume) reporter.message("no checkpoint to resume from; starting from the beginning");
    run.start(state);
  }

  try {
    for (int b = state.block; b < L; ++b) run.process_block(b, state, result);
  } catch (const Cancelled&) {
    throw;
  } catch (const Error& e) {
    // The quantizer reports a set cancel flag as an ordinary error.
    if (cancel && cancel->load()) throw Cancelled("cancelled");
    throw;
  }

  std::unique_ptr<Model> output = assemble_output_model(*model, checkpoint, s);
  if (s.method == PipelineMethod::Aqlm && s.global_finetune_epochs > 0)
    result.global_finetune =
        run_global_finetune(s, *model, *output, [&](ProgressEvent& e) { reporter.emit(e); }, cancel);
  result.measured_bits = measured_bits(*output, s);
  if (!s.eval_text.empty()) {
    const std::string text = read_text_file(s.eval_text);
    AQLM_CHECK(!text.empty(), s.eval_text, ": the evaluation text is empty");
    EngineOptions eo;
    eo.context_length = int(s.eval_seqlen > 0 ? s.eval_seqlen : s.seqlen);
    auto engine = create_engine(*output, eo);
    PerplexityOptions po;
    po.seqlen = eo.context_length;
    po.cancel = cancel;
    const PerplexityResult p = evaluate_perplexity(*engine, *output->tokenizer, text, po);
    if (p.cancelled) throw Cancelled("cancelled");
    result.evaluation = EvaluationReport{s.eval_text, p.seqlen, p.windows, p.tokens, p.nll, p.ppl, p.seconds};
    ProgressEvent e;
    e.kind = EventKind::Evaluation;
    e.data = {{"text", s.eval_text}, {"seqlen", p.seqlen},  {"windows", p.windows}, {"tokens", p.tokens},
              {"nll", p.nll},        {"perplexity", p.ppl}, {"seconds", p.seconds}};
    reporter.emit(e);
  }

  write_output_folder(*output, studio_json(s, *model, result), out, s);
  result.output_bytes = folder_bytes(out);
  {
    ProgressEvent e;
    e.kind = EventKind::OutputWritten;
    e.data = {{"path", out.string()}, {"bytes", result.output_bytes}, {"bits_per_parameter", result.measured_bits}};
    reporter.emit(e);
  }
  output.reset();  // its weights map the checkpoint's block files
  if (!s.keep_checkpoint) checkpoint.remove();
  result.seconds = reporter.elapsed();
  ProgressEvent finished;
  finished.kind = EventKind::RunFinished;
  finished.eta_s = 0;
  finished.data = {{"seconds", result.seconds}, {"bits_per_parameter", result.measured_bits}, {"bytes", result.output_bytes}};
  if (result.evaluation) finished.data["perplexity"] = result.evaluation->perplexity;
  reporter.emit(finished);
  return result;
}

}  // namespace aqlm
