#include "core/model/safetensors.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <set>

#include <nlohmann/json.hpp>

#include "core/common/error.h"
#include "core/common/half.h"
#include "core/common/mapped_file.h"
#include "core/common/paths.h"

namespace aqlm {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// The Rust reference implementation refuses headers above 100 MB; so do we (a wild length
// field must not make us parse the whole file as JSON).
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

// The dtypes the safetensors format names that this program has no use for.
bool is_known_unsupported_dtype(const std::string& name) {
  static const std::set<std::string> names = {"BOOL", "U16", "U32", "U64", "F8_E4M3", "F8_E5M2", "F8_E8M0", "F4",
                                              "F6_E2M3", "F6_E3M2", "C64"};
  return names.count(name) != 0;
}

}  // namespace

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path) {
  auto file = std::make_shared<MappedFile>(path);
  file_ = file;
  const size_t size = file->size();
  AQLM_CHECK(size >= 8, path, ": truncated: a safetensors file starts with an 8-byte header length but the file has ",
             size, " bytes");
  uint64_t header_len = 0;
  std::memcpy(&header_len, file->data(), 8);
  AQLM_CHECK(header_len <= kMaxHeaderBytes, path, ": not a safetensors file: header length ", header_len,
             " is implausible (at most ", kMaxHeaderBytes, ")");
  AQLM_CHECK(header_len <= size - 8, path, ": truncated: the header needs ", header_len, " bytes after byte 8 but the file has ",
             size);
  const char* header_text = reinterpret_cast<const char*>(file->data() + 8);
  AQLM_CHECK(header_len > 0 && header_text[0] == '{', path, ": not a safetensors file: the header is not a JSON object");
  json header;
  try {
    header = json::parse(header_text, header_text + header_len);
  } catch (const json::exception& e) {
    fail(path, ": not a safetensors file: its header is not valid JSON (", e.what(), ")");
  }
  AQLM_CHECK(header.is_object(), path, ": not a safetensors file: the header is not a JSON object");

  const size_t data_start = 8 + size_t(header_len);
  const size_t data_size = size - data_start;
  struct Range {
    uint64_t begin, end;
    std::string name;
  };
  std::vector<Range> ranges;
  for (const auto& [name, info] : header.items()) {
    if (name == "__metadata__") {
      AQLM_CHECK(info.is_object(), path, ": __metadata__ is not a JSON object");
      for (const auto& [key, value] : info.items()) {
        AQLM_CHECK(value.is_string(), path, ": __metadata__ value of '", key, "' is not a string");
        metadata_[key] = value.get<std::string>();
      }
      continue;
    }
    AQLM_CHECK(info.is_object() && info.contains("dtype") && info.contains("shape") && info.contains("data_offsets"), path,
               ": tensor ", name, ": header entry needs dtype, shape and data_offsets");
    SafetensorsTensor t;
    t.name = name;
    try {
      const std::string dtype = info["dtype"].get<std::string>();
      if (!dtype_from_name(dtype, &t.view.dtype)) {
        fail(path, ": tensor ", name, ": dtype ", dtype,
             is_known_unsupported_dtype(dtype) ? " is not supported" : " is not a safetensors dtype",
             " (supported: F32, F16, BF16, F64, I64, I32, I16, I8, U8)");
      }
      for (const auto& d : info["shape"]) {
        AQLM_CHECK(d.is_number_unsigned() && d.get<uint64_t>() <= uint64_t(INT64_MAX), path, ": tensor ", name,
                   ": shape has a negative, non-integer or huge dimension");
        t.view.shape.push_back(d.get<int64_t>());
      }
      const auto& offsets = info["data_offsets"];
      AQLM_CHECK(offsets.is_array() && offsets.size() == 2 && offsets[0].is_number_unsigned() &&
                     offsets[1].is_number_unsigned(),
                 path, ": tensor ", name, ": data_offsets must be two non-negative integers");
      const uint64_t begin = offsets[0].get<uint64_t>(), end = offsets[1].get<uint64_t>();
      AQLM_CHECK(begin <= end, path, ": tensor ", name, ": data_offsets [", begin, ", ", end, "] are reversed");
      AQLM_CHECK(end <= data_size, path, ": truncated: tensor ", name, " ends at byte ", data_start + end,
                 " but the file has ", size);
      // Shape x dtype size must equal the byte range; computed without overflow.
      uint64_t expected = dtype_size(t.view.dtype);
      for (int64_t d : t.view.shape) {
        AQLM_CHECK(d == 0 || expected <= (end - begin) / uint64_t(d) + 1, path, ": tensor ", name, ": shape ",
                   shape_string(t.view.shape), " of ", dtype_name(t.view.dtype), " does not fit its ", end - begin,
                   " bytes");
        expected *= uint64_t(d);
      }
      AQLM_CHECK(expected == end - begin, path, ": tensor ", name, ": shape ", shape_string(t.view.shape), " of ",
                 dtype_name(t.view.dtype), " needs ", expected, " bytes but data_offsets give ", end - begin);
      t.view.data = file->data() + data_start + begin;
      ranges.push_back({begin, end, name});
    } catch (const json::exception& e) {
      fail(path, ": tensor ", name, ": malformed header entry (", e.what(), ")");
    }
    tensors_.push_back(std::move(t));
  }
  std::sort(ranges.begin(), ranges.end(), [](const Range& a, const Range& b) { return a.begin < b.begin; });
  for (size_t i = 1; i < ranges.size(); ++i) {
    AQLM_CHECK(ranges[i].begin >= ranges[i - 1].end || ranges[i].begin == ranges[i].end, path, ": tensors ",
               ranges[i - 1].name, " and ", ranges[i].name, " overlap");
  }
  std::sort(tensors_.begin(), tensors_.end(),
            [](const SafetensorsTensor& a, const SafetensorsTensor& b) { return a.view.data < b.view.data; });
}

const SafetensorsTensor* SafetensorsFile::find(const std::string& name) const {
  for (const auto& t : tensors_)
    if (t.name == name) return &t;
  return nullptr;
}

void SafetensorsFile::add_to(WeightStore& store) const {
  for (const auto& t : tensors_) {
    AQLM_CHECK(!store.has(t.name), path_, ": tensor ", t.name, " appears in more than one file");
    if (reinterpret_cast<uintptr_t>(t.view.data) % dtype_size(t.view.dtype) == 0) {
      store.add_view(t.name, t.view, file_);
    } else {
      const auto* p = static_cast<const uint8_t*>(t.view.data);
      store.add_owned(t.name, t.view.dtype, t.view.shape, std::vector<uint8_t>(p, p + t.view.nbytes()));
    }
  }
}

std::map<std::string, std::string> load_safetensors_folder(const std::string& dir, WeightStore& store) {
  const fs::path single = fs::path(dir) / "model.safetensors";
  const fs::path index_path = fs::path(dir) / "model.safetensors.index.json";
  if (fs::exists(single)) {
    SafetensorsFile file(single.string());
    file.add_to(store);
    return file.metadata();
  }
  AQLM_CHECK(fs::exists(index_path), dir, ": no model.safetensors or model.safetensors.index.json");
  json index;
  try {
    index = json::parse(read_text_file(index_path));
  } catch (const json::exception& e) {
    fail(index_path.string(), ": not valid JSON (", e.what(), ")");
  }
  AQLM_CHECK(index.is_object() && index.contains("weight_map") && index["weight_map"].is_object(), index_path.string(),
             ": missing the weight_map object");
  std::map<std::string, std::vector<std::string>> by_shard;  // shard -> tensor names the index puts there
  for (const auto& [name, shard] : index["weight_map"].items()) {
    AQLM_CHECK(shard.is_string(), index_path.string(), ": weight_map entry of ", name, " is not a file name");
    const std::string file = shard.get<std::string>();
    AQLM_CHECK(!file.empty() && file.find('/') == std::string::npos && file != "." && file != "..", index_path.string(),
               ": weight_map entry of ", name, " ('", file, "') must be a file name inside the folder");
    by_shard[file].push_back(name);
  }
  AQLM_CHECK(!by_shard.empty(), index_path.string(), ": weight_map is empty");
  std::map<std::string, std::string> metadata;
  for (const auto& [shard, names] : by_shard) {
    const fs::path shard_path = fs::path(dir) / shard;
    AQLM_CHECK(fs::exists(shard_path), index_path.string(), ": shard ", shard, " (holding ", names.front(),
               ") is missing");
    SafetensorsFile file(shard_path.string());
    for (const auto& name : names)
      AQLM_CHECK(file.find(name), shard_path.string(), ": tensor ", name, " is not in this shard, although the index says so");
    file.add_to(store);
    if (metadata.empty()) metadata = file.metadata();
  }
  return metadata;
}

// ---------------------------------------------------------------------------------------------
// Writing

size_t SafetensorsEntry::nbytes() const {
  size_t n = dtype_size(dtype);
  for (int64_t d : shape) n *= size_t(d);
  return n;
}

void convert_float_dtype(DType from, const void* src, DType to, void* dst, size_t n) {
  auto is_float = [](DType t) { return t == DType::F32 || t == DType::F16 || t == DType::BF16 || t == DType::F64; };
  AQLM_CHECK(is_float(from) && is_float(to), "cannot convert ", dtype_name(from), " to ", dtype_name(to),
             ": only float dtypes convert");
  if (from == to) {
    std::memcpy(dst, src, n * dtype_size(from));
    return;
  }
  constexpr size_t kChunk = 4096;
  float buffer[kChunk];
  for (size_t done = 0; done < n; done += kChunk) {
    const size_t count = std::min(kChunk, n - done);
    const float* values = buffer;
    if (from == DType::F32) {
      values = static_cast<const float*>(src) + done;
    } else {
      convert_to_f32(from, static_cast<const uint8_t*>(src) + done * dtype_size(from), buffer, count);
    }
    switch (to) {
      case DType::F32: std::memcpy(static_cast<float*>(dst) + done, values, count * 4); break;
      case DType::F16: {
        auto* out = static_cast<uint16_t*>(dst) + done;
        for (size_t i = 0; i < count; ++i) out[i] = f32_to_f16(values[i]);
        break;
      }
      case DType::BF16: {
        auto* out = static_cast<uint16_t*>(dst) + done;
        for (size_t i = 0; i < count; ++i) out[i] = f32_to_bf16(values[i]);
        break;
      }
      case DType::F64: {
        auto* out = static_cast<double*>(dst) + done;
        for (size_t i = 0; i < count; ++i) out[i] = values[i];
        break;
      }
      default: break;
    }
  }
}

SafetensorsWriter::SafetensorsWriter(const std::string& path, std::vector<SafetensorsEntry> entries,
                                     const std::map<std::string, std::string>& metadata)
    : path_(path), entries_(std::move(entries)) {
  // Larger elements first, then by name: every tensor starts aligned to its element size.
  std::sort(entries_.begin(), entries_.end(), [](const SafetensorsEntry& a, const SafetensorsEntry& b) {
    const size_t sa = dtype_size(a.dtype), sb = dtype_size(b.dtype);
    return sa != sb ? sa > sb : a.name < b.name;
  });
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  size_t offset = 0;
  std::vector<size_t> relative;
  for (size_t i = 0; i < entries_.size(); ++i) {
    const auto& e = entries_[i];
    AQLM_CHECK(!e.name.empty() && e.name != "__metadata__", path, ": invalid tensor name '", e.name, "'");
    AQLM_CHECK(index_.emplace(e.name, i).second, path, ": tensor ", e.name, " declared twice");
    for (int64_t d : e.shape) AQLM_CHECK(d >= 0, path, ": tensor ", e.name, ": negative dimension");
    header[e.name] = {{"dtype", dtype_name(e.dtype)}, {"shape", e.shape}, {"data_offsets", {offset, offset + e.nbytes()}}};
    relative.push_back(offset);
    offset += e.nbytes();
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // the data starts 8-byte aligned
  header_bytes_ = 8 + text.size();
  data_bytes_ = offset;
  for (size_t r : relative) offsets_.push_back(header_bytes_ + r);
  written_.assign(entries_.size(), false);

  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) fail(path, ": cannot create: ", std::strerror(errno));
  const uint64_t len = text.size();
  write_at(&len, 8, 0);
  write_at(text.data(), text.size(), 8);
}

SafetensorsWriter::~SafetensorsWriter() {
  if (fd_ >= 0) ::close(fd_);
}

void SafetensorsWriter::write_at(const void* data, size_t n, size_t offset) {
  const auto* p = static_cast<const uint8_t*>(data);
  while (n > 0) {
    const ssize_t done = ::pwrite(fd_, p, n, off_t(offset));
    if (done < 0) {
      if (errno == EINTR) continue;
      fail(path_, ": write failed: ", std::strerror(errno));
    }
    p += done;
    n -= size_t(done);
    offset += size_t(done);
  }
}

void SafetensorsWriter::write(const std::string& name, const TensorView& source) {
  AQLM_CHECK(fd_ >= 0, path_, ": write of ", name, " after the file was closed");
  auto it = index_.find(name);
  AQLM_CHECK(it != index_.end(), path_, ": tensor ", name, " was not declared");
  const size_t i = it->second;
  const SafetensorsEntry& e = entries_[i];
  AQLM_CHECK(!written_[i], path_, ": tensor ", name, " written twice");
  AQLM_CHECK(source.shape == e.shape, path_, ": tensor ", name, ": shape ", shape_string(source.shape),
             " differs from the declared ", shape_string(e.shape));
  if (source.dtype == e.dtype) {
    write_at(source.data, e.nbytes(), offsets_[i]);
  } else {
    // Convert in chunks so that a large tensor never exists twice in memory.
    constexpr size_t kChunk = 1 << 18;
    std::vector<uint8_t> buffer(kChunk * dtype_size(e.dtype));
    const size_t n = size_t(source.numel());
    for (size_t done = 0; done < n; done += kChunk) {
      const size_t count = std::min(kChunk, n - done);
      convert_float_dtype(source.dtype, static_cast<const uint8_t*>(source.data) + done * dtype_size(source.dtype),
                          e.dtype, buffer.data(), count);
      write_at(buffer.data(), count * dtype_size(e.dtype), offsets_[i] + done * dtype_size(e.dtype));
    }
  }
  written_[i] = true;
}

void SafetensorsWriter::finish() {
  AQLM_CHECK(fd_ >= 0, path_, ": finished twice");
  for (size_t i = 0; i < entries_.size(); ++i)
    AQLM_CHECK(written_[i], path_, ": tensor ", entries_[i].name, " was declared but never written");
  // Sets the size explicitly: trailing zero-sized tensors write no byte.
  if (::ftruncate(fd_, off_t(total_bytes())) != 0) fail(path_, ": write failed: ", std::strerror(errno));
  if (::fsync(fd_) != 0) fail(path_, ": write failed: ", std::strerror(errno));
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) fail(path_, ": write failed: ", std::strerror(errno));
}

}  // namespace aqlm
