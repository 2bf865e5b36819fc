#!/usr/bin/env bash
# One-time install of mmdetnas and its pinned dependencies into a virtual
# environment (default .venv). Works on a bare Debian machine with Python
# 3.11, gcc and network access to PyPI. Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PY=${PYTHON:-python3}

# Fashion-MNIST for the quickstart's pre-training stage (Debian package)
if [ ! -d /usr/share/datasets/fashion-mnist ]; then
  if command -v apt-get >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get install -y dataset-fashion-mnist \
      || { $SUDO apt-get update && $SUDO apt-get install -y dataset-fashion-mnist; } \
      || echo "WARNING: could not install dataset-fashion-mnist; run: sudo apt-get install dataset-fashion-mnist"
  else
    echo "WARNING: no apt-get; install the Debian package dataset-fashion-mnist or pass --src to prepare_fashion_mnist.py"
  fi
fi

[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
PIP="$VENV/bin/python -m pip"
$PIP install -q --upgrade pip
# torch first: the pinned CPU wheel (any other spec pulls CUDA packages)
$PIP install -q torch==2.13.0
# mmcv's setup needs pkg_resources (setuptools < 81); torch needs >= 77
$PIP install -q "setuptools>=77,<81" wheel
$PIP install -q mmengine==0.10.7
# mmcv 2.1.0 has no wheel here: build it with its CPU ops (~7 min, cached)
if ! "$VENV/bin/python" -c "import mmcv.ops" >/dev/null 2>&1; then
  MAX_JOBS=${MAX_JOBS:-2} $PIP install --no-build-isolation mmcv==2.1.0
fi
$PIP install -q -r requirements.txt
$PIP install -q --no-build-isolation --no-deps -e .
"$VENV/bin/python" -c "import mmdetnas, mmdet, mmcv.ops; print('mmdetnas', mmdetnas.__version__, 'ready: mmdet', mmdet.__version__, 'mmcv', mmcv.__version__)"
touch "$VENV/.installed"
