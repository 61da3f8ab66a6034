#!/usr/bin/env bash
# Quick start, command 2: set up the full environment (idempotent; mmcv with its compiled ops,
# mmdet/mmseg, the test references) and run the whole test-suite.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/tools/setup_env.sh" --full
PY="${LEVIT_MM_HOME:-$HOME/.cache/levit_mm}/venv/bin/python"
cd "$ROOT"
exec "$PY" -m pytest tests "$@"
