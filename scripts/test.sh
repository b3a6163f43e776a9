#!/usr/bin/env bash
# Runs the whole test suite: installs what it needs, builds, fetches the default model,
# then runs every test (GoogleTest and QTest, widgets offscreen). GPU tests skip without a GPU.
#   bash scripts/test.sh [extra ctest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export QT_QPA_PLATFORM=offscreen
BUILD_DIR=${AQLM_BUILD_DIR:-build}
ctest --test-dir "$BUILD_DIR" --output-on-failure -j"$(nproc)" --timeout 1200 "$@"
