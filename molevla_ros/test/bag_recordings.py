"""rosbag2 recordings for the dataset tests (record/bag_writer.py: rclpy's serialised messages in rosbag2 folders
written by `rosbags`), with a known arm and finger motion."""
from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image as PILImage
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import String

from molevla_ros.nodes.messages import to_stamp
from molevla_ros.record.bag_writer import Rosbag2Writer
from molevla_ros.robot_profile import load

FR3 = load("fr3")


def arm_path(t: np.ndarray) -> np.ndarray:
    """[N, 7] joint positions: a smooth motion around the FR3 start pose; the wrist turns the hand up to 0.3 rad in
    0.1 s about changing axes, where Euler angle deltas and rotation vectors differ."""
    start = np.array(FR3.start_pose)
    wave = np.array([0.25, 0.2, 0.15, 0.2, 0.5, 0.4, 0.8])
    rate = np.array([0.6, 0.6, 0.6, 0.6, 2.0, 2.5, 3.0])
    return start + wave * np.sin(rate * t[:, None] + np.arange(7)) * np.minimum(t[:, None] / 2.0, 1.0)


def finger_width(t: np.ndarray) -> np.ndarray:
    """Open (0.08 m) until 2 s, closing at 0.1 m/s onto a 0.03 m object, settling 4 mm wider on it at 3 s (as
    fingers do when the object turns in the grasp), held, opening again from 4 s."""
    closing = np.clip(0.08 - 0.1 * (t - 2.0), 0.03, 0.08) + np.clip(0.04 * (t - 3.0), 0.0, 0.004)
    return np.where(t < 4.0, closing, np.clip(0.034 + 0.1 * (t - 4.0), 0.034, 0.08))


@dataclass
class Recording:
    """What goes into a bag; times are seconds from `t0`."""
    duration: float = 5.0
    camera_hz: float = 30.0
    joints_hz: float = 100.0
    t0: float = 1000.0
    goals: list[tuple[float, str]] = field(default_factory=lambda: [(0.0, "put the red cube in the tray")])
    compressed: bool = False
    skip_topics: tuple[str, ...] = ()
    camera_gap: tuple[float, float] | None = None  # no frames in this span
    corrupt_joint_states: int = 0  # this many arm messages replaced by garbage bytes
    custom: dict[str, str] = field(default_factory=dict)  # metadata.yaml custom_data

    def camera_times(self) -> np.ndarray:
        t = np.arange(0.0, self.duration, 1.0 / self.camera_hz)
        if self.camera_gap:
            t = t[(t < self.camera_gap[0]) | (t >= self.camera_gap[1])]
        return t


def frame(i: int) -> np.ndarray:
    rgb = np.zeros((48, 64, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = i % 256, np.arange(64)[None, :] * 3, np.arange(48)[:, None] * 5
    return rgb


def write_bag(path: Path, rec: Recording, storage: str = "mcap") -> Path:
    """A rosbag2 folder at `path` with the FR3's topics (franka_ros2 names) over `rec.duration` seconds."""
    messages: list[tuple[float, str, object]] = []
    for i, t in enumerate(rec.camera_times()):
        if rec.compressed:
            buf = io.BytesIO()
            PILImage.fromarray(frame(i)).save(buf, format="PNG")
            msg = CompressedImage(format="png", data=buf.getvalue())
        else:
            msg = Image(height=48, width=64, encoding="rgb8", step=64 * 3, data=frame(i).tobytes())
        msg.header.stamp, msg.header.frame_id = to_stamp(rec.t0 + t), "camera"
        messages.append((t, "/image_raw/compressed" if rec.compressed else "/image_raw", msg))
    times = np.arange(0.0, rec.duration, 1.0 / rec.joints_hz)
    for t, q, w in zip(times, arm_path(times), finger_width(times)):
        arm = JointState(name=list(FR3.arm_joints), position=[float(v) for v in q])
        arm.header.stamp = to_stamp(rec.t0 + t)
        fingers = JointState(name=list(FR3.finger_joints), position=[float(w / 2)] * 2)
        fingers.header.stamp = to_stamp(rec.t0 + t)
        messages += [(t, "/joint_states", arm), (t, "/franka_gripper/joint_states", fingers)]
    messages += [(t, "/molevla/instruction", String(data=text)) for t, text in rec.goals]
    corrupt = rec.corrupt_joint_states
    with Rosbag2Writer(path, storage) as writer:
        for t, topic, msg in sorted(messages, key=lambda m: m[0]):
            if topic in rec.skip_topics:
                continue
            garbage = None
            if topic == "/joint_states" and corrupt and t > 1.0:
                garbage, corrupt = b"\x00\x01\x00\x00garbage", corrupt - 1
            writer.write(topic, msg, int(round((rec.t0 + t) * 1e9)), garbage)
        for key, value in rec.custom.items():
            writer.set_custom(key, value)
    return path
