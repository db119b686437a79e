"""The main demo: bring up the simulated Franka and all nodes, send a language goal, report the result."""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticStatus
from PIL import Image as PILImage, ImageDraw
from rclpy.node import Node
from sensor_msgs.msg import Image
from std_msgs.msg import String

from molevla_ros.bringup import BRINGUPS, Bringup, apply_model_hints, ros_environment
from molevla_ros.paths import DEFAULT_MODEL
from molevla_ros.config_cli import option
from molevla_ros.nodes.messages import msg_to_rgb
from molevla_ros.nodes.process import spin_until
from molevla_ros.nodes.qos import LATCHED_QOS, RELIABLE_QOS, SENSOR_QOS
from molevla_ros.topics import TOPIC_IMAGE, TOPIC_INSTRUCTION, TOPIC_POLICY_STATS, TOPIC_SIM_TASK, TOPIC_STATUS
from molevla_ros.model.language import FAMILIES

FINAL_STATES = ("succeeded", "failed", "stopped")


class DemoDriver(Node):
    """The operator's side: reads the scene's goal, sends it, watches status, stats and frames."""

    def __init__(self) -> None:
        super().__init__("molevla_demo")
        self.instruction_pub = self.create_publisher(String, TOPIC_INSTRUCTION, RELIABLE_QOS)
        self.task: str | None = None
        self.statuses: list[str] = []
        self.latencies: list[float] = []
        self.layers_kept: list[int] = []
        self.stamps: list[float] = []
        self.frames: list[np.ndarray] = []
        self.create_subscription(String, TOPIC_SIM_TASK, lambda m: setattr(self, "task", m.data), LATCHED_QOS)
        self.create_subscription(String, TOPIC_STATUS, lambda m: self.statuses.append(m.data), RELIABLE_QOS)
        self.create_subscription(DiagnosticStatus, TOPIC_POLICY_STATS, self.on_stats, 10)
        self.create_subscription(Image, TOPIC_IMAGE, self.on_frame, SENSOR_QOS)
        self.recording = False
        self.last_frame = 0.0

    def on_stats(self, msg: DiagnosticStatus) -> None:
        values = {kv.key: kv.value for kv in msg.values}
        self.latencies.append(float(values["latency_ms"]))
        self.stamps.append(time.monotonic())
        if "layers_kept" in values:
            self.layers_kept.append(int(values["layers_kept"]))

    def on_frame(self, msg: Image) -> None:
        if self.recording and time.monotonic() - self.last_frame >= 0.25:
            self.last_frame = time.monotonic()
            self.frames.append(msg_to_rgb(msg).copy())


@dataclass
class DemoOptions:
    task: str = option("pick_place", "task family of the goal", choices=FAMILIES)
    seed: int = option(1000, "scene layout seed (1000 on: layouts no shipped model was trained on; the evaluation's)")
    backend: str = option("mole_torch", "policy backend: mole_torch, mole_onnx, mole_tensorrt, or scripted_expert (the "
                          "simulator's ground-truth controller, not a learned policy)")
    model: str = option(DEFAULT_MODEL, "model folder for the mole_* backends: a shipped name (models/) or a path")
    goal: str | None = option(None, "the goal in your own words instead of the scene's sentence (name the scene's "
                              "cube colour, then the target's for push: success is judged only for the scene's task)")
    timeout: float = option(60.0, "seconds to wait for a final status after the goal")
    out: str = option("results/demo", "folder for result.json, the episode strip and the node logs")


def run_demo(o: DemoOptions) -> dict:
    """Bring up the sim profile, send one goal, wait for its final status; return (and save) the result."""
    task_family, seed, backend, timeout, out_dir = o.task, o.seed, o.backend, o.timeout, Path(o.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.update(ros_environment())
    model = None if backend == "scripted_expert" else o.model  # the expert reads no model folder
    policy = {"backend": backend, **({"model_dir": model} if model else {})}
    overrides = {"sim": {"task_family": task_family, "seed": seed}, "policy": policy}
    apply_model_hints("sim", overrides)  # the model's own settings, as the launch applies them
    print(f"starting nodes: {', '.join(BRINGUPS['sim'])} (logs in {out_dir}/logs)")
    (out_dir / "logs").mkdir(exist_ok=True)
    with Bringup(BRINGUPS["sim"], overrides, log_dir=out_dir / "logs"):
        rclpy.init()
        node = DemoDriver()
        try:
            if not spin_until(node, 60.0, lambda: node.task is not None
                              and node.instruction_pub.get_subscription_count() > 0
                              and node.count_publishers(TOPIC_IMAGE) > 0):
                raise RuntimeError("nodes did not come up within 60 s; see the logs")
            if o.goal:
                print(f"scene goal: '{node.task}'")
                node.task = o.goal
            print(f"goal: '{node.task}'  (policy: {describe(backend, model)})")
            node.recording = True
            node.instruction_pub.publish(String(data=node.task))
            t0 = time.monotonic()
            spin_until(node, timeout, lambda: any(s.split(":")[0] in FINAL_STATES for s in node.statuses))
            elapsed = time.monotonic() - t0
        finally:
            node.destroy_node()
            rclpy.try_shutdown()
    final = next((s for s in reversed(node.statuses) if s.split(":")[0] in FINAL_STATES), "timeout: no final status")
    lat = np.array(node.latencies) if node.latencies else np.zeros(1)
    hz = (len(node.stamps) - 1) / (node.stamps[-1] - node.stamps[0]) if len(node.stamps) > 1 else 0.0
    result = {"goal": node.task, "backend": backend, "model": model,
              "success": final.startswith("succeeded"), "final_status": final,
              "seconds": round(elapsed, 2), "policy_steps": len(node.latencies), "policy_hz": round(hz, 2),
              "step_latency_ms_mean": round(float(lat.mean()), 3),
              "step_latency_ms_p99": round(float(np.percentile(lat, 99)), 3)}
    if node.layers_kept:
        result["layers_kept_mean"] = round(float(np.mean(node.layers_kept)), 2)
    strip = out_dir / "episode_strip.png"
    save_strip(node.frames, strip, f"{node.task}  ->  {final}")
    result["strip"] = str(strip)
    (out_dir / "result.json").write_text(json.dumps(result, indent=2))
    return result


def describe(backend: str, model: str | None) -> str:
    """The policy a demo runs, in words: the expert (no model) is labelled as what it is."""
    if model is None:
        return "scripted expert (reads the simulator's ground truth; not a learned policy)"
    return f"{backend}, model {model}"


def save_strip(frames: list[np.ndarray], path: Path, caption: str, n: int = 8) -> None:
    """Up to n evenly spaced frames side by side, with a caption."""
    if not frames:
        return
    pick = [frames[i] for i in np.linspace(0, len(frames) - 1, min(n, len(frames))).astype(int)]
    h, w = pick[0].shape[:2]
    canvas = PILImage.new("RGB", (w * len(pick), h + 24), "white")
    for i, f in enumerate(pick):
        canvas.paste(PILImage.fromarray(f), (i * w, 24))
    ImageDraw.Draw(canvas).text((6, 6), caption, fill="black")
    canvas.save(path)
