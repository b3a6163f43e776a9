#pragma once
// An Engine is one model instance on one device, with its KV cache. The generator, the
// perplexity evaluator, the chat and the studio talk to an Engine and never to a backend.
// One thread at a time may call an Engine (it parallelises each call internally).
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "core/model/model_config.h"

namespace aqlm {

struct Model;

enum class Device { Cpu, Cuda };
const char* device_name(Device d);
Device parse_device(const std::string& name);  // "cpu", "cuda" (Error otherwise)

struct EngineOptions {
  Device device = Device::Cpu;
  int context_length = 0;  // KV cache capacity in tokens; 0 = the model's, at most 4096
  int threads = 0;         // CPU threads; 0 = all
  int max_batch = 512;     // tokens per forward call in prefill (longer inputs are split)
};

class Engine {
 public:
  virtual ~Engine() = default;
  virtual const ModelConfig& config() const = 0;
  virtual Device device() const = 0;
  virtual int context_length() const = 0;
  // Tokens already in the KV cache.
  virtual int position() const = 0;

  // Appends `tokens` at positions [position(), position()+n) and writes logits
  // [n, vocab] into `logits` when all_logits, else only the last token's [vocab]. With
  // logits == nullptr nothing is written and the LM head is skipped (cache warm-up).
  virtual void forward(std::span<const int32_t> tokens, float* logits, bool all_logits = false) = 0;
  // forward() followed by the greedy choice on the last token's logits: the index of the
  // first maximum (what Sampler picks when greedy, without a repetition penalty). The CUDA
  // engine computes it on the device and copies back one id instead of the logits row.
  virtual int32_t forward_argmax(std::span<const int32_t> tokens);
  // Forgets the KV cache from position n on (n = 0 clears it).
  virtual void rewind(int n) = 0;
};

// CUDA devices this process can use (0 in a build without CUDA or on a machine without a GPU).
int cuda_device_count();

// The model must outlive the engine (weights are read in place where the device allows).
std::unique_ptr<Engine> create_engine(const Model& model, const EngineOptions& options = {});

}  // namespace aqlm
