// The wizard's rough run estimate against runs measured on an H100 (docs/benchmarks.md,
// 2026-11-23): the GPU time of SmolLM2-135M 2x8g8 (144 x 512 tokens, 134 s) and of one
// Llama-2-7B-shaped block (144 x 4096 tokens, 151 s, 33.8 GB of GPU memory). The model is
// "rough" in the wizard; these bounds (a factor 1.5 on time, 25% on memory) would catch a
// wrong unit or a lost term, which move the figures by orders of magnitude.
#include <QTest>

#include "app/studio/budget.h"
#include "core/model/model_config.h"
#include "core/quant/pipeline.h"

using namespace aqlm;
using namespace aqlm::studio;

namespace {

ModelConfig llama_shape(int hidden, int inter, int layers, int heads, int kv_heads) {
  ModelConfig c;
  c.hidden_size = hidden;
  c.intermediate_size = inter;
  c.num_layers = layers;
  c.num_heads = heads;
  c.num_kv_heads = kv_heads;
  c.head_dim = hidden / heads;
  c.vocab_size = 32000;
  return c;
}

}  // namespace

class StudioEstimateTest : public QObject {
  Q_OBJECT
 private Q_SLOTS:
  void gpuTimeAndMemoryFollowTheMeasuredRuns() {
    PipelineSettings s;  // 2x8g8, 128 + 16 windows, fine-tuning on: the settings of both runs
    const RunEstimate smol = estimate_run(llama_shape(576, 1536, 30, 9, 3), 540'000'000, s, 16);
    QVERIFY2(smol.gpu_seconds > 134 / 1.5 && smol.gpu_seconds < 134 * 1.5, qPrintable(QString::number(smol.gpu_seconds)));
    s.seqlen = 4096;
    const RunEstimate block = estimate_run(llama_shape(4096, 11008, 1, 32, 32), 810'000'000, s, 16);
    QVERIFY2(block.gpu_seconds > 151 / 1.5 && block.gpu_seconds < 151 * 1.5, qPrintable(QString::number(block.gpu_seconds)));
    QVERIFY2(block.gpu_peak_bytes > 33.8e9 * 0.75 && block.gpu_peak_bytes < 33.8e9 * 1.25,
             qPrintable(QString::number(double(block.gpu_peak_bytes))));
    // The CPU is far slower than the GPU on the same work, and its peak includes the model.
    QVERIFY(smol.seconds > 10 * smol.gpu_seconds);
    QVERIFY(smol.peak_bytes > 540'000'000);
  }
};

QTEST_MAIN(StudioEstimateTest)
#include "studio_estimate_test.moc"
