"""ROS messages <-> the nodes' data: stamps and durations, camera frames, action chunks."""
from __future__ import annotations

import numpy as np
from builtin_interfaces.msg import Duration as DurationMsg
from sensor_msgs.msg import Image
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from molevla_ros.control.chunk_executor import ACTION_NAMES, order_by_names
from molevla_ros.inputs.image_wire import WireImage
from molevla_ros.inputs.images import decode, decode_resized


def now_s(node) -> float:
    """The node's clock (ROS time: use_sim_time applies) in seconds."""
    return node.get_clock().now().nanoseconds * 1e-9


def stamp_s(stamp) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def to_stamp(t: float):
    from builtin_interfaces.msg import Time

    sec = int(np.floor(t))
    return Time(sec=sec, nanosec=int((t - sec) * 1e9))


def rgb_to_msg(rgb: np.ndarray, stamp, frame_id: str) -> Image:
    msg = Image()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.height, msg.width = int(rgb.shape[0]), int(rgb.shape[1])
    msg.encoding = "rgb8"
    msg.step = msg.width * 3
    msg.data = np.ascontiguousarray(rgb, np.uint8).tobytes()
    return msg


def msg_to_rgb(msg: Image | WireImage) -> np.ndarray:
    """(H, W, 3) RGB from a sensor_msgs/Image (or one read from its bytes); raises ImageError on anything
    malformed."""
    return decode(msg.encoding, msg.height, msg.width, msg.step, msg.data)


def msg_to_frame(msg: Image | WireImage, width: int, height: int, filter: str = "bilinear") -> np.ndarray:
    """(height, width, 3) RGB from a camera's sensor_msgs/Image, resized with `filter`: what the camera node
    publishes; ImageError on anything malformed."""
    return decode_resized(msg.encoding, msg.height, msg.width, msg.step, msg.data, width, height, filter)


def chunk_to_msg(chunk: np.ndarray, stamp, frame_id: str, action_dt: float) -> JointTrajectory:
    """An action chunk as a JointTrajectory: one "joint" per action dimension, one point per action step."""
    msg = JointTrajectory()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.joint_names = list(ACTION_NAMES)
    for i, row in enumerate(np.asarray(chunk, float)):
        t = i * action_dt
        msg.points.append(JointTrajectoryPoint(positions=row.tolist(), time_from_start=to_duration(t)))
    return msg


def to_duration(t: float) -> DurationMsg:
    ns = int(round(t * 1e9))
    return DurationMsg(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def msg_to_chunk(msg: JointTrajectory) -> tuple[np.ndarray, list[float], str | None]:
    """(N, 7) actions in ACTION_NAMES order, mapped by the message's joint_names, the points' time_from_start
    (s), and why the message must be refused (None if it may go on to validation)."""
    times = [pt.time_from_start.sec + pt.time_from_start.nanosec * 1e-9 for pt in msg.points]
    if not msg.points:
        return np.zeros((0, len(ACTION_NAMES))), times, "chunk has no points"
    try:
        rows = np.array([pt.positions for pt in msg.points], dtype=float).reshape(len(msg.points), -1)
    except ValueError:
        return np.zeros((0, len(ACTION_NAMES))), times, "chunk points have different lengths"
    actions, problem = order_by_names(list(msg.joint_names), rows)
    return actions, times, problem
