"""Smoothness of the executor's output at chunk boundaries, on recorded episodes.

Replays each recorded episode's action chunks (as the policy published them, arriving `latency` seconds
after their observation stamp) through :class:`ChunkExecutor` at the command rate, under four settings:
switching to the newest chunk vs blending overlapping chunks, each without and with the motion limits
(speed, acceleration, jerk). Reports per setting the velocity jump at chunk boundaries and the jerk of
the commanded end-effector velocity, and saves a plot.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from mcap.reader import make_reader
from rclpy.serialization import deserialize_message
from tqdm import tqdm
from trajectory_msgs.msg import JointTrajectory

from molevla_ros.bench.report import header
from molevla_ros.config_cli import option
from molevla_ros.control.chunk_executor import ChunkExecutor, Limits
from molevla_ros.robot_profile import load
from molevla_ros.nodes.messages import msg_to_chunk, stamp_s

UNLIMITED = Limits(np.inf, np.inf, np.inf, np.inf, np.inf, np.inf, None, None)
SIM_LIMITS = Limits.from_profile(load("panda_sim").limits)  # the executor's limits on the simulated Panda


@dataclass
class Setting:
    name: str
    blend: str
    limits: Limits


SETTINGS = [Setting("newest chunk, no limits", "latest", UNLIMITED),
            Setting("blended, no limits", "average", UNLIMITED),
            Setting("newest chunk + limits", "latest", SIM_LIMITS),
            Setting("blended + limits (default)", "average", SIM_LIMITS)]


def read_chunks(path: Path) -> list[tuple[float, np.ndarray]]:
    out = []
    with open(path, "rb") as f:
        for _, _, message in make_reader(f).iter_messages(topics=["/molevla/action_chunk"]):
            msg = deserialize_message(message.data, JointTrajectory)
            out.append((stamp_s(msg.header.stamp), msg_to_chunk(msg)[0]))
    return sorted(out, key=lambda c: c[0])


def replay(chunks: list[tuple[float, np.ndarray]], s: Setting, latency: float, rate_hz: float = 50.0
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(times, linear velocity commands [N, 3], indices of the ticks where a new chunk took effect)."""
    ex = ChunkExecutor(0.1, s.limits, blend=s.blend, max_chunk_age=latency + 1.0)
    dt = 1.0 / rate_hz
    t, end = chunks[0][0] + latency, chunks[-1][0] + latency + 1.0
    times, vel, boundaries, i = [], [], [], 0
    while t < end:
        arrived = False
        while i < len(chunks) and chunks[i][0] + latency <= t + 1e-9:
            ex.add_chunk(chunks[i][0], chunks[i][1], t)
            i, arrived = i + 1, True
        if arrived:
            boundaries.append(len(times))
        cmd = ex.step(t, dt)
        times.append(t)
        vel.append(cmd.linear if cmd.active else np.zeros(3))
        t += dt
    return np.array(times), np.array(vel), np.array(boundaries, int)


def metrics(vel: np.ndarray, boundaries: np.ndarray, dt: float) -> dict[str, float]:
    jumps = np.linalg.norm(np.diff(vel, axis=0), axis=1)  # |v_k - v_(k-1)|
    at_boundary = jumps[np.clip(boundaries - 1, 0, len(jumps) - 1)] if len(boundaries) else np.zeros(1)
    acc = np.diff(vel, axis=0) / dt
    jerk = np.linalg.norm(np.diff(acc, axis=0), axis=1) / dt
    return {"boundary_jump_max": float(at_boundary.max()), "boundary_jump_mean": float(at_boundary.mean()),
            "jerk_max": float(jerk.max()), "jerk_p99": float(np.percentile(jerk, 99))}


@dataclass
class SmoothnessOptions:
    episodes: str = option("data/episodes", "folder of recorded episodes (.mcap)")
    limit: int = option(60, "episodes to replay")
    latency: float = option(0.1, "seconds from observation to chunk arrival")
    out: str = option("docs/results/smoothness", "folder for the table and plot")


def run(o: SmoothnessOptions) -> dict:
    episodes, limit, latency, out = Path(o.episodes), o.limit, o.latency, Path(o.out)
    files = sorted(episodes.glob("*.mcap"))[:limit]
    if not files:
        raise FileNotFoundError(f"no .mcap episodes in {episodes} (record some with `molevla collect`)")
    dt = 1.0 / 50.0
    per: dict[str, list[dict]] = {s.name: [] for s in SETTINGS}
    example = None
    for f in tqdm(files, desc="replaying episodes", unit="ep"):
        chunks = read_chunks(f)
        for s in SETTINGS:
            times, vel, bounds = replay(chunks, s, latency)
            per[s.name].append(metrics(vel, bounds, dt))
            if f == files[0]:
                example = example or {}
                example[s.name] = (times - times[0], vel[:, 0], times[bounds] - times[0])
    summary = {name: {k: float(np.median([m[k] for m in rows])) if k.endswith("mean") or k.endswith("p99")
                      else float(np.max([m[k] for m in rows])) for k in rows[0]} for name, rows in per.items()}
    out.mkdir(parents=True, exist_ok=True)
    lines = [f"{len(files)} recorded episodes, chunks arriving {latency:.2f} s after their observation, 50 Hz "
             "commands.\n", "| setting | max velocity jump at a chunk boundary (m/s) | median mean jump (m/s) | "
             "max jerk (m/s^3) | median p99 jerk (m/s^3) |", "|---|---|---|---|---|"]
    for name, m in summary.items():
        lines.append(f"| {name} | {m['boundary_jump_max']:.4f} | {m['boundary_jump_mean']:.4f} | {m['jerk_max']:.1f} | "
                     f"{m['jerk_p99']:.1f} |")
    table = "\n".join(lines) + "\n"
    print(table)
    (out / "table.md").write_text(header("molevla bench-smoothness", o) + table)
    (out / "smoothness.json").write_text(json.dumps({"latency": latency, "episodes": len(files), "summary": summary}))
    plot(example, per, out / "smoothness.png")
    print(f"plot: {out / 'smoothness.png'}")
    return summary


def plot(example: dict, per: dict[str, list[dict]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.2))
    for name, (t, vx, _) in example.items():
        ax1.plot(t, vx, label=name, lw=1.2)
    for b in next(iter(example.values()))[2]:
        ax1.axvline(b, color="0.85", lw=0.6, zorder=0)
    ax1.set(xlabel="time (s)", ylabel="commanded v_x (m/s)", title="one episode (grey: new chunk arrives)")
    ax1.legend(fontsize=7)
    names = list(per)
    jumps = [[m["boundary_jump_max"] for m in per[n]] for n in names]
    ax2.boxplot(jumps, showfliers=False)
    ax2.set_xticks(range(1, len(names) + 1), [n.replace(", ", ",\n").replace(" + ", "\n+ ") for n in names],
                   fontsize=7)
    ax2.set(ylabel="max velocity jump at a boundary (m/s)", title="per episode")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
