#!/usr/bin/env bash
# Evaluation on a Slurm cluster: one task per GPU, mmengine's `slurm` launcher.
#   [GPUS=8] [GPUS_PER_NODE=8] [CPUS_PER_TASK=5] [SRUN_ARGS=...] \
#       bash tools/slurm_test.sh PARTITION JOB_NAME CONFIG CHECKPOINT [test.py options]
set -euo pipefail
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
CHECKPOINT=$4
exec bash "$(dirname "${BASH_SOURCE[0]}")/launchers/srun.sh" "$PARTITION" "$JOB_NAME" \
    test.py "$CONFIG" "$CHECKPOINT" --launcher=slurm "${@:5}"
