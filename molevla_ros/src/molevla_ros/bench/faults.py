"""Fault suite against the simulated loop: real processes, real DDS, real signals. Each case runs on a fresh
bring-up on its own ROS domain; with `load` two busy processes saturate both cores meanwhile.

Three kinds of case:
- faults while the arm moves (sim, camera, instruction, policy = scripted expert, executor): time to halt
  (fault injected -> stamp of the first zero command the executor publishes), whether the arm stays halted, commands
  outside the limits (speed, and acceleration between consecutive commands other than a halt to zero) over
  the whole run, and node processes that crashed;
- refused inputs (the same nodes without a policy; this suite publishes the chunks): each bad chunk or joint
  state is sent while a goal is active, and every non-zero command in the next second counts as a command
  caused by a refused input. A valid chunk at the end must move the arm, so a dead executor cannot pass;
- stale success: right after a touch succeeded (the arm still rests on its cube), a goal about another cube
  must not be marked succeeded by the first task's success.
"""
from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import rclpy
from geometry_msgs.msg import TwistStamped
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, String
from trajectory_msgs.msg import JointTrajectory

from molevla_ros.config_cli import option
from molevla_ros.bringup import BRINGUPS, Bringup, use_local_domain
from molevla_ros.nodes.messages import chunk_to_msg, stamp_s, to_stamp
from molevla_ros.nodes.process import spin_until
from molevla_ros.nodes.qos import CHUNK_PUB_QOS, LATCHED_QOS, RELIABLE_QOS, SENSOR_QOS, STATUS_QOS
from molevla_ros.topics import TOPIC_CHUNK, TOPIC_ESTOP, TOPIC_INSTRUCTION, TOPIC_SIM_TASK, TOPIC_STATUS
from molevla_ros.sim.scene import JOINT_NAMES, SIM_ROBOT
from molevla_ros.nodes.executor_node import PARAMS as EXECUTOR_PARAMS

# The executor's defaults and the simulated robot's limits: what the suite holds the loop to.
LIMITS = {p.name: p.default for p in EXECUTOR_PARAMS} | vars(SIM_ROBOT.limits)


@contextmanager
def cpu_load(processes: int) -> Iterator[None]:
    """`processes` busy-looping Python processes (nothing else) for the duration of the block."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(processes)]
    try:
        yield
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


@dataclass
class Fault:
    name: str
    inject: Callable[["Probe", Bringup], None]
    stays_halted: bool  # the arm must not move again after this fault (in the observation window)
    reason: str  # text of the first halt status after the fault: names the mechanism that must catch it
    bound_s: float  # the halt must come within this (s): below what any other mechanism would give
    note: str = ""
    executor: dict = field(default_factory=dict)  # executor parameters for this case (to rule out other paths)


class Probe(Node):
    def __init__(self) -> None:
        super().__init__("fault_probe")
        self.twists: list[tuple[float, TwistStamped]] = []
        self.statuses: list[tuple[float, str]] = []
        self.task = ""
        # A command is timed by its own stamp (the executor's tick), so a probe that reads late cannot shift it.
        self.create_subscription(TwistStamped, SIM_ROBOT.twist_topic,
                                 lambda m: self.twists.append((stamp_s(m.header.stamp), m)), 100)
        # latched as published: a status sent before this reader matched still arrives (timed on arrival)
        self.create_subscription(String, TOPIC_STATUS, lambda m: self.statuses.append((self.now(), m.data)),
                                 STATUS_QOS)
        self.create_subscription(String, TOPIC_SIM_TASK, lambda m: setattr(self, "task", m.data), LATCHED_QOS)
        self.instruction = self.create_publisher(String, TOPIC_INSTRUCTION, RELIABLE_QOS)
        self.chunks = self.create_publisher(JointTrajectory, TOPIC_CHUNK, CHUNK_PUB_QOS)
        self.joints = self.create_publisher(JointState, SIM_ROBOT.joint_states, SENSOR_QOS)
        self.estop = self.create_publisher(Bool, TOPIC_ESTOP, LATCHED_QOS)

    def now(self) -> float:
        """Seconds on the ROS clock, the clock the executor stamps its commands with; every time here uses it."""
        return self.get_clock().now().nanoseconds * 1e-9

    def spin_for(self, seconds: float, until: Callable[[], bool] | None = None) -> bool:
        return spin_until(self, seconds, until)

    def moving(self, window: int = 5) -> bool:
        recent = self.twists[-window:]
        return len(recent) == window and all(_speed(m) > 0.01 for _, m in recent)

    def status_since(self, t: float, *prefixes: str) -> str:
        return next((s for ts, s in self.statuses if ts >= t and s.startswith(prefixes)), "")

    def chunk(self, value: float = 0.01) -> JointTrajectory:
        a = np.full((16, 7), value)
        a[:, 3:6] = 0.0
        a[:, 6] = 1.0
        return chunk_to_msg(a, self.get_clock().now().to_msg(), SIM_ROBOT.base_frame, 0.1)

    def joint_state(self, q: np.ndarray | None = None) -> JointState:
        msg = JointState(name=list(JOINT_NAMES), position=list(q if q is not None else np.zeros(len(JOINT_NAMES))))
        msg.header.stamp = self.get_clock().now().to_msg()
        return msg

    def bad_chunk(self, kind: str) -> None:
        self.chunks.publish(bad_chunk(self, kind))

    def flood(self, kinds: list[str], n: int = 10_000) -> None:
        """n instructions as fast as possible, then a stop word (the halt is timed from it)."""
        for i in range(n):
            self.instruction.publish(String(data=kinds[i % len(kinds)]))
            if i % 500 == 0:
                rclpy.spin_once(self, timeout_sec=0.0)
        self.spin_for(0.5)
        self.flood_kept_moving = self.moving()
        self.stop_sent = self.now()
        self.instruction.publish(String(data="stop"))

    def bad_joint_states(self, bringup: Bringup, kind: str, seconds: float = 2.5) -> None:
        """Stop the simulator (no valid joint state any more) and publish bad joint states at 100 Hz instead:
        none of them may keep the executor's joint-state watchdog alive."""
        bringup.procs["sim"].send_signal(signal.SIGSTOP)
        timer = self.create_timer(0.01, lambda: self.joints.publish(bad_joint_state(self, kind)))
        self.spin_for(seconds)
        self.destroy_timer(timer)
        bringup.procs["sim"].send_signal(signal.SIGCONT)

    def estop_and_release(self) -> None:
        self.estop.publish(Bool(data=True))
        self.spin_for(0.5)
        self.estop.publish(Bool(data=False))


def bad_chunk(probe: Probe, kind: str) -> JointTrajectory:
    """A chunk that the executor must refuse (or, for 'valid', accept)."""
    msg = probe.chunk(value=math.nan if kind == "nan" else 0.01)
    if kind == "inf":
        msg.points[2].positions[0] = math.inf
    elif kind == "old":
        msg.header.stamp = to_stamp(stamp_s(msg.header.stamp) - 5.0)
    elif kind == "future":  # what a publisher whose clock jumped 5 s ahead sends
        msg.header.stamp = to_stamp(stamp_s(msg.header.stamp) + 5.0)
    elif kind == "absurd":  # dy = 1e9 m per step
        for pt in msg.points:
            pt.positions[1] = 1e9
    elif kind == "too fast":  # 1 m per 0.1 s step: 10 m/s
        for pt in msg.points:
            pt.positions[0] = 1.0
    elif kind == "three names":
        msg.joint_names = msg.joint_names[:3]
        for pt in msg.points:
            pt.positions = pt.positions[:3]
    elif kind == "unknown names":
        msg.joint_names = [f"j{i}" for i in range(7)]
    elif kind == "camera frame":  # deltas expressed in another frame than the executor's base
        msg.header.frame_id = "scene_camera"
    elif kind == "uneven times":  # the steps' time_from_start are not i * dt
        msg.points[5].time_from_start.nanosec += 30_000_000
    elif kind == "huge":
        msg.points = msg.points * 1000
    elif kind == "empty":
        msg.points = []
    elif kind == "gripper 1e6":
        for pt in msg.points:
            pt.positions[6] = 1e6
    elif kind not in ("valid", "nan"):
        raise ValueError(kind)
    return msg


def bad_joint_state(probe: Probe, kind: str) -> JointState:
    msg = probe.joint_state()
    if kind == "wrong length":  # 9 names, 4 positions
        msg.position = msg.position[:4]
    elif kind == "unknown names":
        msg.name = [f"other_joint{i}" for i in range(len(msg.name))]
    elif kind == "fingers only":
        msg.name, msg.position = msg.name[7:], msg.position[7:]
    elif kind == "NaN":
        msg.position[2] = math.nan
    elif kind == "stamped 1e6 s ahead":
        msg.header.stamp = to_stamp(stamp_s(msg.header.stamp) + 1e6)
    elif kind == "stamped 1970":
        msg.header.stamp = to_stamp(1.0)
    elif kind == "unstamped":
        msg.header.stamp = to_stamp(0.0)
    elif kind != "valid":
        raise ValueError(kind)
    return msg


# Detection paths are isolated: where another watchdog could halt the arm about as soon (no chunks once frames or
# joint states stop: chunk_timeout_s 0.5 s), the case raises that one's timeout, so that only the named mechanism can
# halt within the bound, and the reason must name it.
ISOLATED = {"chunk_timeout_s": 2.0}
LIVELINESS_S = LIMITS["policy_liveliness_s"] + LIMITS["policy_liveliness_grace_s"]
FAULTS = [
    Fault("kill the policy process (SIGKILL)", lambda pr, b: b.procs["policy"].send_signal(signal.SIGKILL), True,
          "gave no sign of life", LIVELINESS_S + 0.2, f"DDS liveliness lease {LIMITS['policy_liveliness_s']} s + "
          f"grace {LIMITS['policy_liveliness_grace_s']} s", ISOLATED),
    Fault("stall the camera (SIGSTOP)", lambda pr, b: b.procs["camera"].send_signal(signal.SIGSTOP), True,
          "camera stale", LIMITS["camera_timeout_s"] + 0.2, f"camera_timeout_s {LIMITS['camera_timeout_s']} s",
          ISOLATED),
    Fault("NaN chunk", lambda pr, b: pr.bad_chunk("nan"), False, "refused chunk: chunk contains NaN or Inf", 0.15),
    Fault("Inf chunk", lambda pr, b: pr.bad_chunk("inf"), False, "refused chunk: chunk contains NaN or Inf", 0.15),
    Fault("chunk with dy = 1e9 m per step", lambda pr, b: pr.bad_chunk("absurd"), False,
          "refused chunk: implausible chunk", 0.15),
    Fault("chunk named with 3 of the 7 actions", lambda pr, b: pr.bad_chunk("three names"), False,
          "refused chunk: chunk names", 0.15),
    Fault("chunk with uneven time_from_start", lambda pr, b: pr.bad_chunk("uneven times"), False,
          "uneven time_from_start", 0.15),
    Fault("clock jump: chunk stamped 5 s ahead", lambda pr, b: pr.bad_chunk("future"), False,
          "in the future (clock jump?)", 0.15),
    Fault("sim stopped, joint states without the arm's joints", lambda pr, b: pr.bad_joint_states(b, "fingers only"),
          True, "joint state stale", LIMITS["joint_state_timeout_s"] + 0.2,
          f"joint_state_timeout_s {LIMITS['joint_state_timeout_s']} s; robot_lost_s {LIMITS['robot_lost_s']} s then "
          "holds", ISOLATED),
    Fault("sim stopped, joint states stamped 1970", lambda pr, b: pr.bad_joint_states(b, "stamped 1970"), True,
          "joint state stale", LIMITS["joint_state_timeout_s"] + 0.2, "as above", ISOLATED),
    Fault("e-stop engaged, released 0.5 s later", lambda pr, b: pr.estop_and_release(), True, "stopped: e-stop engaged",
          0.15, "release alone must not restart motion"),
    Fault("flood 10k invalid instructions, then 'stop'", lambda pr, b: pr.flood(["", "   ", "x" * 5000, "\t\n"]),
          True, "stopped: operator stop", 0.5, "halt timed from the stop word sent 0.5 s after the flood"),
    Fault("flood 10k valid goals, then 'stop'", lambda pr, b: pr.flood([pr.task]), True, "stopped: operator stop", 0.5,
          "halt timed from the stop word sent 0.5 s after the flood"),
]

# Refused inputs: sent with a goal active and no policy running; none may cause a command. Kind -> the status text
# that names why it was refused.
REFUSED_CHUNKS = {"nan": "chunk contains NaN or Inf", "inf": "chunk contains NaN or Inf",
                  "absurd": "implausible chunk: step 0 asks for linear speed", "too fast": "implausible chunk",
                  "gripper 1e6": "implausible chunk: gripper command", "three names": "are not the action names",
                  "unknown names": "are not the action names", "uneven times": "uneven time_from_start",
                  "camera frame": "chunk is in frame 'scene_camera'", "huge": "chunk has 16000 steps",
                  "empty": "chunk has no points", "old": "chunk is stale", "future": "in the future"}
REFUSED_JOINT_STATES = {"wrong length": "9 names but 4 positions", "unknown names": f"lacks {JOINT_NAMES[0]}",
                        "fingers only": f"lacks {JOINT_NAMES[0]}", "NaN": f"NaN/Inf positions for {JOINT_NAMES[2]}",
                        "stamped 1e6 s ahead": "in the future", "stamped 1970": "s ago", "unstamped": "unstamped"}


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


def _speed(m: TwistStamped) -> float:
    return math.sqrt(m.twist.linear.x ** 2 + m.twist.linear.y ** 2 + m.twist.linear.z ** 2)


def _vec(m: TwistStamped) -> np.ndarray:
    return np.array([m.twist.linear.x, m.twist.linear.y, m.twist.linear.z])


@contextmanager
def session(nodes: list[str], domain: int, log_dir: Path | None, family: str = "push",
            policy: str = "scripted_expert", executor: dict | None = None) -> Iterator[tuple[Probe, Bringup]]:
    """A bring-up of `nodes` and a probe that has seen the sim's task and reaches the instruction node."""
    use_local_domain(domain)
    overrides = {"sim": {"task_family": family, "seed": 1}, "policy": {"backend": policy},
                 "executor": dict(executor or {})}
    with Bringup(nodes, overrides, log_dir=log_dir) as bringup:
        rclpy.init()
        probe = Probe()
        try:
            if not probe.spin_for(30, lambda: bool(probe.task) and probe.instruction.get_subscription_count() > 0):
                raise RuntimeError("nodes did not come up")
            probe.spin_for(1.0)
            yield probe, bringup
        finally:
            for proc in bringup.procs.values():
                if proc.poll() is None:
                    proc.send_signal(signal.SIGCONT)
            probe.destroy_node()
            rclpy.shutdown()


def run_fault(fault: Fault, domain: int, log_dir: Path | None, settle: float = 2.5) -> dict:
    """One fault on a fresh bring-up."""
    with session(BRINGUPS["sim"], domain, log_dir, executor=fault.executor) as (probe, bringup):
        return inject_and_watch(fault, probe, bringup, settle)


def run_faults(faults: list[Fault], domain: int, log_dir: Path | None, settle: float = 2.5) -> list[dict]:
    """Faults the arm recovers from (a refused chunk: the next good one resumes motion) one after another on one
    bring-up, each once the arm moves again; each row's limit violations count its own window only."""
    assert not any(f.stays_halted or f.executor for f in faults), "only faults that leave the bring-up as it was"
    with session(BRINGUPS["sim"], domain, log_dir) as (probe, bringup):
        rows = []
        for f in faults:
            row = inject_and_watch(f, probe, bringup, settle)
            if row["task_ended"]:  # the scene's task was done during the case (the goal ends: chunks are ignored)
                row = inject_and_watch(f, probe, bringup, settle)  # done, it stays done: the rerun meets no end
                row["note"] = (row["note"] + "; " if row["note"] else "") + "rerun: the task ended in the first try"
            rows.append(row)
        return rows


def inject_and_watch(fault: Fault, probe: Probe, bringup: Bringup, settle: float) -> dict:
    """With the goal running and the arm moving: inject `fault`, watch `settle` seconds, and measure."""
    row = {"fault": fault.name, "note": fault.note, "expected_reason": fault.reason, "bound_ms": fault.bound_s * 1e3}
    t_start = probe.now()
    probe.instruction.publish(String(data=probe.task))
    if not probe.spin_for(20, lambda: probe.moving()):
        raise RuntimeError(f"the arm never moved: {probe.statuses[-3:]}")
    probe.spin_for(0.3)
    t_fault = probe.now()
    fault.inject(probe, bringup)
    t_fault = getattr(probe, "stop_sent", t_fault)  # a flood is timed from the stop word that follows it
    probe.spin_for(settle)
    after = [(t, m) for t, m in probe.twists if t >= t_fault]
    if fault.stays_halted:  # the first zero command after which the arm never moves again
        moving_at = [t for t, m in after if _speed(m) > 0.0]
        halt = next((t for t, m in after if _speed(m) == 0.0 and (not moving_at or t > moving_at[-1])), None)
    else:  # a refused chunk: the first zero command (the next good chunk resumes motion)
        halt = next((t for t, m in after if _speed(m) == 0.0), None)
    if hasattr(probe, "flood_kept_moving"):  # timed from the stop word
        row["note"] += f"; moving after the flood: {'yes' if probe.flood_kept_moving else 'no'}"
    row["time_to_halt_ms"] = None if halt is None else (halt - t_fault) * 1e3
    stamps = [t for t, _ in after]  # the executor ticks at rate_hz: a long gap means it (or DDS) stalled
    row["max_command_gap_ms"] = float(np.diff(stamps).max() * 1e3) if len(stamps) > 1 else None
    row["stays_halted"] = halt is not None and not any(t > halt and _speed(m) > 0 for t, m in after)
    row["reason"] = probe.status_since(t_fault, "halted", "stopped", "held")
    # The scene's own task succeeded (or timed out) while the case ran: its goal ended with it, and the executor
    # ignores chunks without a goal, so a chunk fault sent then tests nothing.
    row["task_ended"] = bool(probe.status_since(t_start, "succeeded", "failed"))
    # The halt is timed by the commands' stamps; statuses carry none and are timed on arrival, which a loaded machine
    # delays: the reason counts when it arrives within the watch window.
    row["reason_found"] = any(fault.reason in text for t, text in probe.statuses if t >= t_fault)
    row["speed_violations"], row["accel_violations"] = limit_violations([(t, m) for t, m in probe.twists
                                                                         if t >= t_start])
    dead = {n: c for n, c in bringup.dead().items() if not (n == "policy" and "kill" in fault.name)}
    row["crashed"] = sorted(dead)
    row["commands"] = len(after)
    row["expect_stays_halted"] = fault.stays_halted
    return row


OVER_LIMIT = 0.035  # per axis and 0.1 s step: 0.61 m/s along (1, 1, 1), twice the speed limit (still plausible)


def run_refusals(domain: int, log_dir: Path | None, window: float = 1.0) -> list[dict]:
    """Each refused input sent with a goal active and no policy: its status and the commands it caused. Then two
    controls: a chunk asking for twice the speed limit diagonally (must move at exactly the limit: the limit is on
    the vector, applied before publishing) and a valid chunk (must move: the executor was able to)."""
    rows = []
    nodes = ["sim", "camera", "instruction", "executor"]
    with session(nodes, domain, log_dir) as (probe, bringup):
        # every node's status reaches the probe, the goal is accepted (the executor ignores chunks without a
        # goal) and the executor listens to chunks: only then is a missing status a missing status
        probe.spin_for(20, lambda: probe.count_publishers(TOPIC_STATUS) >= len(nodes))
        probe.instruction.publish(String(data=probe.task))
        probe.spin_for(10, lambda: bool(probe.status_since(0, "accepted"))
                       and probe.chunks.get_subscription_count() > 0)
        probe.spin_for(0.5)  # the latched goal reaches the executor
        cases = [("chunk", k, lambda k=k: probe.chunks.publish(bad_chunk(probe, k))) for k in REFUSED_CHUNKS]
        cases += [("joint state", k, lambda k=k: probe.joints.publish(bad_joint_state(probe, k)))
                  for k in REFUSED_JOINT_STATES]
        cases += [("chunk", "2x the speed limit (control: moves at the limit)",
                   lambda: probe.chunks.publish(probe.chunk(OVER_LIMIT))),
                  ("chunk", "valid (control: must move)", lambda: probe.chunks.publish(bad_chunk(probe, "valid")))]
        for what, kind, send in cases:
            t0 = probe.now()
            send()
            probe.spin_for(window)
            speeds = [_speed(m) for t, m in probe.twists if t >= t0]
            rows.append({"input": f"{what}: {kind}", "commands_moving": sum(v > 0 for v in speeds),
                         "max_speed": max(speeds, default=0.0), "status": probe.status_since(t0, "halted", "rejected")})
            probe.spin_for(0.3)  # let a control chunk's motion end before the next case
        rows.append({"input": "(no node crashed)", "commands_moving": 0, "max_speed": 0.0,
                     "status": ", ".join(bringup.dead()) or "ok"})
    return rows


def run_stale_success(domain: int, log_dir: Path | None, watch: float = 5.0) -> dict:
    """Touch task: wait for success, then send a goal about another cube of the scene; the first task's success
    (still true: the arm rests on its cube) must not complete it."""
    from molevla_ros.sim.tasks import COLOURS

    with session(BRINGUPS["sim"], domain, log_dir, family="touch") as (probe, _):
        probe.instruction.publish(String(data=probe.task))
        first = probe.spin_for(40, lambda: bool(probe.status_since(0, "succeeded")))
        cube = next(c for c in COLOURS if f" {c} " in f" {probe.task} ")
        other = next(c for c in COLOURS if c != cube)
        t0 = probe.now()
        probe.instruction.publish(String(data=probe.task.replace(cube, other)))
        probe.spin_for(watch)
        again = probe.status_since(t0, "succeeded")
        running = probe.status_since(t0, "running")
    return {"first_goal_succeeded": first, "second_goal_running": bool(running),
            "stale_successes": int(bool(again)), "status_after": again or running}


@dataclass
class FaultOptions:
    only: tuple[str, ...] | None = option(None, "run only faults whose name contains one of these words")
    load: bool = option(False, "run each fault again with both cores saturated")
    first_domain: int = option(150, "first ROS_DOMAIN_ID (one per case, so cases cannot hear each other)")
    out: str = option("docs/results/faults", "folder for the table (faults.md, .json) and the node logs (logs/)")


def run(o: FaultOptions) -> list[dict]:
    """Every fault (and, unless `only` picks faults, the refusal and stale-success cases); with `load`, each
    fault once more with both cores saturated."""
    from tqdm import tqdm

    out, only, first_domain, load = Path(o.out), o.only, o.first_domain, o.load

    out.mkdir(parents=True, exist_ok=True)
    faults = [f for f in FAULTS if not only or any(o in f.name for o in only)]
    alone = [f for f in faults if f.stays_halted or f.executor]  # each on a fresh bring-up
    shared = [f for f in faults if f not in alone]  # the arm recovers from these: one bring-up for all
    loads = [0, 2] if load else [0]
    rows = []
    bar = tqdm(total=(len(alone) + bool(shared)) * len(loads) + (0 if only else 2), desc="fault cases", unit="case")
    for busy in loads:
        got = []
        for n, f in enumerate(alone):
            with cpu_load(busy):
                got.append(run_fault(f, first_domain + 2 * n + (busy > 0), out / "logs" / f"{n}_{busy}"))
            bar.update()
        if shared:
            with cpu_load(busy):
                got += run_faults(shared, first_domain + 40 + (busy > 0), out / "logs" / f"shared_{busy}")
            bar.update()
        if busy == 0:
            rows = got
        else:
            for row, under in zip(rows, got):
                row["under_load"] = under
    result = {"faults": rows}
    if not only:
        result["refusals"] = run_refusals(first_domain + 60, out / "logs" / "refusals")
        bar.update()
        result["stale_success"] = run_stale_success(first_domain + 61, out / "logs" / "stale_success")
        bar.update()
    bar.close()
    from molevla_ros.bench.report import header

    table = header("molevla bench-faults", o) + render(result)
    print(table)
    (out / "faults.json").write_text(json.dumps(result, indent=2))
    (out / "faults.md").write_text(table)
    return rows


def _halt(r: dict) -> str:
    t = "never" if r["time_to_halt_ms"] is None else f"{r['time_to_halt_ms']:.0f}"
    ok = r["stays_halted"] == r["expect_stays_halted"] or not r["expect_stays_halted"]
    return t + ("" if ok else " (moved again)")


def render(result: dict) -> str:
    rows = result["faults"]
    loaded = any("under_load" in r for r in rows)
    lines = ["| fault | time to halt (ms) | " + ("under CPU load (ms) | " if loaded else "") +
             "stays halted | commands over speed / accel limit | node crashes | first halt status after the fault "
             "| note |", "|---|---|---|---|---|---|---|" + ("---|" if loaded else "")]
    for r in rows:
        stays = ("yes" if r["stays_halted"] else "no") + ("" if r["expect_stays_halted"] else " (resumes on the "
                                                                                              "next good chunk)")
        viol = f"{r['speed_violations']} / {r['accel_violations']}"
        crashed = f"{len(r['crashed'])}{' ' + ','.join(r['crashed']) if r['crashed'] else ''}"
        if loaded:
            u = r["under_load"]
            viol += f" (load: {u['speed_violations']} / {u['accel_violations']})"
            crashed += f" (load: {len(u['crashed'])})"
        lines.append(f"| {r['fault']} | {_halt(r)} | " + (f"{_halt(r['under_load'])} | " if loaded else "") +
                     f"{stays} | {viol} | {crashed} | {r['reason']} | {r['note']} |")
    if "refusals" in result:
        lines += ["", "| refused input (goal active, no policy) | commands caused | top speed (m/s) | status |",
                  "|---|---|---|---|"]
        lines += [f"| {r['input']} | {r['commands_moving']} | {r['max_speed']:.3f} | {r['status']} |"
                  for r in result["refusals"]]
    if "stale_success" in result:
        s = result["stale_success"]
        lines += ["", f"Stale success: a goal about another cube sent right after a touch succeeded -> stale successes "
                      f"{s['stale_successes']} (first goal succeeded: {s['first_goal_succeeded']}; then: "
                      f"'{s['status_after']}')."]
    return "\n".join(lines) + "\n"
