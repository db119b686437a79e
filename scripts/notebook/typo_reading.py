"""How the policy node reads mistyped goals (offline, no simulator): for each task family, `N` canonical goals typed
with errors (model/wordings.with_typos, seeded), read through the shipped model's goal reference: how many are
refused, how many are read as the intended task, and how long a reading takes.

    .venv/bin/python scripts/notebook/typo_reading.py [MODEL_DIR]
"""
import sys
import time

import numpy as np

from molevla_ros.model.goal_familiarity import DEFAULT_MIN_SIMILARITY, GoalFamiliarity
from molevla_ros.model.language import COLOUR_NAMES, FAMILIES, instruction_for, parse_instruction
from molevla_ros.model.wordings import with_typos
from molevla_ros.paths import models_dir

N = 200


def main(model_dir: str) -> None:
    fam = GoalFamiliarity.of(model_dir)
    print(f"{model_dir}: {N} typed goals per family, seed 1\n")
    print("| spaces dropped | family | refused | read as the intended task | read exactly as the canonical goal "
          "| ms p50 / p99 |")
    print("|---|---|---:|---:|---:|---:|")
    for drop in (0.0, 0.1):
        rng = np.random.default_rng(1)
        for family in FAMILIES:
            refused = same = exact = 0
            ms = []
            for i in range(N):
                goal = instruction_for(family, COLOUR_NAMES[i % 4], COLOUR_NAMES[(i + 1) % 4])
                t0 = time.perf_counter()
                r = fam.read(with_typos(goal, rng, space_drop=drop), DEFAULT_MIN_SIMILARITY)
                ms.append((time.perf_counter() - t0) * 1e3)
                refused += bool(r.refusal)
                same += not r.refusal and parse_instruction(r.text) == parse_instruction(goal)
                exact += r.text == goal
            print(f"| {drop:.0%} | {family} | {refused / N:.1%} | {same / N:.1%} | {exact / N:.1%} | "
                  f"{np.percentile(ms, 50):.1f} / {np.percentile(ms, 99):.1f} |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else str(models_dir() / "mole_locator"))
