"""Fault suite against the simulated loop: inject one fault while the arm moves, measure how the executor
reacts. Each fault runs on a fresh bring-up (sim, camera, instruction, policy, executor as separate
processes, scripted-expert policy) on its own ROS domain.

Per fault: time to halt (fault injection -> first zero-velocity command the executor publishes), whether
the arm stays halted, commands outside the limits (speed, and acceleration between consecutive commands
other than a halt to zero) over the whole run, and node processes that crashed.
"""
from __future__ import annotations

import json
import math
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import rclpy
from geometry_msgs.msg import TwistStamped
from rclpy.node import Node
from std_msgs.msg import String
from trajectory_msgs.msg import JointTrajectory

from molevla_ros.bringup import PROFILES, Bringup, use_local_domain
from molevla_ros.nodes.common import (CHUNK_PUB_QOS, LATCHED_QOS, RELIABLE_QOS, TOPIC_CHUNK, TOPIC_INSTRUCTION,
                                      TOPIC_SIM_TASK, TOPIC_STATUS, TOPIC_TWIST, chunk_to_msg, spin_until, stamp_s,
                                      to_stamp)
from molevla_ros.nodes.executor_node import PARAMS as EXECUTOR_PARAMS

LIMITS = {p.name: p.default for p in EXECUTOR_PARAMS}


@dataclass
class Fault:
    name: str
    inject: Callable[["Suite", Bringup], None]
    stays_halted: bool  # the arm must not move again after this fault (in the observation window)
    note: str = ""


class Probe(Node):
    def __init__(self) -> None:
        super().__init__("fault_probe")
        self.twists: list[tuple[float, TwistStamped]] = []
        self.statuses: list[str] = []
        self.task = ""
        self.create_subscription(TwistStamped, TOPIC_TWIST, lambda m: self.twists.append((time.monotonic(), m)), 100)
        self.create_subscription(String, TOPIC_STATUS, lambda m: self.statuses.append(m.data), RELIABLE_QOS)
        self.create_subscription(String, TOPIC_SIM_TASK, lambda m: setattr(self, "task", m.data), LATCHED_QOS)
        self.instruction = self.create_publisher(String, TOPIC_INSTRUCTION, RELIABLE_QOS)
        self.chunks = self.create_publisher(JointTrajectory, TOPIC_CHUNK, CHUNK_PUB_QOS)

    def spin_for(self, seconds: float, until: Callable[[], bool] | None = None) -> bool:
        return spin_until(self, seconds, until)

    def moving(self, window: int = 5) -> bool:
        recent = self.twists[-window:]
        return len(recent) == window and all(_speed(m) > 0.01 for _, m in recent)

    def chunk(self, stamp_offset: float = 0.0, value: float = 0.01) -> JointTrajectory:
        a = np.full((16, 7), value)
        a[:, 3:6] = 0.0
        a[:, 6] = 1.0
        msg = chunk_to_msg(a, self.get_clock().now().to_msg(), "panda_link0", 0.1)
        msg.header.stamp = to_stamp(stamp_s(msg.header.stamp) + stamp_offset)
        return msg


def _speed(m: TwistStamped) -> float:
    return math.sqrt(m.twist.linear.x ** 2 + m.twist.linear.y ** 2 + m.twist.linear.z ** 2)


def _vec(m: TwistStamped) -> np.ndarray:
    return np.array([m.twist.linear.x, m.twist.linear.y, m.twist.linear.z])


class Suite:
    def __init__(self, probe: Probe) -> None:
        self.probe = probe

    def bad_chunk(self, kind: str) -> None:
        msg = self.probe.chunk(value=math.nan if kind == "nan" else 0.01)
        if kind == "inf":
            msg.points[2].positions[0] = math.inf
        elif kind == "old":
            msg.header.stamp = to_stamp(stamp_s(msg.header.stamp) - 5.0)
        elif kind == "future":  # what a publisher whose clock jumped 5 s ahead sends
            msg.header.stamp = to_stamp(stamp_s(msg.header.stamp) + 5.0)
        self.probe.chunks.publish(msg)

    def flood(self, n: int = 10_000) -> None:
        """n invalid instructions as fast as possible (empty, blank, oversized): each is rejected with a
        status while the arm keeps executing its goal; then a stop word (the halt is timed from it)."""
        kinds = ["", "   ", "x" * 5000, "\t\n"]
        for i in range(n):
            self.probe.instruction.publish(String(data=kinds[i % len(kinds)]))
            if i % 500 == 0:
                rclpy.spin_once(self.probe, timeout_sec=0.0)
        self.probe.spin_for(0.5)
        self.flood_kept_moving = self.probe.moving()
        self.probe.instruction.publish(String(data="stop"))


FAULTS = [
    Fault("kill the policy process (SIGKILL)", lambda s, b: b.procs["policy"].send_signal(signal.SIGKILL), True,
          "DDS liveliness lease 0.1 s"),
    Fault("stall the camera (SIGSTOP)", lambda s, b: b.procs["camera"].send_signal(signal.SIGSTOP), True,
          f"camera_timeout_s {LIMITS['camera_timeout_s']} s"),
    Fault("NaN chunk", lambda s, b: s.bad_chunk("nan"), False),
    Fault("Inf chunk", lambda s, b: s.bad_chunk("inf"), False),
    Fault("chunk stamped 5 s ago", lambda s, b: s.bad_chunk("old"), False),
    Fault("clock jump: chunk stamped 5 s ahead", lambda s, b: s.bad_chunk("future"), False),
    Fault("flood 10k instructions, then 'stop'", lambda s, b: s.flood(), True,
          "arm keeps its goal during the flood; halt timed from the stop word sent 0.5 s after it"),
]


def limit_violations(twists: list[tuple[float, TwistStamped]]) -> tuple[int, int]:
    """(commands over the speed limit, command changes over the acceleration limit), halts to zero excepted."""
    vmax, amax = LIMITS["max_linear_speed"], LIMITS["max_linear_accel"]
    speed = sum(_speed(m) > vmax * 1.001 for _, m in twists)
    accel = 0
    for (_, a), (_, b) in zip(twists, twists[1:]):
        dt = stamp_s(b.header.stamp) - stamp_s(a.header.stamp)
        vb = _vec(b)
        if dt <= 0 or not vb.any():
            continue
        if np.linalg.norm(vb - _vec(a)) > amax * (dt + 0.002):  # 2 ms slack: stamp vs. tick clock read
            accel += 1
    return speed, accel


def run_fault(fault: Fault, domain: int, log_dir: Path | None, settle: float = 2.0) -> dict:
    use_local_domain(domain)
    overrides = {"sim": {"task_family": "push", "seed": 1}, "policy": {"backend": "scripted_expert"}}
    row = {"fault": fault.name, "note": fault.note}
    with Bringup(PROFILES["sim"], overrides, log_dir=log_dir) as bringup:
        rclpy.init()
        probe = Probe()
        try:
            if not probe.spin_for(30, lambda: bool(probe.task) and probe.instruction.get_subscription_count() > 0):
                raise RuntimeError("nodes did not come up")
            probe.spin_for(1.0)
            probe.instruction.publish(String(data=probe.task))
            if not probe.spin_for(20, lambda: probe.moving()):
                raise RuntimeError(f"the arm never moved: {probe.statuses[-3:]}")
            probe.spin_for(0.3)
            suite = Suite(probe)
            statuses_before = list(probe.statuses)
            fault.inject(suite, bringup)
            t_fault = time.monotonic()
            probe.spin_for(settle)
            after = [(t, m) for t, m in probe.twists if t >= t_fault]
            if fault.stays_halted:  # the first zero command after which the arm never moves again
                moving_at = [t for t, m in after if _speed(m) > 0.0]
                halt = next((t for t, m in after if _speed(m) == 0.0 and (not moving_at or t > moving_at[-1])), None)
            else:  # a rejected chunk: the first zero command (the next good chunk resumes motion)
                halt = next((t for t, m in after if _speed(m) == 0.0), None)
            row["time_to_halt_ms"] = None if halt is None else (halt - t_fault) * 1e3
            row["stays_halted"] = halt is not None and not any(t > halt and _speed(m) > 0 for t, m in after)
            if hasattr(suite, "flood_kept_moving"):
                row["note"] += f"; moving after the flood: {'yes' if suite.flood_kept_moving else 'no'}"
            n_before = len(statuses_before)
            row["reason"] = next((s for s in probe.statuses[n_before:] if s.startswith(("halted", "stopped"))), "")
            row["speed_violations"], row["accel_violations"] = limit_violations(probe.twists)
            if fault.name.startswith("stall"):
                bringup.procs["camera"].send_signal(signal.SIGCONT)
            dead = {n: c for n, c in bringup.dead().items() if not (n == "policy" and "kill" in fault.name)}
            row["crashed"] = sorted(dead)
            row["commands"] = len(probe.twists)
            row["expect_stays_halted"] = fault.stays_halted
        finally:
            probe.destroy_node()
            rclpy.shutdown()
    return row


def run(out: Path = Path("results/faults"), only: list[str] | None = None, first_domain: int = 150) -> list[dict]:
    from tqdm import tqdm

    out.mkdir(parents=True, exist_ok=True)
    faults = [f for f in FAULTS if not only or any(o in f.name for o in only)]
    rows = []
    for i, f in enumerate(tqdm(faults, desc="faults", unit="fault")):
        logs = out / f"logs_{i}"
        logs.mkdir(exist_ok=True)
        rows.append(run_fault(f, first_domain + i, logs))
    table = render(rows)
    print(table)
    (out / "faults.json").write_text(json.dumps(rows, indent=2))
    (out / "table.md").write_text(table)
    return rows


def render(rows: list[dict]) -> str:
    lines = ["| fault | time to halt (ms) | stays halted | commands over speed / accel limit | node crashes | "
             "first halt status after the fault | note |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        t = "never" if r["time_to_halt_ms"] is None else f"{r['time_to_halt_ms']:.0f}"
        stays = ("yes" if r["stays_halted"] else "no") + ("" if r["expect_stays_halted"] else " (resumes on the "
                                                                                              "next good chunk)")
        lines.append(f"| {r['fault']} | {t} | {stays} | {r['speed_violations']} / {r['accel_violations']} | "
                     f"{len(r['crashed'])}{' ' + ','.join(r['crashed']) if r['crashed'] else ''} | {r['reason']} | "
                     f"{r['note']} |")
    return "\n".join(lines) + "\n"
