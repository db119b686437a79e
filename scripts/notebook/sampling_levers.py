"""Does the way chunks are sampled or blended limit push? (docs/notebook.md, "Sampling and blending levers".)

Usage: .venv/bin/python scripts/notebook/sampling_levers.py LEVER [LEVER ...] [--seed 6000] [--episodes 50]
       [--tasks push] [--model mole_locator] [--out docs/results/sampling_levers_2026-12-07]

Runs `molevla eval-policies`' closed loop (evaluate_variant: router top-4, the executor's chunk logic, each
episode's noise seeded by its layout) once per lever, with one thing changed at inference; the model is not trained
again. Levers:
  base        nothing changed (cfg scale 1.5, fresh DDIM noise per chunk, executor blend average, decay 0.5)
  cfg=X       classifier-free guidance scale X (the model's config.json: action_head.cfg_scale)
  temp=X      the DDIM start noise times X (a sampling temperature; 0: the same zero noise every chunk)
  fixed       the episode's first noise for every chunk (deterministic chunks for a given observation)
  mean=N      each chunk the mean of N chunks sampled from independent noise
  decay=X     the executor's blend_decay (weight of each older overlapping chunk)
  hold        the goal locator's target point from the episode's first frame for the whole episode (the arm
              cannot hide it); the cube's point stays live
  true=W      the simulator's true table point in place of the goal locator's, W: both, cube or goal (an oracle
              locator: how much of push's failure is the locator's error)
Seeds 6000+ are outside every training and evaluation range (training uses 0-675, 2100-2299, 3000-3059,
4000-4159, 5000-5009; evaluation 1000-1099). Prints one row per lever and writes each lever's per-episode outcomes.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from molevla_ros.backends import mole
from molevla_ros.bench import evaluate
from molevla_ros.model import goal_locator
from molevla_ros.paths import resolve_model
from molevla_ros.sim.rollout import sim_executor
from molevla_ros.sim.scene import FrankaTableSim
from molevla_ros.train.geometry import goal_points, normalise


def apply(lever: str) -> None:
    """Patch the one thing `lever` changes (each lever runs in its own process, so patches never stack)."""
    name, _, value = lever.partition("=")
    act, reset = mole.MoLeBackend.act_batch, mole.MoLeBackend.reset
    if name == "cfg":
        load = evaluate.load_model

        def load_with_scale(path):
            model = load(path)
            model.cfg.action_head.cfg_scale = float(value)
            return model
        evaluate.load_model = load_with_scale
    elif name == "temp":
        randn = torch.randn

        def act_scaled(self, observations):
            torch.randn = lambda *a, **k: float(value) * randn(*a, **k)
            try:
                return act(self, observations)
            finally:
                torch.randn = randn
        mole.MoLeBackend.act_batch = act_scaled
    elif name == "fixed":
        def reset_keep(self, seed=None):
            self.episode_seed = self.seed if seed is None else seed
            reset(self, seed)

        def act_fixed(self, observations):
            self.gen.manual_seed(self.episode_seed)
            return act(self, observations)
        mole.MoLeBackend.reset, mole.MoLeBackend.act_batch = reset_keep, act_fixed
    elif name == "mean":
        def act_mean(self, observations):
            outs = [act(self, observations)[0] for _ in range(int(value))]
            outs[0].chunk = np.mean([o.chunk for o in outs], 0)
            return outs[:1]
        mole.MoLeBackend.act_batch = act_mean
    elif name == "decay":
        evaluate.sim_executor = lambda dt, **kw: sim_executor(dt, blend_decay=float(value), **kw)
    elif name == "hold":
        points, held = goal_locator.GoalLocator.points, {}

        def points_held(self, *inputs):
            out = points(self, *inputs)
            if "goal" not in held:
                held["goal"] = out[:, 1].clone()
                return out
            out = out.clone()
            out[:, 1] = held["goal"]
            return out

        def reset_held(self, seed=None):
            held.clear()
            reset(self, seed)
        goal_locator.GoalLocator.points, mole.MoLeBackend.reset = points_held, reset_held
    elif name == "true":
        rows = {"both": [0, 1], "cube": [0], "goal": [1]}[value]
        located, live = goal_locator.GoalLocator.points, []

        class LiveSim(FrankaTableSim):  # evaluate_variant's simulator, readable from the patched locator
            def __init__(self, *a, **k):
                super().__init__(*a, **k)
                live.append(self)

        def points_true(self, *inputs):
            out = located(self, *inputs).clone()
            sim = live[-1] if live else None
            if sim is None or sim.task is None:  # the latency probe before the first episode
                return out
            truth = goal_points(sim.task.instruction, {n: p for n, (p, _) in sim.object_poses().items()})
            out[:, rows] = torch.as_tensor(normalise(truth[rows]), dtype=out.dtype)
            return out
        evaluate.FrankaTableSim, goal_locator.GoalLocator.points = LiveSim, points_true
    elif name != "base":
        raise SystemExit(f"unknown lever {lever!r}")


def run_one(lever: str, o: argparse.Namespace) -> dict:
    apply(lever)
    r = evaluate.evaluate_variant(evaluate.Variant(lever, str(resolve_model(o.model)), "mole", 4), o.tasks,
                                  o.episodes, o.seed)
    return {"lever": lever, "seed": o.seed, "success": r["success"], "episodes": r["episodes"]["canonical"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("levers", nargs="+")
    ap.add_argument("--seed", type=int, default=6000)
    ap.add_argument("--episodes", type=int, default=50)
    ap.add_argument("--tasks", type=lambda s: s.split(","), default=["push"])
    ap.add_argument("--model", default="mole_locator")
    ap.add_argument("--out", default="docs/results/sampling_levers_2026-12-07")
    o = ap.parse_args()
    out = Path(o.out)
    out.mkdir(parents=True, exist_ok=True)
    import multiprocessing as mp
    ctx = mp.get_context("spawn")  # a fresh interpreter per lever: the patches of one never reach the next
    for lever in o.levers:
        with ctx.Pool(1) as pool:
            r = pool.apply(run_one, (lever, o))
        (out / f"{lever.replace('=', '')}_{o.seed}.json").write_text(json.dumps(r, indent=1))
        print(f"| {lever} | {o.seed}.. | " + " | ".join(f"{t} {100 * s:.0f}%" for t, s in r["success"].items()) + " |",
              flush=True)


if __name__ == "__main__":
    main()
