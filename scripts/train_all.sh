#!/usr/bin/env bash
# Reproduce the first MiniLM lineage (teacher_minilm and its routed variants) and the comparison: record expert
# episodes, pre-train grounding, train the full-depth teacher, fine-tune the four routed variants from it, evaluate
# all of them in closed loop; the MoLe one is runs/mole (archive/models/mole_small was trained this way; nothing in
# the package is overwritten). The default model, mole_locator, goes on from that teacher (goal locator, patch
# dropout, DAgger rounds, then its student): its commands are in docs/notebook.md, "Why push fails", and its seed
# comparison is scripts/compare_seeds.sh.
# Usage: scripts/train_all.sh [LAYOUTS_PER_FAMILY] [EVAL_EPISODES_PER_FAMILY]
# Data: touch and pick_place: LAYOUTS seeds with their own goal, the first 80% of them also with the two other cubes
# as goals; push (the hardest family): 44/15 x LAYOUTS seeds with their own goal (more distinct layouts), the first
# third of LAYOUTS also with the other cubes as goals. Collection is resumable: existing episode files are kept.
# archive/models/teacher_minilm was trained on LAYOUTS=300: 780 + 780 + 1076 episodes (push with other goals: seeds 0-97).
# The expert drives with DART noise (--noise: its executed chunks drift, its labels stay clean), so the data show
# how to recover from the errors a learned policy makes. Held-out validation episodes use seeds
# 5000+, closed-loop evaluation seeds 1000+. Training rewords every goal at every step (--wording varied).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
M=.venv/bin/molevla
LAYOUTS=${1:-300}
EVAL=${2:-50}
PUSH=$((LAYOUTS * 44 / 15))
$M collect --tasks touch,pick_place --episodes "$LAYOUTS" --noise 0.005 --out data/episodes
$M collect --tasks touch,pick_place --episodes $((LAYOUTS * 4 / 5)) --goals 3 --noise 0.005 --out data/episodes
$M collect --tasks push --episodes "$PUSH" --noise 0.005 --out data/episodes
$M collect --tasks push --episodes $((LAYOUTS / 3)) --goals 3 --noise 0.005 --out data/episodes
$M collect --episodes 10 --seed 5000 --out data/heldout
# Grounding pre-training of the vision encoder + embeddings, then the teacher from it. (teacher_minilm's grounding
# run started while recording went on: it saw the first 616 episodes.)
$M train --stage grounding --out runs/grounding --steps 3000 --batch 64 --lr 1e-3 --val data/heldout --val-every 500
$M train --stage teacher --init runs/grounding --out runs/teacher --steps 8000 --val data/heldout --val-every 500
# The two STAR variants train their router by route search (docs/model.md); the baselines have no router to train.
for stage in mole mole_nokd; do
  $M train --stage "$stage" --init runs/teacher --out "runs/$stage" --steps 800 --val data/heldout \
    --route-search 2 --gumbel-scale 0 --balance-weight 0
done
for stage in random first_k; do
  $M train --stage "$stage" --init runs/teacher --out "runs/$stage" --steps 800 --val data/heldout
done
$M eval-policies --runs runs --episodes "$EVAL"
