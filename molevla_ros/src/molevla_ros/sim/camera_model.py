"""The simulated camera as a pinhole model: intrinsics (sensor_msgs/CameraInfo K) and the pose of its optical
frame (REP 103: z forward, x right, y down) in the robot base frame. A real camera placed with this pose and
these intrinsics sees the scene as the training camera did.
"""
from __future__ import annotations

import numpy as np


def intrinsics(width: int, height: int, fov_y_deg: float) -> np.ndarray:
    """3x3 K of a camera with this vertical field of view and square pixels (the renderer's projection).
    Pixel centres at integer coordinates, as image_geometry expects: the principal point is ((w-1)/2, (h-1)/2)."""
    f = 0.5 * height / np.tan(np.radians(fov_y_deg) / 2)
    return np.array([[f, 0.0, (width - 1) / 2], [0.0, f, (height - 1) / 2], [0.0, 0.0, 1.0]])


def optical_pose(eye: tuple[float, float, float], target: tuple[float, float, float],
                 up: tuple[float, float, float] = (0.0, 0.0, 1.0)) -> tuple[np.ndarray, np.ndarray]:
    """(position, rotation matrix) of the optical frame in the base frame for a camera at `eye` looking at
    `target`: the rotation's columns are the optical x (right), y (down) and z (forward) axes."""
    forward = np.subtract(target, eye, dtype=float)
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, up)
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    return np.asarray(eye, float), np.stack([right, down, forward], axis=1)


def quaternion_xyzw(r: np.ndarray) -> np.ndarray:
    """The unit quaternion (x, y, z, w) of a rotation matrix."""
    w = np.sqrt(max(0.0, 1.0 + np.trace(r))) / 2
    x = np.copysign(np.sqrt(max(0.0, 1.0 + r[0, 0] - r[1, 1] - r[2, 2])) / 2, r[2, 1] - r[1, 2])
    y = np.copysign(np.sqrt(max(0.0, 1.0 - r[0, 0] + r[1, 1] - r[2, 2])) / 2, r[0, 2] - r[2, 0])
    z = np.copysign(np.sqrt(max(0.0, 1.0 - r[0, 0] - r[1, 1] + r[2, 2])) / 2, r[1, 0] - r[0, 1])
    return np.array([x, y, z, w])


def project(k: np.ndarray, position: np.ndarray, rotation: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Pixel coordinates (N, 2) of base-frame points (N, 3) seen by the camera at (position, rotation)."""
    cam = (np.asarray(points, float) - position) @ rotation  # base -> optical frame
    uvw = cam @ k.T
    return uvw[:, :2] / uvw[:, 2:3]
