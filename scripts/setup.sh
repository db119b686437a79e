#!/usr/bin/env bash
# Create .venv (Python 3.10+) and install molevla_ros with ROS 2 Jazzy from PyPI wheels, and
# build molevla_interfaces (the LanguageGoal action) into it. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
# torch and torchvision first, as a pinned pair. timm (CogACT's vision towers) needs torchvision, and PyPI's
# torchvision only loads with PyPI's torch build (it bundles CUDA libraries, ~4 GB, and runs on CPU too), so
# "===" picks that build over a local CPU-only wheel of the same version. Override with TORCH_SPEC.
if ! .venv/bin/python -c "import torch, torchvision" >/dev/null 2>&1; then
  .venv/bin/python -m pip install -q ${TORCH_SPEC:-"torch===2.13.0" "torchvision==0.28.0"} 2>&1 \
    | grep -v "^WARNING: Location" || true
fi
# pip's output without its notes on this machine's extra package indexes and on lerobot's pins, which are skipped on
# purpose (below).
quiet() { grep -v -e "^WARNING: Location" -e "dependency resolver does not" -e "^lerobot 0.4.4 requires" || true; }
.venv/bin/python -m pip install -q -e './molevla_ros[ros-wheels,sim,record,plots,dataset,onnx,cogact,language,test]' 2>&1 | quiet
bash scripts/build_interfaces.sh
# LeRobot's dataset code (LeRobotDataset v3, for `molevla dataset from-bags` and training on LeRobot datasets) without
# its dependency pins: lerobot 0.4.4, the last release for Python 3.11 (0.5+ need 3.12), pins torch < 2.11 and
# diffusers < 0.36, which would replace this project's torch and the diffusers its tests check against. What its
# dataset module imports comes with the [dataset] extra above.
.venv/bin/python -m pip install -q --no-deps "lerobot==0.4.4" 2>&1 | quiet
CHECK="import rclpy, pybullet, onnxruntime, timm, transformers, rosbags.highlevel, molevla_ros, molevla_interfaces.action
from lerobot.datasets.lerobot_dataset import LeRobotDataset"
.venv/bin/python -c "$CHECK" 2>&1 | grep -v "pybullet build time" || true
.venv/bin/python -c "$CHECK" >/dev/null 2>&1 || { echo "install failed" >&2; exit 1; }
