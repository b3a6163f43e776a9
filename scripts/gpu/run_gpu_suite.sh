#!/usr/bin/env bash
# The AQLM kernel GPU suite, in one command for the GPU machine: the CUDA kernel tests
# (test_kernels_cuda), a few of them under compute-sanitizer (memcheck, racecheck), the
# benchmark (bench_kernels_cuda, vs fp16 cuBLAS), optionally Nsight Compute on chosen cases;
# a short table last. Logs go to $OUT (default build-gpu-out/).
#
# Binaries: carried from the development machine when they run there (saves the lease the
# build), else built from kernels/cuda as a standalone CMake project (Ninja, Release, sm_90
# unless CUDA_ARCH says otherwise):
#   here:  ninja -C build-kernels2 test_kernels_cuda bench_kernels_cuda &&
#          mkdir -p .device-carry/kernels2 && cp build-kernels2/bin/{test,bench}_kernels_cuda .device-carry/kernels2/
#   there: carry .device-carry/kernels2 (and .device-carry/googletest for a build:
#          cp -r /usr/src/googletest .device-carry/)
# Environment: OUT, BUILD (build folder), CUDA_ARCH (default 90), BENCH_ARGS (e.g. --quick,
# --sweep), SANITIZE=0 to skip compute-sanitizer (SANITIZE_TOOLS: default "memcheck
# racecheck"), FORCE_BUILD=1 to ignore carried binaries, PROFILE="CONFIG SHAPE BATCH;..." for
# ncu (e.g. "2x8g8 28672x8192 1"), NO_DEPENDENT_LAUNCH_TOO=1 to time 2x8g8 batch 1 again with
# the reduction launched plainly.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${OUT:-$ROOT/build-gpu-out}
BUILD=${BUILD:-$ROOT/build-gpu}
ARCH=${CUDA_ARCH:-90}
CARRIED=$ROOT/.device-carry/kernels2
mkdir -p "$OUT"
status=0

echo "== GPU"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv 2>&1 | tee "$OUT/gpu.txt"
nvcc --version | tail -2 | tee -a "$OUT/gpu.txt"

# cuBLAS and the CUDA runtime for carried binaries.
cuda_libs=$(dirname "$(find /usr/local/cuda*/ /usr/lib/x86_64-linux-gnu -name 'libcublas.so.13*' 2>/dev/null | head -1)" 2>/dev/null)
export LD_LIBRARY_PATH=${cuda_libs:+$cuda_libs:}${LD_LIBRARY_PATH:-}
BIN=$BUILD/bin
if [ "${FORCE_BUILD:-0}" != 1 ] && [ -x "$CARRIED/test_kernels_cuda" ] && [ -x "$CARRIED/bench_kernels_cuda" ] &&
   "$CARRIED/test_kernels_cuda" --gtest_list_tests > /dev/null 2>&1; then
  BIN=$CARRIED
  echo "== carried binaries ($BIN)"
else
  echo "== build (sm_$ARCH)"
  gtest_arg=()
  if [ -d "$ROOT/.device-carry/googletest" ]; then gtest_arg=(-DAQLM_GTEST_SOURCE="$ROOT/.device-carry/googletest"); fi
  start=$(date +%s)
  if ! { cmake -S "$ROOT/kernels/cuda" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
           -DCMAKE_CUDA_ARCHITECTURES="$ARCH" -DAQLM_CUDA_PTXAS_VERBOSE=ON "${gtest_arg[@]}" ${CMAKE_EXTRA:-} &&
         ninja -C "$BUILD" -j"$(nproc)" test_kernels_cuda bench_kernels_cuda; } > "$OUT/build.log" 2>&1; then
    tail -40 "$OUT/build.log"
    echo "BUILD FAILED"
    exit 1
  fi
  echo "built in $(( $(date +%s) - start )) s"
  # Resource report: registers, spills, stack per kernel.
  grep -A2 "Compiling entry function\|Function properties for" "$OUT/build.log" | grep -E "entry function|registers|spill" \
    | sed 's/ptxas info *: //' > "$OUT/ptxas.txt"
  echo "kernels with spills or stack: $(grep -cE '[1-9][0-9]* bytes (stack frame|spill)' "$OUT/ptxas.txt")"
fi

echo "== tests"
start=$(date +%s)
timeout 200 "$BIN/test_kernels_cuda" > "$OUT/tests.log" 2>&1 || status=1
echo "tests took $(( $(date +%s) - start )) s"
grep -E "^\[  (PASSED|FAILED) |tests? ran|FAILED TEST|SKIPPED \] [0-9]" "$OUT/tests.log" | tail -30

if [ "${SANITIZE:-1}" != 0 ] && command -v compute-sanitizer > /dev/null; then
  echo "== compute-sanitizer (memcheck, racecheck) on small cases"
  filter='Layers/AqlmGemvCuda.*/2x8g8_1000x576_n1_fp16:Layers/AqlmGemvCuda.*/2x8g8_1000x576_n3_fp16:Layers/AqlmGemvCuda.*/1x8g8_90x72_n1_fp16:Layers/AqlmGemvCuda.*/3x8g8_100x200_n2_fp16:Layers/AqlmGemvCuda.*/1x16g8_1000x576_n8_fp16:Layers/AqlmGemvCuda.*/2x8g8_37x8_n1_fp16:AqlmDequantizeCuda.*'
  for tool in ${SANITIZE_TOOLS:-memcheck racecheck}; do
    timeout 150 compute-sanitizer --tool "$tool" --error-exitcode 9 "$BIN/test_kernels_cuda" \
      --gtest_filter="$filter" > "$OUT/sanitizer-now.log" 2>&1
    rc=$?
    echo "$tool: exit $rc ($(grep -c 'OK \]' "$OUT/sanitizer-now.log") tests ok); $(grep -E 'ERROR SUMMARY' "$OUT/sanitizer-now.log" | tail -1)"
    { echo "==== $tool"; cat "$OUT/sanitizer-now.log"; } >> "$OUT/sanitizer.log"
    rm -f "$OUT/sanitizer-now.log"
    [ $rc -eq 0 ] || status=1
  done
fi

echo "== benchmark ${BENCH_ARGS:-}"
timeout 420 "$BIN/bench_kernels_cuda" ${BENCH_ARGS:-} > "$OUT/bench.log" 2>&1 || status=1
grep -v "^row " "$OUT/bench.log" | grep -v "^2x8g8\|^1x16g8\|^1x8g8" | head -5

if [ "${NO_DEPENDENT_LAUNCH_TOO:-0}" = 1 ]; then
  timeout 120 "$BIN/bench_kernels_cuda" --only 2x8g8 --batch 1 --no-dependent-launch > "$OUT/bench-plain-launch.log" 2>&1 || status=1
  echo "2x8g8 batch 1, reduction launched plainly (no programmatic dependent launch):"
  awk '/^row /{printf "  %-11s call %7.2f graph %7.2f\n", $3, $6, $8}' "$OUT/bench-plain-launch.log"
fi

# Optional: Nsight Compute on one launch of each "CONFIG SHAPE BATCH" in $PROFILE (';'-separated).
if [ -n "${PROFILE:-}" ] && command -v ncu > /dev/null; then
  echo "== ncu"
  IFS=';' read -ra cases <<< "$PROFILE"
  for c in "${cases[@]}"; do
    read -r cfg shape batch <<< "$c"
    echo "---- $cfg $shape batch $batch" >> "$OUT/ncu.txt"
    timeout 150 ncu --clock-control none --launch-skip 25 --launch-count 1 -k regex:'aqlm_(lut|gather)_kernel' \
      --section SpeedOfLight --section MemoryWorkloadAnalysis --section WarpStateStats --section SchedulerStats \
      --section Occupancy --section LaunchStats --section SourceCounters "$BIN/bench_kernels_cuda" --only "$cfg" \
      --shape "$shape" --batch "$batch" --iters 20 >> "$OUT/ncu.txt" 2>&1
    echo "$cfg $shape batch $batch:"
    grep -E "^    (Duration|Memory Throughput|DRAM Throughput|Compute \(SM\) Throughput|Warp Cycles Per Issued|Issued Warp Per Scheduler|Achieved Occupancy|L1/TEX Hit Rate|L2 Hit Rate)" \
      "$OUT/ncu.txt" | tail -9
  done
fi

# The short table: one line per (config, shape, batch) with the built-in choice (k0): us per
# call and per call inside a CUDA graph, cuBLAS likewise, speedups; with --sweep, the graph
# time of every slab-per-set choice k1..k8 too.
echo "== table (us; x = cuBLAS / AQLM; call = launched one by one, graph = inside a CUDA graph)"
awk '/^row / {
       key = $2 " " $3 " b" $4
       if (!(key in seen)) { seen[key] = 1; order[++n] = key }
       if ($5 == 0) line[key] = sprintf("call %7.2f graph %7.2f | cublas %7.2f %7.2f | x %5.2f %5.2f | %5.0f GB/s err %.0e",
                                        $6, $8, $9, $10, $9 / $6, $10 / $8, $11, $12)
       else sweep[key] = sweep[key] sprintf(" k%d %.2f", $5, $8)
     }
     END { for (i = 1; i <= n; ++i) printf "%-24s %s%s\n", order[i], line[order[i]], (order[i] in sweep) ? " |" sweep[order[i]] : "" }' "$OUT/bench.log"
grep -A6 "^dequant" "$OUT/bench.log"
exit $status
