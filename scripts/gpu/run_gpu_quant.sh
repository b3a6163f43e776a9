#!/usr/bin/env bash
# GPU quantization (room "cudaquant") in one command for the GPU machine:
#   the quantization kernels' tests (test_kernels_cuda) and the GPU-vs-CPU quantizer tests
#   (test_quant *Cuda*), compute-sanitizer on small cases, then the comparison with the reference
#   implementation on ONE synthetic 4096x4096 layer (scripts/reference/synthetic_layer.py):
#   ours (bench_quant_layer --device cuda) and the authors' AQEngine (aqlm_reference_layer.py) for
#   1x16g8 and 2x8g8, and a table of the time each needs to reach the reference's error after 2 epochs;
#   then (STEPS contains "block") the Llama-2-7B-shaped block through aqlm-cli quantize --device cuda.
#
# Binaries are built here and carried, so the lease is not spent compiling:
#   scripts/gpu/run_gpu_quant.sh --pack     (builds build-cudaquant; writes .device-carry/cudaquant/:
#                                            bin.tar.xz, the reference's src as aqlm_ref/, tok512 + c4 text)
# then on the GPU machine (carry .device-carry/cudaquant):
#   OUT=$OUT bash scripts/gpu/run_gpu_quant.sh
# Environment: OUT (logs), STEPS (default "tests layer block"), REF_EPOCHS (2), OUR_EPOCHS (6),
# SANITIZE=0 to skip compute-sanitizer, BUDGET_S (seconds the whole script may take, default 560).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CARRY=$ROOT/.device-carry/cudaquant
TARGETS="test_kernels_cuda test_quant bench_quant_layer aqlm-cli"

if [ "${1:-}" = "--pack" ]; then
  set -e
  # PACK_BUILD: an existing build folder to take the binaries from (e.g. one made from a clean
  # export of HEAD while other rooms' files are mid-change); else build-cudaquant is built here.
  BUILD_DIR=${PACK_BUILD:-$ROOT/build-cudaquant}
  if [ -z "${PACK_BUILD:-}" ]; then
    cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DAQLM_CUDA=ON -DAQLM_STUDIO=OFF -DCMAKE_CUDA_ARCHITECTURES=90 > /dev/null
    ninja -C "$BUILD_DIR" -j2 $TARGETS
  fi
  grep -o 'AQLM_SOURCE_DIR=[^ ]*' "$BUILD_DIR/build.ninja" | head -1 | cut -d= -f2 | tr -d '"\\' > "$CARRY.source_dir"
  rm -rf "$CARRY" && mkdir -p "$CARRY/lib" "$CARRY/data"
  cp -L /usr/lib/x86_64-linux-gnu/libstdc++.so.6 "$CARRY/lib/"
  stage=$(mktemp -d)
  for t in $TARGETS; do cp "$BUILD_DIR/bin/$t" "$stage/" && strip "$stage/$t"; done
  (cd "$stage" && tar -cJf "$CARRY/bin.tar.xz" $TARGETS -C "$CARRY" lib)
  rm -rf "$stage" "$CARRY/lib"
  ref=/work/.mirror/Vahe1994+AQLM/repo
  mkdir -p "$CARRY/aqlm_ref"
  git -C "$ref" archive HEAD aq_engine.py src | tar -x -C "$CARRY/aqlm_ref"
  git -C "$ref" rev-parse HEAD > "$CARRY/aqlm_ref/COMMIT"
  cp "$ROOT/../shared/models/stories260K/tok512.bin" "$ROOT/../shared/data/c4-validation-2k.txt" "$CARRY/data/"
  mkdir -p "$CARRY/shared/models" && cp -r "$ROOT/../shared/models/stories260K" "$CARRY/shared/models/"
  mv "$CARRY.source_dir" "$CARRY/source_dir"
  du -sh "$CARRY"/*
  exit 0
fi

OUT=${OUT:-$ROOT/build-gpu-quant-out}
STEPS=${STEPS:-tests layer block}
BUDGET_S=${BUDGET_S:-560}
mkdir -p "$OUT"
START=$(date +%s)
left() { echo $(( BUDGET_S - ($(date +%s) - START) )); }
summary=()
note() { summary+=("$1"); echo "$1"; }
status=0

echo "== GPU"
{ nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used,clocks.sm,clocks.max.sm --format=csv
  nproc; free -g | head -2; python3 -c 'import torch; print("torch", torch.__version__)'; } 2>&1 | tee "$OUT/gpu.txt"

BIN=/tmp/cudaquant-bin
mkdir -p "$BIN" && tar -xJf "$CARRY/bin.tar.xz" -C "$BIN"
cuda_libs=$(dirname "$(find /usr/local /opt /usr/lib -name 'libcublas.so.13*' 2>/dev/null | head -1)" 2>/dev/null)
export LD_LIBRARY_PATH=${cuda_libs:+$cuda_libs:}${LD_LIBRARY_PATH:-}
if ! "$BIN/test_quant" --gtest_list_tests > /dev/null 2>&1; then export LD_LIBRARY_PATH=$LD_LIBRARY_PATH:$BIN/lib; fi
"$BIN/test_quant" --gtest_list_tests > /dev/null 2>&1 || { ldd "$BIN/test_quant"; echo "BINARIES DO NOT LOAD"; exit 1; }
# The tests find source-tree files under the path they were built in; shared data is carried.
src=$(cat "$CARRY/source_dir" 2>/dev/null); src=${src:-/work/main}
if [ ! -e "$src" ]; then mkdir -p "$(dirname "$src")" && ln -s "$ROOT" "$src"; fi
export AQLM_SHARED_DIR=$CARRY/shared

if [[ " $STEPS " == *" tests "* ]]; then
  echo "== tests"
  timeout 300 "$BIN/test_kernels_cuda" --gtest_filter='Shapes/SearchCuda*:SearchCudaWide*:SearchCudaErrors*:Configs/LayerKernels*:LayerKernelsMisc*' \
    > "$OUT/tests.log" 2>&1 || status=1
  note "test_kernels_cuda (quant): $(grep -E '^\[  (PASSED|FAILED)  \]' "$OUT/tests.log" | tr '\n' ' ')"
  timeout 400 "$BIN/test_quant" --gtest_filter='*Cuda*:ComputeDevice*' >> "$OUT/tests.log" 2>&1 || status=1
  note "test_quant *Cuda*: $(grep -E '^\[  (PASSED|FAILED)  \]' "$OUT/tests.log" | tail -2 | tr '\n' ' ')"
  grep -E "^\[  FAILED  \] [A-Z]|Failure|error: |Expected|Which is|actual|initialisation:|assignments equal|CPU / GPU" \
    "$OUT/tests.log" | head -60
  if [ "${SANITIZE:-1}" != 0 ] && command -v compute-sanitizer > /dev/null; then
    for tool in memcheck racecheck; do
      timeout 150 compute-sanitizer --tool "$tool" --error-exitcode 9 "$BIN/test_kernels_cuda" \
        --gtest_filter='Shapes/SearchCuda.*/g8_c256_n37:Shapes/SearchCuda.*/g4_c17_n9:Configs/LayerKernels.*/1:LayerKernelsMisc.KmeansUpdate*:LayerKernelsMisc.Visiting*' \
        > "$OUT/sanitizer-now.log" 2>&1
      rc=$?
      note "$tool (quant kernels): exit $rc, $(grep -c 'OK \]' "$OUT/sanitizer-now.log") tests ok; $(grep -E 'ERROR SUMMARY' "$OUT/sanitizer-now.log" | tail -1)"
      { echo "==== $tool"; tail -80 "$OUT/sanitizer-now.log"; } >> "$OUT/sanitizer.log"
      [ $rc -eq 0 ] || [ $rc -eq 124 ] || status=1
    done
    timeout 120 compute-sanitizer --tool memcheck --error-exitcode 9 "$BIN/test_quant" \
      --gtest_filter='AqlmCuda.ProgressReportsEveryPhase:AqlmCuda.InitializationFollowsTheCpu' > "$OUT/sanitizer-now.log" 2>&1
    rc=$?
    note "memcheck (quantizer): exit $rc, $(grep -c 'OK \]' "$OUT/sanitizer-now.log") tests ok; $(grep -E 'ERROR SUMMARY' "$OUT/sanitizer-now.log" | tail -1)"
    { echo "==== memcheck quantizer"; tail -80 "$OUT/sanitizer-now.log"; } >> "$OUT/sanitizer.log"
    rm -f "$OUT/sanitizer-now.log"
  fi
fi

if [[ " $STEPS " == *" layer "* ]]; then
  echo "== 4096x4096 layer: ours and the reference, on one problem file ($(left) s left)"
  P=/tmp/layer4096.safetensors
  python3 "$ROOT/scripts/reference/synthetic_layer.py" --out 4096 --in 4096 --seed 0 "$P" > "$OUT/layer.log" 2>&1 \
    || { cat "$OUT/layer.log"; status=1; }
  for cfg in 2x8g8 1x16g8; do
    for steps in 100 20; do
      timeout 120 "$BIN/bench_quant_layer" --problem "$P" --device cuda --config $cfg --epochs "${OUR_EPOCHS:-6}" \
        --steps $steps --quiet > "$OUT/ours_${cfg}_${steps}.json" 2> "$OUT/ours_${cfg}_${steps}.log" || status=1
      tail -1 "$OUT/ours_${cfg}_${steps}.json"
    done
  done
  for cfg in 2x8g8 1x16g8; do
    budget=$(( $(left) - 60 ))
    [ $cfg = 2x8g8 ] && budget=$(( budget / 2 ))
    [ $budget -gt 20 ] || { note "reference $cfg: not run (no time left)"; continue; }
    t0=$(date +%s)
    PYTHONUNBUFFERED=1 timeout $budget python3 "$ROOT/scripts/reference/aqlm_reference_layer.py" "$P" \
      --aqlm-repo "$CARRY/aqlm_ref" --config $cfg --epochs "${REF_EPOCHS:-2}" > "$OUT/ref_${cfg}.json" 2> "$OUT/ref_${cfg}.log"
    rc=$?
    if [ $rc -ne 0 ] && [ $rc -ne 124 ] && [ $(( $(date +%s) - t0 )) -lt 30 ] && grep -qi "jit\|script" "$OUT/ref_${cfg}.log"; then
      # its TorchScript path failing on this torch: the reference's own switch (AQ_USE_JIT=0) runs it eagerly
      note "reference $cfg: TorchScript failed on this torch; rerun with AQ_USE_JIT=0"
      AQ_USE_JIT=0 PYTHONUNBUFFERED=1 timeout $(( budget - 30 )) python3 "$ROOT/scripts/reference/aqlm_reference_layer.py" "$P" \
        --aqlm-repo "$CARRY/aqlm_ref" --config $cfg --epochs "${REF_EPOCHS:-2}" > "$OUT/ref_${cfg}.json" 2>> "$OUT/ref_${cfg}.log"
      rc=$?
    fi
    [ $rc -eq 0 ] || note "reference $cfg: exit $rc after at most $budget s ($(tail -2 "$OUT/ref_${cfg}.log" | tr '\n' ' '))"
    tail -c 600 "$OUT/ref_${cfg}.json"; echo
  done
  python3 - "$OUT" "$(cat "$CARRY/aqlm_ref/COMMIT" 2>/dev/null)" <<'EOF' | tee "$OUT/layer_table.txt"
import json, os, sys
out, commit = sys.argv[1], sys.argv[2]
def load(name):
    try:
        return json.loads(open(os.path.join(out, name)).read().strip().splitlines()[-1])
    except Exception:
        return None
print(f"reference commit {commit}")
print("| config | reference: error after 2 epochs | reference s | ours (Adam steps) | our error per epoch (cumulative s) | ours s to reach the reference's error | ratio |")
print("|---|---|---|---|---|---|---|")
for cfg in ("2x8g8", "1x16g8"):
    ref = load(f"ref_{cfg}.json")
    for steps in (100, 20):
        ours = load(f"ours_{cfg}_{steps}.json")
        if not ours:
            print(f"| {cfg} | | | {steps} | (no result) | | |"); continue
        t = ours["init_seconds"]; cells = [f"init {ours['init_relative_error']:.5f} ({t:.2f})"]; reach = None
        for e in ours["epochs"]:
            t += e["adam_s"] + e["beam_s"]; cells.append(f"{e['after_beam']:.5f} ({t:.2f})")
            if ref and reach is None and e["after_beam"] <= ref["relative_error"]: reach = t
        rerr = f"{ref['relative_error']:.5f}" if ref else "n/a"; rs = f"{ref['seconds']:.1f}" if ref else "n/a"
        ratio = f"1/{ref['seconds'] / reach:.1f}" if ref and reach else "not reached"
        print(f"| {cfg} | {rerr} | {rs} | {steps} | {'; '.join(cells)} | {reach if reach is None else round(reach, 2)} | {ratio} |")
EOF
fi

if [[ " $STEPS " == *" block "* ]]; then
  echo "== Llama-2-7B-shaped block: aqlm-cli quantize --device cuda, 128 + 16 windows of 4096 tokens ($(left) s left)"
  M=/tmp/llama7b-block.bin
  python3 "$ROOT/scripts/gpu/make_llama7b_block.py" "$M" > "$OUT/block_model.log" 2>&1 || { cat "$OUT/block_model.log"; status=1; }
  for cfg in ${BLOCK_CONFIGS:-1x16g8 2x8g8}; do
    budget=$(( $(left) - 25 ))
    [ $budget -gt 90 ] || { note "7B block $cfg: not run ($budget s left)"; continue; }
    nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 250 > "$OUT/block_${cfg}_mem.log" 2>/dev/null &
    mem_pid=$!
    # SIGINT at the deadline is Ctrl-C: the run stops at a step boundary and leaves its checkpoint.
    timeout -s INT -k 30 $budget "$BIN/aqlm-cli" quantize "$M" --tokenizer "$CARRY/data/tok512.bin" \
      --calib "$CARRY/data/c4-validation-2k.txt" --out /tmp/llama7b-$cfg --config $cfg --device cuda --nsamples 128 \
      --seqlen 4096 --log-json "$OUT/block_${cfg}.jsonl" --json > "$OUT/block_${cfg}.json" 2> "$OUT/block_${cfg}.log"
    rc=$?
    kill $mem_pid 2> /dev/null
    note "7B block $cfg: exit $rc; $(tail -1 "$OUT/block_${cfg}.log")"
    python3 - "$OUT" $cfg <<'PY' | tee -a "$OUT/block_table.txt"
import json, sys
out, cfg = sys.argv[1], sys.argv[2]
events = [json.loads(l) for l in open(f"{out}/block_{cfg}.jsonl") if l.strip()]
t = lambda kind: [e["t"] for e in events if e["event"] == kind]
layers = [e for e in events if e["event"] == "layer_finished"]
tune = [e for e in events if e["event"] == "finetune_step"]
started, finished = t("block_started"), t("block_finished")
mem = [int(x) for x in open(f"{out}/block_{cfg}_mem.log").read().split() if x.strip().isdigit()]
print(f"-- {cfg}: setup (calibration, embeddings, checkpoint) {started[0] if started else float('nan'):.1f} s")
for e in layers:
    print(f"   {e['layer']:<18} rel.err {e.get('loss', float('nan')):.4e}  {e['data'].get('seconds', 0):7.1f} s")
if tune:
    last = tune[-1]
    print(f"   fine-tuning: {len(tune)} steps, {tune[-1]['t'] - layers[-1]['t']:.1f} s, last held-out {last.get('heldout_loss')}")
if started and finished:
    block = finished[0] - started[0]
    total = t("run_finished")[0] if t("run_finished") else events[-1]["t"]
    setup = started[0]
    print(f"   block {block:.1f} s; whole run {total:.1f} s; projected 32-block 7B model: "
          f"{(setup + 32 * block + (total - finished[0])) / 3600:.2f} h (setup + 32 x block + output)")
else:
    print(f"   (block not finished; last event {events[-1]['event']} at {events[-1]['t']:.1f} s)")
print(f"   peak GPU memory {max(mem) if mem else 'n/a'} MiB (nvidia-smi, whole device)")
PY
  done
fi

echo "== summary ($(( $(date +%s) - START )) s)"
printf '%s\n' "${summary[@]}"
[ -f "$OUT/layer_table.txt" ] && cat "$OUT/layer_table.txt"
[ -f "$OUT/block_table.txt" ] && cat "$OUT/block_table.txt"
exit $status
