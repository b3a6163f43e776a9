// Times block fine-tuning on a block of a given shape (default SmolLM2-135M: hidden 576,
// 9 / 3 heads of 64, FFN 1536) with random weights and AQLM linears: forward, backward (all
// seven weight gradients), the codebook/scale gradients, the dequantization, and whole
// BlockFinetuner steps. Prints one JSON line.
//
//   bench_block_finetune [--hidden 576] [--heads 9] [--kv-heads 3] [--head-dim 64] [--ffn 1536]
//                        [--windows 8] [--seqlen 512] [--micro 8] [--config 2x8g8]
//                        [--repeat 3] [--threads N]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <random>
#include <string>

#include "core/common/error.h"
#include "core/common/thread_pool.h"
#include "core/quant/block_aqlm.h"
#include "core/quant/block_finetuner.h"

using namespace aqlm;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

std::vector<float> random_floats(size_t n, std::mt19937_64& rng, double stddev) {
  std::normal_distribution<float> d(0.0f, float(stddev));
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    BlockShape shape;
    shape.hidden = 576;
    shape.num_heads = 9;
    shape.num_kv_heads = 3;
    shape.head_dim = 64;
    shape.intermediate = 1536;
    int64_t windows = 8, seqlen = 512, micro = 8;
    int repeat = 3;
    AqlmConfig config = AqlmConfig::parse("2x8g8");
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      auto next = [&]() -> std::string {
        AQLM_CHECK(i + 1 < argc, "option ", a, " needs a value");
        return argv[++i];
      };
      if (a == "--hidden") shape.hidden = std::stoll(next());
      else if (a == "--heads") shape.num_heads = std::stoll(next());
      else if (a == "--kv-heads") shape.num_kv_heads = std::stoll(next());
      else if (a == "--head-dim") shape.head_dim = std::stoll(next());
      else if (a == "--ffn") shape.intermediate = std::stoll(next());
      else if (a == "--windows") windows = std::stoll(next());
      else if (a == "--seqlen") seqlen = std::stoll(next());
      else if (a == "--micro") micro = std::stoll(next());
      else if (a == "--config") config = AqlmConfig::parse(next());
      else if (a == "--repeat") repeat = std::stoi(next());
      else if (a == "--threads") ThreadPool::set_default_threads(std::stoi(next()));
      else aqlm::fail("unknown option ", a);
    }
    shape.rope_inv_freq = rope_inverse_frequencies(shape.head_dim, 100000.0, RopeScaling{});
    ThreadPool& pool = ThreadPool::global();
    std::mt19937_64 rng(0);

    FinetuneBlock block;
    block.shape = shape;
    for (int l = 0; l < kBlockLinearCount; ++l) {
      QuantizedLayer q;
      q.out_features = shape.out_features(BlockLinear(l));
      q.in_features = shape.in_features(BlockLinear(l));
      q.config = config;
      q.codes.resize(size_t(q.out_features * q.num_groups() * config.num_codebooks));
      std::uniform_int_distribution<int> code(0, int(config.codebook_size() - 1));
      for (auto& c : q.codes) c = uint16_t(code(rng));
      q.codebooks = random_floats(size_t(config.num_codebooks * config.codebook_size() * config.group_size), rng, 0.5);
      q.scales.assign(size_t(q.out_features), float(1.0 / std::sqrt(double(q.in_features))));
      block.aqlm[size_t(l)] = std::move(q);
    }
    block.input_norm.assign(size_t(shape.hidden), 1.0f);
    block.post_attention_norm.assign(size_t(shape.hidden), 1.0f);

    const size_t values = size_t(windows * seqlen * shape.hidden);
    const std::vector<float> x = random_floats(values, rng, 1.0), target = random_floats(values, rng, 1.0);

    // The pieces of one step, on `micro` windows at a time.
    BlockWeights<float> w;
    for (int l = 0; l < kBlockLinearCount; ++l)
      w.linear[size_t(l)].resize(size_t(shape.out_features(BlockLinear(l)) * shape.in_features(BlockLinear(l))));
    w.input_norm = block.input_norm;
    w.post_attention_norm = block.post_attention_norm;
    const auto tensors = [&](int l) {
      const QuantizedLayer& q = *block.aqlm[size_t(l)];
      return AqlmTensors<float>{q.out_features, q.in_features, q.config.num_codebooks, q.config.nbits,
                                q.config.group_size, q.codes.data(), q.codebooks.data(), q.scales.data()};
    };
    TrainableBlock<float> model(shape, &pool);
    BlockGradients<float> grads;
    grads.allocate(shape, {true, true, true, true, true, true, true});
    std::vector<float> y(size_t(micro * seqlen * shape.hidden));
    double t_dequant = 1e30, t_forward = 1e30, t_backward = 1e30, t_aqlm_backward = 1e30, cpu_forward_backward = 1e30;
    for (int r = 0; r < repeat; ++r) {
      auto t = std::chrono::steady_clock::now();
      for (int l = 0; l < kBlockLinearCount; ++l) aqlm_dequantize(pool, tensors(l), w.linear[size_t(l)].data());
      t_dequant = std::min(t_dequant, seconds_since(t));
      double forward = 0, backward = 0;
      const std::clock_t cpu_start = std::clock();  // process CPU time: meaningful on a loaded machine
      grads.zero();
      for (int64_t b = 0; b < windows; b += micro) {
        const int64_t m = std::min(micro, windows - b);
        t = std::chrono::steady_clock::now();
        model.forward(w, x.data() + size_t(b * seqlen * shape.hidden), m, seqlen, y.data());
        forward += seconds_since(t);
        t = std::chrono::steady_clock::now();
        model.backward(w, y.data(), grads, nullptr);
        backward += seconds_since(t);
      }
      cpu_forward_backward = std::min(cpu_forward_backward, double(std::clock() - cpu_start) / CLOCKS_PER_SEC);
      t_forward = std::min(t_forward, forward);
      t_backward = std::min(t_backward, backward);
      t = std::chrono::steady_clock::now();
      for (int l = 0; l < kBlockLinearCount; ++l) {
        std::vector<float> d_books(block.aqlm[size_t(l)]->codebooks.size()), d_scales(block.aqlm[size_t(l)]->scales.size());
        aqlm_backward(pool, tensors(l), grads.linear[size_t(l)].data(), d_books.data(), d_scales.data());
      }
      t_aqlm_backward = std::min(t_aqlm_backward, seconds_since(t));
    }

    // Whole fine-tuner steps: `repeat` epochs of one step over all windows, no held-out set.
    BlockFinetuneOptions o;
    o.max_epochs = repeat;
    o.batch_windows = windows;
    o.micro_batch_windows = micro;
    double t_step = 0;
    const BlockFinetuneResult result = BlockFinetuner(o).run(
        block, BlockWindows::in_memory(x.data(), target.data(), windows, seqlen, shape.hidden), BlockWindows{},
        [&](const BlockFinetuneProgress& p) {
          static double last = 0;
          if (p.step > 1) t_step = t_step == 0 ? p.seconds - last : std::min(t_step, p.seconds - last);
          last = p.seconds;
        });
    const double flops = 2.0 * 3.0 * double(windows * seqlen) *
                         double(shape.hidden * (2 * shape.q_dim() + 2 * shape.kv_dim()) + 3 * shape.hidden * shape.intermediate);
    std::printf(
        "{\"threads\": %d, \"hidden\": %lld, \"heads\": %lld, \"kv_heads\": %lld, \"ffn\": %lld, \"windows\": %lld, "
        "\"seqlen\": %lld, \"micro\": %lld, \"config\": \"%s\", \"forward_s\": %.3f, \"backward_s\": %.3f, "
        "\"forward_backward_s\": %.3f, \"forward_backward_cpu_s\": %.3f, \"linear_gflops_per_s\": %.1f, \"aqlm_backward_s\": %.3f, \"dequantize_s\": %.3f, "
        "\"finetune_step_s\": %.3f, \"activation_mib\": %.1f, \"steps\": %lld}\n",
        pool.size(), (long long)shape.hidden, (long long)shape.num_heads, (long long)shape.num_kv_heads,
        (long long)shape.intermediate, (long long)windows, (long long)seqlen, (long long)micro, config.name().c_str(),
        t_forward, t_backward, t_forward + t_backward, cpu_forward_backward, flops / (t_forward + t_backward) / 1e9, t_aqlm_backward,
        t_dequant, t_step, double(shape.activation_floats_per_token()) * 4.0 * double(micro * seqlen) / 1048576.0,
        (long long)result.steps);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_block_finetune: %s\n", e.what());
    return 1;
  }
}
