#!/usr/bin/env bash
# Are the labels `molevla dataset from-bags` derives from a recording right? The same expert demonstrations (same
# layouts and seeds) recorded two ways: as `molevla collect` episodes (the expert's own chunks as labels) and as a
# real robot's rosbag2 (`collect --format bag`: image_raw at 10 Hz, joint_states at 50 Hz, the goal; labels derived
# from the recorded motion). The shipped model is fine-tuned on each (same stage, steps, learning rate and training
# seeds) and all of them, with the shipped model as the reference, are evaluated in closed loop on the same layouts.
# Usage: scripts/bag_vs_collect.sh [LAYOUTS_PER_FAMILY] [STEPS] [EVAL_EPISODES_PER_FAMILY] [WORK_DIR] [SEEDS]
# docs/your_robot.md's table: 40 layouts, 600 steps, 50 episodes, seeds "0 1" (about 80 minutes on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
M=.venv/bin/molevla
LAYOUTS=${1:-40}
STEPS=${2:-600}
EVAL=${3:-50}
W=${4:-runs/bag_vs_collect}
SEEDS=${5:-"0 1"}
$M collect --episodes "$LAYOUTS" --out "$W/collect" &
$M collect --episodes "$LAYOUTS" --format bag --out "$W/bags"
wait
[ -d "$W/dataset" ] || $M dataset from-bags "$W/bags" --robot panda_sim --out "$W/dataset"
MODELS="shipped=mole_locator"
for seed in $SEEDS; do
  for src in collect dataset; do
    $M train --stage mole --init mole_locator --data "$W/$src" --out "$W/ft_${src}_s$seed" --steps "$STEPS" \
      --lr 1e-4 --seed "$seed" --threads 1 &
  done
  wait
  MODELS="$MODELS,collect episodes (seed $seed)=$W/ft_collect_s$seed,converted bags (seed $seed)=$W/ft_dataset_s$seed"
done
$M eval-policies --models "$MODELS" --episodes "$EVAL" --wordings canonical --out "$W/eval"
