#!/usr/bin/env bash
# Rebuild the shipped default policy (molevla_ros/models/mole_locator) from nothing but this repository: every
# episode is recorded here by the simulator and the scripted expert (or a model of this chain driving, DAgger), on
# the seeds of the shipped lineage, and every stage is one `molevla` command, in that lineage's order
# (docs/notebook.md, "Why push fails"; archive/models/teacher_locator/README.md):
#   1. teacher_minilm: 2636 DART expert episodes, grounding pre-training, full-depth teacher (as scripts/train_all.sh)
#   2. 1711 DART expert episodes with the simulator's ground truth, 400 DAgger episodes with teacher_minilm driving
#   3. a goal locator on teacher_minilm's vision path, then a new decoder, head and router trained with it in place
#      (3000 steps, then 3000 with --patch-dropout 0.5)
#   4. the locator grown by 3 context blocks, trained alone on the ground truth
#   5. 1500 teacher steps with --patch-dropout 0.8; 120 DAgger episodes with that model driving; 1500 more steps
#      (= archive/models/teacher_locator)
#   6. the MoLe student at keep 4/8: 800 steps, STAR router by route search + CogKD (mole_locator until 2026-12-07)
#   7. the compute knob: 400 steps more with the layers kept drawn from 3..8 per step, on 300 expert and 120 DAgger
#      episodes recorded for it (mole_locator until the DAgger round of 2026-12-07)
#   8. a DAgger round with stage 7's model driving (120 push and pick-and-place episodes, 30% expert), then 2 x 400
#      steps as stage 7 on all of stage 7's and 8's episodes (= models/mole_locator), then its closed-loop evaluation
#      (50 episodes per family and wording)
# Nothing in the package is overwritten: the result is OUT/mole_locator. Resumable: finished episodes, runs
# (history.json) and the evaluation are kept. Collection runs two recorders at a time (one per core), except stage
# 8's DAgger round: one recorder, as the shipped lineage recorded it (the driver's noise runs on across episodes).
# Unlike the shipped lineage, whose grounding run started while recording went on (it saw 616 episodes), grounding
# here sees all of step 1's episodes.
# Usage: scripts/train_default.sh [OUT]   (default runs/default; SMOKE=1: 1 layout per family and 2 steps per
# stage into runs/default_smoke, a check that the whole chain runs, about 15 min; THREADS=n: torch threads per
# training run, default 2)
# Time on 2 CPU cores, from the measured stages of the shipped lineage (not yet one end-to-end run): recording
# 5437 episodes at 2-7 s each, two at a time: about 3 h; training about 3.8 h; evaluation 40 min; about 8 h in all.
set -euo pipefail
cd "$(dirname "$0")/.."
M=.venv/bin/molevla
if [ "${SMOKE:-0}" = 1 ]; then OUT=${1:-runs/default_smoke}; else OUT=${1:-runs/default}; fi
D=$OUT/data
n() { if [ "${SMOKE:-0}" = 1 ]; then echo "$2"; else echo "$1"; fi; }  # n FULL SMOKE
E() { n "$1" 1; }   # layouts per family
S() { n "$1" 2; }   # optimiser steps
T=(--threads "${THREADS:-2}")
train() { [ -f "$OUT/$1/history.json" ] || $M train --out "$OUT/$1" "${@:2}" "${T[@]}"; }  # written last
both() {  # two recorders at once (one torch thread each); fails if either fails
  OMP_NUM_THREADS=1 bash -c "$1" & local a=$! rc=0
  OMP_NUM_THREADS=1 bash -c "$2" || rc=$?
  wait $a || rc=$?
  return $rc
}
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT  # no recorder outlives the script

# 1. teacher_minilm
both "$M collect --tasks touch,pick_place --episodes $(E 300) --noise 0.005 --out $D/episodes &&
      $M collect --tasks touch,pick_place --episodes $(E 240) --goals 3 --noise 0.005 --out $D/episodes" \
     "$M collect --tasks push --episodes $(E 880) --noise 0.005 --out $D/episodes &&
      $M collect --tasks push --episodes $(E 98) --goals 3 --noise 0.005 --out $D/episodes"
train grounding --stage grounding --data "$D/episodes" --steps "$(S 3000)" --batch 64 --lr 1e-3
train teacher_minilm --stage teacher --init "$OUT/grounding" --data "$D/episodes" --steps "$(S 8000)"

# 2. expert episodes with ground truth (push seeds 200-675, touch 200-524, pick_place 200-509 in the second
#    folder), held-out validation episodes, DAgger with teacher_minilm driving (30% expert)
both "$M collect --noise 0.005 --episodes $(E 200) --out $D/expert_gt &&
      $M collect --tasks touch --noise 0.005 --seed 200 --episodes $(E 325) --out $D/expert_gt2 &&
      $M collect --episodes $(E 10) --seed 5000 --out $D/heldout_gt" \
     "$M collect --tasks push --noise 0.005 --seed 200 --episodes $(E 476) --out $D/expert_gt2 &&
      $M collect --tasks pick_place --noise 0.005 --seed 200 --episodes $(E 310) --out $D/expert_gt2"
both "$M collect --driver $OUT/teacher_minilm --beta 0.3 --tasks touch,pick_place --seed 2100 --episodes $(E 100) \
        --out $D/dagger" \
     "$M collect --driver $OUT/teacher_minilm --beta 0.3 --tasks push --seed 2100 --episodes $(E 200) --out $D/dagger"

# 3. the goal locator, then a new policy on top of it
GT=$D/expert_gt
train locator --stage locator --init "$OUT/teacher_minilm" --data "$GT" --val "$D/heldout_gt" --steps "$(S 5000)" \
  --lr 3e-3 --shift 0
train scratch --stage teacher --init "$OUT/locator" --reinit decoder,head,router,proprio --data "$GT,$D/dagger" \
  --geometry-weight 1 --shift 0 --steps "$(S 3000)"
train scratch_pd --stage teacher --init "$OUT/scratch" --data "$GT,$D/dagger" --geometry-weight 1 --shift 0 \
  --patch-dropout 0.5 --steps "$(S 3000)"

# 4. the locator grown by 3 context blocks
train locator_ctx --stage locator --init "$OUT/scratch_pd" --locator-blocks 3 --data "$GT,$D/expert_gt2" \
  --val "$D/heldout_gt" --steps "$(S 5000)" --lr 3e-3 --shift 0

# 5. patch dropout 0.8, a DAgger round with that model driving, the teacher
FT=(--stage teacher --geometry-weight 1 --patch-dropout 0.8 --shift 0 --steps "$(S 1500)")
train teacher_pd --init "$OUT/locator_ctx" --data "$GT,$D/expert_gt2,$D/dagger" "${FT[@]}"
both "$M collect --driver $OUT/teacher_pd --beta 0.3 --tasks push --episodes $(E 60) --seed 3000 \
        --out $D/dagger2_push" \
     "$M collect --driver $OUT/teacher_pd --beta 0.3 --tasks pick_place --episodes $(E 60) --seed 3000 \
        --out $D/dagger2_pick_place"
ALL=$GT,$D/expert_gt2,$D/dagger,$D/dagger2_push,$D/dagger2_pick_place
train teacher_locator --init "$OUT/teacher_pd" --data "$ALL" "${FT[@]}"

# 6. the MoLe student at the trained keep ratio (4 of 8 layers)
train mole_k4 --stage mole --init "$OUT/teacher_locator" --data "$ALL" --steps "$(S 800)" --route-search 2 \
  --gumbel-scale 0 --balance-weight 0 --geometry-weight 1 --shift 0

# 7. the compute knob: k drawn from 3..8 per step (docs/results/keep_sweep/mixed_keep)
both "$M collect --noise 0.005 --episodes $(E 100) --seed 0 --out $D/anyk_expert" \
     "$M collect --driver $OUT/teacher_locator --beta 0.3 --tasks push,pick_place --episodes $(E 60) --seed 3000 \
        --out $D/anyk_dagger"
ANYK=(--stage mole --steps "$(S 400)" --lr 1e-4 --mixed-keep 3,8 --route-search 2 --gumbel-scale 0 --balance-weight 0
      --geometry-weight 1 --shift 0)
train mole_anyk --init "$OUT/mole_k4" --data "$D/anyk_expert,$D/anyk_dagger" "${ANYK[@]}"

# 8. a DAgger round with stage 7's model driving (docs/results/keep_sweep/dagger_2026-12-07), then the evaluation
$M collect --driver "$OUT/mole_anyk" --route mole --beta 0.3 --tasks push,pick_place --episodes "$(E 60)" --seed 4000 \
  --out "$D/anyk_dagger2"
ANYK_DATA=$D/anyk_expert,$D/anyk_dagger,$D/anyk_dagger2
train mole_dagger --init "$OUT/mole_anyk" --data "$ANYK_DATA" "${ANYK[@]}"
train mole_locator --init "$OUT/mole_dagger" --data "$ANYK_DATA" "${ANYK[@]}"
[ -f "$OUT/eval/results.json" ] ||
  $M eval-policies --models "mole_locator=$OUT/mole_locator" --episodes "$(n 50 1)" --out "$OUT/eval"
