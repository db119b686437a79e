"""Why a model fails at push: open-loop checks on recorded episodes (README, "Why push fails").

Usage: .venv/bin/python scripts/push_diagnostics.py EPISODE_FOLDER MODEL_DIR [MODEL_DIR ...]

Chunks come from the policy node's inference path at full depth with fixed DDIM noise; agreement is the cosine
between the model's and the expert label's travel over the first 4 action steps. Record the folder with a model
driving and the expert labelling (`molevla collect --tasks push --driver MODEL --beta 0`) to see the states the
model itself reaches, or use expert episodes (`molevla collect`) for the states of the demonstrations.

1. Image reliance, per family: agreement with each step's own camera frame, and with a frame of another episode
   of the same family (same arm state and goal sentence). A policy that reads the scene loses its agreement
   without its own frame; one that steers by the arm state alone keeps it.
2. Per phase of a push, set by the expert label and the fingertip height: lift (the expert rises), descend (it
   lowers), travel far / near (horizontal with fingertips above 6 cm, at least / less than 6 cm in those 4
   steps) and push (horizontal, fingertips below 4 cm): agreement, and how often the vertical motion has the
   expert's sign.
3. Per push episode: the point the fingertip stays nearest to over the episode's second half (behind the cube,
   where a push starts; the goal cube; the goal target; another cube or target).
"""
from __future__ import annotations

import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from molevla_ros.model.io import load_model
from molevla_ros.model.proprio import fingertip_position
from molevla_ros.sim.expert import push_start
from molevla_ros.sim.tasks import sample_task
from molevla_ros.train.episodes import Samples, load_samples, read_episode
from molevla_ros.train.validate import _predict

PHASES = ("lift", "descend", "travel far", "travel near", "push")


def phases(chunks: np.ndarray, tip_z: np.ndarray) -> np.ndarray:
    """Phase name per sample ('' when the expert barely moves or the height is in between)."""
    travel = chunks[:, :4, :3].sum(1)
    xy, z = np.linalg.norm(travel[:, :2], axis=1), travel[:, 2]
    out = np.full(len(chunks), "", dtype=object)
    out[(xy >= 0.005) & (tip_z > 0.06)] = "travel near"
    out[(xy >= 0.06) & (tip_z > 0.06)] = "travel far"
    out[(xy >= 0.005) & (tip_z < 0.04)] = "push"
    out[(z > 0.01) & (xy < 0.005)] = "lift"
    out[(z < -0.01) & (xy < 0.005)] = "descend"
    return out


def where_it_stays(folder: str, vision) -> Counter:
    """Per push episode: the named point nearest on average to the fingertip over the episode's second half."""
    counts: Counter = Counter()
    for f in sorted(Path(folder).glob("push_*.mcap")):
        info, rows = read_episode(f, vision)
        task = sample_task("push", int(info["seed"]), goal=int(info.get("goal", 0)))
        q = torch.as_tensor(np.stack([r[1] for r in rows])[:, :7], dtype=torch.float64)
        tail = fingertip_position(q).numpy()[len(rows) // 2:, :2]
        cube, target = np.array(task.cubes[task.cube][:2]), np.array(task.targets[task.target])
        points = [("behind the cube", push_start(cube, target)), ("goal cube", cube), ("goal target", target)]
        points += [("another cube", np.array(v[:2])) for k, v in task.cubes.items() if k != task.cube]
        points += [("another target", np.array(v)) for k, v in task.targets.items() if k != task.target]
        counts[min(points, key=lambda p: np.linalg.norm(tail - p[1], axis=1).mean())[0]] += 1
    return counts


def _cosine(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    return (pred * true).sum(1) / (np.linalg.norm(pred, axis=1) * np.linalg.norm(true, axis=1) + 1e-9)


def travel(model, data: Samples, images: np.ndarray, seed: int = 0) -> np.ndarray:
    """The model's xyz travel over the first 4 action steps [N, 3] for every sample, seeing ``images``."""
    return _predict(model, replace(data, images=images), np.arange(len(data)), data.instructions, "full", 64,
                    seed)[:, :4, :3].sum(1)


def frames_of_other_episodes(data: Samples, seed: int = 0) -> np.ndarray:
    """Per sample, the frame of a random sample of another episode of the same family (its own if there is none)."""
    rng = np.random.default_rng(seed)
    families = np.array(data.families)
    swapped = data.images.copy()
    for i in range(len(data)):
        others = np.flatnonzero((families == families[i]) & (data.episode != data.episode[i]))
        if len(others):
            swapped[i] = data.images[rng.choice(others)]
    return swapped


def main(folder: str, models: list[str]) -> None:
    first = load_model(models[0])
    data = load_samples(folder, first.cfg.vision, only_successful=False)
    loaded = {m: first if m == models[0] else load_model(m) for m in models}
    families = np.array(data.families)
    true = data.chunks[:, :4, :3].sum(1)
    moving = np.linalg.norm(true, axis=1) >= 0.005
    swapped = frames_of_other_episodes(data)
    own = {m: travel(model, data, data.images) for m, model in loaded.items()}

    print("| model | family: travel cosine with own frame / with another episode's frame (expert moves >= 5 mm) |")
    print("|---|---|")
    for m, model in loaded.items():
        cos_own, cos_other = _cosine(own[m], true), _cosine(travel(model, data, swapped), true)
        rows = {f: (families == f) & moving for f in dict.fromkeys(data.families)}
        cells = [f"{f} {cos_own[r].mean():.2f} / {cos_other[r].mean():.2f}" for f, r in rows.items() if r.any()]
        print(f"| {m} | " + ", ".join(cells) + " |")

    push = families == "push"
    if not push.any():
        return
    tip_z = fingertip_position(torch.as_tensor(data.proprio[push, :7], dtype=torch.float64))[:, 2].numpy()
    phase = phases(data.chunks[push], tip_z)
    print(f"\n{int(push.sum())} push control steps; fingertip height {tip_z.min():.3f}..{tip_z.max():.3f} m")
    print("| model | " + " | ".join(f"{p} (n={int((phase == p).sum())})" for p in PHASES) + " |")
    print("|---" * (len(PHASES) + 1) + "|")
    for m in loaded:
        pred, label = own[m][push], true[push]
        cos, same_z = _cosine(pred, label), np.sign(pred[:, 2]) == np.sign(label[:, 2])
        cells = [f"cos {cos[phase == p].mean():.2f}, z sign {same_z[phase == p].mean():.0%}" if (phase == p).any()
                 else "-" for p in PHASES]
        print(f"| {m} | " + " | ".join(cells) + " |")
    counts = where_it_stays(folder, first.cfg.vision)
    print("\nwhere the fingertip stays over the second half of each episode:", dict(counts.most_common()))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
