"""Pace of push episodes: the scripted expert against a model, on the same layouts, each episode allowed `--seconds`.

Prints, per policy: successes within 15 s (the benchmark's limit) and within `--seconds`, the median and 90th
percentile time to success, the mean linear speed the executor commanded, and the mean speed the policy's chunks
asked for. Chunk speed well above commanded speed means successive chunks disagree and the executor's blend
averages them down. Usage: .venv/bin/python scripts/push_pace.py [--model mole_locator] [--episodes 20]
"""
from __future__ import annotations

import argparse

import numpy as np

from molevla_ros.bench.evaluate import MAX_SECONDS
from molevla_ros.bench.push_outcomes import policy_of
from molevla_ros.sim.rollout import run_episode, sim_executor
from molevla_ros.sim.scene import FrankaTableSim
from molevla_ros.sim.tasks import sample_task


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="mole_locator", help="model folder (a shipped name or a path)")
    ap.add_argument("--episodes", type=int, default=20, help="push layouts (seeds seed..)")
    ap.add_argument("--seed", type=int, default=1000, help="first layout seed")
    ap.add_argument("--seconds", type=float, default=30.0, help="simulated seconds each episode may run")
    a = ap.parse_args()
    sim = FrankaTableSim()
    commanded: list[float] = []
    command_twist = sim.command_twist

    def recording_twist(linear, angular):
        commanded.append(float(np.linalg.norm(linear)))
        command_twist(linear, angular)

    sim.command_twist = recording_twist
    try:
        for spec in ("expert", f"{a.model}:mole"):
            act, images = policy_of(spec, a.seed)
            asked: list[float] = []

            def policy(obs, act=act, asked=asked):
                chunk = act(obs)
                asked.append(float(np.linalg.norm(chunk[:, :3], axis=1).mean() / 0.1))  # rows are 0.1 s apart
                return chunk

            times, speeds = [], []
            for s in range(a.seed, a.seed + a.episodes):
                commanded.clear()
                r = run_episode(sim, sample_task("push", s), policy, sim_executor(0.1), max_seconds=a.seconds,
                                with_images=images)
                times.append(r.seconds if r.success else np.nan)
                speeds.append(np.mean(commanded))
            t = np.array(times)
            print(f"{spec:24s} ok within {MAX_SECONDS['push']:.0f} s: {np.sum(t <= MAX_SECONDS['push'])}/{a.episodes}"
                  f", within {a.seconds:.0f} s: {np.sum(~np.isnan(t))}/{a.episodes}; time to success median "
                  f"{np.nanmedian(t):.1f} s, p90 {np.nanpercentile(t, 90):.1f} s; commanded speed "
                  f"{100 * np.mean(speeds):.1f} cm/s, chunks asked {100 * np.mean(asked):.1f} cm/s", flush=True)
    finally:
        sim.close()


if __name__ == "__main__":
    main()
