#!/usr/bin/env bash
# Quick start, command 1: set up the light environment (idempotent; mmcv without compiled
# ops, which classification does not use, so no compiler runs) and run the demo.
# Offline (the ImageNet weights cannot be fetched), LeViT is trained on the bundled digits
# instead (tools/digits_demo.py), so a fresh machine still sees it learn and classify.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/tools/setup_env.sh"
PY="${LEVIT_MM_HOME:-$HOME/.cache/levit_mm}/venv/bin/python"
cd "$ROOT"
ERR="$(mktemp)"
trap 'rm -f "$ERR"' EXIT
rc=0
"$PY" demo/image_demo.py demo/chelsea.jpg levit-128s_3rdparty_in1k "$@" 2>"$ERR" || rc=$?
cat "$ERR" >&2
if [ "$rc" -eq 2 ] && grep -q 'Cannot download' "$ERR"; then
    echo "ImageNet weights not reachable: training LeViT on scikit-learn's digits instead." >&2
    exec "$PY" tools/digits_demo.py
fi
exit "$rc"
