#!/usr/bin/env bash
# Mutation testing of the safety core with mutmut 3: every mutation mutmut makes to control/ (chunk execution, limits,
# watchdog, kinematics), inputs/ (frames, goals, joint states) and the CogACT action statistics, each run against the
# fast tests that cover the mutated function (molevla_ros/setup.cfg [mutmut]). Writes the score, the surviving mutants
# and their diffs to docs/results/mutation/report.md (equivalent mutants, with why, in docs/results/mutation/
# equivalent.yaml). About 25 minutes on 2 cores. Extra arguments go to `mutmut run` (e.g. a mutant name pattern).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cd molevla_ros
rm -rf mutants
../.venv/bin/mutmut run --max-children "$(nproc)" "$@" || true
../.venv/bin/python ../scripts/mutation_report.py
