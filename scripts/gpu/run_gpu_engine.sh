#!/usr/bin/env bash
# The CUDA inference engine's GPU run, in one command for the GPU machine:
#   engine-kernel and AQLM-kernel tests (test_kernels_cuda), the engine tests (test_runtime
#   --gtest_filter='*Cuda*', stories260K from $AQLM_SHARED_DIR), aqlm-cli generate --device
#   cuda, the kernel benchmark (bench_engine_kernels_cuda), the Llama-2-7B-shaped engine
#   benchmark (bench_cuda_engine), compute-sanitizer on the engine kernels, a SASS census.
# Logs go to $OUT (default build-gpu-engine-out/); a summary is printed last.
#
# Binaries: built on the development machine and carried, so the lease is not spent compiling:
#   scripts/gpu/run_gpu_engine.sh --pack   (here: builds build-cudaengine, writes
#                                           .device-carry/cudaengine/{bin,deps}.tar.xz + stories260K)
# then on the GPU machine (carry .device-carry/cudaengine):
#   OUT=$OUT bash scripts/gpu/run_gpu_engine.sh
# When the carried binaries do not load there, everything is built from source with the
# carried headers (Eigen, nlohmann-json, CLI11) and GoogleTest.
# Environment: OUT, SANITIZE=0 (skip compute-sanitizer), BENCH_ARGS (bench_cuda_engine args).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CARRY=$ROOT/.device-carry/cudaengine
TARGETS="test_kernels_cuda bench_engine_kernels_cuda test_runtime bench_cuda_engine aqlm-cli"

if [ "${1:-}" = "--pack" ]; then
  set -e
  cmake -S "$ROOT" -B "$ROOT/build-cudaengine" -G Ninja -DAQLM_CUDA=ON -DAQLM_STUDIO=OFF -DCMAKE_CUDA_ARCHITECTURES=90 > /dev/null
  ninja -C "$ROOT/build-cudaengine" -j2 $TARGETS
  mkdir -p "$CARRY/lib" "$CARRY/shared/models"
  cp -L /usr/lib/x86_64-linux-gnu/libstdc++.so.6 /usr/lib/x86_64-linux-gnu/libsqlite3.so.0 "$CARRY/lib/"
  (cd "$ROOT/build-cudaengine/bin" && strip $TARGETS && tar -cJf "$CARRY/bin.tar.xz" $TARGETS -C "$CARRY" lib)
  rm -rf "$CARRY/lib"
  deps=$(mktemp -d)
  mkdir -p "$deps/include" "$deps/share/cmake" "$deps/share/eigen3" "$deps/src"
  cp -r /usr/include/eigen3 /usr/include/nlohmann /usr/include/CLI "$deps/include/"
  cp -r /usr/share/cmake/nlohmann_json /usr/share/cmake/CLI11 "$deps/share/cmake/"
  cp -r /usr/share/eigen3/cmake "$deps/share/eigen3/"
  cp -r /usr/src/googletest "$deps/src/"
  tar -cJf "$CARRY/deps.tar.xz" -C "$deps" .
  rm -rf "$deps"
  cp -r "$ROOT/../shared/models/stories260K" "$CARRY/shared/models/"
  du -sh "$CARRY"/*
  exit 0
fi

OUT=${OUT:-$ROOT/build-gpu-engine-out}
mkdir -p "$OUT"
status=0
summary=()
note() { summary+=("$1"); echo "$1"; }

echo "== GPU"
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv; nvcc --version | tail -2; } 2>&1 \
  | tee "$OUT/tests.log"

# The tests find their fixtures under the source path they were built with (/work/main).
if [ ! -e /work/main ]; then mkdir -p /work && ln -s "$ROOT" /work/main; fi
export AQLM_SHARED_DIR=$CARRY/shared

BIN=/tmp/aqlm-engine-bin
mkdir -p "$BIN" && tar -xJf "$CARRY/bin.tar.xz" -C "$BIN"
cuda_libs=$(dirname "$(find /usr/local /opt /usr/lib -name 'libcublas.so.13*' 2>/dev/null | head -1)" 2>/dev/null)
export LD_LIBRARY_PATH=${cuda_libs:+$cuda_libs:}${LD_LIBRARY_PATH:-}
if ! "$BIN/test_runtime" --gtest_list_tests > /dev/null 2>&1; then
  export LD_LIBRARY_PATH=$LD_LIBRARY_PATH:$BIN/lib  # our libstdc++ / libsqlite3 as a last resort
fi
if ! "$BIN/test_runtime" --gtest_list_tests > /dev/null 2>&1 || ! "$BIN/aqlm-cli" --help > /dev/null 2>&1; then
  note "carried binaries do not load ($(ldd "$BIN/test_runtime" 2>&1 | grep -m1 'not found')); building from source"
  start=$(date +%s)
  deps=/tmp/aqlm-deps
  mkdir -p "$deps" && tar -xJf "$CARRY/deps.tar.xz" -C "$deps"
  { cmake -S "$deps/src/googletest" -B /tmp/gtest-build -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_GMOCK=OFF \
      -DCMAKE_INSTALL_PREFIX="$deps" && ninja -C /tmp/gtest-build install &&
    cmake -S "$ROOT" -B /tmp/aqlm-build -G Ninja -DAQLM_CUDA=ON -DAQLM_STUDIO=OFF -DCMAKE_CUDA_ARCHITECTURES=90 \
      -DCMAKE_PREFIX_PATH="$deps" -DAQLM_BUILD_BENCHMARKS=ON &&
    ninja -C /tmp/aqlm-build -j"$(nproc)" $TARGETS; } > "$OUT/build.log" 2>&1 || { tail -30 "$OUT/build.log"; echo "BUILD FAILED"; exit 1; }
  BIN=/tmp/aqlm-build/bin
  note "built from source in $(( $(date +%s) - start )) s"
fi

echo "== kernel tests"
timeout 300 "$BIN/test_kernels_cuda" >> "$OUT/tests.log" 2>&1 || status=1
note "test_kernels_cuda: $(grep -E '^\[  (PASSED|FAILED)  \]' "$OUT/tests.log" | tr '\n' ' ')"
grep -E "^\[  FAILED  \] [A-Z]" "$OUT/tests.log" | head -20

echo "== engine tests"
timeout 300 "$BIN/test_runtime" --gtest_filter='*Cuda*' >> "$OUT/tests.log" 2>&1 || status=1
note "test_runtime *Cuda*: $(grep -E '^\[  (PASSED|FAILED)  \]' "$OUT/tests.log" | tail -2 | tr '\n' ' ')"
grep -E "^\[  FAILED  \] [A-Z]|Failure|error: |Expected|Which is|relative" "$OUT/tests.log" | head -40

echo "== aqlm-cli generate --device cuda"
{ timeout 60 "$BIN/aqlm-cli" generate "$CARRY/shared/models/stories260K/stories260K.bin" --device cuda --temperature 0 \
    --max-tokens 40 --prompt "Once upon a time" 2>&1
  echo "---- no such GPU memory:"
  timeout 60 "$BIN/aqlm-cli" generate "$CARRY/shared/models/stories260K/stories260K.bin" --device cuda --ctx 1073741824 \
    --max-tokens 4 --prompt "Once" 2>&1; } > "$OUT/cli.log"
tail -8 "$OUT/cli.log"

echo "== engine kernel benchmark"
timeout 240 "$BIN/bench_engine_kernels_cuda" > "$OUT/bench.log" 2>&1 || status=1
cat "$OUT/bench.log"

echo "== Llama-2-7B-shaped engine benchmark"
timeout 400 "$BIN/bench_cuda_engine" ${BENCH_ARGS:-} > "$OUT/bench_engine.log" 2>&1 || status=1
cat "$OUT/bench_engine.log"

echo "== SASS census (engine kernels)"
if command -v cuobjdump > /dev/null; then
  cuobjdump -sass "$BIN/test_kernels_cuda" 2>/dev/null | awk '
    /Function : / { fn = $3; keep = fn ~ /(attention|rmsnorm|rope_store|swiglu|add_bias|argmax|convert_kernel|embedding)/ }
    keep { seen[fn] = 1; if (/LDL|STL/) loc[fn]++; if (/LDG\.E\.128/) wide[fn]++; if (/LDG/) ldg[fn]++ }
    END { for (f in seen) printf "%s LDL/STL=%d LDG=%d LDG.128=%d\n", f, loc[f], ldg[f], wide[f] }' > "$OUT/sass.txt"
  note "SASS: engine kernels with local-memory traffic: $(awk '$2 != "LDL/STL=0"' "$OUT/sass.txt" | wc -l) of $(wc -l < "$OUT/sass.txt")"
fi

if [ "${SANITIZE:-1}" != 0 ] && command -v compute-sanitizer > /dev/null; then
  echo "== compute-sanitizer"
  for tool in memcheck racecheck; do
    # racecheck: the kernels that share memory between threads of a block.
    filter='Decode/*:Prefill/*:Shapes/NormCuda*:ArgmaxCuda*'
    [ "$tool" = memcheck ] && filter="$filter:Shapes/RopeCuda*:Shapes/SwigluCuda*:ConvertCuda*:AddBiasCuda*"
    timeout 90 compute-sanitizer --tool "$tool" --error-exitcode 9 "$BIN/test_kernels_cuda" --gtest_filter="$filter" \
      > "$OUT/sanitizer-now.log" 2>&1
    rc=$?
    note "$tool (kernels): exit $rc, $(grep -c 'OK \]' "$OUT/sanitizer-now.log") tests ok; $(grep -E 'ERROR SUMMARY' "$OUT/sanitizer-now.log" | tail -1)"
    { echo "==== $tool kernels"; tail -60 "$OUT/sanitizer-now.log"; } >> "$OUT/sanitizer.log"
    [ $rc -eq 0 ] || [ $rc -eq 124 ] || status=1
  done
  timeout 90 compute-sanitizer --tool memcheck --error-exitcode 9 "$BIN/test_runtime" \
    --gtest_filter='Families/CudaTinyModel*:CudaEngine.StoriesLogits*:CudaEngine.Graph*' > "$OUT/sanitizer-now.log" 2>&1
  rc=$?
  note "memcheck (engine): exit $rc, $(grep -c 'OK \]' "$OUT/sanitizer-now.log") tests ok; $(grep -E 'ERROR SUMMARY' "$OUT/sanitizer-now.log" | tail -1)"
  { echo "==== memcheck engine"; tail -60 "$OUT/sanitizer-now.log"; } >> "$OUT/sanitizer.log"
  rm -f "$OUT/sanitizer-now.log"
fi

echo "== summary"
printf '%s\n' "${summary[@]}"
grep -E "^\| " "$OUT/bench_engine.log"
exit $status
