#!/usr/bin/env bash
# Install (if needed), lint, and run the whole test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check molevla_ros scripts  # rules: ruff.toml
cd molevla_ros  # pytest settings: molevla_ros/setup.cfg
exec ../.venv/bin/python -m pytest "$@"
