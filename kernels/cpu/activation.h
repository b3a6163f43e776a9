#pragma once
// Element-wise activations and the softmax family, vectorised with AVX2.
#include <cstdint>

namespace aqlm::cpu {

// out[i] = silu(gate[i]) * up[i], silu(x) = x / (1 + e^-x) (the SwiGLU MLP). out may alias gate or up.
void swiglu(const float* gate, const float* up, float* out, int64_t n);

// In place: x = e^(x - max) / sum. Entries equal to -inf become 0 (masked positions).
void softmax(float* x, int64_t n);

// log(sum_i e^x[i]), stable (shifted by the max); the sum is accumulated in double.
double logsumexp(const float* x, int64_t n);

// Element-wise e^x over n floats (exposed for tests of the vector exp).
void exp_array(const float* x, float* out, int64_t n);

}  // namespace aqlm::cpu
