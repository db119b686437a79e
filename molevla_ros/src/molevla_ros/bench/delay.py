"""Success under inference delay: closed-loop episodes in the simulator (simulated time) where each chunk takes
effect `delay` after its observation while the executor keeps running what it has.

Rows: policy (the scripted expert, a trained model) x executor mode x delay. Modes are the executor's blends
(`average`, `latest`, `adaptive`) and `rtc`: real-time chunking, where the policy receives the executor's plan
and the number of its rows that run before the chunk arrives, generates a chunk that continues them (DDIM
inpainting, backends/routed.py) and the executor switches to each new chunk (`latest`); `rtc_average` is the same
guidance with the executor still averaging overlapping chunks. The expert is reactive and has no use for a plan,
so it has no rtc rows. Columns: success per family, time to success (successful
episodes), the jump of the executor's wanted linear velocity (before its limits) when a new chunk takes effect
(queue without vs with it), and the 99th percentile of that velocity's change from one command tick to the next
over whole episodes (smoothness wherever a discontinuity lands).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm import tqdm

from molevla_ros.backends.base import Observation
from molevla_ros.bench.evaluate import MAX_SECONDS, node_view, torch_backend
from molevla_ros.paths import DEFAULT_MODEL
from molevla_ros.bench.report import header
from molevla_ros.config_cli import option
from molevla_ros.control.chunk_executor import BLENDS
from molevla_ros.sim.rollout import run_episode, sim_executor
from molevla_ros.sim.scene import FrankaTableSim
from molevla_ros.model.language import FAMILIES
from molevla_ros.sim.tasks import sample_task

RTC_BLENDS = {"rtc": "latest", "rtc_average": "average"}  # real-time chunking modes -> the executor's blend
MODES = (*BLENDS, *RTC_BLENDS)


@dataclass
class DelayOptions:
    policies: tuple[str, ...] = option(("expert", DEFAULT_MODEL), "'expert' and/or model folders (names under the "
                                       "package's models/ or paths)")
    modes: tuple[str, ...] = option(("average", "latest", "rtc"), f"executor modes, of {', '.join(MODES)}")
    delays_ms: tuple[float, ...] = option((0.0, 100.0, 200.0, 300.0, 400.0), "inference delays (ms, simulated)")
    families: tuple[str, ...] = option(tuple(FAMILIES), "task families")
    episodes: int = option(10, "episodes per family and row (seeds seed..seed+episodes-1, the same for every row)")
    seed: int = option(1000, "first layout seed (training used 0..; 1000+ are held out)")
    threads: int = option(1, "torch threads for the model")
    out: str = option("docs/results/delay", "folder for the table, JSON and plot")


def make_policy(name: str, seed: int) -> tuple[Callable[[Observation], np.ndarray], float, int, bool]:
    """(policy, action_dt, horizon, needs images) for 'expert' or a model folder."""
    if name == "expert":
        from molevla_ros.sim.expert import ScriptedExpert

        expert = ScriptedExpert()
        return (lambda o: expert.act(o.instruction, o.privileged)), expert.action_dt, 16, False
    from molevla_ros.paths import resolve_model
    from molevla_ros.model.io import load_model

    model = load_model(resolve_model(name))
    backend = torch_backend(model, "mole", seed)
    return (lambda o: backend.act(node_view(o, model.cfg.camera)).chunk), model.cfg.action_dt, \
        model.cfg.action_head.horizon, True


def run(o: DelayOptions) -> list[dict]:
    torch.set_num_threads(o.threads)
    unknown = sorted(set(o.modes) - set(MODES))
    if unknown:
        raise ValueError(f"unknown modes {unknown} (of {MODES})")
    out = Path(o.out)
    out.mkdir(parents=True, exist_ok=True)
    sim = FrankaTableSim()
    rows = []
    try:
        for name in o.policies:
            policy, action_dt, horizon, images = make_policy(name, o.seed)
            for mode in [m for m in o.modes if not (name == "expert" and m in RTC_BLENDS)]:
                for delay in o.delays_ms:
                    row = {"policy": name, "mode": mode, "delay_ms": delay, "success": {}, "seconds": [], "jumps": [],
                           "steps": []}
                    for family in o.families:
                        wins = []
                        for s in tqdm(range(o.seed, o.seed + o.episodes), leave=False, unit="ep",
                                      desc=f"{name} {mode} {delay:.0f} ms {family}"):
                            executor = sim_executor(action_dt, blend=RTC_BLENDS.get(mode, mode))
                            r = run_episode(sim, sample_task(family, s), policy, executor,
                                            max_seconds=MAX_SECONDS[family], with_images=images,
                                            delay_s=delay / 1e3, rtc=mode in RTC_BLENDS, action_dt=action_dt,
                                            horizon=horizon)
                            wins.append(r.success)
                            row["jumps"] += r.boundary_jumps
                            row["steps"] += r.velocity_steps
                            if r.success:
                                row["seconds"].append(r.seconds)
                        row["success"][family] = float(np.mean(wins))
                    rows.append(summarise(row))
                    print(format_row(rows[-1], o.families), flush=True)
    finally:
        sim.close()
    table = format_table(rows, o)
    print("\n" + table)
    (out / "table.md").write_text(header("molevla bench-delay", o) + table)
    (out / "delay.json").write_text(json.dumps({"options": o.__dict__, "rows": rows}, indent=1, default=list))
    plot(rows, o, out / "delay.png")
    print(f"plot: {out / 'delay.png'}")
    return rows


def summarise(row: dict) -> dict:
    jumps, seconds, steps = np.array(row.pop("jumps") or [0.0]), row.pop("seconds"), np.array(row.pop("steps") or [0])
    row["mean_success"] = float(np.mean(list(row["success"].values())))
    row["seconds_to_success"] = float(np.mean(seconds)) if seconds else float("nan")
    row["jump_mean"], row["jump_p95"] = float(np.mean(jumps)), float(np.percentile(jumps, 95))
    row["step_p99"] = float(np.percentile(steps, 99))
    return row


def format_row(r: dict, families: tuple[str, ...]) -> str:
    cells = [r["policy"], r["mode"], f"{r['delay_ms']:.0f}", *(f"{100 * r['success'][f]:.0f}%" for f in families),
             f"{100 * r['mean_success']:.0f}%", f"{r['seconds_to_success']:.2f}", f"{r['jump_mean']:.3f}",
             f"{r['jump_p95']:.3f}", f"{r['step_p99']:.3f}"]
    return "| " + " | ".join(cells) + " |"


def format_table(rows: list[dict], o: DelayOptions) -> str:
    head = ["policy", "mode", "delay (ms)", *o.families, "mean", "time to success (s)",
            "boundary jump mean (m/s)", "boundary jump p95 (m/s)", "any-tick change p99 (m/s)"]
    lines = [f"{o.episodes} episodes per family and row (layout seeds {o.seed}..{o.seed + o.episodes - 1}, the same "
             "for every row), simulated time; a chunk takes effect `delay` after its observation.\n",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += [format_row(r, o.families) for r in rows]
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], o: DelayOptions, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.2))
    for key in dict.fromkeys((r["policy"], r["mode"]) for r in rows):
        mine = [r for r in rows if (r["policy"], r["mode"]) == key]
        d = [r["delay_ms"] for r in mine]
        style = "--" if key[0] == "expert" else "-"
        ax1.plot(d, [100 * r["mean_success"] for r in mine], style, marker="o", label=" / ".join(key))
        ax2.plot(d, [r["step_p99"] for r in mine], style, marker="o", label=" / ".join(key))
    ax1.set(xlabel="inference delay (ms)", ylabel="mean success over families (%)", ylim=(0, 105),
            title="success under delay")
    ax2.set(xlabel="inference delay (ms)", ylabel="p99 tick-to-tick change of the wanted velocity (m/s)",
            title="smoothness over whole episodes")
    ax1.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
