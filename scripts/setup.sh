#!/usr/bin/env bash
# Create .venv (Python 3.10+) and install molevla_ros with ROS 2 Jazzy from PyPI wheels. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
# torch first, pinned: an unpinned "torch" may pull a multi-GB CUDA build. Override with TORCH_SPEC.
if ! .venv/bin/python -c "import torch" >/dev/null 2>&1; then
  .venv/bin/python -m pip install -q "${TORCH_SPEC:-torch==2.13.0}" 2>&1 | grep -v "^WARNING: Location" || true
fi
.venv/bin/python -m pip install -q -e '.[ros-wheels,onnx,test]' 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -c "import rclpy, pybullet, onnxruntime, molevla_ros" 2>&1 | grep -v "pybullet build time" || true
.venv/bin/python -c "import rclpy, pybullet, onnxruntime, molevla_ros" >/dev/null 2>&1 || { echo "install failed" >&2; exit 1; }
