#pragma once
// safetensors: an 8-byte little-endian header length, a JSON header
// {"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}, then the
// tensor bytes. Reading maps the file and hands out views (no copies); writing streams one
// tensor at a time into a file whose header is fixed up front.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/model/tensor.h"
#include "core/model/weight_store.h"

namespace aqlm {

class MappedFile;

struct SafetensorsTensor {
  std::string name;
  TensorView view;  // points into the mapped file
};

// One mapped .safetensors file. Every tensor is checked on open: known dtype, byte count equal
// to shape x dtype size, range inside the data area. Tensors keep the order of their offsets.
class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);

  const std::string& path() const { return path_; }
  const std::vector<SafetensorsTensor>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const SafetensorsTensor* find(const std::string& name) const;
  // Adds every tensor to `store` as a view kept alive by the mapping (a copy only for a tensor
  // whose bytes are not aligned to its element size, which well-formed files never have).
  void add_to(WeightStore& store) const;
  std::shared_ptr<const MappedFile> mapping() const { return file_; }

 private:
  std::string path_;
  std::shared_ptr<const MappedFile> file_;
  std::vector<SafetensorsTensor> tensors_;
  std::map<std::string, std::string> metadata_;
};

// Reads DIR/model.safetensors, or the shards DIR/model.safetensors.index.json lists
// (every tensor of the index must be in the shard it names, and no tensor may appear twice).
// Returns the safetensors __metadata__ of the (first) file.
std::map<std::string, std::string> load_safetensors_folder(const std::string& dir, WeightStore& store);

struct SafetensorsEntry {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  size_t nbytes() const;
};

// Writes one .safetensors file tensor by tensor: the layout (all names, dtypes, shapes and
// offsets) is fixed when the writer is made, then each tensor's bytes go to their place, in
// any order, so a producer (HF writer, AQLM writer) never holds more than one tensor. The data
// is laid out as the Python safetensors library does: larger element sizes first, then by name,
// so every tensor is aligned to its element size. Write errors (disk full, file size limit)
// throw Error naming the file; the caller removes the partial file.
class SafetensorsWriter {
 public:
  SafetensorsWriter(const std::string& path, std::vector<SafetensorsEntry> entries,
                    const std::map<std::string, std::string>& metadata = {});
  ~SafetensorsWriter();  // closes the file if finish() was not reached (after an error)
  SafetensorsWriter(const SafetensorsWriter&) = delete;
  SafetensorsWriter& operator=(const SafetensorsWriter&) = delete;

  // Writes a declared tensor from `source` (its shape must match), converting between
  // float dtypes (F32/F16/BF16/F64 -> the declared dtype) in small chunks when they differ.
  void write(const std::string& name, const TensorView& source);
  // Flushes to disk (fsync) and closes; throws when a declared tensor was not written.
  void finish();

  size_t total_bytes() const { return header_bytes_ + data_bytes_; }

 private:
  void write_at(const void* data, size_t n, size_t offset);

  std::string path_;
  std::vector<SafetensorsEntry> entries_;   // in file order
  std::vector<size_t> offsets_;             // absolute file offset of each entry
  std::vector<bool> written_;
  std::map<std::string, size_t> index_;     // name -> entry
  size_t header_bytes_ = 0;
  size_t data_bytes_ = 0;
  int fd_ = -1;
};

// Converts n float values (F32/F16/BF16/F64) from one dtype to another; F32 -> F16/BF16 round
// to nearest even. Throws for non-float dtypes.
void convert_float_dtype(DType from, const void* src, DType to, void* dst, size_t n);

}  // namespace aqlm
