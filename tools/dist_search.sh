#!/usr/bin/env bash
# Distributed search through torchrun (mmengine launcher 'pytorch').
#   DetNAS (scores a supernet):  tools/dist_search.sh CONFIG SUPERNET_CKPT GPUS [tools/search.py args...]
#   SM-NAS (trains candidates):  tools/dist_search.sh CONFIG GPUS [tools/search.py args...]
# Multi-node: NNODES, NODE_RANK, MASTER_ADDR, PORT as usual.
CONFIG=$1
if [[ "$2" =~ ^[0-9]+$ ]] && [ ! -f "$2" ]; then
    CHECKPOINT=()
    GPUS=$2
    shift 2
else
    CHECKPOINT=("$2")
    GPUS=$3
    shift 3
fi
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
DIR=$(dirname "$0")
PYTHON=${PYTHON:-python}

PYTHONPATH="$DIR/..":$PYTHONPATH \
$PYTHON -m torch.distributed.run \
    --nnodes=$NNODES --node_rank=$NODE_RANK --master_addr=$MASTER_ADDR \
    --nproc_per_node=$GPUS --master_port=$PORT \
    "$DIR/search.py" "$CONFIG" "${CHECKPOINT[@]}" --launcher pytorch "$@"
