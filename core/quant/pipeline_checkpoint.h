#pragma once
// The pipeline's checkpoint folder and the tensor files it shares with the output.
//
//   checkpoint.json            the commit point: settings, the block in progress and its
//                              finished layers (rewritten atomically after each layer)
//   inputs-block-NNN.f16       the inputs of block NNN for every window (fp16, saved once per block)
//   block-NNN/LAYER.safetensors  a finished layer of the block in progress
//   block-NNN.safetensors      a finished block: its tensors under Hugging Face names, in the
//                              output's dtypes (fp16, int8/int16 codes), ready to be copied out
//   scratch/                   activations spilled to disk (not state; recomputed on resume)
//
// Files are written under a temporary name, flushed and renamed, and checkpoint.json names
// only what is complete, so a run killed at any moment resumes from its last finished layer.
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/model/tensor.h"
#include "core/quant/quantized_layer.h"

namespace aqlm {

struct CheckpointState {
  int block = 0;                         // the block in progress (num_layers when all are done)
  std::vector<std::string> layers_done;  // its finished layers, in order
  nlohmann::json calibration = nlohmann::json::object();  // window counts etc. of the run's start

  bool operator==(const CheckpointState&) const = default;
};

class PipelineCheckpoint {
 public:
  explicit PipelineCheckpoint(std::filesystem::path dir) : dir_(std::move(dir)) {}
  const std::filesystem::path& dir() const { return dir_; }

  bool exists() const;  // checkpoint.json is there
  // Starts afresh: removes whatever the folder holds, then writes checkpoint.json.
  void create(const nlohmann::json& settings, const CheckpointState& state);
  // Reads checkpoint.json; Error naming the first setting that differs from `settings` (the
  // run would not produce the same output) or the file when it is damaged.
  CheckpointState open(const nlohmann::json& settings) const;
  void save(const CheckpointState& state) const;  // atomically, keeping the settings
  void remove() const;

  std::filesystem::path inputs_path(int block) const;
  std::filesystem::path layer_path(int block, const std::string& layer) const;
  std::filesystem::path block_path(int block) const;
  std::filesystem::path scratch_dir() const;
  // Drops the per-layer files and the inputs of a finished block.
  void clean_block(int block) const;

 private:
  std::filesystem::path dir_;
  mutable nlohmann::json settings_;
};

// A tensor in memory, to be written to a safetensors file.
struct TensorBuffer {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};
TensorBuffer f16_tensor(const std::string& name, std::vector<int64_t> shape, const std::vector<float>& values);
// P.codes (int8 when B <= 8, else int16, the unsigned index's two's complement), P.codebooks
// [M, 2^B, 1, g] and P.scales [out, 1, 1, 1] as fp16: REFERENCE.md section 5.
std::vector<TensorBuffer> aqlm_tensors(const std::string& prefix, const QuantizedLayer& layer);
// Writes the tensors (and `metadata`, the safetensors __metadata__) to `path` under a
// temporary name, fsync'd, then renamed into place.
void write_tensor_file(const std::filesystem::path& path, const std::vector<TensorBuffer>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

// Reads back what aqlm_tensors() wrote (from any WeightStore view): the layer's codes,
// codebooks and scales as float32. Error naming the tensor when a shape or dtype does not fit.
QuantizedLayer read_aqlm_layer(const TensorView& codes, const TensorView& codebooks, const TensorView& scales,
                               const AqlmConfig& config, int64_t out_features, int64_t in_features,
                               const std::string& what);

// Rounds every value to the nearest fp16 and back (what an fp16 file will hold).
void round_to_f16(std::vector<float>& values);

}  // namespace aqlm
