#!/usr/bin/env bash
# Reproduce the shipped model and the comparison: record expert episodes, train the full-depth teacher,
# fine-tune the four routed variants from it, evaluate all of them in closed loop, and ship the MoLe one.
# Usage: scripts/train_all.sh [EPISODES_PER_FAMILY] [EVAL_EPISODES_PER_FAMILY]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
M=.venv/bin/molevla
EPISODES=${1:-100}
EVAL=${2:-50}
[ -d data/episodes ] || $M collect --episodes "$EPISODES" --out data/episodes
$M train --stage teacher --out runs/teacher --steps 6000
for stage in mole mole_nokd random first_k; do
  $M train --stage "$stage" --init runs/teacher --out "runs/$stage" --steps 800
done
$M eval-policies --runs runs --episodes "$EVAL"
rm -rf models/mole_small && mkdir -p models && cp -r runs/mole models/mole_small
rm -f models/mole_small/history.json
cp results/eval_policies/model_card.md models/mole_small/README.md
cp results/eval_policies/routing_mole.png models/mole_small/routing.png
