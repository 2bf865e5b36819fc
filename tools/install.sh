#!/usr/bin/env bash
# One-time install of mmdetnas and its pinned dependencies into a virtual
# environment (default .venv). Works on a bare Debian machine with Python
# 3.11, gcc and network access to PyPI. Safe to re-run.
#
# Environment:
#   VENV            the virtual environment (default .venv)
#   TORCH_SPEC      what `pip install` gets for torch (default torch==2.13.0,
#                   the CPU wheel); on a GPU machine e.g.
#                   TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu121"
#   MMCV_WITH_CUDA  1: build mmcv's CUDA ops (FORCE_CUDA=1); 0: CPU ops only;
#                   unset: CUDA ops when nvcc is on PATH and torch is a CUDA
#                   build (python tools/check_install.py --want-cuda)
#   TORCH_CUDA_ARCH_LIST  GPU architectures of a CUDA build (e.g. "9.0";
#                   default: those of the visible GPUs)
#   MAX_JOBS        parallel compile jobs (default 2 for CPU ops; for CUDA
#                   ops the number of CPUs, at most 8)
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
# torch first: by default the pinned CPU wheel (a spec without a CPU wheel
# pulls CUDA packages); TORCH_SPEC is split into pip arguments on purpose
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
# shellcheck disable=SC2086
$PIP install -q $TORCH_SPEC
# mmcv's setup needs pkg_resources (setuptools < 81); torch needs >= 77
$PIP install -q "setuptools>=77,<81" wheel
$PIP install -q mmengine==0.10.7
# mmcv 2.1.0 has no wheel here: build it from source, with its CUDA ops
# where wanted (MMCV_WITH_CUDA, see above; exits 2 saying why where they
# cannot be built), else with its CPU ops (~7 min, cached)
WANT_CUDA=$("$VENV/bin/python" tools/check_install.py --want-cuda)
CHECK_EXPECT=any
if [ "$WANT_CUDA" = 1 ]; then
  CHECK_EXPECT=cuda
  # keep an mmcv only if its ops were compiled with CUDA (and run on the GPU)
  if ! "$VENV/bin/python" tools/check_install.py --mmcv-only --expect cuda >/dev/null 2>&1; then
    if [ -z "${MAX_JOBS:-}" ]; then
      # (nproc alone would follow OMP_NUM_THREADS)
      MAX_JOBS=$(OMP_NUM_THREADS="" OMP_THREAD_LIMIT="" nproc 2>/dev/null || echo 4)
      if [ "$MAX_JOBS" -gt 8 ]; then MAX_JOBS=8; fi
    fi
    echo "building mmcv 2.1.0 with CUDA ops: FORCE_CUDA=1 MAX_JOBS=$MAX_JOBS" \
      "TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-<the visible GPUs>} (can take 10-30 min)"
    # --no-cache-dir: never a cached CPU-only wheel; mmcv's own dependencies
    # come with requirements.txt below (it lists mmcv==2.1.0)
    FORCE_CUDA=1 MAX_JOBS=$MAX_JOBS $PIP install --no-build-isolation \
      --no-cache-dir --force-reinstall --no-deps mmcv==2.1.0
  fi
else
  if [ "${MMCV_WITH_CUDA:-}" = 0 ]; then CHECK_EXPECT=cpu; fi
  if ! "$VENV/bin/python" -c "import mmcv.ops" >/dev/null 2>&1; then
    # hide GPUs from mmcv's setup.py, which builds CUDA ops when it sees one
    CUDA_VISIBLE_DEVICES="" FORCE_CUDA=0 MAX_JOBS=${MAX_JOBS:-2} \
      $PIP install --no-build-isolation mmcv==2.1.0
  fi
fi
$PIP install -q -r requirements.txt
$PIP install -q --no-build-isolation --no-deps -e .
# imports, versions and, where a GPU is visible, mmcv's CUDA ops
"$VENV/bin/python" tools/check_install.py --expect "$CHECK_EXPECT"
touch "$VENV/.installed"
