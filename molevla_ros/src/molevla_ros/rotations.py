"""Rotation conventions in one place (pure numpy): rotation vectors (axis x angle), quaternions [x y z w], and the
Euler angles of action chunks, which are static-axes x-y-z (transforms3d's 'sxyz': R = Rz(yaw) Ry(pitch) Rx(roll)),
the convention CogACT, OpenVLA and the Open X-Embodiment datasets use for their roll / pitch / yaw deltas."""
from __future__ import annotations

import numpy as np


def rotvec_to_matrix(r: np.ndarray) -> np.ndarray:
    """Rodrigues: rotation vector [rad] -> 3x3 matrix."""
    angle = float(np.linalg.norm(r))
    if angle < 1e-12:
        return np.eye(3)
    k = np.asarray(r, float) / angle
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(angle) * kx + (1 - np.cos(angle)) * kx @ kx


def matrix_to_quaternion(m: np.ndarray) -> np.ndarray:
    """3x3 rotation -> quaternion [x, y, z, w]."""
    w = np.sqrt(max(0.0, 1 + m[0, 0] + m[1, 1] + m[2, 2])) / 2
    x = np.copysign(np.sqrt(max(0.0, 1 + m[0, 0] - m[1, 1] - m[2, 2])) / 2, m[2, 1] - m[1, 2])
    y = np.copysign(np.sqrt(max(0.0, 1 - m[0, 0] + m[1, 1] - m[2, 2])) / 2, m[0, 2] - m[2, 0])
    z = np.copysign(np.sqrt(max(0.0, 1 - m[0, 0] - m[1, 1] + m[2, 2])) / 2, m[1, 0] - m[0, 1])
    return np.array([x, y, z, w])


def matrix_to_rotvec(m: np.ndarray) -> np.ndarray:
    """3x3 rotation -> rotation vector with angle in [0, pi]."""
    x, y, z, w = matrix_to_quaternion(m)
    v = np.array([x, y, z])
    s = float(np.linalg.norm(v))
    if s < 1e-12:
        return np.zeros(3)
    return v / s * 2.0 * np.arctan2(s, w) if w >= 0 else -v / s * 2.0 * np.arctan2(s, -w)


def euler_to_matrix(rpy: np.ndarray) -> np.ndarray:
    """Static-axes x-y-z Euler angles (roll, pitch, yaw) -> 3x3 matrix Rz(yaw) Ry(pitch) Rx(roll)."""
    r, p, y = (float(a) for a in rpy)
    cr, sr, cp, sp, cy, sy = np.cos(r), np.sin(r), np.cos(p), np.sin(p), np.cos(y), np.sin(y)
    return np.array([[cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
                     [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
                     [-sp, cp * sr, cp * cr]])


def euler_to_rotvec(rpy: np.ndarray) -> np.ndarray:
    """Rows of (roll, pitch, yaw) Euler deltas [N, 3] -> the same rotations as rotation vectors [N, 3]."""
    rpy = np.asarray(rpy, float).reshape(-1, 3)
    return np.stack([matrix_to_rotvec(euler_to_matrix(row)) for row in rpy]) if len(rpy) else np.zeros((0, 3))

