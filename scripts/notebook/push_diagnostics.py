"""Why a model fails at push: open-loop checks on recorded episodes (docs/notebook.md, "Why push fails").

Usage: .venv/bin/python scripts/notebook/push_diagnostics.py EPISODE_FOLDER MODEL_DIR [MODEL_DIR ...]
    [--geometry TRAIN_FOLDER]

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
4. With --geometry (both folders recorded with the simulator's ground truth): how well the decoder's vision input
   holds the goal geometry (train/geometry.py: named cube, goal, push start). A ridge regression is fitted on the
   frozen features of TRAIN_FOLDER's steps and scored on EPISODE_FOLDER's: the projected keypoint token alone, and
   all vision tokens. The error is the mean distance in cm; predicting the training mean scores the spread.
"""
from __future__ import annotations

import argparse
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from molevla_ros.model.io import load_model
from molevla_ros.model.mole_vla import preprocess_images
from molevla_ros.model.proprio import fingertip_position
from molevla_ros.sim.expert import push_start
from molevla_ros.sim.tasks import sample_task
from molevla_ros.train.episodes import Samples, load_samples, read_episode
from molevla_ros.train.geometry import POINTS
from molevla_ros.train.validate import predict_chunks

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
    return predict_chunks(model, replace(data, images=images), np.arange(len(data)), data.instructions, "full", 64,
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


@torch.no_grad()
def vision_inputs(model, data: Samples, batch: int = 256) -> np.ndarray:
    """The decoder's vision tokens (after the projector) of every sample with its recorded goal [N, T, D]."""
    out = []
    n = model.cfg.vision.n_tokens
    for i in range(0, len(data), batch):
        ids, valid = model.tokenize(data.instructions[i:i + batch])
        pixels = preprocess_images(torch.from_numpy(data.images[i:i + batch]), model.cfg.vision)
        x = model.embed(pixels, ids, valid, torch.from_numpy(data.proprio[i:i + batch]))[0]
        out.append(x[:, 1:1 + n].numpy())
    return np.concatenate(out)


def ridge_fit(x: np.ndarray, y: np.ndarray, alpha: float):
    """A ridge regression on standardised features and centred targets; returns the predict function."""
    mu, sd, y0 = x.mean(0), x.std(0) + 1e-6, y.mean(0)
    a, reg = (x - mu) / sd, alpha * len(x)
    if a.shape[1] <= len(a):  # primal or dual form, whichever system is smaller (the same solution)
        w = np.linalg.solve(a.T @ a + reg * np.eye(a.shape[1]), a.T @ (y - y0))
    else:
        w = a.T @ np.linalg.solve(a @ a.T + reg * np.eye(len(a)), y - y0)
    return lambda z: (z - mu) / sd @ w + y0


def ridge_error(x_train: np.ndarray, y_train: np.ndarray, episode: np.ndarray, x_test: np.ndarray,
                y_test: np.ndarray) -> float:
    """Mean xy distance (cm) on the test rows of a ridge regression whose strength is chosen on a fifth of the
    training episodes held out."""
    inner = episode % 5 != 0
    def err(fit, x, y):
        return float(np.linalg.norm(fit(x) - y, axis=1).mean() * 100)

    alpha = min((1e-4, 1e-3, 1e-2, 1e-1, 1.0),
                key=lambda a: err(ridge_fit(x_train[inner], y_train[inner], a), x_train[~inner], y_train[~inner]))
    return err(ridge_fit(x_train, y_train, alpha), x_test, y_test)


def geometry_table(models: dict, train: Samples, test: Samples, limit: int = 4000, seed: int = 0) -> None:
    """Check 4: ridge probes of the goal geometry from frozen vision tokens (see the module docstring)."""
    rng = np.random.default_rng(seed)
    pick = rng.permutation(len(train))[:limit]
    train = replace(train, **{k: getattr(train, k)[pick] for k in ("images", "proprio", "chunks", "episode",
                                                                    "geometry")},
                    instructions=[train.instructions[i] for i in pick], families=[train.families[i] for i in pick])
    print("\n| model | features | " + " | ".join(f"{p} (cm)" for p in POINTS) + " |")
    print("|---|---|" + "---|" * len(POINTS))
    spread = [np.linalg.norm(test.geometry[:, j][~np.isnan(test.geometry[:, j, 0])]
                             - np.nanmean(train.geometry[:, j], 0), axis=1).mean() * 100 for j in range(len(POINTS))]
    print("| - | training mean | " + " | ".join(f"{v:.1f}" for v in spread) + " |")
    for name, model in models.items():
        tr, te = vision_inputs(model, train), vision_inputs(model, test)
        for label, (a, b) in {"keypoint token": (tr[:, -1], te[:, -1]),
                              "all vision tokens": (tr.reshape(len(tr), -1), te.reshape(len(te), -1))}.items():
            cells = []
            for j in range(len(POINTS)):
                tr_j, te_j = ~np.isnan(train.geometry[:, j, 0]), ~np.isnan(test.geometry[:, j, 0])
                err = ridge_error(a[tr_j], train.geometry[tr_j, j], train.episode[tr_j], b[te_j],
                                  test.geometry[te_j, j])
                cells.append(f"{err:.1f}")
            print(f"| {name} | {label} | " + " | ".join(cells) + " |")


def main(folder: str, models: list[str], geometry_train: str | None = None) -> None:
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

    if geometry_train:
        if data.geometry is None:
            raise SystemExit(f"{folder} has no recorded ground truth (sim/privileged_state): re-record it")
        geometry_table(loaded, load_samples(geometry_train, first.cfg.vision), data)
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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("episodes")
    parser.add_argument("models", nargs="+")
    parser.add_argument("--geometry", metavar="TRAIN_FOLDER", help="check 4: fit geometry probes on these episodes")
    args = parser.parse_args()
    main(args.episodes, args.models, args.geometry)
