"""Can behaviour cloning on these demonstrations push at all when perception is perfect?
(docs/notebook.md, "Why push fails".)

Usage: .venv/bin/python scripts/notebook/oracle_push.py [--data data/expert_gt] [--episodes 20] [--steps 4000]
       [--point-noise 0,0.01,0.02,0.04] [--locator MODEL_DIR ...]

Trains a small MLP by plain regression on the push steps of the recorded episodes (with the simulator's ground
truth) from privileged features only: the fingertip (forward kinematics of the arm joints), the finger joints, and
the true table xy of the named cube and of its target, also relative to the fingertip. No image, no language model.
It then drives the simulated arm in closed loop through the executor's chunk logic (the in-process rollout of
`molevla eval-policies`, seeds 1000+), reading the true cube and target positions at every step. With
--point-noise SD each episode gets one constant Gaussian offset of SD metres per axis on each of the two points: a
locator that is off by that much for the whole episode. With --locator, the same MLP also runs on the points a model's
goal locator finds in the rendered camera frame at each step (what a policy that read its locator exactly would get).

If this policy pushes well, what the learned policies lack is the geometry (perception); if it does not, the
demonstrations or the behaviour cloning are the limit, whatever the locator does.
"""
from __future__ import annotations

import argparse
from typing import Callable

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from molevla_ros.backends.base import state_vector
from molevla_ros import franka_kinematics as kin
from molevla_ros.model.config import small
from molevla_ros.model.io import load_model
from molevla_ros.sim.expert import ScriptedExpert
from molevla_ros.sim.rollout import run_episode, sim_executor
from molevla_ros.sim.scene import CAMERA, JOINT_NAMES, FrankaTableSim
from molevla_ros.model.language import parse_instruction
from molevla_ros.sim.tasks import sample_task
from molevla_ros.train.episodes import load_samples
from molevla_ros.train.geometry import denormalise
from molevla_ros.train.locator import locate


def features(q: np.ndarray, cube: np.ndarray, goal: np.ndarray) -> np.ndarray:
    """[N, 9] joints (7 arm + 2 fingers), [N, 2] cube xy, [N, 2] goal xy -> [N, 15] features (metres)."""
    tip = np.stack([kin.forward(x[:7])[:3, 3] for x in q])
    return np.concatenate([tip, q[:, 7:9], cube, goal, cube - tip[:, :2], goal - tip[:, :2], goal - cube], 1)


def train_mlp(x: np.ndarray, y: np.ndarray, steps: int, seed: int = 0) -> Callable[[np.ndarray], np.ndarray]:
    """Regress y from x (both standardised; MSE, batch 256); returns the prediction function in y's units."""
    torch.manual_seed(seed)
    mu, sd = x.mean(0), x.std(0) + 1e-6
    ymu, ysd = y.mean(0), y.std(0) + 1e-6
    xt, yt = torch.tensor((x - mu) / sd, dtype=torch.float32), torch.tensor((y - ymu) / ysd, dtype=torch.float32)
    net = nn.Sequential(nn.Linear(x.shape[1], 256), nn.GELU(), nn.Linear(256, 256), nn.GELU(),
                        nn.Linear(256, 256), nn.GELU(), nn.Linear(256, y.shape[1]))
    opt = torch.optim.AdamW(net.parameters(), 1e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    gen = torch.Generator().manual_seed(seed)
    for _ in tqdm(range(steps), desc="train MLP", unit="step"):
        idx = torch.randint(0, len(xt), (256,), generator=gen)
        loss = nn.functional.mse_loss(net(xt[idx]), yt[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    net.eval()

    def predict(f: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            out = net(torch.tensor((f - mu) / sd, dtype=torch.float32)).numpy()
        return out * ysd + ymu
    return predict


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="data/expert_gt")
    ap.add_argument("--episodes", type=int, default=20)
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--point-noise", default="0,0.01,0.02,0.04")
    ap.add_argument("--locator", nargs="*", default=[], help="model folders whose goal locator supplies the points")
    a = ap.parse_args()
    torch.set_num_threads(1)
    data = load_samples(a.data, small().vision, only_successful=False)
    if data.geometry is None:
        raise SystemExit(f"{a.data} has no ground truth (record it with `molevla collect`)")
    push = np.array(data.families) == "push"
    x = features(data.proprio[push], data.geometry[push, 0], data.geometry[push, 1])
    chunks = data.chunks[push]
    horizon, dim = chunks.shape[1:]
    predict = train_mlp(x, chunks.reshape(len(chunks), -1), a.steps)
    print(f"trained on {push.sum()} push steps of {len(set(data.episode[push]))} episodes")

    sim, expert = FrankaTableSim(), ScriptedExpert()
    print("| cube and target positions | push success |\n|---|---|")
    try:
        for source in [float(v) for v in a.point_noise.split(",")] + a.locator:
            rng = np.random.default_rng(0)
            model = load_model(source) if isinstance(source, str) else None
            ok = 0
            for seed in tqdm(range(1000, 1000 + a.episodes), desc=str(source), unit="ep"):
                task = sample_task("push", seed)
                _, cube, target = parse_instruction(task.instruction)
                off = rng.normal(0.0, 0.0 if model else source, (2, 2))

                def policy(obs, cube=cube, target=target, off=off, model=model):
                    q = state_vector(obs, JOINT_NAMES)[None].astype(float)
                    if model is None:
                        objects = obs.privileged.objects
                        c = objects[f"{cube}_cube"][None, :2] + off[0]
                        g = objects[f"{target}_target"][None, :2] + off[1]
                    else:
                        frame = torch.from_numpy(np.ascontiguousarray(obs.images[CAMERA]))[None]
                        with torch.no_grad():
                            points = denormalise(locate(model, frame, model.tokenize([obs.instruction])).numpy())
                        c, g = points[:, 0], points[:, 1]
                    return predict(features(q, c, g)).reshape(horizon, dim)
                ok += run_episode(sim, task, policy, sim_executor(expert.action_dt), with_images=model is not None
                                  ).success
            label = (f"found by the goal locator of {source}" if model else "true" if source == 0 else
                     f"true + constant offset, sd {100 * source:.0f} cm per axis")
            print(f"| {label} | {ok}/{a.episodes} |", flush=True)
    finally:
        sim.close()


if __name__ == "__main__":
    main()
