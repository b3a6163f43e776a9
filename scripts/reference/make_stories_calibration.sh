#!/usr/bin/env bash
# Makes tests/fixtures/quant/pipeline/stories260K_calibration.txt: TinyStories-like calibration
# text for the stories260K pipeline tests, sampled from the fp stories260K model itself
# (temperature 1, no truncation, from BOS; 40 samples of 400 tokens, seeds 1..40), one sample
# per paragraph group. The evaluation text (../shared/data/tinystories-sample.txt) takes no
# part, so the tests never calibrate on what they measure.
#   bash scripts/reference/make_stories_calibration.sh [build/bin/aqlm-cli]
set -euo pipefail
cd "$(dirname "$0")/../.."
CLI=${1:-build/bin/aqlm-cli}
MODEL=${AQLM_SHARED_DIR:-../shared}/models/stories260K/stories260K.bin
OUT=tests/fixtures/quant/pipeline/stories260K_calibration.txt
: > "$OUT"
for seed in $(seq 1 40); do
  "$CLI" generate "$MODEL" --prompt "" --temperature 1.0 --top-p 1.0 --max-tokens 400 --seed "$seed" 2>/dev/null >> "$OUT"
  printf '\n\n' >> "$OUT"
done
echo "wrote $OUT ($(wc -c < "$OUT") bytes)"
