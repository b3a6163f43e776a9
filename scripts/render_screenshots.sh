#!/usr/bin/env bash
# Renders the studio's main views into docs/images/ under Xvfb, with real data: the studio
# compresses stories260K five times (AQLM 1x8g4 and 2x8g4, GPTQ w3, RTN w4 and w3), evaluates
# them on the TinyStories sample, chats with the 2x8g4 output, then grabs each view
# (aqlm-studio --screenshots). The wizard's bit-budget page shows the default model,
# SmolLM2-135M-Instruct from the models cache (scripts/fetch_default_model.sh), where the presets
# differ; without it, stories260K.
# Usage: scripts/render_screenshots.sh [BUILD_DIR]   (default build-studio; built if needed)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$root/build-studio}"
shared="$(realpath "${AQLM_SHARED_DIR:-$root/../shared}")"
if [[ ! -x "$build/bin/aqlm-studio" || ! -x "$build/bin/aqlm-cli" ]]; then
  cmake -S "$root" -B "$build" -G Ninja -DAQLM_CUDA=OFF
  ninja -C "$build" aqlm-studio aqlm-cli
fi
default_model="${XDG_CACHE_HOME:-$HOME/.cache}/aqlm-studio/models/SmolLM2-135M-Instruct.Q4_1.gguf"
budget_args=()
[[ -f "$default_model" ]] && budget_args=(--screenshot-budget-model "$default_model")
data="$(mktemp -d)"
trap 'rm -rf "$data"' EXIT
export AQLM_DATA_DIR="$data/data" AQLM_MODELS_DIR="$data/models"
mkdir -p "$AQLM_MODELS_DIR"
xvfb-run -a -s "-screen 0 1600x1000x24" "$build/bin/aqlm-studio" --screenshots "$data/images" \
  --screenshot-model "$shared/models/stories260K/stories260K.bin" \
  --screenshot-text "$shared/data/tinystories-sample.txt" "${budget_args[@]}"
cp "$data"/images/*.png "$root/docs/images/"
echo "screenshots in $root/docs/images"
