#!/usr/bin/env bash
# The GPU suite, in one command for the GPU machine: configure and build the CUDA kernels,
# their tests and benchmark alone (kernels/cuda as a standalone CMake project, Ninja,
# Release, sm_90 unless CUDA_ARCH says otherwise), run the GPU tests (and a few under
# compute-sanitizer), run the benchmark, print one table. Logs go to $OUT (default
# build-gpu-out/).
#
# GoogleTest comes from the system or from .device-carry/googletest (a copy of
# /usr/src/googletest, for machines without the package):
#   mkdir -p .device-carry && cp -r /usr/src/googletest .device-carry/
# Environment: OUT, BUILD (build folder), CUDA_ARCH (default 90), BENCH_ARGS (e.g. --quick),
# SANITIZE=0 to skip compute-sanitizer.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${OUT:-$ROOT/build-gpu-out}
BUILD=${BUILD:-$ROOT/build-gpu}
ARCH=${CUDA_ARCH:-90}
mkdir -p "$OUT"
status=0

echo "== GPU"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv 2>&1 | tee "$OUT/gpu.txt"
nvcc --version | tail -2 | tee -a "$OUT/gpu.txt"

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

echo "== tests"
"$BUILD/bin/test_kernels_cuda" > "$OUT/tests.log" 2>&1 || status=1
grep -E "^\[  (PASSED|FAILED) |tests? ran|FAILED TEST|SKIPPED \] [0-9]" "$OUT/tests.log" | tail -30

if [ "${SANITIZE:-1}" != 0 ] && command -v compute-sanitizer > /dev/null; then
  echo "== compute-sanitizer (memcheck, racecheck) on small cases"
  filter='Layers/AqlmGemvCuda.*/2x8g8_1000x576_n1_fp16:Layers/AqlmGemvCuda.*/2x8g8_300x11008_n2_fp16:Layers/AqlmGemvCuda.*/1x8g8_90x72_n1_fp16:Layers/AqlmGemvCuda.*/1x16g8_1000x576_n8_fp16:Layers/AqlmGemvCuda.*/1x16g8_1000x576_n1_fp16_smemhead:Layers/AqlmGemvCuda.*/2x8g8_1000x576_n8_fp16'
  for tool in memcheck racecheck; do
    timeout 240 compute-sanitizer --tool "$tool" --error-exitcode 9 "$BUILD/bin/test_kernels_cuda" \
      --gtest_filter="$filter" > "$OUT/sanitizer-now.log" 2>&1
    rc=$?
    echo "$tool: exit $rc ($(grep -c 'OK \]' "$OUT/sanitizer-now.log") tests ok); $(grep -E 'ERROR SUMMARY' "$OUT/sanitizer-now.log" | tail -1)"
    { echo "==== $tool"; cat "$OUT/sanitizer-now.log"; } >> "$OUT/sanitizer.log"
    rm -f "$OUT/sanitizer-now.log"
    [ $rc -eq 0 ] || status=1
  done
fi

echo "== benchmark"
"$BUILD/bin/bench_kernels_cuda" ${BENCH_ARGS:-} > "$OUT/bench.log" 2>&1 || status=1
grep -v "^row " "$OUT/bench.log"

# Optional: Nsight Compute on one launch of each "CONFIG SHAPE BATCH" in $PROFILE (';'-separated).
if [ -n "${PROFILE:-}" ] && command -v ncu > /dev/null; then
  echo "== ncu"
  IFS=';' read -ra cases <<< "$PROFILE"
  for c in "${cases[@]}"; do
    read -r cfg shape batch <<< "$c"
    echo "---- $cfg $shape batch $batch" >> "$OUT/ncu.txt"
    timeout 300 ncu --launch-skip 25 --launch-count 1 -k regex:aqlm_gemv_kernel --section SpeedOfLight \
      --section MemoryWorkloadAnalysis --section WarpStateStats --section SchedulerStats --section Occupancy \
      --section LaunchStats --section SourceCounters "$BUILD/bin/bench_kernels_cuda" --only "$cfg" --shape "$shape" \
      --batch "$batch" --iters 20 >> "$OUT/ncu.txt" 2>&1
    grep -E "Duration|Memory Throughput|DRAM Throughput|Compute \(SM\) Throughput|Warp Cycles Per Issued|Achieved Occupancy" \
      "$OUT/ncu.txt" | tail -6
  done
fi
exit $status
