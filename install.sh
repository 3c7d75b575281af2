#!/usr/bin/env bash
# Installs neuralbody into ./.venv (Python 3.11). Safe to run again: it only adds what is missing.
#   bash install.sh            CPU install (the default; works on any machine)
#   TORCH_SPEC=torch bash install.sh   let pip choose the torch build (e.g. a CUDA one)
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
if [ ! -x .venv/bin/python ]; then
  echo "[install] creating .venv with $("$PYTHON" --version)"
  "$PYTHON" -m venv .venv
fi
. .venv/bin/activate
python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
if ! python -c "import torch" >/dev/null 2>&1; then
  echo "[install] installing PyTorch (${TORCH_SPEC:-torch==2.13.0})"
  python -m pip install -q "${TORCH_SPEC:-torch==2.13.0}"
fi
echo "[install] installing neuralbody and its dependencies"
python -m pip install -q -e ".[test]"
echo "[install] done: $(python -c 'import torch, neuralbody; print("neuralbody", neuralbody.__version__, "torch", torch.__version__)')"
