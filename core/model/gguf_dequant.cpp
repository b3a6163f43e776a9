#include "core/model/gguf_dequant.h"

#include <cstring>

#include "core/common/error.h"
#include "core/common/half.h"

// ggml rounds every product to float before the add that follows; the project builds for
// x86-64-v3, where GCC would otherwise fuse a*b+c into one FMA (a different last bit).
#pragma GCC optimize("fp-contract=off")

namespace aqlm {

namespace {

constexpr int QK = 32;    // elements per block of the simple quants
constexpr int QK_K = 256; // elements per super-block of the k-quants

enum : uint32_t {
  kF32 = 0, kF16 = 1, kQ4_0 = 2, kQ4_1 = 3, kQ5_0 = 6, kQ5_1 = 7, kQ8_0 = 8,
  kQ4_K = 12, kQ5_K = 13, kQ6_K = 14, kBF16 = 30,
};

// Indexed by the ggml type number (ggml.h, enum ggml_type); {nullptr} marks a retired number.
const GgmlTypeInfo kTypes[] = {
    {"F32", 1, 4, true},        {"F16", 1, 2, true},       {"Q4_0", 32, 18, true},    {"Q4_1", 32, 20, true},
    {nullptr, 0, 0, false},     {nullptr, 0, 0, false},    {"Q5_0", 32, 22, true},    {"Q5_1", 32, 24, true},
    {"Q8_0", 32, 34, true},     {"Q8_1", 32, 40, false},   {"Q2_K", 256, 84, false},  {"Q3_K", 256, 110, false},
    {"Q4_K", 256, 144, true},   {"Q5_K", 256, 176, true},  {"Q6_K", 256, 210, true},  {"Q8_K", 256, 292, false},
    {"IQ2_XXS", 256, 66, false}, {"IQ2_XS", 256, 74, false}, {"IQ3_XXS", 256, 98, false}, {"IQ1_S", 256, 50, false},
    {"IQ4_NL", 32, 18, false},  {"IQ3_S", 256, 110, false}, {"IQ2_S", 256, 82, false}, {"IQ4_XS", 256, 136, false},
    {"I8", 1, 1, false},        {"I16", 1, 2, false},      {"I32", 1, 4, false},      {"I64", 1, 8, false},
    {"F64", 1, 8, false},       {"IQ1_M", 256, 56, false}, {"BF16", 1, 2, true},      {nullptr, 0, 0, false},
    {nullptr, 0, 0, false},     {nullptr, 0, 0, false},    {"TQ1_0", 256, 54, false}, {"TQ2_0", 256, 66, false},
    {nullptr, 0, 0, false},     {nullptr, 0, 0, false},    {nullptr, 0, 0, false},    {"MXFP4", 32, 17, false},
};

inline float half_at(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return f16_to_f32(h);
}

// The k-quants pack eight 6-bit scales and eight 6-bit minimums into 12 bytes.
inline void scale_min_k4(int j, const uint8_t* q, uint8_t* scale, uint8_t* min) {
  if (j < 4) {
    *scale = q[j] & 63;
    *min = q[j + 4] & 63;
  } else {
    *scale = uint8_t((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    *min = uint8_t((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

// Block layouts (bytes): Q8_0 {f16 d, i8 qs[32]}; Q4_0 {f16 d, u8 qs[16]}; Q4_1 {f16 d, f16 m, u8 qs[16]};
// Q5_0 {f16 d, u32 qh, u8 qs[16]}; Q5_1 {f16 d, f16 m, u32 qh, u8 qs[16]}.
void q8_0(const uint8_t* b, float* y) {
  const float d = half_at(b);
  for (int j = 0; j < QK; ++j) y[j] = float(int8_t(b[2 + j])) * d;
}

void q4_0(const uint8_t* b, float* y) {
  const float d = half_at(b);
  const uint8_t* qs = b + 2;
  for (int j = 0; j < QK / 2; ++j) {
    y[j] = float((qs[j] & 0x0F) - 8) * d;
    y[j + QK / 2] = float((qs[j] >> 4) - 8) * d;
  }
}

void q4_1(const uint8_t* b, float* y) {
  const float d = half_at(b), m = half_at(b + 2);
  const uint8_t* qs = b + 4;
  for (int j = 0; j < QK / 2; ++j) {
    y[j] = float(qs[j] & 0x0F) * d + m;
    y[j + QK / 2] = float(qs[j] >> 4) * d + m;
  }
}

void q5_0(const uint8_t* b, float* y) {
  const float d = half_at(b);
  uint32_t qh;
  std::memcpy(&qh, b + 2, 4);
  const uint8_t* qs = b + 6;
  for (int j = 0; j < QK / 2; ++j) {
    const int high0 = int((qh >> j) << 4) & 0x10;
    const int high1 = int(qh >> (j + 12)) & 0x10;
    y[j] = float(((qs[j] & 0x0F) | high0) - 16) * d;
    y[j + QK / 2] = float(((qs[j] >> 4) | high1) - 16) * d;
  }
}

void q5_1(const uint8_t* b, float* y) {
  const float d = half_at(b), m = half_at(b + 2);
  uint32_t qh;
  std::memcpy(&qh, b + 4, 4);
  const uint8_t* qs = b + 8;
  for (int j = 0; j < QK / 2; ++j) {
    const int high0 = int((qh >> j) << 4) & 0x10;
    const int high1 = int(qh >> (j + 12)) & 0x10;
    y[j] = float((qs[j] & 0x0F) | high0) * d + m;
    y[j + QK / 2] = float((qs[j] >> 4) | high1) * d + m;
  }
}

// Q4_K {f16 d, f16 dmin, u8 scales[12], u8 qs[128]}
void q4_k(const uint8_t* b, float* y) {
  const float d = half_at(b), dmin = half_at(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* q = b + 16;
  for (int j = 0, is = 0; j < QK_K; j += 64, is += 2, q += 32) {
    uint8_t sc, m;
    scale_min_k4(is, scales, &sc, &m);
    const float d1 = d * float(sc), m1 = dmin * float(m);
    scale_min_k4(is + 1, scales, &sc, &m);
    const float d2 = d * float(sc), m2 = dmin * float(m);
    for (int l = 0; l < 32; ++l) *y++ = d1 * float(q[l] & 0xF) - m1;
    for (int l = 0; l < 32; ++l) *y++ = d2 * float(q[l] >> 4) - m2;
  }
}

// Q5_K {f16 d, f16 dmin, u8 scales[12], u8 qh[32], u8 qs[128]}
void q5_k(const uint8_t* b, float* y) {
  const float d = half_at(b), dmin = half_at(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* qh = b + 16;
  const uint8_t* ql = b + 48;
  uint8_t u1 = 1, u2 = 2;
  for (int j = 0, is = 0; j < QK_K; j += 64, is += 2, ql += 32, u1 <<= 2, u2 <<= 2) {
    uint8_t sc, m;
    scale_min_k4(is, scales, &sc, &m);
    const float d1 = d * float(sc), m1 = dmin * float(m);
    scale_min_k4(is + 1, scales, &sc, &m);
    const float d2 = d * float(sc), m2 = dmin * float(m);
    for (int l = 0; l < 32; ++l) *y++ = d1 * float((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
    for (int l = 0; l < 32; ++l) *y++ = d2 * float((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
  }
}

// Q6_K {u8 ql[128], u8 qh[64], i8 scales[16], f16 d}
void q6_k(const uint8_t* b, float* y) {
  const uint8_t* ql = b;
  const uint8_t* qh = b + 128;
  const auto* sc = reinterpret_cast<const int8_t*>(b + 192);
  const float d = half_at(b + 208);
  for (int n = 0; n < QK_K; n += 128, y += 128, ql += 64, qh += 32, sc += 8) {
    for (int l = 0; l < 32; ++l) {
      const int is = l / 16;
      const int q1 = int((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
      const int q2 = int((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
      const int q3 = int((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      const int q4 = int((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      y[l + 0] = d * float(sc[is + 0]) * float(q1);
      y[l + 32] = d * float(sc[is + 2]) * float(q2);
      y[l + 64] = d * float(sc[is + 4]) * float(q3);
      y[l + 96] = d * float(sc[is + 6]) * float(q4);
    }
  }
}

}  // namespace

const GgmlTypeInfo* ggml_type_info(uint32_t type) {
  if (type >= sizeof(kTypes) / sizeof(kTypes[0]) || kTypes[type].name == nullptr) return nullptr;
  return &kTypes[type];
}

std::string ggml_type_name(uint32_t type) {
  const GgmlTypeInfo* info = ggml_type_info(type);
  return info ? std::string(info->name) : "type " + std::to_string(type);
}

std::string dequantizable_ggml_types() {
  std::string out;
  for (const auto& t : kTypes)
    if (t.name && t.dequantizable) out += (out.empty() ? "" : ", ") + std::string(t.name);
  return out;
}

void dequantize_ggml(uint32_t type, const void* src, float* dst, size_t n) {
  const GgmlTypeInfo* info = ggml_type_info(type);
  AQLM_CHECK(info && info->dequantizable, "GGML type ", ggml_type_name(type),
             " cannot be read (supported: ", dequantizable_ggml_types(), ")");
  AQLM_CHECK(n % size_t(info->block_size) == 0, "GGML type ", info->name, ": ", n, " elements are not a whole number of ",
             info->block_size, "-element blocks");
  const auto* b = static_cast<const uint8_t*>(src);
  const size_t blocks = n / size_t(info->block_size);
  void (*block_fn)(const uint8_t*, float*) = nullptr;
  switch (type) {
    case kF32: std::memcpy(dst, src, n * 4); return;
    case kF16:
      for (size_t i = 0; i < n; ++i) dst[i] = half_at(b + 2 * i);
      return;
    case kBF16:
      for (size_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, b + 2 * i, 2);
        dst[i] = bf16_to_f32(h);
      }
      return;
    case kQ8_0: block_fn = q8_0; break;
    case kQ4_0: block_fn = q4_0; break;
    case kQ4_1: block_fn = q4_1; break;
    case kQ5_0: block_fn = q5_0; break;
    case kQ5_1: block_fn = q5_1; break;
    case kQ4_K: block_fn = q4_k; break;
    case kQ5_K: block_fn = q5_k; break;
    case kQ6_K: block_fn = q6_k; break;
    default: fail("GGML type ", info->name, " has no dequantizer");
  }
  for (size_t i = 0; i < blocks; ++i) block_fn(b + i * size_t(info->type_size), dst + i * size_t(info->block_size));
}

}  // namespace aqlm
