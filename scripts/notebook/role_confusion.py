"""Does the goal locator mix up which colour is the cube's and which the goal's? (docs/notebook.md, "Why push fails".)

Usage: .venv/bin/python scripts/notebook/role_confusion.py MODEL_DIR [MODEL_DIR ...] [--layouts 50] [--seed 9900]

Renders each layout of each family (seeds from --seed; the arm at home and at one pose low away from the cube, as
arm_decoys.py) and asks each model's locator for every goal the scene allows: in push, each cube with each target, so
the same picture comes with the colours in both roles. Prints per family the median error (cm) of the named cube and
of its goal, the share more than 5 cm off, and where the wrong answers went: the share of goals whose located cube
lies within 4 cm of another cube, and (push) whose located goal lies within 4 cm of the other target.
"""
from __future__ import annotations

import argparse
from functools import cache

import numpy as np
import torch

from arm_decoys import decoy_frames  # this folder (sys.path[0] when run as a script)
from molevla_ros.model.io import load_model
from molevla_ros.model.language import FAMILIES, parse_instruction
from molevla_ros.paths import resolve_model
from molevla_ros.sim.tasks import sample_task
from molevla_ros.train.locator import locate_all


@cache
def _objects(family: str, seed: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The layout's cubes and targets by colour (table xy)."""
    task = sample_task(family, seed)
    return ({c: np.array(p[:2]) for c, p in task.cubes.items()}, {c: np.array(p) for c, p in task.targets.items()})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+")
    ap.add_argument("--layouts", type=int, default=50)
    ap.add_argument("--seed", type=int, default=9900)
    o = ap.parse_args()
    torch.set_num_threads(2)
    cfg = load_model(resolve_model(o.models[0])).cfg
    frames = decoy_frames(o.layouts, 1, o.seed, cfg.vision, cfg.action_head.horizon, all_goals=True)
    layout = o.seed + frames.episode
    fam = np.array(frames.families)
    print("| model | family | goals | cube / goal median cm | share > 5 cm | cube at another cube | goal at the other "
          "target |\n|---|---|---|---|---|---|---|")
    for path in o.models:
        model = load_model(resolve_model(path))
        located = locate_all(model, frames)
        err = np.linalg.norm(located - frames.geometry[:, :2], axis=-1) * 100
        for family in FAMILIES:
            rows = np.flatnonzero(fam == family)
            other_cube, other_target = [], []
            for i in rows:
                _, cube, target = parse_instruction(frames.instructions[i])
                cubes, targets = _objects(family, int(layout[i]))
                wrong = [p for c, p in cubes.items() if c != cube]
                other_cube.append(err[i, 0] > 5 and any(np.linalg.norm(located[i, 0] - p) < 0.04 for p in wrong))
                if family == "push":
                    rest = [p for c, p in targets.items() if c != target]
                    other_target.append(err[i, 1] > 5 and any(np.linalg.norm(located[i, 1] - p) < 0.04 for p in rest))
            e = err[rows]
            goal = e[:, 1][~np.isnan(e[:, 1])]
            goal_median, goal_over = (f"{np.median(goal):.1f}", f"{np.mean(goal > 5):.1%}") if len(goal) else ("-", "-")
            print(f"| {path} | {family} | {len(rows)} | {np.median(e[:, 0]):.1f} / {goal_median} | "
                  f"{np.mean(e[:, 0] > 5):.1%} / {goal_over} | {np.mean(other_cube):.1%} | "
                  + (f"{np.mean(other_target):.1%} |" if other_target else "- |"))


if __name__ == "__main__":
    main()
