#!/usr/bin/env bash
# Install (if needed) and run the main demo: simulated Franka + all nodes + one language goal.
# Extra arguments go to `molevla demo` (e.g. --task push --seed 3).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/molevla demo "$@"
