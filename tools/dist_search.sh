#!/usr/bin/env bash
# Distributed evolutionary search through torchrun (mmengine launcher 'pytorch').
#   tools/dist_search.sh CONFIG SUPERNET_CKPT GPUS [tools/search.py args...]
# Multi-node: NNODES, NODE_RANK, MASTER_ADDR, PORT as usual.
CONFIG=$1
CHECKPOINT=$2
GPUS=$3
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
    "$DIR/search.py" "$CONFIG" "$CHECKPOINT" --launcher pytorch "${@:4}"
