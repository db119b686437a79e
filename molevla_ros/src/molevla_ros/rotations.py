"""Rotation conventions in one place (pure numpy): rotation vectors (axis x angle), quaternions [x y z w], and the
Euler angles of action chunks, which are static-axes x-y-z (transforms3d's 'sxyz': R = Rz(yaw) Ry(pitch) Rx(roll)),
the convention CogACT, OpenVLA and the Open X-Embodiment datasets use for their roll / pitch / yaw deltas."""
from __future__ import annotations

import numpy as np


def rotvec_to_matrix(r: np.ndarray) -> np.ndarray:
    """Rodrigues: rotation vector [rad] -> 3x3 matrix (float64 whatever the input's precision)."""
    r = np.asarray(r, dtype=np.float64)
    angle = float(np.linalg.norm(r))
    if angle < 1e-12:
        return np.eye(3)
    k = r / angle
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(angle) * kx + (1 - np.cos(angle)) * kx @ kx


def matrix_to_quaternion(m: np.ndarray) -> np.ndarray:
    """3x3 rotation -> unit quaternion [x, y, z, w] with w >= 0. The matrix's entries give 4 q q^T (its diagonal from
    the diagonal, the rest from sums and differences of mirrored entries); the row of the largest diagonal entry,
    over twice its root, is q: half turns (symmetric matrices) keep their axis and small rotations their precision."""
    m = np.asarray(m, dtype=np.float64)
    d = [1 + m[0, 0] - m[1, 1] - m[2, 2], 1 - m[0, 0] + m[1, 1] - m[2, 2], 1 - m[0, 0] - m[1, 1] + m[2, 2],
         1 + m[0, 0] + m[1, 1] + m[2, 2]]
    xy, xz, yz = m[0, 1] + m[1, 0], m[0, 2] + m[2, 0], m[1, 2] + m[2, 1]
    wx, wy, wz = m[2, 1] - m[1, 2], m[0, 2] - m[2, 0], m[1, 0] - m[0, 1]
    outer = np.array([[d[0], xy, xz, wx], [xy, d[1], yz, wy], [xz, yz, d[2], wz], [wx, wy, wz, d[3]]])  # 4 q q^T
    i = int(np.argmax(d))
    q = outer[i] / np.linalg.norm(outer[i])
    return -q if q[3] < 0 else q


def matrix_to_rotvec(m: np.ndarray) -> np.ndarray:
    """3x3 rotation -> rotation vector with angle in [0, pi]."""
    q = matrix_to_quaternion(m)
    s = float(np.linalg.norm(q[:3]))
    if s == 0.0:
        return np.zeros(3)
    return q[:3] / s * 2.0 * np.arctan2(s, q[3])


def euler_to_matrix(rpy: np.ndarray) -> np.ndarray:
    """Static-axes x-y-z Euler angles (roll, pitch, yaw) -> 3x3 matrix Rz(yaw) Ry(pitch) Rx(roll)."""
    r, p, y = (float(a) for a in rpy)
    cr, sr, cp, sp, cy, sy = np.cos(r), np.sin(r), np.cos(p), np.sin(p), np.cos(y), np.sin(y)
    return np.array([[cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
                     [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
                     [-sp, cp * sr, cp * cr]])


def euler_to_rotvec(rpy: np.ndarray) -> np.ndarray:
    """Rows of (roll, pitch, yaw) Euler deltas [N, 3] -> the same rotations as rotation vectors [N, 3]."""
    rpy = np.asarray(rpy).reshape(-1, 3)
    return np.stack([matrix_to_rotvec(euler_to_matrix(row)) for row in rpy]) if len(rpy) else np.zeros((0, 3))



def matrix_to_euler(m: np.ndarray) -> np.ndarray:
    """3x3 rotation -> static-axes x-y-z Euler angles (roll, pitch, yaw), pitch in [-pi/2, pi/2]; the inverse of
    `euler_to_matrix` (at pitch +-pi/2 roll and yaw share one axis: roll is set to 0)."""
    m = np.asarray(m, dtype=np.float64)
    cp = float(np.hypot(m[0, 0], m[1, 0]))
    if cp > 1e-9:
        return np.array([np.arctan2(m[2, 1], m[2, 2]), np.arctan2(-m[2, 0], cp), np.arctan2(m[1, 0], m[0, 0])])
    return np.array([0.0, np.arctan2(-m[2, 0], cp), np.arctan2(-m[0, 1], m[1, 1])])
