#include "core/quant/pipeline_checkpoint.h"

#include <cstdio>
#include <cstring>

#include "core/common/error.h"
#include "core/common/half.h"
#include "core/common/paths.h"
#include "core/model/safetensors.h"

namespace aqlm {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr const char* kStateFile = "checkpoint.json";
constexpr const char* kFormat = "aqlm-studio-pipeline-checkpoint";
constexpr int kVersion = 1;

std::string block_name(int block) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "block-%03d", block);
  return buf;
}

json state_to_json(const json& settings, const CheckpointState& s) {
  return json{{"format", kFormat},         {"version", kVersion},        {"settings", settings},
              {"block", s.block},          {"layers_done", s.layers_done}, {"calibration", s.calibration}};
}

// The first key whose value differs, as "key (checkpoint: a, now: b)".
std::string first_difference(const json& saved, const json& now) {
  for (auto it = now.begin(); it != now.end(); ++it) {
    if (!saved.contains(it.key())) return str(it.key(), " (not in the checkpoint)");
    if (saved[it.key()] != it.value())
      return str(it.key(), " (checkpoint: ", saved[it.key()].dump(), ", now: ", it.value().dump(), ")");
  }
  for (auto it = saved.begin(); it != saved.end(); ++it)
    if (!now.contains(it.key())) return str(it.key(), " (only in the checkpoint)");
  return "";
}

}  // namespace

bool PipelineCheckpoint::exists() const { return fs::is_regular_file(dir_ / kStateFile); }

void PipelineCheckpoint::create(const json& settings, const CheckpointState& state) {
  std::error_code ec;
  fs::remove_all(dir_, ec);
  AQLM_CHECK(!ec, dir_.string(), ": cannot clear the old checkpoint: ", ec.message());
  fs::create_directories(dir_, ec);
  AQLM_CHECK(!ec, dir_.string(), ": cannot create the checkpoint folder: ", ec.message());
  settings_ = settings;
  save(state);
}

CheckpointState PipelineCheckpoint::open(const json& settings) const {
  const fs::path file = dir_ / kStateFile;
  json j;
  try {
    j = json::parse(read_text_file(file));
  } catch (const json::exception& e) {
    fail(file.string(), ": damaged checkpoint (", e.what(), "); delete the folder to start over");
  }
  AQLM_CHECK(j.is_object() && j.value("format", "") == kFormat, file.string(), ": not a pipeline checkpoint");
  AQLM_CHECK(j.value("version", 0) == kVersion, file.string(), ": checkpoint version ", j.value("version", 0),
             " is not supported (this build reads version ", kVersion, ")");
  try {
    const std::string diff = first_difference(j.at("settings"), settings);
    AQLM_CHECK(diff.empty(), file.string(), ": the checkpoint was made with other settings: ", diff,
               "; resume with the same settings, or start over with --overwrite");
    CheckpointState s;
    s.block = j.at("block").get<int>();
    s.layers_done = j.at("layers_done").get<std::vector<std::string>>();
    s.calibration = j.at("calibration");
    settings_ = j.at("settings");
    return s;
  } catch (const json::exception& e) {
    fail(file.string(), ": damaged checkpoint (", e.what(), "); delete the folder to start over");
  }
}

void PipelineCheckpoint::save(const CheckpointState& state) const {
  write_file_atomic(dir_ / kStateFile, state_to_json(settings_, state).dump(2) + "\n");
}

void PipelineCheckpoint::remove() const {
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

fs::path PipelineCheckpoint::inputs_path(int block) const { return dir_ / ("inputs-" + block_name(block) + ".f16"); }
fs::path PipelineCheckpoint::layer_path(int block, const std::string& layer) const {
  return dir_ / block_name(block) / (layer + ".safetensors");
}
fs::path PipelineCheckpoint::block_path(int block) const { return dir_ / (block_name(block) + ".safetensors"); }
fs::path PipelineCheckpoint::scratch_dir() const { return dir_ / "scratch"; }

void PipelineCheckpoint::clean_block(int block) const {
  std::error_code ec;
  fs::remove_all(dir_ / block_name(block), ec);
  fs::remove(inputs_path(block), ec);
}

// ------------------------------------------------------------------------------ tensors

void round_to_f16(std::vector<float>& values) {
  for (float& v : values) v = f16_to_f32(f32_to_f16(v));
}

TensorBuffer f16_tensor(const std::string& name, std::vector<int64_t> shape, const std::vector<float>& values) {
  TensorBuffer t{name, DType::F16, std::move(shape), std::vector<uint8_t>(values.size() * 2)};
  uint16_t* dst = reinterpret_cast<uint16_t*>(t.bytes.data());
  for (size_t i = 0; i < values.size(); ++i) dst[i] = f32_to_f16(values[i]);
  return t;
}

std::vector<TensorBuffer> aqlm_tensors(const std::string& prefix, const QuantizedLayer& q) {
  const int64_t M = q.config.num_codebooks, K = q.config.codebook_size(), g = q.config.group_size;
  TensorBuffer codes{prefix + ".codes", q.config.nbits <= 8 ? DType::I8 : DType::I16, {q.out_features, q.num_groups(), M}, {}};
  if (codes.dtype == DType::I8) {
    codes.bytes.resize(q.codes.size());
    for (size_t i = 0; i < q.codes.size(); ++i) codes.bytes[i] = uint8_t(q.codes[i]);
  } else {
    codes.bytes.resize(q.codes.size() * 2);
    std::memcpy(codes.bytes.data(), q.codes.data(), codes.bytes.size());
  }
  std::vector<TensorBuffer> out;
  out.push_back(std::move(codes));
  out.push_back(f16_tensor(prefix + ".codebooks", {M, K, 1, g}, q.codebooks));
  out.push_back(f16_tensor(prefix + ".scales", {q.out_features, 1, 1, 1}, q.scales));
  return out;
}

void write_tensor_file(const fs::path& path, const std::vector<TensorBuffer>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  AQLM_CHECK(!ec, path.parent_path().string(), ": cannot create the folder: ", ec.message());
  const fs::path tmp = path.string() + ".partial";
  std::vector<SafetensorsEntry> entries;
  for (const auto& t : tensors) entries.push_back({t.name, t.dtype, t.shape});
  try {
    SafetensorsWriter writer(tmp.string(), entries, metadata);
    for (const auto& t : tensors) writer.write(t.name, TensorView{t.dtype, t.shape, t.bytes.data()});
    writer.finish();
  } catch (...) {
    fs::remove(tmp, ec);
    throw;
  }
  fs::rename(tmp, path, ec);
  AQLM_CHECK(!ec, path.string(), ": cannot move the file into place: ", ec.message());
}

QuantizedLayer read_aqlm_layer(const TensorView& codes, const TensorView& codebooks, const TensorView& scales,
                               const AqlmConfig& config, int64_t out, int64_t in, const std::string& what) {
  QuantizedLayer q;
  q.out_features = out;
  q.in_features = in;
  q.config = config;
  const int64_t M = config.num_codebooks, K = config.codebook_size(), g = config.group_size;
  AQLM_CHECK(codes.shape == std::vector<int64_t>({out, in / g, M}) &&
                 (codes.dtype == DType::I8 || codes.dtype == DType::I16),
             what, ": codes are ", dtype_name(codes.dtype), " ", shape_string(codes.shape), ", expected int8/int16 [",
             out, ", ", in / g, ", ", M, "]");
  AQLM_CHECK(codebooks.shape == std::vector<int64_t>({M, K, 1, g}), what, ": codebooks are ",
             shape_string(codebooks.shape), ", expected [", M, ", ", K, ", 1, ", g, "]");
  AQLM_CHECK(scales.shape == std::vector<int64_t>({out, 1, 1, 1}), what, ": scales are ", shape_string(scales.shape),
             ", expected [", out, ", 1, 1, 1]");
  const uint16_t mask = uint16_t(K - 1);
  q.codes.resize(size_t(codes.numel()));
  for (size_t i = 0; i < q.codes.size(); ++i)
    q.codes[i] = codes.dtype == DType::I8 ? uint16_t(codes.as<uint8_t>()[i]) & mask : codes.as<uint16_t>()[i] & mask;
  q.codebooks.resize(size_t(codebooks.numel()));
  convert_to_f32(codebooks.dtype, codebooks.data, q.codebooks.data(), q.codebooks.size());
  q.scales.resize(size_t(out));
  convert_to_f32(scales.dtype, scales.data, q.scales.data(), q.scales.size());
  q.validate(what);
  return q;
}

}  // namespace aqlm
