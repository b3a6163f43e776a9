#!/usr/bin/env bash
# SmolLM2-135M-Instruct at 2x8g8 with and without global fine-tuning, on the GPU machine:
# quantize on the GPU, `aqlm-cli finetune` on its 16 CPU cores (global fine-tuning runs on the
# CPU), then WikiText-2 perplexity of the fp model, the quantized model and the tuned one on the
# GPU engine (all 147 windows of 2048 tokens) and greedy chat on three prompts.
#
# Here:  bash scripts/gpu/run_smol_global.sh --pack   (aqlm-cli of build-gpupack -> .device-carry/smolglobal)
# There: the default GGUF (98 MB) is carried in four parts; call by call, back to back so the
#        machine stays warm (build-keep/ survives only while it does):
#          bash scripts/gpu/run_smol_global.sh --part 1    carrying .device-carry/smol1
#          bash scripts/gpu/run_smol_global.sh --part 2    carrying .device-carry/smol2
#          bash scripts/gpu/run_smol_global.sh --part 3    carrying .device-carry/smol3
#          OUT=$OUT bash scripts/gpu/run_smol_global.sh    carrying .device-carry/smol4 and .device-carry/smolglobal
# Environment: LR (default 1e-4), EPOCHS (2), NSAMPLES (64), SEQLEN (512) of the pipeline,
# FT_NSAMPLES (NSAMPLES) windows of global fine-tuning, MICRO (1) its micro-batch; STAGES (default
# "quantize finetune eval"): a later call on the still-warm machine may run only some of them.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
KEEP=$ROOT/build-keep
CARRY=$ROOT/.device-carry

if [ "${1:-}" = "--pack" ]; then
  set -e
  ninja -C "$ROOT/build-gpupack" aqlm-cli
  mkdir -p "$CARRY/smolglobal/lib"
  cp -L /usr/lib/x86_64-linux-gnu/libstdc++.so.6 /usr/lib/x86_64-linux-gnu/libsqlite3.so.0 "$CARRY/smolglobal/lib/"
  cp "$ROOT/build-gpupack/bin/aqlm-cli" "$CARRY/smolglobal/"
  strip "$CARRY/smolglobal/aqlm-cli"
  tar -cJf "$CARRY/smolglobal/bin.tar.xz" -C "$CARRY/smolglobal" aqlm-cli lib
  rm -rf "$CARRY/smolglobal/lib" "$CARRY/smolglobal/aqlm-cli"
  du -sh "$CARRY/smolglobal"
  exit 0
fi
if [ "${1:-}" = "--part" ]; then
  mkdir -p "$KEEP"
  cp "$CARRY/smol$2/smolpart.0$(($2 - 1))" "$KEEP/" && ls -la "$KEEP"
  exit $?
fi

OUT=${OUT:-$ROOT/build-smol-global-out}
mkdir -p "$OUT" "$KEEP/bin"
LR=${LR:-1e-4}
EPOCHS=${EPOCHS:-2}
NSAMPLES=${NSAMPLES:-64}
SEQLEN=${SEQLEN:-512}
FT_NSAMPLES=${FT_NSAMPLES:-$NSAMPLES}
MICRO=${MICRO:-1}
TEXT=$CARRY/smol4
GGUF=$KEEP/SmolLM2-135M-Instruct.Q4_1.gguf
cat "$KEEP/smolpart.00" "$KEEP/smolpart.01" "$KEEP/smolpart.02" "$TEXT/smolpart.03" > "$GGUF" || exit 1
sha256sum "$GGUF" | tee "$OUT/gguf.sha256"
tar -xJf "$CARRY/smolglobal/bin.tar.xz" -C "$KEEP/bin" || exit 1
CUBLAS=$(dirname "$(find /usr/local /opt /usr/lib -name 'libcublas.so.13*' 2>/dev/null | head -1)")
export LD_LIBRARY_PATH=$CUBLAS:$KEEP/bin/lib
CLI=$KEEP/bin/aqlm-cli
nproc > "$OUT/nproc"
STAGES=${STAGES:-quantize finetune eval}
stage() { case " $STAGES " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

Q=$KEEP/smol-2x8g8
FT=$KEEP/smol-2x8g8-global
stage quantize && /usr/bin/time -v "$CLI" quantize "$GGUF" --config 2x8g8 --calib "$TEXT/c4-validation-2k.txt" --nsamples "$NSAMPLES" \
  --seqlen "$SEQLEN" --device cuda --out "$Q" --overwrite --json > "$OUT/quantize.json" 2> "$OUT/quantize.err"
echo "quantize: $?"
stage finetune && /usr/bin/time -v "$CLI" finetune "$Q" --teacher "$GGUF" --calib "$TEXT/c4-validation-2k.txt" --nsamples "$FT_NSAMPLES" \
  --heldout 8 --seqlen "$SEQLEN" --epochs "$EPOCHS" --lr "$LR" --micro-batch "$MICRO" --out "$FT" --overwrite --json \
  --log-json "$OUT/finetune.jsonl" > "$OUT/finetune.json" 2> "$OUT/finetune.err"
echo "finetune: $?"
stage eval || exit 0
for m in fp:"$GGUF" q:"$Q" ft:"$FT"; do
  name=${m%%:*}
  "$CLI" eval "${m#*:}" --text "$TEXT/wikitext2-test.txt" --seqlen 2048 --device cuda --json > "$OUT/eval-$name.json" 2> "$OUT/eval-$name.err"
  echo "eval $name: $(grep -o '"perplexity": [0-9.]*' "$OUT/eval-$name.json")"
done
for m in fp:"$GGUF" q:"$Q" ft:"$FT"; do
  name=${m%%:*}
  for prompt in "What is the capital of France?" "Write a haiku about the sea." "Give me three tips for staying healthy."; do
    echo "### $prompt" >> "$OUT/chat-$name.txt"
    echo "$prompt" | "$CLI" chat "${m#*:}" --temperature 0 --max-tokens 96 --device cuda >> "$OUT/chat-$name.txt" 2>> "$OUT/chat-$name.err"
  done
done
tail -3 "$OUT/finetune.err"
grep -h 'Elapsed\|Maximum resident' "$OUT/quantize.err" "$OUT/finetune.err"
cat "$OUT"/chat-*.txt
