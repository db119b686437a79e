"""False halts under CPU load vs time to halt after a real kill, per DDS liveliness lease.

For each lease (offered by the policy, requested by the executor) this runs the whole simulated loop with
the shipped MoLe-VLA policy while `load` busy processes saturate both cores, for `minutes`: goals are sent
again and again (a new layout after each success or failure), and every executor halt is classified by its
status reason. Nothing is injected, so each halt other than "goal cleared" is a false halt. Then, without the
load, the policy process is killed with SIGKILL `kills` times (restarted in between) and the time from the
kill to the executor's first zero command is measured.
"""
from __future__ import annotations

import json
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rclpy
from std_msgs.msg import String
from std_srvs.srv import Trigger

from molevla_ros.config_cli import option
from molevla_ros.bench.faults import Probe, _speed, cpu_load
from molevla_ros.bringup import PROFILES, Bringup, use_local_domain

CAUSES = {  # status text -> cause; first match wins
    "liveliness": "policy liveliness lost",
    "no fresh action chunk": "no fresh chunk in time",
    "ran out": "chunk ran out",
    "joint state": "joint state stale",
    "camera": "camera stale",
}


def classify(status: str) -> str | None:
    """The cause of an executor halt that counts as false (None for halts that are not)."""
    if not status.startswith("halted: executor:") or "goal cleared" in status:
        return None
    return next((c for key, c in CAUSES.items() if key in status), "other: " + status[18:80])


def overrides(lease: float, backend: str) -> dict:
    return {"sim": {"task_family": "touch", "seed": 3}, "policy": {"backend": backend, "liveliness_s": lease},
            "executor": {"policy_liveliness_s": lease}}


def run_loaded(lease: float, minutes: float, load: int, domain: int, log_dir: Path, backend: str) -> dict:
    """Halts per cause while the loop runs goals under `load` busy processes."""
    use_local_domain(domain)
    with Bringup(PROFILES["sim"], overrides(lease, backend), log_dir=log_dir), cpu_load(load):
        rclpy.init()
        probe = Probe()
        reset = probe.create_client(Trigger, "sim/reset")
        try:
            if not probe.spin_for(60, lambda: bool(probe.task) and probe.instruction.get_subscription_count() > 0):
                raise RuntimeError("nodes did not come up")
            probe.spin_for(1.0)
            t0, end, goals = probe.now(), time.monotonic() + minutes * 60, 0
            while time.monotonic() < end:
                probe.instruction.publish(String(data=probe.task))
                goals += 1
                sent = probe.now()
                probe.spin_for(min(40.0, end - time.monotonic()),
                               lambda sent=sent: bool(probe.status_since(sent, "succeeded", "failed")))
                if time.monotonic() < end:  # next layout
                    future = reset.call_async(Trigger.Request())
                    probe.spin_for(10, future.done)
                    probe.spin_for(0.5)
            moving = sum(_speed(m) > 0 for t, m in probe.twists if t >= t0)
            causes: dict[str, int] = {}
            for t, s in probe.statuses:
                c = classify(s) if t >= t0 else None
                if c:
                    causes[c] = causes.get(c, 0) + 1
            successes = sum(s.startswith("succeeded") for t, s in probe.statuses if t >= t0)
            stale = sum("refused chunk is stale" in s for t, s in probe.statuses if t >= t0)
            return {"minutes": (probe.now() - t0) / 60, "goals": goals, "successes": successes,
                    "moving_commands": moving, "false_halts": sum(causes.values()), "causes": causes,
                    "stale_chunks_refused": stale}
        finally:
            probe.destroy_node()
            rclpy.shutdown()


def run_kills(lease: float, kills: int, domain: int, log_dir: Path, backend: str) -> list[float]:
    """Time (ms) from SIGKILL of the policy process to the executor's first zero command, `kills` times."""
    use_local_domain(domain)
    times = []
    with Bringup(PROFILES["sim"], overrides(lease, backend), log_dir=log_dir) as bringup:
        rclpy.init()
        probe = Probe()
        try:
            if not probe.spin_for(60, lambda: bool(probe.task) and probe.instruction.get_subscription_count() > 0):
                raise RuntimeError("nodes did not come up")
            probe.spin_for(1.0)
            for _ in range(kills):
                probe.instruction.publish(String(data="stop"))
                probe.spin_for(0.5)
                probe.instruction.publish(String(data=probe.task))
                if not probe.spin_for(60, probe.moving):
                    raise RuntimeError(f"the arm never moved: {probe.statuses[-3:]}")
                probe.spin_for(0.2)
                t_kill = probe.now()
                bringup.procs["policy"].send_signal(signal.SIGKILL)
                probe.spin_for(1.0, lambda t_kill=t_kill: any(t > t_kill and _speed(m) == 0 for t, m in probe.twists))
                halt = next((t for t, m in probe.twists if t > t_kill and _speed(m) == 0), None)
                times.append(float("nan") if halt is None else (halt - t_kill) * 1e3)
                bringup.procs["policy"].wait()
                bringup.launch("policy")
        finally:
            probe.destroy_node()
            rclpy.shutdown()
    return times


@dataclass
class FalseHaltOptions:
    leases: tuple[float, ...] = option((0.1, 0.2, 0.5), "DDS liveliness leases (s)")
    minutes: float = option(3.0, "loaded run per lease")
    load: int = option(2, "busy processes during the loaded run")
    kills: int = option(5, "SIGKILLs of the policy per lease (no load)")
    backend: str = option("mole_torch", "policy backend")
    first_domain: int = option(120, "first ROS_DOMAIN_ID (one per lease)")
    out: str = option("results/halts", "folder for the table and the node logs")


def run(o: FalseHaltOptions) -> list[dict]:
    from tqdm import tqdm

    leases, minutes, load, kills, out, backend, first_domain = o.leases, o.minutes, o.load, o.kills, Path(o.out), \
        o.backend, o.first_domain

    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, lease in enumerate(tqdm(leases, desc="leases", unit="lease")):
        logs = out / f"logs_{lease}"
        (logs / "kills").mkdir(parents=True, exist_ok=True)
        row = {"lease_s": lease, **run_loaded(lease, minutes, load, first_domain + 2 * i, logs, backend)}
        row["kill_ms"] = run_kills(lease, kills, first_domain + 2 * i + 1, logs / "kills", backend)
        rows.append(row)
    table = render(rows, load, backend)
    print(table)
    (out / "false_halts.json").write_text(json.dumps(rows, indent=2))
    (out / "false_halts.md").write_text(table)
    return rows


def render(rows: list[dict], load: int, backend: str) -> str:
    lines = [f"Policy {backend}; {load} busy processes on the 2 cores during the loaded run.", "",
             "| liveliness lease (s) | loaded minutes | goals (succeeded) | false halts / min | causes | "
             "stale chunks dropped | time to halt after SIGKILL, median / max (ms) |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        k = np.array(r["kill_ms"], float)
        causes = ", ".join(f"{c} {n}" for c, n in sorted(r["causes"].items(), key=lambda x: -x[1])) or "none"
        lines.append(f"| {r['lease_s']} | {r['minutes']:.1f} | {r['goals']} ({r['successes']}) | "
                     f"{r['false_halts'] / r['minutes']:.2f} | {causes} | {r['stale_chunks_refused']} | "
                     f"{np.nanmedian(k):.0f} / {np.nanmax(k):.0f} (n={len(k)}, missed {int(np.isnan(k).sum())}) |")
    return "\n".join(lines) + "\n"
