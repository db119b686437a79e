"""How push episodes end, for a policy: succeeded, or which way they failed.

Classes (checked in this order): ok; knocked another cube; cube never moved (< 1 cm); overshoot (pushed
beyond the target); sideways (off the pushing line by more than the success radius); stopped short. For a
model (the node's inference path) and for the scripted expert with a random per-chunk velocity offset added
to what it executes (as `molevla collect --noise`), which shows how much imprecision the task itself
tolerates. Same layouts as eval-policies (seeds 1000..).
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from molevla_ros.bench.evaluate import MAX_SECONDS, node_view, torch_backend
from molevla_ros.paths import DEFAULT_MODEL, resolve_model
from molevla_ros.config_cli import option
from molevla_ros.sim.expert import ScriptedExpert, offset_chunk
from molevla_ros.sim.rollout import run_episode, sim_executor
from molevla_ros.sim.scene import PUSH_TOLERANCE, FrankaTableSim
from molevla_ros.sim.tasks import sample_task

CLASSES = ("ok", "knocked another cube", "cube never moved", "overshoot", "sideways", "stopped short")


@dataclass
class PushOutcomeOptions:
    policies: tuple[str, ...] = option(("expert", "expert:0.005", "expert:0.01", f"{DEFAULT_MODEL}:mole"),
                                       "expert, expert:NOISE (m per action step), or MODEL:ROUTE")
    episodes: int = option(20, "push layouts (seeds seed..)")
    seed: int = option(1000, "first layout seed")
    out: str = option("docs/results/push_outcomes.json", "JSON file for the table")


def classify(sim: FrankaTableSim, task, success: bool) -> tuple[str, dict]:
    """The outcome class of a finished push episode and its geometry (m, in the pushing line's frame)."""
    start, goal = np.array(task.cubes[task.cube][:2]), np.array(task.targets[task.target])
    final = np.array(sim.object_poses()[f"{task.cube}_cube"][0][:2])
    u = (goal - start) / np.linalg.norm(goal - start)
    along, across = float((final - start) @ u), float((final - start) @ np.array([-u[1], u[0]]))
    geometry = {"distance": float(np.linalg.norm(goal - start)), "along": along, "across": across}
    if success:
        return "ok", geometry
    if any(sim.disturbed(name) for name in sim.object_poses() if name.endswith("_cube") and
           name != f"{task.cube}_cube"):
        return "knocked another cube", geometry
    if np.linalg.norm(final - start) < 0.01:
        return "cube never moved", geometry
    if along > geometry["distance"] + PUSH_TOLERANCE:
        return "overshoot", geometry
    if abs(across) > PUSH_TOLERANCE:
        return "sideways", geometry
    return "stopped short", geometry


def policy_of(spec: str, seed: int):
    """(act function, uses camera images) for a policy spec."""
    name, _, arg = spec.partition(":")
    if name == "expert":
        expert, noise, rng = ScriptedExpert(), float(arg or 0), np.random.default_rng(seed)

        return (lambda obs: offset_chunk(expert.act(obs.instruction, obs.privileged), noise, rng)), False
    from molevla_ros.model.io import load_model

    model = load_model(resolve_model(name))
    backend = torch_backend(model, arg or "mole", seed)
    return (lambda obs: backend.act(node_view(obs, model.cfg.camera)).chunk), True


def run(o: PushOutcomeOptions) -> dict[str, dict]:
    rows: dict[str, dict] = {}
    sim = FrankaTableSim()
    try:
        for spec in o.policies:
            act, images = policy_of(spec, o.seed)
            counts: Counter[str] = Counter()
            for s in tqdm(range(o.seed, o.seed + o.episodes), desc=spec, unit="ep"):
                task = sample_task("push", s)
                r = run_episode(sim, task, act, sim_executor(0.1), max_seconds=MAX_SECONDS["push"],
                                with_images=images)
                counts[classify(sim, task, r.success)[0]] += 1
            rows[spec] = {c: counts[c] for c in CLASSES}
    finally:
        sim.close()
    print(f"\npush outcomes over {o.episodes} layouts (seeds {o.seed}..)")
    print(f"{'policy':<28}" + "".join(f"{c:>22}" for c in CLASSES))
    for spec, r in rows.items():
        print(f"{spec:<28}" + "".join(f"{r[c]:>22}" for c in CLASSES))
    Path(o.out).parent.mkdir(parents=True, exist_ok=True)
    Path(o.out).write_text(json.dumps(rows, indent=2))
    return rows
