"""Benchmark of the ROS plumbing: image in -> chunk out, and the executor's command rate.

Starts the real camera, policy and executor node processes, feeds them 640x480 bgr8 frames at 30 Hz
(plus joint states and the simulator's ground-truth poses, so the scripted expert can act), and
measures on the receiving side:

- camera stage: frame publish -> resized frame received (decode + resize + two DDS hops)
- end to end: frame publish -> action chunk received
- overhead = end to end - model time (backend latency) - frame wait (frame age when the policy step
  began: the timer phase, not work), i.e. what the nodes and transport add
- executor: interval between TwistStamped commands (rate and jitter against 1 / rate_hz)

Configurations, one run each, side by side: the policy's `trigger` timer vs frame with the shipped Fast DDS
profile, Fast DDS defaults (trigger frame), the policy reading the raw frames itself (`image_source raw`: no
camera node, one image hop; there is then no camera stage to time), and that with `realtime_priority` 50 for the
policy, the executor and this harness (which stands for the camera driver and the chunk's receiver).
"""
from __future__ import annotations

import json
import multiprocessing
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticStatus
from geometry_msgs.msg import TwistStamped
from rclpy.node import Node
from rclpy.serialization import serialize_message
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import String
from trajectory_msgs.msg import JointTrajectory
from visualization_msgs.msg import MarkerArray

from molevla_ros.testing.fake_robot import fake_robot_msgs
from molevla_ros.bringup import Bringup, ros_environment
from molevla_ros.config_cli import option
from molevla_ros.inputs.image_wire import read_image, write_stamp
from molevla_ros.nodes.messages import rgb_to_msg, stamp_s
from molevla_ros.nodes.process import make_executor, set_realtime_priority
from molevla_ros.nodes.qos import LATCHED_QOS, SENSOR_QOS
from molevla_ros.topics import (TOPIC_CHUNK, TOPIC_GOAL, TOPIC_IMAGE, TOPIC_IMAGE_RAW, TOPIC_POLICY_STATS,
                                TOPIC_SIM_STATE, image_topic)
from molevla_ros.sim.scene import SIM_ROBOT


RT_PRIORITY = 50  # raw_rt: SCHED_FIFO priority (ros2_control's controller manager uses 50)


class Feeder(Node):
    def __init__(self, fps: float, width: int, height: int) -> None:
        super().__init__("bench_feeder")
        rgb = np.random.default_rng(0).integers(0, 255, (height, width, 3), dtype=np.uint8)
        frame = rgb_to_msg(rgb[:, :, ::-1], self.get_clock().now().to_msg(), "bench_camera")
        frame.encoding = "bgr8"
        # Serialized once; each frame only gets its stamp written in (write_stamp), as a C++ camera driver publishes
        # without rclpy's 1.4 ms Python conversion of a 640x480 frame.
        self.frame = bytearray(serialize_message(frame))
        assert read_image(self.frame).frame_id == "bench_camera"
        self.image_pub = self.create_publisher(Image, TOPIC_IMAGE_RAW, SENSOR_QOS)
        self.joint_pub = self.create_publisher(JointState, SIM_ROBOT.joint_states, 10)
        self.state_pub = self.create_publisher(MarkerArray, TOPIC_SIM_STATE, 5)
        self.goal_pub = self.create_publisher(String, TOPIC_GOAL, LATCHED_QOS)
        self.frames_rx: list[float] = []  # camera-stage latency, s
        self.chunks_rx: dict[float, float] = {}  # obs stamp -> end-to-end latency, s
        self.stats: dict[float, tuple[float, ...]] = {}  # obs stamp -> (model, frame wait, frame age, prep) s
        self.twist_times: list[float] = []
        self.create_subscription(Image, TOPIC_IMAGE, self.on_frame, SENSOR_QOS)
        self.create_subscription(JointTrajectory, TOPIC_CHUNK, self.on_chunk, 10)
        self.create_subscription(DiagnosticStatus, TOPIC_POLICY_STATS, self.on_stats, 10)
        self.create_subscription(TwistStamped, SIM_ROBOT.twist_topic,
                                 lambda _: self.twist_times.append(time.monotonic()), 50)
        self.create_timer(1.0 / fps, self.publish_frame)
        self.create_timer(0.02, self.publish_robot)  # 50 Hz joint states, like the sim
        self.sent = 0

    def now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def publish_frame(self) -> None:
        stamp = self.get_clock().now().to_msg()
        write_stamp(self.frame, stamp.sec, stamp.nanosec)
        self.image_pub.publish(bytes(self.frame))
        self.sent += 1

    def publish_robot(self) -> None:
        js, markers = fake_robot_msgs(self.get_clock().now().to_msg())
        self.joint_pub.publish(js)
        self.state_pub.publish(markers)

    def on_frame(self, msg: Image) -> None:
        self.frames_rx.append(self.now() - stamp_s(msg.header.stamp))

    def on_chunk(self, msg: JointTrajectory) -> None:
        self.chunks_rx[round(stamp_s(msg.header.stamp), 6)] = self.now() - stamp_s(msg.header.stamp)

    def on_stats(self, msg: DiagnosticStatus) -> None:
        v = {kv.key: kv.value for kv in msg.values}
        self.stats[round(float(v["obs_stamp"]), 6)] = tuple(  # (a baseline's nodes may not report all of them)
            float(v.get(k, "nan")) / 1e3 for k in ("latency_ms", "frame_wait_ms", "frame_age_ms", "prep_ms"))


def _pct(x: np.ndarray) -> tuple[float, float, float]:
    if len(x) == 0:
        return float("nan"), float("nan"), float("nan")
    return float(np.percentile(x, 50)), float(np.percentile(x, 99)), float(x.max())


@dataclass
class LoopBenchOptions:
    seconds: float = option(20.0, "measured seconds per transport configuration")
    fps: float = option(30.0, "camera frame rate")
    width: int = option(640, "camera image width")
    height: int = option(480, "camera image height")
    control_hz: float = option(30.0, "policy step rate (trigger frame: at most)")
    executor_hz: float = option(50.0, "executor command rate")
    configs: str = option("timer,frame,defaults,raw,raw_rt", "configurations to run, comma-separated: timer (profile, "
                          "trigger timer), frame (profile, trigger frame), defaults (Fast DDS defaults, trigger "
                          "frame), raw (profile, trigger frame, the policy reads raw frames), raw_rt (raw, and "
                          "SCHED_FIFO priority 50 for the policy, the executor and the harness: needs root or rtprio)")
    baseline_src: str = option("", "also run every configuration with the nodes from this source folder (e.g. "
                               "molevla_ros/src of a git worktree at an earlier commit), same harness, alternating")
    out: str = option("docs/results/bench_loop.json", "JSON file for the results")


def run(o: LoopBenchOptions) -> dict:
    """Measure each configuration (trigger x Fast DDS profile); print them side by side, save JSON."""
    seconds, fps, width, height, control_hz, executor_hz = o.seconds, o.fps, o.width, o.height, o.control_hz, \
        o.executor_hz
    out = Path(o.out)
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    profile = ros_environment().get("FASTRTPS_DEFAULT_PROFILES_FILE", os.environ.get("FASTRTPS_DEFAULT_PROFILES_FILE"))
    results = {}
    shipped, defaults = {"FASTRTPS_DEFAULT_PROFILES_FILE": profile}, {"FASTRTPS_DEFAULT_PROFILES_FILE": ""}
    configs = {"timer": ("profile, trigger timer", shipped, "timer", "camera", 0),
               "frame": ("profile, trigger frame", shipped, "frame", "camera", 0),
               "defaults": ("Fast DDS defaults, frame", defaults, "frame", "camera", 0),
               "raw": ("profile, frame, raw (1 hop)", shipped, "frame", "raw", 0),
               "raw_rt": ("profile, frame, raw, realtime 50", shipped, "frame", "raw", RT_PRIORITY)}
    chosen = [c.strip() for c in o.configs.split(",") if c.strip()]
    unknown = set(chosen) - set(configs)
    if unknown or not chosen:
        raise ValueError(f"unknown configurations {sorted(unknown)}; choose from {sorted(configs)}")
    sources = [("", "")] + ([(" [baseline]", str(Path(o.baseline_src).resolve()))] if o.baseline_src else [])
    for (label, env, trigger, source, priority), (tag, src) in ((configs[c], s) for c in chosen for s in sources):
        print(f"\n=== {label}{tag} ===", flush=True)
        # A fresh interpreter per configuration: Fast DDS reads its profile once per process.
        os.environ.pop("FASTRTPS_DEFAULT_PROFILES_FILE", None)
        os.environ.update({k: v for k, v in env.items() if v})
        node_env = {**env, "PYTHONPATH": src} if src else env  # the nodes' code; the harness stays this one
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(1) as pool:
            results[label + tag] = pool.apply(measure, (seconds, fps, width, height, control_hz, executor_hz,
                                                        node_env, trigger, source, priority))
    print(f"\n{'configuration':<40} {'frames -> chunks':>17} {'e2e p50/p99 ms':>15} {'frame wait p50/p99':>19} "
          f"{'overhead p50/p99':>17}")
    for label, r in results.items():
        e2e, wait, over = (r["ms"][k] for k in ("end to end (frame publish -> chunk)",
                                                "of which frame wait (timer phase)",
                                                "overhead (end to end - model - wait)"))
        print(f"{label:<40} {r['frames_stepped']:>16.0%} {e2e['p50']:>7.2f}/{e2e['p99']:<7.2f} "
              f"{wait['p50']:>10.2f}/{wait['p99']:<8.2f} {over['p50']:>8.2f}/{over['p99']:<8.2f}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    return results


def measure(seconds: float, fps: float, width: int, height: int, control_hz: float, executor_hz: float,
            env: dict[str, str], trigger: str, image_source: str, priority: int = 0) -> dict:
    # The scripted expert (~0.2 ms) keeps model time out of the way: this measures the plumbing.
    overrides = {"policy": {"control_hz": control_hz, "backend": "scripted_expert", "trigger": trigger,
                            "image_source": image_source, "realtime_priority": priority},
                 "executor": {"rate_hz": executor_hz, "image_source": image_source, "realtime_priority": priority}}
    nodes = ["policy", "executor"] if image_source == "raw" else ["camera", "policy", "executor"]
    with Bringup(nodes, overrides, env=env):
        rclpy.init()
        node = Feeder(fps, width, height)
        executor = make_executor(events=True)  # the harness's own callback overhead as small as the nodes'
        executor.add_node(node)
        problem = set_realtime_priority(priority)  # the harness plays the camera driver and the chunk's receiver
        if problem:
            raise RuntimeError(f"harness: {problem}")
        try:
            end = time.monotonic() + 60
            while node.image_pub.get_subscription_count() == 0 or \
                    node.count_subscribers(image_topic(image_source)) == 0:
                executor.spin_once(timeout_sec=0.05)
                if time.monotonic() > end:
                    raise RuntimeError("nodes did not come up")
            node.goal_pub.publish(String(data="touch the red cube"))
            warm = time.monotonic() + 2.0
            while time.monotonic() < warm:
                executor.spin_once(timeout_sec=0.01)
            for store in (node.frames_rx, node.chunks_rx, node.stats, node.twist_times):
                store.clear()
            node.sent = 0
            end = time.monotonic() + seconds
            print(f"measuring for {seconds:.0f} s ...")
            while time.monotonic() < end:
                executor.spin_once(timeout_sec=0.01)
        finally:
            executor.shutdown()
            node.destroy_node()
            rclpy.try_shutdown()
    keys = sorted(set(node.chunks_rx) & set(node.stats))
    e2e = np.array([node.chunks_rx[k] for k in keys]) * 1e3
    model = np.array([node.stats[k][0] for k in keys]) * 1e3
    wait = np.array([node.stats[k][1] for k in keys]) * 1e3
    age = np.array([node.stats[k][2] for k in keys]) * 1e3
    prep = np.array([node.stats[k][3] for k in keys]) * 1e3
    cam = np.array(node.frames_rx) * 1e3
    dt = np.diff(node.twist_times) * 1e3
    period = 1e3 / executor_hz
    rows = {
        "camera stage (publish -> resized frame)": _pct(cam),
        "end to end (frame publish -> chunk)": _pct(e2e),
        "  of which model time": _pct(model),
        "  of which frame wait (timer phase)": _pct(wait),
        "overhead (end to end - model - wait)": _pct(e2e - model - wait),
        "  frame in (publish -> policy callback)": _pct(age),
        "  inputs (checks; raw: decode + resize)": _pct(prep),
        "  chunk out (the rest: publish -> received)": _pct(e2e - model - wait - age - prep),
        f"executor command interval (target {period:.0f} ms)": _pct(dt),
        "executor jitter |interval - target|": _pct(np.abs(dt - period)),
    }
    print(f"\n{width}x{height} bgr8 at {fps:.0f} Hz for {seconds:.0f} s; policy {control_hz:.0f} Hz; "
          f"{node.sent} frames sent, {len(cam)} resized frames and {len(keys)} chunks received")
    print(f"{'stage':<52} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for name, (p50, p99, mx) in rows.items():
        print(f"{name:<52} {p50:>8.2f} {p99:>8.2f} {mx:>8.2f}")
    rate = len(node.twist_times) / (node.twist_times[-1] - node.twist_times[0]) if len(node.twist_times) > 1 else 0
    print(f"executor command rate: {rate:.1f} Hz (target {executor_hz:.0f})")
    return {"config": {"seconds": seconds, "fps": fps, "width": width, "height": height, "control_hz": control_hz,
                       "executor_hz": executor_hz, "trigger": trigger, "realtime_priority": priority,
                       "frames_sent": node.sent, "chunks": len(keys)},
            "frames_stepped": len(keys) / max(node.sent, 1),
            "ms": {k.strip(): dict(zip(("p50", "p99", "max"), v)) for k, v in rows.items()},
            "executor_rate_hz": rate}
