#pragma once
// name -> tensor, under Hugging Face names (model.layers.3.self_attn.q_proj.weight, ...),
// whatever file the weights came from. Tensors either point into memory-mapped files
// (kept alive here) or into buffers this store owns (dequantized GGUF, permuted llama2.c).
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/model/tensor.h"

namespace aqlm {

class WeightStore {
 public:
  // A view into memory that `owner` keeps alive (e.g. a MappedFile).
  void add_view(const std::string& name, const TensorView& view, std::shared_ptr<const void> owner = nullptr);
  // Takes a buffer; the view's data pointer is set to it.
  void add_owned(const std::string& name, DType dtype, std::vector<int64_t> shape, std::vector<uint8_t> bytes);
  void add_f32(const std::string& name, std::vector<int64_t> shape, const std::vector<float>& values);
  void remove(const std::string& name);

  bool has(const std::string& name) const { return tensors_.count(name) != 0; }
  const TensorView& get(const std::string& name) const;  // Error "missing tensor NAME" when absent
  std::vector<std::string> names() const;                 // sorted
  size_t size() const { return tensors_.size(); }
  size_t total_bytes() const;
  std::vector<float> to_f32(const std::string& name) const;  // any float dtype, a fresh copy

 private:
  struct Entry {
    TensorView view;
    std::shared_ptr<const void> owner;
  };
  std::map<std::string, Entry> tensors_;
};

}  // namespace aqlm
