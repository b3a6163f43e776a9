#pragma once
// GGUF (versions 2 and 3, little-endian): header, metadata of every value type, tensor infos
// and the aligned data area, read from a memory map. load_gguf_weights turns a llama or qwen2
// file into Hugging Face names, config and float tensors.
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/model/model_config.h"
#include "core/model/weight_store.h"

namespace aqlm {

class MappedFile;

enum class GgufType : uint32_t {
  Uint8 = 0, Int8 = 1, Uint16 = 2, Int16 = 3, Uint32 = 4, Int32 = 5, Float32 = 6, Bool = 7,
  String = 8, Array = 9, Uint64 = 10, Int64 = 11, Float64 = 12,
};
const char* gguf_type_name(GgufType t);  // "u32", "string", ...

struct GgufKv {
  std::string key;
  GgufType type = GgufType::Uint8;
  GgufType element_type = GgufType::Uint8;  // for arrays
  nlohmann::json value;                     // numbers, bool, string, or an array of them
};

struct GgufTensorInfo {
  std::string name;
  std::vector<int64_t> ne;  // ggml order: ne[0] is the innermost (contiguous) dimension
  uint32_t type = 0;        // ggml type number (gguf_dequant.h)
  uint64_t offset = 0;      // from the start of the data area
  const uint8_t* data = nullptr;
  size_t nbytes = 0;
  std::vector<int64_t> hf_shape() const;  // outermost first: ne reversed
  int64_t numel() const;
};

class GgufFile {
 public:
  // Parses and checks everything but the tensor bytes: magic, version, every metadata value,
  // tensor infos (type known, row a whole number of blocks, aligned offset, inside the file).
  explicit GgufFile(const std::string& path);

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  size_t alignment() const { return alignment_; }
  size_t data_offset() const { return data_offset_; }
  const std::vector<GgufKv>& metadata() const { return kvs_; }
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  std::shared_ptr<const MappedFile> mapping() const { return file_; }

  const GgufKv* find(const std::string& key) const;
  const GgufTensorInfo* find_tensor(const std::string& name) const;
  // Typed look-ups; the *_or forms return `fallback` when the key is absent. A key present with
  // a value of the wrong kind throws Error naming the file and the key.
  std::string get_string(const std::string& key) const;
  int64_t get_int(const std::string& key) const;
  int64_t get_int_or(const std::string& key, int64_t fallback) const;
  double get_float_or(const std::string& key, double fallback) const;

 private:
  std::string path_;
  std::shared_ptr<const MappedFile> file_;
  uint32_t version_ = 0;
  size_t alignment_ = 32;
  size_t data_offset_ = 0;
  std::vector<GgufKv> kvs_;
  std::vector<GgufTensorInfo> tensors_;
};

// A metadata value as one line of text for display: scalars as JSON, long arrays summarized
// ("[49152 strings: \"<|endoftext|>\", \"<|im_start|>\", ...]").
std::string gguf_value_summary(const GgufKv& kv);

struct GgufWeights {
  ModelConfig config;
  // Hugging Face names. F32/F16/BF16 tensors are views into the map (q/k in owned copies,
  // un-permuted for llama); quantized tensors are dequantized into owned float32 buffers.
  // A tied model has no lm_head.weight.
  WeightStore weights;
  nlohmann::json tokenizer_keys;  // {"tokenizer.ggml.model": "gpt2", "tokenizer.ggml.tokens": [...], ...}
  std::string chat_template;      // tokenizer.chat_template, or empty
  std::vector<std::pair<std::string, std::string>> metadata;  // every key, value summarized
};

// Architectures llama (incl. Mistral, which GGUF files call llama) and qwen2.
GgufWeights load_gguf_weights(const std::string& path);

}  // namespace aqlm
