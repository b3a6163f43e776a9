// Times the layer quantizers on one layer: a synthetic structured layer (or a W/XTX
// .safetensors) quantized with AQLM, GPTQ and RTN; prints the AQLM progress and a JSON line
// per method. Used for docs/benchmarks.md (quant section).
//
//   bench_quant_layer --out 4096 --in 4096 --config 1x16g8 --epochs 2 [--steps 100]
//                     [--beam 0] [--kmeans-iters 20] [--kmeans-ppc 0] [--lr 1e-4] [--seed 0]
//                     [--problem FILE] [--save-problem FILE] [--threads N] [--baselines] [--device cuda]
// With --device cuda a small layer is quantized first, untimed, so the GPU's start-up (context,
// cuBLAS) stays out of the figures, as it does for the reference implementation's.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>

#include "core/common/error.h"
#include "core/common/thread_pool.h"
#include "core/quant/aqlm_quantizer.h"
#include "core/quant/gptq.h"
#include "core/quant/layer_problem.h"
#include "core/quant/rtn.h"
#include "core/quant/synthetic_layer.h"

using namespace aqlm;

int main(int argc, char** argv) {
  try {
    SyntheticLayerOptions so;
    so.out_features = 4096;
    so.in_features = 4096;
    AqlmOptions ao;
    ao.config = AqlmConfig::parse("1x16g8");
    ao.max_epochs = 2;
    ao.relative_tolerance = 0;
    std::string problem_path, save_path;
    bool baselines = false, quiet = false;
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      auto next = [&]() -> std::string {
        AQLM_CHECK(i + 1 < argc, "option ", a, " needs a value");
        return argv[++i];
      };
      if (a == "--out") so.out_features = std::stoll(next());
      else if (a == "--in") so.in_features = std::stoll(next());
      else if (a == "--tokens") so.tokens = std::stoll(next());
      else if (a == "--config") ao.config = AqlmConfig::parse(next());
      else if (a == "--epochs") ao.max_epochs = std::stoi(next());
      else if (a == "--tolerance") ao.relative_tolerance = std::stod(next());
      else if (a == "--steps") ao.adam_steps = std::stoi(next());
      else if (a == "--beam") ao.beam_size = std::stoi(next());
      else if (a == "--lr") ao.learning_rate = std::stod(next());
      else if (a == "--kmeans-iters") ao.kmeans_iterations = std::stoi(next());
      else if (a == "--kmeans-ppc") ao.kmeans_points_per_centroid = std::stoll(next());
      else if (a == "--seed") ao.seed = so.seed = std::stoull(next());
      else if (a == "--problem") problem_path = next();
      else if (a == "--save-problem") save_path = next();
      else if (a == "--threads") ThreadPool::set_default_threads(std::stoi(next()));
      else if (a == "--baselines") baselines = true;
      else if (a == "--quiet") quiet = true;
      else if (a == "--device") ao.device = parse_compute_device(next());
      else aqlm::fail("unknown option ", a);
    }
    auto t0 = std::chrono::steady_clock::now();
    const LayerProblem problem = problem_path.empty() ? make_synthetic_layer(so) : load_layer_problem(problem_path);
    const double make_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::fprintf(stderr, "problem %s [%lld x %lld] ready in %.1f s, %d threads\n", problem.name.c_str(),
                 (long long)problem.out_features, (long long)problem.in_features, make_s, ThreadPool::global().size());
    if (!save_path.empty()) save_layer_problem(problem, save_path);

    if (baselines) {
      for (int bits : {2, 3}) {
        RtnOptions ro;
        ro.bits = bits;
        ro.group_size = 128;
        const DenseQuantResult r = quantize_rtn(problem, ro);
        std::printf("{\"method\": \"rtn\", \"bits\": %d, \"group\": 128, \"bits_per_parameter\": %.4f, \"relative_error\": %.6f}\n",
                    bits, r.bits_per_parameter, problem.relative_error(r.weight));
        GptqOptions go;
        go.bits = bits;
        go.group_size = 128;
        go.act_order = true;
        t0 = std::chrono::steady_clock::now();
        const DenseQuantResult q = quantize_gptq(problem, go);
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        std::printf("{\"method\": \"gptq\", \"bits\": %d, \"group\": 128, \"act_order\": true, \"bits_per_parameter\": %.4f, \"relative_error\": %.6f, \"seconds\": %.2f}\n",
                    bits, q.bits_per_parameter, problem.relative_error(q.weight), s);
      }
    }
    if (ao.max_epochs < 0) return 0;
    if (ao.device == ComputeDevice::Cuda) {  // warm-up, untimed
      SyntheticLayerOptions small;
      small.out_features = 64;
      small.in_features = 128;
      AqlmOptions warm = ao;
      warm.max_epochs = 1;
      warm.adam_steps = 1;
      quantize_aqlm(make_synthetic_layer(small), warm);
    }
    const AqlmResult r = quantize_aqlm(problem, ao, [&](const AqlmProgress& p) {
      if (quiet && !(p.phase == AqlmPhase::BeamSearch && p.step == p.steps) && p.phase != AqlmPhase::Initialization &&
          !(p.phase == AqlmPhase::CodebookUpdate && (p.step == 0 || p.step == p.steps)))
        return;
      if (p.phase == AqlmPhase::BeamSearch && p.step != p.steps && p.step % 64 != 0) return;
      std::fprintf(stderr, "%7.1fs %-5s epoch %d step %4d/%d  rel.err %.6f\n", p.seconds, aqlm_phase_name(p.phase),
                   p.epoch, p.step, p.steps, p.relative_error);
    });
    std::printf("{\"method\": \"aqlm\", \"device\": \"%s\", \"adam_steps\": %d, \"config\": \"%s\", \"bits_per_parameter\": %.4f, \"init_seconds\": %.3f, "
                "\"init_relative_error\": %.7g, \"epochs\": [",
                compute_device_name(ao.device), ao.adam_steps, ao.config.name().c_str(), r.layer.bits_per_parameter(),
                r.init_seconds, r.initial_relative_error);
    for (size_t e = 0; e < r.epochs.size(); ++e)
      std::printf("%s{\"adam_s\": %.3f, \"beam_s\": %.3f, \"after_adam\": %.7g, \"after_beam\": %.7g}", e ? ", " : "",
                  r.epochs[e].adam_seconds, r.epochs[e].beam_seconds, r.epochs[e].relative_error_after_adam,
                  r.epochs[e].relative_error);
    std::printf("], \"relative_error\": %.7g, \"seconds\": %.3f}\n", r.relative_error, r.seconds);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
