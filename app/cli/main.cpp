// aqlm-cli: the headless face of AQLM Studio. One file per subcommand; this one dispatches
// and turns every engine error into one line on stderr and a non-zero exit.
#include <cstdio>
#include <exception>

#include <CLI/CLI.hpp>

#include "app/cli/cli_common.h"
#include "core/common/error.h"
#include "kernels/cpu/cpu_features.h"

int main(int argc, char** argv) {
  CLI::App app{"AQLM Studio command line: inspect, run, evaluate, convert and compress local language models"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "aqlm-cli 0.1.0");
  aqlm::cli::register_info(app);
  aqlm::cli::register_generate(app);
  aqlm::cli::register_chat(app);
  aqlm::cli::register_eval(app);
  aqlm::cli::register_convert(app);
  aqlm::cli::register_quantize(app);
  aqlm::cli::register_quantize_layer(app);
  aqlm::cli::register_finetune(app);

  try {
    const auto& cpu = aqlm::cpu_features();
    if (!cpu.avx2 || !cpu.fma || !cpu.f16c) aqlm::fail("this CPU lacks AVX2/FMA/F16C, which this build needs (x86-64-v3)");
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const aqlm::Error& e) {
    std::fprintf(stderr, "aqlm-cli: error: %s\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "aqlm-cli: error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "aqlm-cli: internal error: %s\n", e.what());
    return 3;
  }
  return 0;
}
