"""Does the goal locator find the cube apart from the hand once it sees the hand low elsewhere? (docs/notebook.md,
"In the policy's own episodes the goal locator errs ...".)

Usage: .venv/bin/python scripts/notebook/arm_decoys.py --data EPISODE_FOLDERS --out runs/loc_decoys
       [--layouts 400] [--poses 4] [--seed 9000] [--steps 1500] [--val data/heldout_gt]

In the expert's episodes the hand is low only at the named cube, so "hand low here" and "cube here" always go
together. This renders frames that break the link: each layout of each family (seeds from --seed) with the arm placed
kinematically (inverse kinematics, joints set, no physics step, so nothing on the table moves) with the fingertip 3-12
cm above the table at a random point at least 6 cm from the named cube, gripper pointing down at a random yaw and
opening. Their labels are the simulator's true points (train/geometry.py). The default's locator is then fine-tuned
alone on these frames and the episodes in --data (`molevla train --stage locator` with the frames added), and the
model written to --out.
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
from molevla_ros.model.language import FAMILIES
from molevla_ros.model.mole_vla import resize_images
from molevla_ros.paths import resolve_model
from molevla_ros.record.collect import IMAGE_SIZE
from molevla_ros.sim.scene import ARM_JOINTS, EE_LINK, FINGER_JOINTS, FrankaTableSim
from molevla_ros.sim.tasks import sample_task
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


def decoy_frames(layouts: int, poses: int, seed: int, model_vision, horizon: int) -> Samples:
    """Frames with the hand low away from the named cube, labelled with the true points."""
    sim = FrankaTableSim()
    rng = np.random.default_rng(seed)
    images, proprio, instr, fams, points = [], [], [], [], []
    for n in tqdm(range(layouts), desc="decoy frames", unit="layout"):
        for family in FAMILIES:
            task = sample_task(family, seed + n)
            sim.reset(task)
            objects = {name: p for name, (p, _) in sim.object_poses().items()}
            truth = goal_points(task.instruction, objects)
            for _ in range(poses):
                while True:
                    tip = np.array([rng.uniform(0.3, 0.72), rng.uniform(-0.3, 0.3), rng.uniform(0.03, 0.12)])
                    if np.linalg.norm(tip[:2] - truth[0]) >= 0.06:
                        break
                near = min(np.linalg.norm(tip[:2] - p[:2]) for name, p in objects.items() if name.endswith("cube"))
                if near < 0.05:
                    tip[2] = max(tip[2], 0.07)  # above a cube, not through it
                pose_arm(sim, tip, rng.uniform(-0.8, 0.8), rng.uniform(0.0, 1.0))
                frame = resize(sim.render(), IMAGE_SIZE, IMAGE_SIZE)
                x = resize_images(torch.from_numpy(np.ascontiguousarray(frame))[None], model_vision)[0]
                images.append((x.permute(1, 2, 0) * 255).round().to(torch.uint8).numpy())
                proprio.append(sim.joint_state()[1].astype(np.float32))
                instr.append(task.instruction)
                fams.append(family)
                points.append(truth)
    sim.close()
    n = len(images)
    return Samples(np.stack(images), np.stack(proprio), np.zeros((n, horizon, 7), np.float32), instr, fams,
                   np.arange(n), np.stack(points))


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
    o = ap.parse_args()
    torch.set_num_threads(2)
    vision = load_model(resolve_model(o.model)).cfg.vision
    episodes = load_samples(o.data, vision)
    decoys = decoy_frames(o.layouts, o.poses, o.seed, vision, episodes.chunks.shape[1])
    np.savez_compressed(f"{o.out}_frames.npz", images=decoys.images[:24])  # a few to look at
    data = _concatenate([episodes, decoys])
    tc = TrainConfig(stage="locator", init=o.model, out=o.out, steps=o.steps, lr=3e-4, shift=0, threads=2,
                     val=o.val, val_every=500)
    pretrain_locator(tc, data=data)


if __name__ == "__main__":
    main()
