#pragma once
// Karpathy's llama2.c checkpoint format (the legacy "version 0" export): seven int32 header
// fields, then fp32 tensors stacked over layers, a RoPE table to skip and, when the vocab
// field is negative, an untied classifier. See /work/shared/README.md for the layout.
#include <cstdint>
#include <string>

#include "core/model/model_config.h"
#include "core/model/weight_store.h"

namespace aqlm {

struct Llama2cHeader {
  int dim = 0;
  int hidden_dim = 0;
  int n_layers = 0;
  int n_heads = 0;
  int n_kv_heads = 0;
  int vocab_size = 0;         // always positive here
  int seq_len = 0;
  bool shared_classifier = true;  // the file's vocab field was positive
};

struct Llama2cWeights {
  Llama2cHeader header;
  ModelConfig config;  // llama, rope_theta 10000, rms_norm_eps 1e-5, bos 1, eos 2, float32
  // Hugging Face names. The q/k projections are un-permuted into the half-split RoPE layout
  // (owned buffers); every other tensor is a view into the mapped file. A tied model has no
  // lm_head.weight (as in Hugging Face checkpoints): the runtime uses model.embed_tokens.weight.
  WeightStore weights;
};

// Reads the header only; throws Error naming the file when it is not a plausible llama2.c header.
Llama2cHeader read_llama2c_header(const std::string& path);

// Maps the file and builds the weight store. Throws Error (one line, naming the file and the
// tensor) on a truncated file, trailing bytes, an inconsistent header or the newer "ak42"
// export formats.
Llama2cWeights load_llama2c_weights(const std::string& path);

// The tokenizer beside a llama2.c model: tok<vocab>.bin, else tokenizer.bin, in the model's
// folder. Empty when neither exists.
std::string find_llama2c_tokenizer(const std::string& model_path, int vocab_size);

}  // namespace aqlm
