"""Where does a goal locator err? (docs/notebook.md, "Why push fails".)

Usage: .venv/bin/python scripts/notebook/locator_errors.py EPISODE_FOLDER MODEL_DIR [MODEL_DIR ...]

On recorded episodes with the simulator's ground truth (`molevla collect` records it), each model's locator finds the
named cube and its goal in every frame; prints, per family, the median error (cm), the share of steps more than 5 cm
off and the 90th percentile; the same by where the hand is (fingertip below or above 12 cm, its distance from the
named cube in the table plane): states the expert never visits show up there in episodes a policy drove; then per
push episode the mean and largest error: the layouts where it fails.
"""
from __future__ import annotations

import sys

import numpy as np
import torch

from molevla_ros.model.io import load_model
from molevla_ros.model.proprio import fingertip_position
from molevla_ros.train.episodes import load_samples
from molevla_ros.train.locator import locate_all


def _stat(e: np.ndarray, kind: str) -> str:
    """One statistic of the defined errors (cm), or '-' where the family has no such point."""
    e = e[~np.isnan(e)]
    if len(e) == 0:
        return "-"
    return f"{np.mean(e > 5):.1%}" if kind == "over5" else f"{np.percentile(e, 50 if kind == 'median' else 90):.1f}"


LOW_HAND = 0.12  # m: a fingertip below this is "low"


def hand_position(proprio: np.ndarray) -> np.ndarray:
    """[N, 3] fingertip positions (base frame, m) of the recorded joint states [N, 9]."""
    return fingertip_position(torch.from_numpy(proprio[:, :7]).double()).numpy()


def _by_hand(err: np.ndarray, proprio: np.ndarray, cube: np.ndarray) -> None:
    """Error table by the fingertip's height and its table-plane distance from the named cube."""
    tip = hand_position(proprio)
    away = np.linalg.norm(tip[:, :2] - cube, axis=-1) * 100
    print("| hand | hand to cube (cm) | steps | median | share > 5 cm |\n|---|---|---|---|---|")
    for low in (True, False):
        for lo, hi in ((0, 5), (5, 10), (10, 20), (20, 100)):
            rows = ((tip[:, 2] < LOW_HAND) == low) & (away >= lo) & (away < hi)
            if rows.any():
                e = err[rows]
                print(f"| {'low' if low else 'high'} | {lo}-{hi} | {rows.sum()} | "
                      + " | ".join(" / ".join(_stat(e[:, j], kind) for j in (0, 1)) for kind in ("median", "over5"))
                      + " |")


def main(folder: str, models: list[str]) -> None:
    torch.set_num_threads(1)
    for path in models:
        model = load_model(path)
        data = load_samples(folder, model.cfg.vision, only_successful=False)
        if data.geometry is None:
            raise SystemExit(f"{folder} has no ground truth")
        err = np.linalg.norm(locate_all(model, data) - data.geometry[:, :2], axis=-1) * 100  # [N, 2] cm
        families = np.array(data.families)
        print(f"\n{path} on {folder} (cm; cube / goal)\n| family | median | share > 5 cm | p90 |\n|---|---|---|---|")
        for family in ("touch", "push", "pick_place"):
            e = err[families == family]
            if len(e):
                print(f"| {family} | " + " | ".join(" / ".join(_stat(e[:, j], kind) for j in (0, 1))
                                                    for kind in ("median", "over5", "p90")) + " |")
        _by_hand(err, data.proprio, data.geometry[:, 0])
        push = np.flatnonzero(families == "push")
        for episode in sorted(set(data.episode[push])):
            rows = push[data.episode[push] == episode]
            mean, worst = err[rows].mean(0), err[rows].max(0)
            print(f"  {data.instructions[rows[0]]!r}: mean {mean[0]:.1f} / {mean[1]:.1f}, "
                  f"max {worst[0]:.1f} / {worst[1]:.1f}")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    main(sys.argv[1], sys.argv[2:])
