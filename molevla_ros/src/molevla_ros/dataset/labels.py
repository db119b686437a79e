"""Training labels from recorded motion, in the model's action convention (pure numpy, no ROS).

A row is one camera frame. Its action is what the end effector did over the next `action_dt` seconds: the
base-frame position delta, the base-frame rotation delta R(t + dt) R(t)^T as static x-y-z Euler angles (the
convention the executor turns back into an angular velocity), and the gripper command (1 open, 0 close) read from
the fingers' motion. Joint states are interpolated linearly between the recorded messages that bracket each time,
so the deltas span exactly `action_dt` whatever the camera's timing.
"""
from __future__ import annotations

import numpy as np

from molevla_ros import franka_kinematics as kin
from molevla_ros.rotations import matrix_to_euler

# m the fingers must travel (summed over steps) before the gripper command reads as changed: more than the few
# millimetres fingers settle by on a grasped object, less than any real opening or closing.
GRIPPER_TRAVEL = 0.008


def latest_at(times: np.ndarray, t: np.ndarray, max_age: float) -> np.ndarray:
    """Index of the latest of sorted `times` at or before each of `t`, or -1 where none is within `max_age`."""
    i = np.searchsorted(times, t, side="right") - 1
    ok = (i >= 0) & (t - times[np.clip(i, 0, None)] <= max_age)
    return np.where(ok, i, -1)


def interpolate(times: np.ndarray, values: np.ndarray, t: np.ndarray, max_gap: float) -> tuple[np.ndarray, np.ndarray]:
    """(values at `t` [len(t), D] linearly interpolated between the recorded samples that bracket each time, a
    mask of where that was possible: inside the recording and the bracketing samples at most `max_gap` apart)."""
    hi = np.clip(np.searchsorted(times, t, side="left"), 1, len(times) - 1)
    lo = hi - 1
    span = times[hi] - times[lo]
    ok = (t >= times[0]) & (t <= times[-1]) & (span <= max_gap)
    w = np.where(span > 0, (t - times[lo]) / np.where(span > 0, span, 1.0), 0.0)[:, None]
    return values[lo] * (1 - w) + values[hi] * w, ok


def ee_poses(q_arm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(positions [N, 3], rotations [N, 3, 3]) of the Franka Hand's TCP in the base frame, by forward kinematics."""
    poses = np.stack([kin.forward(q) for q in q_arm]) if len(q_arm) else np.zeros((0, 4, 4))
    return poses[:, :3, 3], poses[:, :3, :3]


def pose_deltas(p0: np.ndarray, r0: np.ndarray, p1: np.ndarray, r1: np.ndarray) -> np.ndarray:
    """[N, 6]: base-frame position deltas p1 - p0 and rotation deltas R1 R0^T as static x-y-z Euler angles."""
    rel = r1 @ np.transpose(r0, (0, 2, 1))
    euler = np.stack([matrix_to_euler(m) for m in rel]) if len(rel) else np.zeros((0, 3))
    return np.concatenate([p1 - p0, euler], axis=1)


def gripper_commands(width_now: np.ndarray, width_next: np.ndarray, open_width: float) -> np.ndarray:
    """The gripper command per row (1 open, 0 close), read from the fingers' travel with hysteresis: the command
    turns to close once the width over the next action_dt has dropped GRIPPER_TRAVEL below its largest value since
    the last change, and to open once it has risen that much above its smallest. Fingers resting on a grasped
    object, or settling on it by a few millimetres, keep the close command. Before any travel, fingers wider than
    half of `open_width` count as open."""
    out = np.zeros(len(width_now), np.float32)
    state = float(len(width_now) and width_now[0] > open_width / 2)
    extreme = float(width_now[0]) if len(width_now) else 0.0  # widest since the last change (open), or narrowest
    for i, w in enumerate(np.asarray(width_next, float)):
        extreme = max(extreme, w) if state else min(extreme, w)
        if state and w < extreme - GRIPPER_TRAVEL or not state and w > extreme + GRIPPER_TRAVEL:
            state, extreme = 1.0 - state, w
        out[i] = state
    return out
