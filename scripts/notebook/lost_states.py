"""Where the goal locator misplaces the cube in a policy's own push episodes: is the cube in view, and what did the
locator take for it? (docs/notebook.md, "In the policy's own episodes the goal locator errs ...".)

Usage: .venv/bin/python scripts/notebook/lost_states.py EPISODE_FOLDER MODEL_DIR [MODEL_DIR ...]

EPISODE_FOLDER holds push episodes recorded by `molevla collect` (file names push_<seed>.mcap). Each step is replayed
in the simulator: the layout of its seed, the named cube moved to its recorded true place, the arm set to the
recorded joints. The cube's visible share is its pixel count in the segmentation mask over its count with the arm at
home. Prints that share for the steps where the cube is more than 5 cm off and for the rest. For the steps with the
hand low (fingertip below 12 cm) and more than 10 cm from the cube, it also prints the object each model's located
cube lies within 4 cm of.
"""
from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pybullet as pb
import torch

from locator_errors import LOW_HAND, hand_position  # this folder (sys.path[0] when run as a script)
from molevla_ros.model.io import load_model
from molevla_ros.sim.scene import ARM_JOINTS, FINGER_JOINTS, HOME, FrankaTableSim
from molevla_ros.sim.tasks import CUBE_SIZE, sample_task
from molevla_ros.train.episodes import load_samples
from molevla_ros.train.locator import locate_all


def visible_share(folder: Path, seeds: list[int], episode: np.ndarray, joints: np.ndarray,
                  cube_xy: np.ndarray) -> np.ndarray:
    """Per step: the named cube's pixels with the recorded arm over its pixels with the arm at home."""
    sim = FrankaTableSim()
    w, h = sim.cfg.image_width, sim.cfg.image_height

    def pixels(body: int) -> int:
        seg = pb.getCameraImage(w, h, sim._view, sim._proj, shadow=0, renderer=pb.ER_TINY_RENDERER,
                                physicsClientId=sim.client)[4]
        return int((np.asarray(seg).reshape(h, w) == body).sum())

    share, current = np.zeros(len(episode)), None
    for i, ep in enumerate(episode):
        if ep != current:
            current, task = ep, sample_task("push", seeds[ep])
            sim.reset(task)
            body = sim._objects[task.instruction.split()[2] + "_cube"]
            orn = pb.getBasePositionAndOrientation(body, physicsClientId=sim.client)[1]
        pb.resetBasePositionAndOrientation(body, [*cube_xy[i], CUBE_SIZE / 2], orn, physicsClientId=sim.client)
        for j, q in zip(ARM_JOINTS, HOME):
            pb.resetJointState(sim.robot, j, q, physicsClientId=sim.client)
        free = pixels(body)
        for j, q in zip([*ARM_JOINTS, *FINGER_JOINTS], joints[i]):
            pb.resetJointState(sim.robot, j, float(q), physicsClientId=sim.client)
        share[i] = pixels(body) / max(free, 1)
    sim.close()
    return share


def taken_for(seed: int, point: np.ndarray) -> str:
    """The object of the layout within 4 cm of `point` (other than the named cube), by its role in the goal."""
    task = sample_task("push", seed)
    words = task.instruction.split()
    named, target = words[2], words[-2]
    objects = {("cube of the target's colour" if c == target else "another cube"): np.array(p[:2])
               for c, p in task.cubes.items() if c != named}
    objects.update({("its target" if c == target else "another target"): np.array(p)
                    for c, p in task.targets.items()})
    dist = {k: float(np.linalg.norm(point - p)) for k, p in objects.items()}
    nearest = min(dist, key=dist.get)
    return nearest if dist[nearest] < 0.04 else "no object"


def main(folder: str, models: list[str]) -> None:
    torch.set_num_threads(2)
    seeds = [int(f.stem.split("_")[-1]) for f in sorted(Path(folder).glob("*.mcap"))]
    for n, path in enumerate(models):
        model = load_model(path)
        data = load_samples(folder, model.cfg.vision, only_successful=False)
        cube = data.geometry[:, 0]
        located = locate_all(model, data)[:, 0]
        off = np.linalg.norm(located - cube, axis=-1) > 0.05
        tip = hand_position(data.proprio)
        lost = np.flatnonzero((tip[:, 2] < LOW_HAND) & (np.linalg.norm(tip[:, :2] - cube, axis=-1) > 0.10))
        if n == 0:  # the scene does not depend on the model
            share = visible_share(Path(folder), seeds, data.episode, data.proprio, cube)
            for name, rows in (("cube > 5 cm off", off), ("cube within 5 cm", ~off),
                               ("hand low, > 10 cm from the cube", np.isin(np.arange(len(off)), lost))):
                v = share[rows]
                print(f"{name}: {rows.sum()} steps, cube visible share median {np.median(v):.2f}, "
                      f"under half {np.mean(v < 0.5):.0%}")
        taken = Counter(taken_for(seeds[data.episode[i]], located[i]) for i in lost)
        print(f"{path}: hand low and away, {len(lost)} steps in {len(set(data.episode[lost]))} episodes, "
              f"{int(off[lost].sum())} of them > 5 cm off; located cube near: {dict(taken)}")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    main(sys.argv[1], sys.argv[2:])
