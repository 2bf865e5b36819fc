#!/usr/bin/env bash
# A search on a Slurm cluster (mmengine launcher 'slurm').
#   DetNAS: [GPUS=8] [GPUS_PER_NODE=8] tools/slurm_search.sh PARTITION JOB_NAME CONFIG SUPERNET_CKPT WORK_DIR [args...]
#   SM-NAS: [GPUS=8] [GPUS_PER_NODE=8] tools/slurm_search.sh PARTITION JOB_NAME CONFIG WORK_DIR [args...]
# The fourth argument is taken as the supernet checkpoint when it is a file
# or ends in .pth.
set -x
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
if [ -f "$4" ] || [[ "$4" == *.pth ]]; then
    CHECKPOINT=("$4")
    WORK_DIR=$5
    shift 5
else
    CHECKPOINT=()
    WORK_DIR=$4
    shift 4
fi
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SRUN_ARGS=${SRUN_ARGS:-""}
PYTHON=${PYTHON:-python}

PYTHONPATH="$(dirname $0)/..":$PYTHONPATH \
srun -p ${PARTITION} \
    --job-name=${JOB_NAME} \
    --gres=gpu:${GPUS_PER_NODE} \
    --ntasks=${GPUS} \
    --ntasks-per-node=${GPUS_PER_NODE} \
    --cpus-per-task=${CPUS_PER_TASK} \
    --kill-on-bad-exit=1 \
    ${SRUN_ARGS} \
    $PYTHON -u tools/search.py ${CONFIG} "${CHECKPOINT[@]}" --work-dir=${WORK_DIR} --launcher="slurm" "$@"
