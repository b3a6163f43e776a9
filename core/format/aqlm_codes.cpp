#include "core/format/aqlm_codes.h"

#include "core/common/error.h"

namespace aqlm {

DType aqlm_code_dtype(int nbits) {
  AQLM_CHECK(nbits >= 1 && nbits <= 16, "AQLM codes of ", nbits, " bits cannot be stored (1 to 16 bits are supported)");
  return nbits <= 8 ? DType::I8 : DType::I16;
}

void encode_aqlm_codes(const uint16_t* codes, size_t n, int nbits, void* out, const std::string& what) {
  const DType dtype = aqlm_code_dtype(nbits);
  const int32_t size = int32_t(1) << nbits, half = size / 2;
  for (size_t i = 0; i < n; ++i) {
    const int32_t index = codes[i];
    AQLM_CHECK(index < size, what, ": code ", index, " at position ", i, " is not below 2^", nbits);
    const int32_t stored = index >= half ? index - size : index;
    if (dtype == DType::I8) {
      static_cast<int8_t*>(out)[i] = int8_t(stored);
    } else {
      static_cast<int16_t*>(out)[i] = int16_t(stored);
    }
  }
}

std::vector<uint16_t> decode_aqlm_codes(const TensorView& codes, int nbits, const std::string& what) {
  const DType expected = aqlm_code_dtype(nbits);
  AQLM_CHECK(codes.dtype == expected, what, ": codes are ", dtype_name(codes.dtype), " but ", nbits,
             "-bit codes are stored as ", dtype_name(expected));
  const int32_t size = int32_t(1) << nbits, low = -(size / 2);
  std::vector<uint16_t> out(size_t(codes.numel()));
  for (size_t i = 0; i < out.size(); ++i) {
    const int32_t stored = expected == DType::I8 ? int32_t(codes.as<int8_t>()[i]) : int32_t(codes.as<int16_t>()[i]);
    AQLM_CHECK(stored >= low && stored < size, what, ": stored code ", stored, " at position ", i,
               " is out of range for ", nbits, "-bit codes (", low, " to ", size - 1, ")");
    out[i] = uint16_t(stored < 0 ? stored + size : stored);
  }
  return out;
}

}  // namespace aqlm
