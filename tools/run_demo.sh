#!/usr/bin/env bash
# Quick start, command 1: set up the environment (idempotent) and run the demo.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/tools/setup_env.sh"
PY="${LEVIT_MM_HOME:-$HOME/.cache/levit_mm}/venv/bin/python"
cd "$ROOT"
"$PY" demo/image_demo.py demo/chelsea.jpg levit-128s_3rdparty_in1k "$@"
