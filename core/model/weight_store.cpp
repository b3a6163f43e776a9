#include "core/model/weight_store.h"

#include <cstring>

#include "core/common/error.h"

namespace aqlm {

void WeightStore::add_view(const std::string& name, const TensorView& view, std::shared_ptr<const void> owner) {
  tensors_[name] = Entry{view, std::move(owner)};
}

void WeightStore::add_owned(const std::string& name, DType dtype, std::vector<int64_t> shape, std::vector<uint8_t> bytes) {
  auto buffer = std::make_shared<std::vector<uint8_t>>(std::move(bytes));
  TensorView view{dtype, std::move(shape), buffer->data()};
  AQLM_CHECK(view.nbytes() == buffer->size(), "tensor ", name, ": ", buffer->size(), " bytes do not match shape ",
             shape_string(view.shape), " of ", dtype_name(dtype));
  tensors_[name] = Entry{view, std::shared_ptr<const void>(buffer, buffer.get())};
}

void WeightStore::add_f32(const std::string& name, std::vector<int64_t> shape, const std::vector<float>& values) {
  std::vector<uint8_t> bytes(values.size() * 4);
  std::memcpy(bytes.data(), values.data(), bytes.size());
  add_owned(name, DType::F32, std::move(shape), std::move(bytes));
}

void WeightStore::remove(const std::string& name) { tensors_.erase(name); }

const TensorView& WeightStore::get(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) fail("missing tensor ", name);
  return it->second.view;
}

std::vector<std::string> WeightStore::names() const {
  std::vector<std::string> out;
  out.reserve(tensors_.size());
  for (const auto& [name, _] : tensors_) out.push_back(name);
  return out;
}

size_t WeightStore::total_bytes() const {
  size_t n = 0;
  for (const auto& [_, e] : tensors_) n += e.view.nbytes();
  return n;
}

std::vector<float> WeightStore::to_f32(const std::string& name) const {
  const TensorView& v = get(name);
  std::vector<float> out(size_t(v.numel()));
  convert_to_f32(v.dtype, v.data, out.data(), out.size());
  return out;
}

}  // namespace aqlm
