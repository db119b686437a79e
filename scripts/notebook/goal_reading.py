"""How the policy node reads goals (offline, no simulator): for each task family, N goals said one way (canonical
typed with errors by model/wordings.with_typos, the held-out wordings, the held-out wordings typed with errors, new
training-style wordings), read through a model's goal reference with the node's defaults: how many are refused,
how many are read as the goal meant (`GoalReading.known`, what the policy acts on), and how long a reading takes.

    .venv/bin/python scripts/notebook/goal_reading.py [MODEL_DIR]
"""
import sys
import time

import numpy as np

from molevla_ros.model.goal_familiarity import DEFAULT_MIN_SIMILARITY, GoalFamiliarity
from molevla_ros.model.language import COLOUR_NAMES, FAMILIES, instruction_for
from molevla_ros.model.wordings import held_out_wording, random_wording, with_typos
from molevla_ros.paths import models_dir

N = 200
WORDINGS = {
    "canonical, typed with errors": lambda f, c, t, i, rng: with_typos(instruction_for(f, c, t), rng, space_drop=0.0),
    "canonical, typed with errors, 10% spaces dropped": lambda f, c, t, i, rng: with_typos(
        instruction_for(f, c, t), rng, space_drop=0.1),
    "held-out": lambda f, c, t, i, rng: held_out_wording(f, c, t, i),
    "held-out, typed with errors": lambda f, c, t, i, rng: with_typos(held_out_wording(f, c, t, i), rng,
                                                                       space_drop=0.0),
    "training-style (new draws)": lambda f, c, t, i, rng: random_wording(f, c, t, rng),
}


def main(model_dir: str) -> None:
    fam = GoalFamiliarity.of(model_dir)
    print(f"{model_dir}: {N} goals per family and wording, seed 1\n")
    print("| wording | refused (touch / push / pick_place) | read as the goal meant | ms p50 / p99 |")
    print("|---|---|---|---|")
    for name, say in WORDINGS.items():
        rng = np.random.default_rng(1)
        refused, meant, ms = [], [], []
        for family in FAMILIES:
            r_n = m_n = 0
            for i in range(N):
                cube, target = COLOUR_NAMES[i % 4], COLOUR_NAMES[(i // 4 + 1 + i) % 4]
                target = target if target != cube else COLOUR_NAMES[(i + 2) % 4]
                goal = instruction_for(family, cube, target)
                t0 = time.perf_counter()
                r = fam.read(say(family, cube, target, i, rng), DEFAULT_MIN_SIMILARITY)
                ms.append((time.perf_counter() - t0) * 1e3)
                r_n += bool(r.refusal)
                m_n += r.known == goal
            refused.append(f"{r_n / N:.1%}")
            meant.append(f"{m_n / N:.1%}")
        print(f"| {name} | {' / '.join(refused)} | {' / '.join(meant)} | "
              f"{np.percentile(ms, 50):.1f} / {np.percentile(ms, 99):.1f} |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else str(models_dir() / "mole_locator"))
