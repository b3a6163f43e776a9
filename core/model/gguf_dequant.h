#pragma once
// GGML tensor types: sizes for every type a GGUF file may name, and exact dequantization to
// float32 for the types this program reads. Each dequantizer follows ggml's reference C code
// (ggml-quants.c) operation by operation, so the floats equal llama.cpp's and the Python gguf
// package's bit for bit.
#include <cstddef>
#include <cstdint>
#include <string>

namespace aqlm {

struct GgmlTypeInfo {
  const char* name;   // "Q4_K"
  int block_size;     // elements per block (1 for plain types)
  int type_size;      // bytes per block
  bool dequantizable; // this program can turn it into float32
};

// Null for a type number ggml does not define.
const GgmlTypeInfo* ggml_type_info(uint32_t type);
std::string ggml_type_name(uint32_t type);    // "Q4_K", or "type 99" for an unknown number
std::string dequantizable_ggml_types();       // "F32, F16, BF16, Q8_0, ..." for error messages

// Converts n elements of `type` (n a multiple of its block size) to float32.
// Throws Error for a type that is not dequantizable.
void dequantize_ggml(uint32_t type, const void* src, float* dst, size_t n);

}  // namespace aqlm
