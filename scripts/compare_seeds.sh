#!/usr/bin/env bash
# Issue 17's layer-skipping comparison at equal training: from one full-depth teacher, fine-tune four variants per
# training seed with the same data, steps and losses (only the routing differs: full depth, MoLe = STAR router +
# CogKD with route search, early exit = first k layers, random skipping; the last three at the model's keep ratio),
# evaluate each seed's four side by side in closed loop, then print the paired per-seed differences
# (scripts/paired_seeds.py). Resumable: a run with stats.json and a seed with results.json are kept.
# Usage: scripts/compare_seeds.sh [TEACHER] [DATA] [SEEDS] [EPISODES]   (STEPS=n: fine-tuning steps per variant,
# default 800; THREADS=n: torch threads per run; OUT=folder under runs/ and results/, default seeds; STAGES=the
# variants, default "teacher mole first_k random", mole among them; a seed already evaluated is not evaluated
# again, so delete its results.json after adding stages)
set -euo pipefail
cd "$(dirname "$0")/.."
M=.venv/bin/molevla
TEACHER=${1:-archive/models/teacher_locator}
DATA=${2:-data/expert_gt,data/expert_gt2,data/dagger,data/dagger2_push,data/dagger2_pick_place}
SEEDS=${3:-0 1 2}
EPISODES=${4:-20}
OUT=${OUT:-seeds}
COMMON=(--init "$TEACHER" --data "$DATA" --steps "${STEPS:-800}" --geometry-weight 1 --shift 0 --threads "${THREADS:-2}")
for s in $SEEDS; do
  for stage in ${STAGES:-teacher mole first_k random}; do
    dir=runs/$OUT/s$s/$stage
    [ -f "$dir/stats.json" ] && continue
    extra=()
    [ "$stage" = mole ] && extra=(--route-search 2 --gumbel-scale 0 --balance-weight 0)
    $M train --stage "$stage" --out "$dir" --seed "$s" "${COMMON[@]}" "${extra[@]}"
  done
  [ -f "results/$OUT/s$s/results.json" ] || $M eval-policies --runs "runs/$OUT/s$s" --episodes "$EPISODES" \
    --wordings canonical --out "results/$OUT/s$s"
done
.venv/bin/python scripts/paired_seeds.py "results/$OUT"
