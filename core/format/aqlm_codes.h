#pragma once
// AQLM codes as the Hugging Face format stores them (REFERENCE.md section 5): int8 when
// B <= 8, int16 when B <= 16, each unsigned B-bit index written as its B-bit two's complement
// (an index >= 2^(B-1) is stored as index - 2^B), which is what the authors' converter
// (pack_int_data) writes. For B = 8 and B = 16 that is the plain bit pattern of the index.
//
// Readers disagree outside that range: the authors' Triton kernel adds 2^B to a negative value
// and uses the rest as they are, their PyTorch path takes the value modulo 2^B, our kernels
// mask the low B bits. Every one of them agrees on values in [-2^(B-1), 2^B), so decoding
// accepts exactly those (a file that our older writer made, with indices stored unsigned, is
// inside it too) and refuses the rest as a damaged file.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/model/tensor.h"

namespace aqlm {

// I8 for nbits <= 8, I16 for nbits <= 16; Error for other widths.
DType aqlm_code_dtype(int nbits);

// Writes n codes (each < 2^nbits; Error naming `what` otherwise) into `out`, which holds
// n * dtype_size(aqlm_code_dtype(nbits)) bytes.
void encode_aqlm_codes(const uint16_t* codes, size_t n, int nbits, void* out, const std::string& what);

// The unsigned indices of a stored codes tensor (I8 or I16 of the width nbits needs). Error
// naming `what`, the position and the value when a stored value is outside [-2^(B-1), 2^B).
std::vector<uint16_t> decode_aqlm_codes(const TensorView& codes, int nbits, const std::string& what);

}  // namespace aqlm
