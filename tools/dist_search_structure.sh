#!/usr/bin/env bash
# Distributed SM-NAS structural or modular search through torchrun (launcher 'pytorch'):
# every candidate trains on all processes with DDP, rank 0 decides and times.
#   tools/dist_search_structure.sh CONFIG GPUS [tools/search_structure.py args...]
# Multi-node: NNODES, NODE_RANK, MASTER_ADDR, PORT as usual.
CONFIG=$1
GPUS=$2
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
    "$DIR/search_structure.py" "$CONFIG" --launcher pytorch "${@:3}"
