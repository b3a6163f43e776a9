#include "kernels/cuda/aqlm_gemv_cuda.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "core/common/error.h"
#include "kernels/cuda/aqlm_gemv_common.cuh"
#include "kernels/cuda/aqlm_gemv_gather.cuh"
#include "kernels/cuda/aqlm_gemv_launch.h"
#include "kernels/cuda/aqlm_gemv_layout.h"
#include "kernels/cuda/aqlm_gemv_lut.cuh"
#include "kernels/cuda/cuda_check.h"

namespace aqlm::cuda {

namespace detail {

void allow_dynamic_smem(const void* kernel, int bytes, int carveout) {
  static std::mutex mutex;
  static std::set<std::pair<const void*, int>> done;
  int device = 0;
  check(cudaGetDevice(&device), "reading the current CUDA device");
  const auto key = std::make_pair(kernel, device);
  std::lock_guard<std::mutex> lock(mutex);
  if (done.count(key)) return;
  AQLM_CHECK(bytes <= device_properties().max_smem_per_block, "the AQLM gemv kernel needs ", bytes,
             " bytes of shared memory but this GPU gives a block at most ", device_properties().max_smem_per_block);
  check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes),
        "raising the AQLM gemv kernel's shared-memory limit");
  if (carveout >= 0)
    check(cudaFuncSetAttribute(kernel, cudaFuncAttributePreferredSharedMemoryCarveout, carveout),
          "setting the AQLM gemv kernel's shared-memory carveout");
  done.insert(key);
}

int lut_fixed_smem_bytes(int T, int K) {
  switch (T * 16 + K) {
    case 16 + 1: return LutShape<1, 1>::kTableBytes + LutShape<1, 1>::kRingBytes;
    case 16 + 2: return LutShape<1, 2>::kTableBytes + LutShape<1, 2>::kRingBytes;
    case 16 + 4: return LutShape<1, 4>::kTableBytes + LutShape<1, 4>::kRingBytes;
    case 16 + 8: return LutShape<1, 8>::kTableBytes + LutShape<1, 8>::kRingBytes;
    case 32 + 1: return LutShape<2, 1>::kTableBytes + LutShape<2, 1>::kRingBytes;
    case 32 + 2: return LutShape<2, 2>::kTableBytes + LutShape<2, 2>::kRingBytes;
    case 32 + 4: return LutShape<2, 4>::kTableBytes + LutShape<2, 4>::kRingBytes;
    case 64 + 1: return LutShape<4, 1>::kTableBytes + LutShape<4, 1>::kRingBytes;
    case 64 + 2: return LutShape<4, 2>::kTableBytes + LutShape<4, 2>::kRingBytes;
    default: fail("AQLM gemv: no lookup-table kernel for ", T, " tokens and ", K, " slabs per set");
  }
}

}  // namespace detail

namespace lut {

SlabGeometry slab_geometry(const AqlmView& w) {
  SlabGeometry g;
  g.gps = groups_per_slab(w.num_codebooks);
  g.rows_pad = (w.out + 31) / 32 * 32;
  g.slabs = ((w.groups() + g.gps - 1) / g.gps + 1) / 2 * 2;
  return g;
}

// Rows are split over a few threads (a 7B model holds ~2 GB of codes).
void relayout_to_slabs(const AqlmView& w, const SlabGeometry& g, uint8_t* dst) {
  const int M = w.num_codebooks, gps = g.gps;
  const int64_t groups = w.groups();
  const uint32_t mask = w.code_mask();
  const bool fast = w.code_bytes == 1;
  const auto* codes8 = static_cast<const uint8_t*>(w.codes);
  auto rows = [&](int64_t row_begin, int64_t row_end) {
    uint8_t chunk[16];
    for (int64_t row = row_begin; row < row_end; ++row) {
      for (int64_t slab = 0; slab < g.slabs; ++slab) {
        const int64_t group0 = slab * gps;
        const int valid = int(std::clamp<int64_t>(groups - group0, 0, gps)) * M;  // bytes of real codes
        std::memset(chunk, 0, sizeof chunk);
        if (row < w.out) {
          if (fast) {
            const uint8_t* src = codes8 + (row * groups + group0) * M;
            for (int b = 0; b < valid; ++b) chunk[b] = uint8_t(src[b] & mask);
          } else {
            for (int b = 0; b < valid; ++b) chunk[b] = uint8_t(w.code(row, group0 + b / M, b % M));
          }
        }
        uint8_t* out = dst + (slab * g.rows_pad + row) * 16;
        for (int b = 0; b < 16; ++b) out[stored_position(b, int(row & 15))] = chunk[b];
      }
    }
  };
  const int64_t threads = std::clamp<int64_t>(g.rows_pad / 2048, 1, std::max(1u, std::thread::hardware_concurrency()));
  std::vector<std::thread> pool;
  for (int64_t t = 1; t < threads; ++t)
    pool.emplace_back(rows, g.rows_pad * t / threads, g.rows_pad * (t + 1) / threads);
  rows(0, g.rows_pad / threads);
  for (auto& th : pool) th.join();
}

}  // namespace lut

using detail::to_act;
using lut::SlabGeometry;
using lut::slab_geometry;

// ---------------------------------------------------------------------------------------
// Preparing a layer

namespace {

constexpr int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

struct PlanSizes {
  size_t codes = 0, codebooks = 0, scales = 0;
  size_t total() const { return codes + codebooks + scales; }
};

PlanSizes plan_sizes(const AqlmView& w) {
  PlanSizes s;
  if (w.nbits <= 8) {
    const SlabGeometry g = slab_geometry(w);
    s.codes = size_t(g.slabs * g.rows_pad) * 16;
  } else {
    s.codes = size_t(round_up(int64_t(w.codes_size_bytes()), 16));
  }
  s.codebooks = size_t(round_up(int64_t(w.codebooks_size_bytes()), 16));
  s.scales = size_t(round_up(int64_t(w.scales_size_bytes()), 16));
  return s;
}

}  // namespace

void check_cuda_aqlm_view(const AqlmView& w, const char* what) {
  check_aqlm_view(w, what);
  AQLM_CHECK(w.group_size == 8, what, ": the CUDA AQLM kernels need in_group_size 8, not ", w.group_size);
  if (w.nbits <= 8) {
    AQLM_CHECK(w.num_codebooks <= 4, what, ": the CUDA AQLM kernels take at most 4 codebooks of 8 bits, not ",
               w.num_codebooks);
  } else {
    AQLM_CHECK(w.num_codebooks <= 2, what, ": the CUDA AQLM kernels take at most 2 codebooks of ", w.nbits,
               " bits, not ", w.num_codebooks);
  }
  AQLM_CHECK(w.out <= (int64_t(1) << 28) && w.groups() <= (int64_t(1) << 26), what, ": a ", w.out, " x ", w.in,
             " layer is larger than the CUDA kernels index");
}

size_t prepared_bytes(const AqlmView& shape) { return plan_sizes(shape).total(); }

AqlmCudaPlan::~AqlmCudaPlan() { device_free(memory_); }

AqlmCudaPlan::AqlmCudaPlan(AqlmCudaPlan&& o) noexcept
    : view_(o.view_),
      slab_layout_(o.slab_layout_),
      rows_padded_(o.rows_padded_),
      slab_count_(o.slab_count_),
      memory_(std::exchange(o.memory_, nullptr)),
      bytes_(std::exchange(o.bytes_, 0)) {}

AqlmCudaPlan& AqlmCudaPlan::operator=(AqlmCudaPlan&& o) noexcept {
  std::swap(view_, o.view_);
  std::swap(slab_layout_, o.slab_layout_);
  std::swap(rows_padded_, o.rows_padded_);
  std::swap(slab_count_, o.slab_count_);
  std::swap(memory_, o.memory_);
  std::swap(bytes_, o.bytes_);
  return *this;
}

AqlmCudaPlan prepare(const AqlmView& w, Memory where, const char* what) {
  check_cuda_aqlm_view(w, what);
  const PlanSizes sizes = plan_sizes(w);
  AqlmCudaPlan plan;
  plan.bytes_ = sizes.total();
  plan.memory_ = device_alloc(plan.bytes_, str("the AQLM layer ", what));
  auto* base = static_cast<uint8_t*>(plan.memory_);
  uint8_t* codes = base;
  uint8_t* codebooks = base + sizes.codes;
  uint8_t* scales = codebooks + sizes.codebooks;
  const std::string uploading = str("uploading the AQLM layer ", what);
  // Host copies of the codes when they are on the device (the re-layout runs on the host).
  std::vector<uint8_t> host_codes;
  AqlmView host = w;
  if (where == Memory::Device && w.nbits <= 8) {
    host_codes.resize(w.codes_size_bytes());
    check(cudaMemcpy(host_codes.data(), w.codes, host_codes.size(), cudaMemcpyDeviceToHost), uploading);
    host.codes = host_codes.data();
  }
  if (w.nbits <= 8) {
    const SlabGeometry g = slab_geometry(w);
    std::vector<uint8_t> relaid(sizes.codes);
    lut::relayout_to_slabs(host, g, relaid.data());
    check(cudaMemcpy(codes, relaid.data(), relaid.size(), cudaMemcpyHostToDevice), uploading);
    plan.slab_layout_ = true;
    plan.rows_padded_ = g.rows_pad;
    plan.slab_count_ = g.slabs;
  } else {
    check(cudaMemcpy(codes, w.codes, w.codes_size_bytes(), cudaMemcpyDefault), uploading);
  }
  check(cudaMemcpy(codebooks, w.codebooks, w.codebooks_size_bytes(), cudaMemcpyDefault), uploading);
  check(cudaMemcpy(scales, w.scales, w.scales_size_bytes(), cudaMemcpyDefault), uploading);
  plan.view_ = w;
  plan.view_.codes = codes;
  plan.view_.codebooks = reinterpret_cast<const uint16_t*>(codebooks);
  plan.view_.scales = reinterpret_cast<const uint16_t*>(scales);
  return plan;
}

AqlmGemvWorkspace::~AqlmGemvWorkspace() {
  device_free(partial_);
  device_free(counters_);
}

void AqlmGemvWorkspace::reserve(size_t partial_floats, size_t counters) {
  if (partial_floats > partial_capacity_) {
    device_free(partial_);
    partial_ = nullptr;
    partial_capacity_ = 0;
    partial_ = static_cast<float*>(device_alloc(partial_floats * sizeof(float), "the AQLM gemv workspace"));
    partial_capacity_ = partial_floats;
  }
  if (counters > counter_capacity_) {
    device_free(counters_);
    counters_ = nullptr;
    counter_capacity_ = 0;
    counters_ = static_cast<unsigned*>(device_alloc(counters * sizeof(unsigned), "the AQLM gemv workspace"));
    check(cudaMemset(counters_, 0, counters * sizeof(unsigned)), "clearing the AQLM gemv workspace");
    counter_capacity_ = counters;
  }
}

// ---------------------------------------------------------------------------------------
// Reduction of the gather kernel's partial sums: y[t, row] = scale[row] * sum_s partial[s,
// t, row], added in slab order (each of the block's warps sums a strided slice of the slabs,
// then warp 0 adds the slices in order), so results are deterministic.

namespace {

struct ReduceParams {
  const float* partial;
  int64_t s_stride, t_stride;  // floats between slabs / tokens
  int sets, out;
  const uint16_t* scales;
  uint16_t* y;  // [n][out]
  bool bf16;
};

constexpr int kReduceMaxWarps = 16;

__global__ void __launch_bounds__(32 * kReduceMaxWarps) aqlm_reduce_kernel(const ReduceParams r) {
  detail::wait_for_producer();
  __shared__ float slice_sums[kReduceMaxWarps][33];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, slices = blockDim.x >> 5;
  const int row = blockIdx.x * 32 + lane, tok = blockIdx.y;
  float sum = 0.0f;
  if (row < r.out) {
    const float* src = r.partial + tok * r.t_stride + row;
#pragma unroll 8
    for (int s = warp; s < r.sets; s += slices) sum += __ldcg(src + s * r.s_stride);
  }
  slice_sums[warp][lane] = sum;
  __syncthreads();
  if (warp == 0 && row < r.out) {
    float total = 0.0f;
    for (int i = 0; i < slices; ++i) total += slice_sums[i][lane];
    r.y[int64_t(tok) * r.out + row] = to_act(total * detail::half_bits_to_float(__ldg(r.scales + row)), r.bf16);
  }
}

void launch_reduce(const ReduceParams& r, int n, bool dependent, cudaStream_t stream) {
  const int warps = r.sets <= 32 ? 8 : kReduceMaxWarps;
  cudaLaunchConfig_t config{};
  config.gridDim = dim3(unsigned((r.out + 31) / 32), unsigned(n), 1);
  config.blockDim = dim3(unsigned(32 * warps), 1, 1);
  config.dynamicSmemBytes = 0;
  config.stream = stream;
  cudaLaunchAttribute attribute{};
  attribute.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attribute.val.programmaticStreamSerializationAllowed = 1;
  if (dependent && device_properties().major >= 9) {
    config.attrs = &attribute;
    config.numAttrs = 1;
  }
  check(cudaLaunchKernelEx(&config, aqlm_reduce_kernel, r), "AQLM gemv reduction kernel launch");
}

// ---------------------------------------------------------------------------------------
// Lookup-table kernel: geometry. Per call, K (slabs per set) trades the table builds (every
// block builds the tables of each set it touches: K x 4096 entries) against the partial sums
// (sets x T x rows floats written and read back through L2) and the balance of the units
// (K-slab sets x 512-row tiles) over the SMs. The estimate is in SM cycles per block.

struct LutChoice {
  int T = 1, K = 2;
  int sets = 0, tiles = 0, units = 0, grid = 0, xs_sets = 0;
  size_t smem = 0;
};

LutChoice lut_choice_for(const AqlmCudaPlan& w, int T, int K) {
  const int sms = device_properties().sm_count;
  LutChoice c;
  c.T = T;
  c.K = K;
  c.sets = int((w.slab_count() + K - 1) / K);
  c.tiles = int((w.rows_padded() + lut::kThreads - 1) / lut::kThreads);
  c.units = c.sets * c.tiles;
  c.grid = std::min(c.units, sms);
  for (int b = 0; b < c.grid; ++b) {
    const int u0 = int(int64_t(c.units) * b / c.grid), u1 = int(int64_t(c.units) * (b + 1) / c.grid);
    if (u1 > u0) c.xs_sets = std::max(c.xs_sets, (u1 - 1) / c.tiles - u0 / c.tiles + 1);
  }
  const int M = w.view().num_codebooks, B = w.view().nbits, gps = lut::groups_per_slab(M);
  c.smem = size_t(detail::lut_fixed_smem_bytes(T, K)) + size_t(M) * (size_t(8) << B) * 4 +
           size_t(c.xs_sets) * T * K * gps * 8 * 4;
  return c;
}

double lut_cycles(const AqlmCudaPlan& w, const LutChoice& c) {
  const double upb = double(c.units) / c.grid;
  // Streaming a unit: 512 rows x K chunks of 16 bytes at ~13 bytes per cycle per SM (3 TB/s).
  const double unit_cycles = 512.0 * c.K * 16.0 / 13.0;
  const double builds = 1.0 + (upb - 1.0) / c.tiles;
  const double built_slabs = c.K == 1 && c.T == 1 ? 2.0 : c.K;  // one slab: mirrored copy
  const double build_cycles = built_slabs * 16.0 * double(1 << w.view().nbits) * (8.0 * c.T + 6.0) / 64.0;
  const double partial_cycles = double(c.sets) * c.T * double(w.rows_padded()) * 8.0 / c.grid / 16.0;
  return std::ceil(upb) * unit_cycles + builds * build_cycles + partial_cycles;
}

LutChoice choose_lut(const AqlmCudaPlan& w, int T, int forced_k) {
  const int max_smem = device_properties().max_smem_per_block;
  if (forced_k > 0) {
    AQLM_CHECK(forced_k == 1 || forced_k == 2 || forced_k == 4 || forced_k == 8, "AQLM gemv: ", forced_k,
               " slabs per set (expected 1, 2, 4 or 8)");
    AQLM_CHECK(forced_k * T <= 8, "AQLM gemv: ", forced_k, " slabs per set need more than 128 KB of tables for ", T,
               " tokens");
    const LutChoice c = lut_choice_for(w, T, forced_k);
    AQLM_CHECK(c.smem <= size_t(max_smem), "AQLM gemv: ", forced_k, " slabs per set need ", c.smem,
               " bytes of shared memory; this GPU gives a block ", max_smem);
    return c;
  }
  LutChoice best;
  double best_cost = 0;
  for (int K : {1, 2, 4, 8}) {
    if (K * T > 8) continue;
    const LutChoice c = lut_choice_for(w, T, K);
    if (c.smem > size_t(max_smem)) continue;
    const double cost = lut_cycles(w, c);
    if (best.units == 0 || cost < best_cost) best = c, best_cost = cost;
  }
  AQLM_CHECK(best.units > 0, "AQLM gemv: no lookup-table geometry fits this GPU's shared memory");
  return best;
}

void run_lut(const AqlmCudaPlan& w, const void* x, void* y, int n, int T, DType act, AqlmGemvWorkspace& ws,
             cudaStream_t stream, const AqlmGemvOptions& options) {
  const LutChoice c = choose_lut(w, T, options.slabs_per_set);
  const AqlmView& v = w.view();
  ws.reserve(size_t(c.sets) * T * size_t(w.rows_padded()), size_t(w.rows_padded() / 32));
  detail::LutParams p{};
  p.codes = static_cast<const uint4*>(v.codes);
  p.codebooks = v.codebooks;
  p.scales = v.scales;
  p.x = static_cast<const uint16_t*>(x);
  p.y = static_cast<uint16_t*>(y);
  p.partial = ws.partial();
  p.counters = ws.counters();
  p.out = int(v.out);
  p.rows_pad = int(w.rows_padded());
  p.groups = int(v.groups());
  p.n = n;
  p.M = v.num_codebooks;
  p.nbits = v.nbits;
  p.gps = lut::groups_per_slab(v.num_codebooks);
  p.slabs = int(w.slab_count());
  p.sets = c.sets;
  p.tiles = c.tiles;
  p.units = c.units;
  p.xs_sets = c.xs_sets;
  p.bf16 = act == DType::BF16;
  switch (T) {
    case 1: detail::launch_lut_t1(c.K, p, c.grid, c.smem, stream); break;
    case 2: detail::launch_lut_t2(c.K, p, c.grid, c.smem, stream); break;
    default: detail::launch_lut_t4(c.K, p, c.grid, c.smem, stream); break;
  }
}

// Largest cp.async width that keeps every copy of a slab's row aligned and inside the row.
int copy_width(const AqlmView& w, int slab_row_bytes) {
  const int64_t pitch = w.groups() * w.num_codebooks * w.code_bytes;
  const uintptr_t base = reinterpret_cast<uintptr_t>(w.codes);
  for (int v : {16, 8, 4})
    if (pitch % v == 0 && base % v == 0 && slab_row_bytes % v == 0) return v;
  return 1;
}

void run_gather(const AqlmCudaPlan& w, const void* x, void* y, int n, int T, DType act, AqlmGemvWorkspace& ws,
                cudaStream_t stream, const AqlmGemvOptions& options) {
  const AqlmView& v = w.view();
  const int G = detail::gather_groups_per_slab(T), M = v.num_codebooks;
  detail::GatherParams p{};
  p.codes = static_cast<const uint8_t*>(v.codes);
  p.codebooks = reinterpret_cast<const uint4*>(v.codebooks);
  p.scales = v.scales;
  p.x = static_cast<const uint16_t*>(x);
  p.y = static_cast<uint16_t*>(y);
  p.out = int(v.out);
  p.groups = int(v.groups());
  p.n = n;
  p.nbits = v.nbits;
  p.mask = v.code_mask();
  p.slabs = int((v.groups() + G - 1) / G);
  p.tiles = (p.out + detail::gather_tile_rows(M, T) - 1) / detail::gather_tile_rows(M, T);
  AQLM_CHECK(int64_t(p.slabs) * p.tiles < (int64_t(1) << 31), "AQLM gemv: a ", v.out, " x ", v.in,
             " layer has too many work units");
  p.units = p.slabs * p.tiles;
  p.vec = copy_width(v, G * M * 2);
  p.bf16 = act == DType::BF16;
  if (p.slabs > 1) {
    ws.reserve(size_t(p.slabs) * T * size_t(v.out), 0);
    p.partial = ws.partial();
  }
  detail::launch_gather(M, T, p, stream);
  if (p.slabs == 1) return;
  ReduceParams r{};
  r.partial = ws.partial();
  r.s_stride = int64_t(T) * v.out;
  r.t_stride = v.out;
  r.sets = p.slabs;
  r.out = p.out;
  r.scales = v.scales;
  r.y = p.y;
  r.bf16 = p.bf16;
  launch_reduce(r, n, options.dependent_launch, stream);
}

int padded_tokens(int n) { return n == 1 ? 1 : n == 2 ? 2 : n <= 4 ? 4 : 8; }

}  // namespace

void aqlm_gemv(const AqlmCudaPlan& w, const void* x, void* y, int n, DType act, AqlmGemvWorkspace& workspace,
               cudaStream_t stream, const AqlmGemvOptions& options) {
  AQLM_CHECK(w.view().codes, "AQLM gemv: the layer was not prepared");
  AQLM_CHECK(n >= 1, "AQLM gemv: token count is ", n, " (expected at least 1)");
  AQLM_CHECK(x && y, "AQLM gemv: missing input or output buffer");
  AQLM_CHECK(reinterpret_cast<uintptr_t>(x) % 16 == 0, "AQLM gemv: the input must start at a 16-byte aligned address");
  const AqlmView& v = w.view();
  const size_t elem = 2;
  const int pass = w.slabs() ? 4 : 8;
  for (int t0 = 0; t0 < n; t0 += pass) {
    const int chunk = std::min(pass, n - t0);
    const void* xt = static_cast<const uint8_t*>(x) + size_t(t0) * size_t(v.in) * elem;
    void* yt = static_cast<uint8_t*>(y) + size_t(t0) * size_t(v.out) * elem;
    if (w.slabs()) {
      run_lut(w, xt, yt, chunk, padded_tokens(chunk), act, workspace, stream, options);
    } else {
      run_gather(w, xt, yt, chunk, padded_tokens(chunk), act, workspace, stream, options);
    }
  }
}

// ---------------------------------------------------------------------------------------
// Dequantization: one thread per (row, group), eight outputs as one 16-byte store.

namespace {

struct DequantParams {
  const uint8_t* codes;
  const uint4* codebooks;
  const uint16_t* scales;
  uint4* out;  // [rows, groups] of 8 values
  int64_t rows;
  int groups;
  int M;
  int nbits;
  uint32_t mask;
  int code_bytes;
  bool slabs;  // slab layout (B <= 8): chunk (slab, row) of 16 bytes, rotated by the row
  int64_t rows_pad;
  int gps;
  bool bf16;
};

__global__ void __launch_bounds__(256) aqlm_dequantize_kernel(const DequantParams p) {
  const int64_t total = p.rows * p.groups;
  for (int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; idx < total;
       idx += int64_t(gridDim.x) * blockDim.x) {
    const int64_t row = idx / p.groups;
    const int group = int(idx - row * p.groups);
    float w[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int m = 0; m < p.M; ++m) {
      uint32_t code;
      if (p.slabs) {
        const int slab = group / p.gps, table = (group - slab * p.gps) * p.M + m;
        code = __ldg(p.codes + (slab * p.rows_pad + row) * 16 + lut::stored_position(table, int(row & 15)));
      } else {
        const int64_t ci = idx * p.M + m;
        code = (p.code_bytes == 1 ? uint32_t(__ldg(p.codes + ci))
                                  : uint32_t(__ldg(reinterpret_cast<const uint16_t*>(p.codes) + ci))) &
               p.mask;
      }
      float v[8];
      detail::codeword_to_float(__ldg(p.codebooks + (int64_t(m) << p.nbits) + code), v);
#pragma unroll
      for (int k = 0; k < 8; ++k) w[k] += v[k];
    }
    const float s = detail::half_bits_to_float(__ldg(p.scales + row));
    uint32_t packed[4];
#pragma unroll
    for (int k = 0; k < 4; ++k)
      packed[k] = uint32_t(to_act(w[2 * k] * s, p.bf16)) | (uint32_t(to_act(w[2 * k + 1] * s, p.bf16)) << 16);
    p.out[idx] = make_uint4(packed[0], packed[1], packed[2], packed[3]);
  }
}

}  // namespace

void aqlm_dequantize(const AqlmCudaPlan& w, void* out, DType act, cudaStream_t stream) {
  AQLM_CHECK(w.view().codes, "AQLM dequantize: the layer was not prepared");
  AQLM_CHECK(out && reinterpret_cast<uintptr_t>(out) % 16 == 0,
             "AQLM dequantize: the output must be a 16-byte aligned device buffer");
  const AqlmView& v = w.view();
  DequantParams p{};
  p.codes = static_cast<const uint8_t*>(v.codes);
  p.codebooks = reinterpret_cast<const uint4*>(v.codebooks);
  p.scales = v.scales;
  p.out = static_cast<uint4*>(out);
  p.rows = v.out;
  p.groups = int(v.groups());
  p.M = v.num_codebooks;
  p.nbits = v.nbits;
  p.mask = v.code_mask();
  p.code_bytes = v.code_bytes;
  p.slabs = w.slabs();
  p.rows_pad = w.rows_padded();
  p.gps = lut::groups_per_slab(v.num_codebooks);
  p.bf16 = act == DType::BF16;
  const int64_t total = v.out * v.groups();
  const int64_t grid = std::min<int64_t>((total + 255) / 256, int64_t(device_properties().sm_count) * 16);
  aqlm_dequantize_kernel<<<unsigned(grid), 256, 0, stream>>>(p);
  check_launch("AQLM dequantize");
}

}  // namespace aqlm::cuda
