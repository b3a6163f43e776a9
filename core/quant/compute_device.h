#pragma once
// Where the quantization work runs: the CPU (every build) or one CUDA GPU (builds with
// AQLM_HAVE_CUDA, see docs/gpu-notes.md). The GPU path runs the same algorithm with the same
// options; its results match the CPU's closely but not bit for bit (docs/gpu-notes.md says how close).
#include <string>

namespace aqlm {

enum class ComputeDevice { Cpu, Cuda };

const char* compute_device_name(ComputeDevice device);  // "cpu", "cuda"
// "cpu" or "cuda"; Error naming the text and the choices otherwise.
ComputeDevice parse_compute_device(const std::string& name);

// "" when this build has the CUDA quantization backend and a GPU can be used, else the reason
// ("this build has no CUDA support", "no CUDA GPU: ...").
std::string cuda_quantization_unavailable_reason();
// Throws Error("<what>: <reason>") when the CUDA backend cannot be used.
void require_cuda_quantization(const std::string& what);

}  // namespace aqlm
