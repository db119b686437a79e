"""Success rate of a policy per task family over seeded episodes, in-process on simulated time."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from molevla_ros.config_cli import option
from molevla_ros.sim.expert import ScriptedExpert
from molevla_ros.sim.rollout import run_episode, sim_executor
from molevla_ros.sim.scene import FrankaTableSim
from molevla_ros.sim.tasks import FAMILIES, sample_task


@dataclass
class ExpertEvalOptions:
    tasks: tuple[str, ...] = option(FAMILIES, "task families", choices=FAMILIES)
    episodes: int = option(50, "episodes per family")
    seed: int = option(1000, "first layout seed (seeds seed .. seed + episodes - 1)")
    out: str = option("results/expert_eval.json", "JSON file for the table")


def evaluate_expert(o: ExpertEvalOptions) -> dict[str, dict]:
    """Run the scripted expert; print a table and save it as JSON. Seeds: seed .. seed + episodes - 1."""
    families, episodes, seed, out = o.tasks, o.episodes, o.seed, Path(o.out)
    sim, expert = FrankaTableSim(), ScriptedExpert()
    rows: dict[str, dict] = {}
    try:
        for family in families:
            results = [run_episode(sim, sample_task(family, s), lambda o: expert.act(o.instruction, o.privileged),
                                   sim_executor(expert.action_dt))
                       for s in tqdm(range(seed, seed + episodes), desc=family, unit="ep")]
            ok = [r for r in results if r.success]
            rows[family] = {"episodes": episodes, "success_rate": len(ok) / episodes,
                            "mean_seconds_success": float(np.mean([r.seconds for r in ok])) if ok else None,
                            "failed_seeds": [seed + i for i, r in enumerate(results) if not r.success]}
    finally:
        sim.close()
    print(f"\nscripted expert (privileged sim state), seeds {seed}..{seed + episodes - 1}")
    print(f"{'family':<12} {'episodes':>8} {'success':>8} {'mean s':>7}  failed seeds")
    for fam, r in rows.items():
        mean = f"{r['mean_seconds_success']:.1f}" if r["mean_seconds_success"] else "-"
        print(f"{fam:<12} {r['episodes']:>8} {100 * r['success_rate']:>7.1f}% {mean:>7}  {r['failed_seeds']}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=2))
    return rows
