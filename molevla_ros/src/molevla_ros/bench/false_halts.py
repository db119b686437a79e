"""False halts at normal load and under saturation vs time to halt after a real kill, per liveliness setting.

A setting is a DDS liveliness lease (offered by the policy, requested by the executor) and the executor's grace
(`0.1`: lease 0.1 s, halt at once; `0.05+0.05`: lease 0.05 s, halt when not regained within 0.05 s). For each
setting and load this runs the whole simulated loop (five node processes, the shipped MoLe-VLA policy) for
`minutes`: goals are sent again and again (a new layout after each success or failure) while bad inputs arrive
at the fault suite's rates (invalid joint states at 100 Hz next to the simulator's, refused camera frames at
30 Hz, invalid instructions at 10 Hz), and every executor halt is classified by its status reason. Nothing
that should halt is injected, so each halt other than "goal cleared" is a false halt. Loads: `normal` (nothing
else runs) and `saturated` (`busy` processes spin on the cores). Then, without load, the policy process is
killed with SIGKILL `kills` times (restarted in between) and the time from the kill to the executor's first
zero command is measured.
"""
from __future__ import annotations

import json
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import Image
from std_msgs.msg import String
from std_srvs.srv import Trigger

from molevla_ros.bench.faults import Probe, _speed, bad_joint_state, cpu_load
from molevla_ros.bringup import BRINGUPS, Bringup, use_local_domain
from molevla_ros.config_cli import option
from molevla_ros.nodes.messages import rgb_to_msg
from molevla_ros.nodes.qos import SENSOR_QOS
from molevla_ros.topics import TOPIC_DIAGNOSTICS, TOPIC_IMAGE_RAW

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


def parse_setting(setting: str) -> tuple[float, float]:
    """(lease, grace) in seconds from "0.1" or "0.05+0.05"."""
    lease, _, grace = setting.partition("+")
    return float(lease), float(grace or 0.0)


def overrides(setting: str, backend: str) -> dict:
    lease, grace = parse_setting(setting)
    return {"sim": {"task_family": "touch", "seed": 3}, "policy": {"backend": backend, "liveliness_s": lease},
            "executor": {"policy_liveliness_s": lease, "policy_liveliness_grace_s": grace}}


BAD_INSTRUCTIONS = ["", "\t\n", "x" * 5000, "\x1b[2J"]
BAD_JOINT_STATES = ["wrong length", "unknown names", "NaN", "stamped 1970"]


def bad_input_traffic(probe: Probe) -> None:
    """Timers on `probe` that send refused inputs at the fault suite's rates while the loop runs."""
    images = probe.create_publisher(Image, TOPIC_IMAGE_RAW, SENSOR_QOS)
    tiny = rgb_to_msg(np.zeros((1, 1, 3), np.uint8), probe.get_clock().now().to_msg(), "scene_camera")
    odd = rgb_to_msg(np.zeros((8, 8, 3), np.uint8), probe.get_clock().now().to_msg(), "scene_camera")
    odd.encoding = "yuv422"
    count = iter(range(1 << 62))
    probe.create_timer(0.01, lambda: probe.joints.publish(
        bad_joint_state(probe, BAD_JOINT_STATES[next(count) % len(BAD_JOINT_STATES)])))
    probe.create_timer(1 / 30, lambda: images.publish(tiny if next(count) % 2 else odd))
    probe.create_timer(0.1, lambda: probe.instruction.publish(
        String(data=BAD_INSTRUCTIONS[next(count) % len(BAD_INSTRUCTIONS)])))


def run_loaded(setting: str, minutes: float, busy: int, domain: int, log_dir: Path, backend: str) -> dict:
    """Halts per cause while the loop runs goals among bad inputs, with `busy` busy processes."""
    use_local_domain(domain)
    with Bringup(BRINGUPS["sim"], overrides(setting, backend), log_dir=log_dir), cpu_load(busy):
        rclpy.init()
        probe = Probe()
        reset = probe.create_client(Trigger, "sim/reset")
        try:
            if not probe.spin_for(60, lambda: bool(probe.task) and probe.instruction.get_subscription_count() > 0):
                raise RuntimeError("nodes did not come up")
            probe.spin_for(1.0)
            bad_input_traffic(probe)
            forgiven = [0]  # the executor's count of liveliness losses regained within the grace

            def on_diagnostics(msg: DiagnosticArray) -> None:
                for st in msg.status:
                    if st.name.endswith("executor"):
                        forgiven[0] = int(next((kv.value for kv in st.values if kv.key == "liveliness_forgiven"), 0))

            probe.create_subscription(DiagnosticArray, TOPIC_DIAGNOSTICS, on_diagnostics, 10)
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
                    "stale_chunks_refused": stale, "forgiven": forgiven[0]}
        finally:
            probe.destroy_node()
            rclpy.shutdown()


def run_kills(setting: str, kills: int, domain: int, log_dir: Path, backend: str) -> list[float]:
    """Time (ms) from SIGKILL of the policy process to the executor's first zero command, `kills` times."""
    use_local_domain(domain)
    times = []
    with Bringup(BRINGUPS["sim"], overrides(setting, backend), log_dir=log_dir) as bringup:
        rclpy.init()
        probe = Probe()
        try:
            if not probe.spin_for(60, lambda: bool(probe.task) and probe.instruction.get_subscription_count() > 0):
                raise RuntimeError("nodes did not come up")
            probe.spin_for(1.0)
            reset = probe.create_client(Trigger, "sim/reset")
            for _ in range(kills):
                probe.instruction.publish(String(data="stop"))
                future = reset.call_async(Trigger.Request())  # a new layout: the arm has to move again
                probe.spin_for(10, future.done)
                probe.spin_for(1.0)
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


LOADS = ("normal", "saturated")


@dataclass
class FalseHaltOptions:
    settings: tuple[str, ...] = option(("0.1", "0.05+0.05", "0.2"), "liveliness settings: lease (s), or lease+grace")
    loads: tuple[str, ...] = option(LOADS, "loads to run each setting under", choices=LOADS)
    minutes: float = option(10.0, "loaded run per setting and load")
    busy: int = option(2, "busy processes of the saturated load")
    kills: int = option(10, "SIGKILLs of the policy per setting (no load)")
    backend: str = option("mole_torch", "policy backend")
    first_domain: int = option(120, "first ROS_DOMAIN_ID (three per setting)")
    out: str = option("docs/results/false_halts", "folder for the table (false_halts.md, .json) and the node logs")
    resume: bool = option(False, "keep the runs already in the folder's false_halts.json, run only the missing ones")


def run(o: FalseHaltOptions) -> list[dict]:
    from tqdm import tqdm

    from molevla_ros.bench.report import header

    out = Path(o.out)
    out.mkdir(parents=True, exist_ok=True)
    saved = out / "false_halts.json"
    rows: list[dict] = json.loads(saved.read_text()) if o.resume and saved.exists() else []
    done = {(r["setting"], r["load"]) for r in rows}

    def save() -> str:  # after every run: a crash later keeps what was measured
        table = header("molevla bench-false-halts", o) + render(rows, o.busy, o.backend)
        (out / "false_halts.json").write_text(json.dumps(rows, indent=2))
        (out / "false_halts.md").write_text(table)
        return table

    runs = [(s, load) for s in o.settings for load in o.loads]
    for i, (setting, load) in enumerate(tqdm(runs, desc="settings x loads", unit="run")):
        if (setting, load) in done:
            continue
        logs = out / "logs" / f"{setting}_{load}"
        rows.append({"setting": setting, "load": load, "kill_ms": [],
                     **run_loaded(setting, o.minutes, o.busy if load == "saturated" else 0, o.first_domain + 3 * i,
                                  logs, o.backend)})
        save()
    for i, s in enumerate(tqdm(o.settings, desc="kills", unit="setting")):
        if o.resume and all(r["kill_ms"] for r in rows if r["setting"] == s):
            continue
        kills = run_kills(s, o.kills, o.first_domain + 3 * len(runs) + i, out / "logs" / f"{s}_kills", o.backend)
        for row in rows:
            if row["setting"] == s:
                row["kill_ms"] = kills
        save()
    print(save())
    return rows


def render(rows: list[dict], busy: int, backend: str) -> str:
    lines = [f"Policy {backend}. Loads: normal (the five nodes and the bad-input traffic only), saturated ({busy} "
             "busy processes on top). Setting: DDS liveliness lease (s) [+ executor grace (s)].", "",
             "| setting | load | minutes | goals (succeeded) | false halts | per min | causes | stale chunks dropped | "
             "liveliness losses forgiven | time to halt after SIGKILL, median / max (ms) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        k = np.array(r["kill_ms"], float)
        kill = (f"{np.nanmedian(k):.0f} / {np.nanmax(k):.0f} (n={len(k)}, missed {int(np.isnan(k).sum())})"
                if len(k) else "not measured yet")
        causes = ", ".join(f"{c} {n}" for c, n in sorted(r["causes"].items(), key=lambda x: -x[1])) or "none"
        lines.append(f"| {r['setting']} | {r['load']} | {r['minutes']:.1f} | {r['goals']} ({r['successes']}) | "
                     f"{r['false_halts']} | {r['false_halts'] / r['minutes']:.2f} | {causes} | "
                     f"{r['stale_chunks_refused']} | {r.get('forgiven', 0)} | {kill} |")
    return "\n".join(lines) + "\n"
