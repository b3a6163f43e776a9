// Block fine-tuning on a real block: SmolLM2-135M-Instruct layer L, calibration text from C4.
//   1. tokenizes the text into windows, runs them through the fp blocks 0..L-1 (the
//      TrainableBlock forward), records block L's fp outputs and each linear's XTX;
//   2. quantizes block L's seven linears with AQLM (quantize_aqlm, the "quant" room's);
//   3. measures the quantized block's held-out relative MSE, fine-tunes it, measures again.
// Prints the progress and one JSON line.
//
//   bench_block_finetune_smollm2 [--model GGUF] [--text C4.txt] [--layer 5] [--config 2x8g8]
//       [--train 32] [--heldout 8] [--seqlen 256] [--epochs 1] [--ft-epochs 10] [--lr 1e-4]
//       [--batch 8] [--micro 4] [--threads N]
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>

#include <Eigen/Core>

#include "core/common/error.h"
#include "core/common/paths.h"
#include "core/common/thread_pool.h"
#include "core/model/model.h"
#include "core/quant/aqlm_quantizer.h"
#include "core/quant/block_finetuner.h"
#include "core/text/tokenizer.h"

using namespace aqlm;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

BlockWeights<float> fp_block(const Model& m, int layer) {
  BlockWeights<float> w;
  const std::string p = layer_prefix(layer);
  const auto& names = block_linear_names();
  for (int l = 0; l < kBlockLinearCount; ++l) w.linear[size_t(l)] = m.weights.to_f32(p + names[size_t(l)] + ".weight");
  if (m.config.attention_bias)
    for (int i = 0; i < 3; ++i) w.bias[size_t(i)] = m.weights.to_f32(p + names[size_t(i)] + ".bias");
  w.input_norm = m.weights.to_f32(p + "input_layernorm.weight");
  w.post_attention_norm = m.weights.to_f32(p + "post_attention_layernorm.weight");
  return w;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    std::string model_path = (models_cache_dir() / "SmolLM2-135M-Instruct.Q4_1.gguf").string();
    std::string text_path;
    if (auto shared = shared_dir()) text_path = (*shared / "data" / "c4-validation-2k.txt").string();
    int layer = 5, quant_epochs = 1;
    int64_t n_train = 32, n_heldout = 8, seqlen = 256;
    BlockFinetuneOptions fo;
    fo.max_epochs = 10;
    fo.batch_windows = 8;
    fo.micro_batch_windows = 4;
    AqlmOptions ao;
    ao.config = AqlmConfig::parse("2x8g8");
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      auto next = [&]() -> std::string {
        AQLM_CHECK(i + 1 < argc, "option ", a, " needs a value");
        return argv[++i];
      };
      if (a == "--model") model_path = next();
      else if (a == "--text") text_path = next();
      else if (a == "--layer") layer = std::stoi(next());
      else if (a == "--config") ao.config = AqlmConfig::parse(next());
      else if (a == "--train") n_train = std::stoll(next());
      else if (a == "--heldout") n_heldout = std::stoll(next());
      else if (a == "--seqlen") seqlen = std::stoll(next());
      else if (a == "--epochs") quant_epochs = std::stoi(next());
      else if (a == "--ft-epochs") fo.max_epochs = std::stoi(next());
      else if (a == "--lr") fo.adam.learning_rate = std::stod(next());
      else if (a == "--batch") fo.batch_windows = std::stoll(next());
      else if (a == "--micro") fo.micro_batch_windows = std::stoll(next());
      else if (a == "--threads") ThreadPool::set_default_threads(std::stoi(next()));
      else aqlm::fail("unknown option ", a);
    }
    AQLM_CHECK(!text_path.empty(), "no calibration text: pass --text (or set AQLM_SHARED_DIR)");
    const auto start = std::chrono::steady_clock::now();
    const auto model = load_model(model_path);
    const ModelConfig& cfg = model->config;
    AQLM_CHECK(layer >= 0 && layer < cfg.num_layers, "--layer ", layer, " is not a layer of ", model_path);
    const BlockShape shape = BlockShape::from_config(cfg);
    const int64_t H = shape.hidden, windows = n_train + n_heldout;

    // Token windows -> embeddings -> fp blocks 0..layer-1 -> block inputs; block `layer` -> targets.
    const std::vector<int32_t> ids = model->tokenizer->encode(read_text_file(text_path), false);
    AQLM_CHECK(int64_t(ids.size()) >= windows * seqlen, text_path, ": ", ids.size(), " tokens, need ", windows * seqlen);
    const std::vector<float> embed = model->weights.to_f32("model.embed_tokens.weight");
    std::vector<float> x(size_t(windows * seqlen * H)), y(x.size());
    for (int64_t t = 0; t < windows * seqlen; ++t)
      std::copy_n(embed.begin() + int64_t(ids[size_t(t)]) * H, H, x.begin() + t * H);
    TrainableBlock<float> runner(shape);
    for (int l = 0; l < layer; ++l) {
      const BlockWeights<float> w = fp_block(*model, l);
      for (int64_t b = 0; b < windows; b += 4) {
        const int64_t m = std::min<int64_t>(4, windows - b);
        runner.forward(w, x.data() + b * seqlen * H, m, seqlen, y.data());
        std::copy_n(y.begin(), m * seqlen * H, x.begin() + b * seqlen * H);
      }
    }
    const BlockWeights<float> fp = fp_block(*model, layer);
    std::array<std::vector<double>, kBlockLinearCount> xtx;
    for (int l = 0; l < kBlockLinearCount; ++l) {
      const int64_t in = shape.in_features(BlockLinear(l));
      xtx[size_t(l)].assign(size_t(in * in), 0.0);
    }
    for (int64_t b = 0; b < windows; b += 4) {
      const int64_t m = std::min<int64_t>(4, windows - b);
      runner.forward(fp, x.data() + b * seqlen * H, m, seqlen, y.data() + b * seqlen * H);
      if (b >= n_train) continue;  // XTX from the training windows only
      for (int l : {int(kQProj), int(kOProj), int(kGateProj), int(kDownProj)}) {
        const int64_t in = shape.in_features(BlockLinear(l));
        const float* a = runner.linear_input(BlockLinear(l));
        // XTX += A^T A in double (the accumulation the paper does in float64).
        const Eigen::MatrixXd A =
            Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(a, runner.tokens(), in)
                .cast<double>();
        Eigen::Map<Eigen::MatrixXd>(xtx[size_t(l)].data(), in, in).noalias() += A.transpose() * A;
      }
    }
    xtx[kKProj] = xtx[kVProj] = xtx[kQProj];
    xtx[kUpProj] = xtx[kGateProj];
    std::fprintf(stderr, "calibration activations ready (%.1f s)\n", seconds_since(start));

    // Quantize the seven linears.
    FinetuneBlock block;
    block.shape = shape;
    block.bias = fp.bias;
    block.input_norm = fp.input_norm;
    block.post_attention_norm = fp.post_attention_norm;
    ao.max_epochs = quant_epochs;
    for (int l = 0; l < kBlockLinearCount; ++l) {
      LayerProblem p;
      p.name = layer_prefix(layer) + block_linear_names()[size_t(l)];
      p.out_features = shape.out_features(BlockLinear(l));
      p.in_features = shape.in_features(BlockLinear(l));
      p.weight = fp.linear[size_t(l)];
      p.xtx = xtx[size_t(l)];
      for (double& v : p.xtx) v /= double(n_train * seqlen);
      const AqlmResult r = quantize_aqlm(p, ao);
      std::fprintf(stderr, "%s: relative output error %.4f (%.1f s)\n", p.name.c_str(), r.relative_error, r.seconds);
      block.aqlm[size_t(l)] = r.layer;
    }

    const size_t per_window = size_t(seqlen * H);
    const BlockWindows train = BlockWindows::in_memory(x.data(), y.data(), n_train, seqlen, H);
    const BlockWindows heldout = BlockWindows::in_memory(x.data() + n_train * per_window, y.data() + n_train * per_window,
                                                         n_heldout, seqlen, H);
    const BlockMse before = evaluate_block_mse(block, heldout, fo.micro_batch_windows);
    const auto ft_start = std::chrono::steady_clock::now();
    const BlockFinetuneResult r = BlockFinetuner(fo).run(block, train, heldout, [](const BlockFinetuneProgress& p) {
      std::fprintf(stderr, "epoch %d step %lld: train %.5f%s\n", p.epoch, (long long)p.step, p.train.relative_mse,
                   p.heldout ? str("  held-out ", p.heldout->relative_mse).c_str() : "");
    });
    const double ft_seconds = seconds_since(ft_start);
    std::printf(
        "{\"layer\": %d, \"config\": \"%s\", \"train_windows\": %lld, \"heldout_windows\": %lld, \"seqlen\": %lld, "
        "\"threads\": %d, \"heldout_relative_mse_before\": %.6f, \"heldout_relative_mse_after\": %.6f, "
        "\"best_step\": %lld, \"steps\": %lld, \"epochs\": %d, \"stopped_early\": %s, \"finetune_seconds\": %.1f, "
        "\"total_seconds\": %.1f}\n",
        layer, ao.config.name().c_str(), (long long)n_train, (long long)n_heldout, (long long)seqlen,
        ThreadPool::global().size(), before.relative_mse, r.best_heldout.relative_mse, (long long)r.best_step,
        (long long)r.steps, r.epochs_run, r.stopped_early ? "true" : "false", ft_seconds, seconds_since(start));
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_block_finetune_smollm2: %s\n", e.what());
    return 1;
  }
}
