// Times global fine-tuning's forward + backward (GlobalKd::run) on a SmolLM2-135M-shaped model
// (30 blocks of hidden 576, 9 / 3 heads of 64, FFN 1536, vocabulary 49,152, tied head) with
// random AQLM 2x8g8 linears and random teacher outputs: seconds per 512-token window for each
// micro-batch size asked for. Prints one JSON line per micro-batch size.
//
//   bench_global_finetune [--layers 30] [--windows 8] [--seqlen 512] [--micro 1,4] [--threads N]
#include <chrono>
#include <cstdio>
#include <random>
#include <sstream>
#include <string>

#include "core/common/error.h"
#include "core/common/thread_pool.h"
#include "core/quant/global_finetuner.h"

using namespace aqlm;

namespace {

std::vector<float> random_floats(size_t n, std::mt19937_64& rng, double mean, double stddev) {
  std::normal_distribution<float> d{float(mean), float(stddev)};
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

FinetuneModel smollm2_shaped(int layers, std::mt19937_64& rng) {
  FinetuneModel m;
  ModelConfig& c = m.config;
  c.arch = Architecture::Llama;
  c.hidden_size = 576;
  c.intermediate_size = 1536;
  c.num_layers = layers;
  c.num_heads = 9;
  c.num_kv_heads = 3;
  c.head_dim = 64;
  c.vocab_size = 49152;
  c.rope_theta = 100000;
  c.tie_word_embeddings = true;
  const BlockShape shape = BlockShape::from_config(c);
  const AqlmConfig config = AqlmConfig::parse("2x8g8");
  m.blocks.resize(size_t(layers));
  for (FinetuneBlock& b : m.blocks) {
    b.shape = shape;
    for (int l = 0; l < kBlockLinearCount; ++l) {
      QuantizedLayer q;
      q.out_features = shape.out_features(BlockLinear(l));
      q.in_features = shape.in_features(BlockLinear(l));
      q.config = config;
      std::uniform_int_distribution<int> code(0, 255);
      q.codes.resize(size_t(q.out_features * q.num_groups() * 2));
      for (auto& x : q.codes) x = uint16_t(code(rng));
      q.codebooks = random_floats(size_t(2 * 256 * 8), rng, 0.0, 0.5);
      q.scales = random_floats(size_t(q.out_features), rng, 0.03, 0.003);
      b.aqlm[size_t(l)] = std::move(q);
    }
    b.input_norm = random_floats(576, rng, 1.0, 0.05);
    b.post_attention_norm = random_floats(576, rng, 1.0, 0.05);
  }
  m.embedding = random_floats(size_t(49152) * 576, rng, 0.0, 0.05);
  m.final_norm = random_floats(576, rng, 1.0, 0.05);
  return m;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    int layers = 30, threads = 0;
    int64_t windows = 8, seqlen = 512;
    std::vector<int64_t> micros = {1, 4};
    for (int i = 1; i + 1 < argc; i += 2) {
      const std::string a = argv[i], v = argv[i + 1];
      if (a == "--layers") layers = std::stoi(v);
      else if (a == "--windows") windows = std::stoll(v);
      else if (a == "--seqlen") seqlen = std::stoll(v);
      else if (a == "--threads") threads = std::stoi(v);
      else if (a == "--micro") {
        micros.clear();
        std::stringstream list(v);
        for (std::string item; std::getline(list, item, ',');) micros.push_back(std::stoll(item));
      } else {
        fail("unknown option ", a);
      }
    }
    if (threads > 0) ThreadPool::set_default_threads(threads);
    ThreadPool& pool = ThreadPool::global();
    std::mt19937_64 rng(0);
    const FinetuneModel model = smollm2_shaped(layers, rng);
    std::vector<int32_t> tokens(static_cast<size_t>(windows * seqlen));
    std::uniform_int_distribution<int32_t> id(0, 49151);
    for (auto& t : tokens) t = id(rng);
    TeacherOutputs teacher;
    teacher.windows = windows;
    teacher.seqlen = seqlen;
    teacher.hidden = 576;
    teacher.vocab = 49152;
    teacher.normed = random_floats(size_t(windows * seqlen * 576), rng, 0.0, 1.0);
    teacher.head = model.embedding;
    std::vector<int64_t> ids(static_cast<size_t>(windows));
    for (int64_t i = 0; i < windows; ++i) ids[size_t(i)] = i;
    for (int64_t micro : micros) {
      GlobalKd kd(model, micro, seqlen, pool);
      std::vector<BlockGradients<float>> grads(model.blocks.size());
      std::array<bool, kBlockLinearCount> all{};
      all.fill(true);
      for (size_t b = 0; b < grads.size(); ++b) grads[b].allocate(model.blocks[b].shape, all);
      std::vector<float> d_norm(576, 0.0f);
      const auto t0 = std::chrono::steady_clock::now();
      const double kl = kd.run(tokens, teacher, ids, true, &grads, &d_norm);
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::printf("{\"layers\":%d,\"threads\":%d,\"seqlen\":%lld,\"windows\":%lld,\"micro_batch\":%lld,"
                  "\"seconds_per_window\":%.3f,\"kl\":%.4f}\n",
                  layers, pool.size(), static_cast<long long>(seqlen), static_cast<long long>(windows),
                  static_cast<long long>(micro), s / double(windows), kl);
      std::fflush(stdout);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_global_finetune: %s\n", e.what());
    return 1;
  }
  return 0;
}
