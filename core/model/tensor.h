#pragma once
// A typed, shaped view of bytes that live elsewhere (a mapped file or a buffer the
// WeightStore owns). Shapes are row-major, outermost first, as in safetensors/PyTorch.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace aqlm {

enum class DType { F32, F16, BF16, F64, I8, I16, I32, I64, U8 };

size_t dtype_size(DType t);
const char* dtype_name(DType t);          // "F32", "F16", ... as safetensors spells them
bool dtype_from_name(const std::string& name, DType* out);

struct TensorView {
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const void* data = nullptr;

  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
  size_t nbytes() const { return size_t(numel()) * dtype_size(dtype); }
  int64_t dim(int i) const { return shape.at(size_t(i < 0 ? int(shape.size()) + i : i)); }
  template <typename T>
  const T* as() const { return static_cast<const T*>(data); }
};

std::string shape_string(const std::vector<int64_t>& shape);  // "[576, 1536]"

// Converts n elements of a float-typed buffer (F32/F16/BF16/F64) to float32.
void convert_to_f32(DType dtype, const void* src, float* dst, size_t n);

}  // namespace aqlm
