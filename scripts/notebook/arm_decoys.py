"""Does the goal locator find the cube apart from the hand once it sees the hand low elsewhere? (docs/notebook.md,
"In the policy's own episodes the goal locator errs ...".)

Usage: .venv/bin/python scripts/notebook/arm_decoys.py --data EPISODE_FOLDERS --out runs/loc_decoys
       [--layouts 400] [--poses 4] [--seed 9000] [--steps 1500] [--val data/heldout_gt] [--all-goals] [--roles]

In the expert's episodes the hand is low only at the named cube, so "hand low here" and "cube here" always go
together. This renders frames that break the link: each layout of each family (seeds from --seed) with the arm placed
kinematically (inverse kinematics, joints set, no physics step, so nothing on the table moves) with the fingertip 3-12
cm above the table at a random point at least 6 cm from the named cube, gripper pointing down at a random yaw and
opening. Their labels are the simulator's true points (train/geometry.py). The default's locator is then fine-tuned
alone on these frames and the episodes in --data (`molevla train --stage locator` with the frames added), and the
model written to --out.

--all-goals: each frame also with the arm at home, and labelled for every goal its scene allows (each cube; in push
each cube with each target), so that the same picture comes with the colours in both roles. --roles: the locator
gets its per-point instruction summaries (model/goal_locator.py) before it trains.
"""
from __future__ import annotations

import argparse
import math

import numpy as np
import pybullet as pb
import torch
from tqdm import tqdm

from molevla_ros.inputs.images import resize
from molevla_ros.model.io import load_model
from molevla_ros.model.language import FAMILIES, instruction_for
from molevla_ros.model.mole_vla import resize_images
from molevla_ros.paths import resolve_model
from molevla_ros.record.collect import IMAGE_SIZE
from molevla_ros.sim.scene import ARM_JOINTS, EE_LINK, FINGER_JOINTS, HOME, FrankaTableSim
from molevla_ros.sim.tasks import Task, sample_task
from molevla_ros.train.config import TrainConfig
from molevla_ros.train.episodes import Samples, _concatenate, load_samples
from molevla_ros.train.geometry import goal_points
from molevla_ros.train.locator import pretrain_locator


def pose_arm(sim: FrankaTableSim, tip: np.ndarray, yaw: float, opening: float) -> None:
    """Set the arm's joints so that the grasp point is at `tip`, pointing down (no physics step)."""
    orn = pb.getQuaternionFromEuler([math.pi, 0.0, yaw])
    for _ in range(3):  # IK from the pose just set converges in a few rounds
        q = pb.calculateInverseKinematics(sim.robot, EE_LINK, tip.tolist(), orn, maxNumIterations=100,
                                          physicsClientId=sim.client)
        for j, v in zip(ARM_JOINTS, q[:7]):
            pb.resetJointState(sim.robot, j, v, physicsClientId=sim.client)
    for j in FINGER_JOINTS:
        pb.resetJointState(sim.robot, j, 0.04 * opening, physicsClientId=sim.client)


def scene_goals(task: Task) -> list[str]:
    """Every goal of the task's family that its layout allows (canonical wording)."""
    if task.family == "push":
        return [instruction_for("push", c, t) for c in task.cubes for t in task.targets]
    return [instruction_for(task.family, c) for c in task.cubes]


def decoy_frames(layouts: int, poses: int, seed: int, model_vision, horizon: int, all_goals: bool = False) -> Samples:
    """Frames with the hand low away from the named cube, labelled with the true points (with all_goals: also the
    arm at home, and every goal of the scene); a frame's `episode` is its layout's number (seed - `seed`)."""
    sim = FrankaTableSim()
    rng = np.random.default_rng(seed)
    images, proprio, instr, fams, points, layout = [], [], [], [], [], []
    for n in tqdm(range(layouts), desc="decoy frames", unit="layout"):
        for family in FAMILIES:
            task = sample_task(family, seed + n)
            sim.reset(task)
            objects = {name: p for name, (p, _) in sim.object_poses().items()}
            truth = goal_points(task.instruction, objects)
            goals = scene_goals(task) if all_goals else [task.instruction]
            if all_goals:  # the arm exactly at home (sim.reset lets it settle with the objects)
                for j, q in zip(ARM_JOINTS, HOME):
                    pb.resetJointState(sim.robot, j, q, physicsClientId=sim.client)
                _add_frame(sim, model_vision, goals, family, objects, images, proprio, instr, fams, points)
            for _ in range(poses):
                while True:
                    tip = np.array([rng.uniform(0.3, 0.72), rng.uniform(-0.3, 0.3), rng.uniform(0.03, 0.12)])
                    if np.linalg.norm(tip[:2] - truth[0]) >= 0.06:
                        break
                near = min(np.linalg.norm(tip[:2] - p[:2]) for name, p in objects.items() if name.endswith("cube"))
                if near < 0.05:
                    tip[2] = max(tip[2], 0.07)  # above a cube, not through it
                pose_arm(sim, tip, rng.uniform(-0.8, 0.8), rng.uniform(0.0, 1.0))
                _add_frame(sim, model_vision, goals, family, objects, images, proprio, instr, fams, points)
            layout += [n] * (len(images) - len(layout))
    sim.close()
    n = len(images)
    return Samples(np.stack(images), np.stack(proprio), np.zeros((n, horizon, 7), np.float32), instr, fams,
                   np.array(layout), np.stack(points))


def _add_frame(sim, model_vision, goals, family, objects, images, proprio, instr, fams, points) -> None:
    """Render the scene once and append it with each goal and its true points."""
    frame = resize(sim.render(), IMAGE_SIZE, IMAGE_SIZE)
    x = resize_images(torch.from_numpy(np.ascontiguousarray(frame))[None], model_vision)[0]
    image = (x.permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
    joints = sim.joint_state()[1].astype(np.float32)
    for goal in goals:
        images.append(image)
        proprio.append(joints)
        instr.append(goal)
        fams.append(family)
        points.append(goal_points(goal, objects))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--layouts", type=int, default=400)
    ap.add_argument("--poses", type=int, default=4)
    ap.add_argument("--seed", type=int, default=9000)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--val", default="data/heldout_gt")
    ap.add_argument("--model", default="mole_locator")
    ap.add_argument("--all-goals", action="store_true")
    ap.add_argument("--roles", action="store_true")
    o = ap.parse_args()
    torch.set_num_threads(2)
    vision = load_model(resolve_model(o.model)).cfg.vision
    episodes = load_samples(o.data, vision)
    decoys = decoy_frames(o.layouts, o.poses, o.seed, vision, episodes.chunks.shape[1], o.all_goals)
    np.savez_compressed(f"{o.out}_frames.npz", images=decoys.images[:24])  # a few to look at
    data = _concatenate([episodes, decoys])
    tc = TrainConfig(stage="locator", init=o.model, out=o.out, steps=o.steps, lr=3e-4, shift=0, threads=2,
                     val=o.val, val_every=500, locator_roles=o.roles)
    pretrain_locator(tc, data=data)


if __name__ == "__main__":
    main()
