#!/usr/bin/env bash
# Distributed training with torchrun and mmengine's `pytorch` launcher.
#   bash tools/dist_train.sh CONFIG NUM_PROCS [train.py options]
# Multi-node: NNODES, NODE_RANK, MASTER_ADDR, PORT. Interpreter: PYTHON (default: python).
# On CPU-only hosts add `--cfg-options env_cfg.dist_cfg.backend=gloo`.
set -euo pipefail
CONFIG=$1
NPROC=$2
exec bash "$(dirname "${BASH_SOURCE[0]}")/launchers/torchrun.sh" "$NPROC" train.py \
    "$CONFIG" --launcher pytorch "${@:3}"
