#!/usr/bin/env bash
# Install (if needed), lint, and run the whole test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The upstream message types the tests' MoveIt Servo and franka_ros2 stand-ins speak (molevla_ros/test/upstream/)
for pkg in moveit_msgs franka_msgs; do bash scripts/build_interfaces.sh "molevla_ros/test/upstream/$pkg"; done
.venv/bin/ruff check molevla_ros scripts  # rules: ruff.toml
cd molevla_ros  # pytest settings: molevla_ros/setup.cfg
exec ../.venv/bin/python -m pytest "$@"
