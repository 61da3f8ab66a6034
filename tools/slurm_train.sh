#!/usr/bin/env bash
# Training on a Slurm cluster: one task per GPU, mmengine's `slurm` launcher.
#   [GPUS=8] [GPUS_PER_NODE=8] [CPUS_PER_TASK=5] [SRUN_ARGS=...] \
#       bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [train.py options]
set -euo pipefail
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
WORK_DIR=$4
exec bash "$(dirname "${BASH_SOURCE[0]}")/launchers/srun.sh" "$PARTITION" "$JOB_NAME" \
    train.py "$CONFIG" --work-dir="$WORK_DIR" --launcher=slurm "${@:5}"
