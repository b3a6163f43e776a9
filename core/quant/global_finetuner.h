#pragma once
// Global fine-tuning (REFERENCE.md section 4, the P step of PV-Tuning): after the block-by-block
// pipeline, train the continuous parameters of the whole compressed model (codebooks, scales,
// every RMSNorm weight, q/k/v biases; codes frozen) so that its next-token distributions match
// the original model's. Loss: KL(teacher || student) per token, averaged over the tokens of a
// batch of calibration windows. Block fine-tuning only matches each block's outputs one at a
// time; this step lets later blocks correct the errors of earlier ones.
//
// The teacher runs once, block by block (one block's fp weights resident), and its final
// normed hidden states are kept (seqlen * hidden floats per window); its logits are recomputed
// from them for each micro-batch, so nothing of vocabulary size is stored per window.
// The student runs forward through every block (each keeping its activations for one
// micro-batch), then backward from the KL gradient (softmax(student) - softmax(teacher)).
// Embeddings and the head stay frozen. CPU only; results do not depend on the thread count.
#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/model/model_config.h"
#include "core/quant/adam.h"
#include "core/quant/block_finetuner.h"

namespace aqlm {

struct Model;
class ThreadPool;

// The student in trainable form.
struct FinetuneModel {
  ModelConfig config;
  std::vector<FinetuneBlock> blocks;
  std::vector<float> embedding;   // [vocab, hidden], frozen
  std::vector<float> head;        // [vocab, hidden], frozen; empty when the embedding is the head (tied)
  std::vector<float> final_norm;  // [hidden], trained
  const float* head_weights() const { return head.empty() ? embedding.data() : head.data(); }
};

// Reads an AQLM model: its AQLM projections become trainable (codes frozen), a projection it
// keeps dense stays frozen. Error when the model holds no AQLM projection.
FinetuneModel finetune_model_of(const Model& model);

// Rounds the tuned codebooks, scales, norms and biases to fp16 (as the file stores them, so
// what is measured afterwards is what is saved) and writes them into `model` as F16 tensors,
// replacing the old ones; the codes stay. save_aqlm_folder(model, {}, ...) then writes the
// tuned model. Error naming a tensor whose value fp16 cannot hold.
void store_finetuned(FinetuneModel& tuned, Model& model);

// Errors (one line) when `teacher` cannot teach `student`: a different architecture, vocabulary,
// hidden size, head layout or number of layers.
void check_teacher_fits(const ModelConfig& teacher, const ModelConfig& student);

// The teacher's final normed hidden states of `windows` token windows ([windows, seqlen] ids),
// [windows, seqlen, hidden], and its head. `teacher` is any dense model load_model() reads.
struct TeacherOutputs {
  int64_t windows = 0, seqlen = 0, hidden = 0, vocab = 0;
  std::vector<float> normed;  // [windows, seqlen, hidden]
  std::vector<float> head;    // [vocab, hidden]
};
TeacherOutputs run_teacher(const Model& teacher, const std::vector<int32_t>& tokens, int64_t windows, int64_t seqlen,
                           ThreadPool& pool, const std::atomic<bool>* cancel = nullptr);

// Bytes a global fine-tuning run holds, counted from its buffers: the dequantized weights and
// their gradients (8 bytes per projection weight), Adam's two moments of the codebooks, scales
// and norms, the student's embedding (and untied head) and the teacher's head, the teacher's
// normed states of `windows` windows, and one micro-batch's activations in every block plus its
// logits (student and teacher), with 30% for the allocator and scratch (fitted to measured runs).
// The loaded models are not included.
int64_t global_finetune_memory_bytes(const ModelConfig& config, int64_t windows, int64_t seqlen,
                                     int64_t micro_batch_windows);

struct GlobalFinetuneOptions {
  // The published PV-Tuning recipe uses lr 3e-4 with betas (0.9, 0.95) on Llama-2-7B; on
  // stories260K 1x8g4, 1e-4 and 3e-4 gave the same held-out KL after 3 epochs (see the test).
  AdamOptions adam{1e-4, 0.9, 0.95, 1e-8};
  int max_epochs = 3;
  int64_t batch_windows = 8;        // windows per Adam step
  int64_t micro_batch_windows = 1;  // windows per forward/backward: memory grows with it
  int patience = 2;                 // held-out evaluations (one per epoch) without improvement before stopping
  bool train_codebooks = true, train_scales = true, train_norms = true, train_biases = true;
  uint64_t seed = 0;                // the order of the training windows
  ThreadPool* pool = nullptr;       // default ThreadPool::global()
  const std::atomic<bool>* cancel = nullptr;  // stops after the current step; best parameters kept
};

struct GlobalFinetuneProgress {
  int epoch = 0;                      // 0-based
  int64_t step = 0, steps_per_epoch = 0;
  double train_kl = 0;                // of this step's batch, nats per token
  std::optional<double> heldout_kl;   // set when the step ended with a held-out evaluation
  double best_heldout_kl = 0;
  double seconds = 0;
};

struct GlobalFinetuneResult {
  double initial_heldout_kl = 0, best_heldout_kl = 0;  // zero without held-out windows
  int64_t best_step = 0;                               // 0: the initial parameters were never beaten
  int epochs_run = 0;
  int64_t steps = 0;
  bool stopped_early = false, cancelled = false;
  double seconds = 0;
};

// KL(teacher || student) in nats per token, averaged over windows [first, first + count) of
// `tokens` (their teacher outputs are rows first.. of `teacher`). When `backward` is true the
// gradient of that mean w.r.t. every trainable parameter is added into `grads` (one per block,
// allocated by the caller) and `final_norm_grad`. Exposed for the gradient tests.
class GlobalKd {
 public:
  GlobalKd(const FinetuneModel& model, int64_t micro_batch_windows, int64_t seqlen, ThreadPool& pool);
  // Refreshes the dense weights from the model's codebooks and scales (after every update).
  void refresh();
  double run(const std::vector<int32_t>& tokens, const TeacherOutputs& teacher, const std::vector<int64_t>& window_ids,
             bool backward, std::vector<BlockGradients<float>>* grads, std::vector<float>* final_norm_grad);

 private:
  const FinetuneModel& model_;
  int64_t micro_, seqlen_;
  ThreadPool& pool_;
  std::vector<BlockWeights<float>> weights_;
  std::vector<TrainableBlock<float>> blocks_;
  std::vector<float> x_, final_hidden_, normed_, inv_rms_, logits_, teacher_logits_, d_normed_;
};

class GlobalFinetuner {
 public:
  explicit GlobalFinetuner(const GlobalFinetuneOptions& options);  // Error on an option out of range

  // Tunes `model` in place on the train windows ([train_windows, seqlen] token ids) against
  // the teacher's outputs for them; evaluates the held-out windows before training and after
  // every epoch, stops after `patience` epochs without improvement and leaves the best
  // evaluated parameters. Errors: a token outside the vocabulary, a loss that is not finite.
  GlobalFinetuneResult run(FinetuneModel& model, const std::vector<int32_t>& train_tokens,
                           const TeacherOutputs& train_teacher, const std::vector<int32_t>& heldout_tokens,
                           const TeacherOutputs& heldout_teacher,
                           const std::function<void(const GlobalFinetuneProgress&)>& progress = {});

 private:
  GlobalFinetuneOptions options_;
};

}  // namespace aqlm
