#!/usr/bin/env bash
# Renders the studio's main views into docs/images/ under Xvfb, with real data: the studio
# compresses stories260K five times (AQLM 1x8g4 and 2x8g4, GPTQ w3, RTN w4 and w3), evaluates
# them on the TinyStories sample, then grabs each view (aqlm-studio --screenshots).
# Usage: scripts/render_screenshots.sh [BUILD_DIR]   (default build-studio; built if needed)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$root/build-studio}"
shared="${AQLM_SHARED_DIR:-$root/../shared}"
if [[ ! -x "$build/bin/aqlm-studio" || ! -x "$build/bin/aqlm-cli" ]]; then
  cmake -S "$root" -B "$build" -G Ninja -DAQLM_CUDA=OFF
  ninja -C "$build" aqlm-studio aqlm-cli
fi
data="$(mktemp -d)"
trap 'rm -rf "$data"' EXIT
export AQLM_DATA_DIR="$data/data" AQLM_MODELS_DIR="$data/models"
mkdir -p "$AQLM_MODELS_DIR"
xvfb-run -a -s "-screen 0 1600x1000x24" "$build/bin/aqlm-studio" --screenshots "$data/images" \
  --screenshot-model "$shared/models/stories260K/stories260K.bin" \
  --screenshot-text "$shared/data/tinystories-sample.txt"
cp "$data"/images/*.png "$root/docs/images/"
echo "screenshots in $root/docs/images"
