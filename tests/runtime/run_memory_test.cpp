// estimate_run_memory: the closed formula for SmolLM2-135M's shapes, worked out by hand below,
// and the CPU KV cache term against the bytes the real KvCache reserves.
#include <gtest/gtest.h>

#include "core/common/error.h"
#include "core/runtime/kv_cache.h"
#include "core/runtime/run_memory.h"

namespace aqlm {
namespace {

// SmolLM2-135M-Instruct (shared/README.md): 30 layers, hidden 576, 9 heads / 3 KV heads of 64
// (q_dim 576, kv_dim 192), FFN 1536, vocabulary 49152.
ModelConfig smollm2_shapes() {
  ModelConfig c;
  c.num_layers = 30;
  c.hidden_size = 576;
  c.num_heads = 9;
  c.num_kv_heads = 3;
  c.head_dim = 64;
  c.intermediate_size = 1536;
  c.vocab_size = 49152;
  return c;
}

TEST(RunMemory, CpuFormulaForSmolLM2) {
  const RunMemoryEstimate m = estimate_run_memory(smollm2_shapes(), 1000, 4096, Device::Cpu);
  // KV: 2 (k, v) x 30 layers x 4096 tokens x 192 x 4 bytes = 188,743,680.
  EXPECT_EQ(m.kv_cache, 188'743'680);
  // Activations: 512 tokens x (3x576 + 2x576 + 2x192 + 2x1536 + 49152 = 55,488 floats) x 4.
  EXPECT_EQ(m.activations, 113'639'424);
  EXPECT_EQ(m.weights, 1000);
  EXPECT_EQ(m.total(), 1000 + 188'743'680 + 113'639'424);
}

TEST(RunMemory, CudaFormulaForSmolLM2) {
  const RunMemoryEstimate m = estimate_run_memory(smollm2_shapes(), 0, 4096, Device::Cuda);
  // fp16 KV: half the CPU's.
  EXPECT_EQ(m.kv_cache, 94'371'840);
  // 512 x 576 x 4 (fp32 stream) = 1,179,648; 512 x (576 + 960 + 576 + 576 + 3072 + 1536 = 7,296)
  // x 2 = 7,471,104; 64 logit rows x 49152 x (4 + 2) = 18,874,368.
  EXPECT_EQ(m.activations, 1'179'648 + 7'471'104 + 18'874'368);
}

TEST(RunMemory, KvTermIsWhatTheCpuCacheReserves) {
  const ModelConfig c = smollm2_shapes();
  const KvCache cache(c.num_layers, c.num_kv_heads, c.head_dim, 256);
  EXPECT_EQ(estimate_run_memory(c, 0, 256, Device::Cpu).kv_cache, std::int64_t(cache.bytes()));
}

TEST(RunMemory, SmallerBatchAndContextScaleTheirTerms) {
  const ModelConfig c = smollm2_shapes();
  const RunMemoryEstimate full = estimate_run_memory(c, 0, 4096, Device::Cpu, 512);
  const RunMemoryEstimate small = estimate_run_memory(c, 0, 1024, Device::Cpu, 128);
  EXPECT_EQ(small.kv_cache * 4, full.kv_cache);
  EXPECT_EQ(small.activations * 4, full.activations);
}

TEST(RunMemory, RejectsAnEmptyContextOrBatch) {
  try {
    estimate_run_memory(smollm2_shapes(), 0, 0, Device::Cpu);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "memory estimate: the context must be at least one token (got 0)");
  }
  EXPECT_THROW(estimate_run_memory(smollm2_shapes(), 0, 16, Device::Cpu, 0), Error);
}

}  // namespace
}  // namespace aqlm
