#!/usr/bin/env bash
# Distributed evaluation with torchrun and mmengine's `pytorch` launcher.
#   bash tools/dist_test.sh CONFIG CHECKPOINT NUM_PROCS [test.py options]
# Multi-node: NNODES, NODE_RANK, MASTER_ADDR, PORT. Interpreter: PYTHON (default: python).
# On CPU-only hosts add `--cfg-options env_cfg.dist_cfg.backend=gloo`.
set -euo pipefail
CONFIG=$1
CHECKPOINT=$2
NPROC=$3
exec bash "$(dirname "${BASH_SOURCE[0]}")/launchers/torchrun.sh" "$NPROC" test.py \
    "$CONFIG" "$CHECKPOINT" --launcher pytorch "${@:4}"
