"""Franka Panda / FR3 arm kinematics from the published (modified, Craig) DH parameters: forward kinematics,
the geometric Jacobian and damped least-squares velocity IK. Pure numpy, no ROS.

Used to turn the executor's Cartesian twist into joint motion for a joint trajectory controller. Joint names and
limits are the robot profile's (robots/*.yaml).
"""
from __future__ import annotations

import numpy as np

# (a [m], d [m], alpha [rad]) per joint, then the flange (Franka's robot and interface specifications).
DH = [(0.0, 0.333, 0.0), (0.0, 0.0, -np.pi / 2), (0.0, 0.316, np.pi / 2), (0.0825, 0.0, np.pi / 2),
      (-0.0825, 0.384, -np.pi / 2), (0.0, 0.0, np.pi / 2), (0.088, 0.0, np.pi / 2)]
FLANGE_D = 0.107
TCP_OFFSET = 0.1034  # flange -> fingertip centre of the Franka Hand, along the flange z axis
HAND_YAW = -np.pi / 4  # the Franka Hand (and its TCP frame) is turned -45 deg about the flange z axis


def _dh(a: float, d: float, alpha: float, theta: float) -> np.ndarray:
    ca, sa, ct, st = np.cos(alpha), np.sin(alpha), np.cos(theta), np.sin(theta)
    return np.array([[ct, -st, 0, a], [st * ca, ct * ca, -sa, -d * sa], [st * sa, ct * sa, ca, d * ca], [0, 0, 0, 1]])


def frames(q: np.ndarray, tcp: bool = True) -> list[np.ndarray]:
    """Base-frame transforms of joints 1..7 (their rotation axes are the z axes), then the end frame."""
    t, out = np.eye(4), []
    for (a, d, alpha), qi in zip(DH, q):
        t = t @ _dh(a, d, alpha, qi)
        out.append(t)
    out.append(t @ _dh(0.0, FLANGE_D + (TCP_OFFSET if tcp else 0.0), 0.0, HAND_YAW if tcp else 0.0))
    return out


def forward(q: np.ndarray, tcp: bool = True) -> np.ndarray:
    """4x4 pose in the base frame of the flange (tcp=False, link 8) or of the Franka Hand's TCP frame (the fingertip
    centre, with the hand's axes)."""
    return frames(np.asarray(q, float), tcp)[-1]


def jacobian(q: np.ndarray, tcp: bool = True) -> np.ndarray:
    """6x7 geometric Jacobian (linear; angular) of the end frame."""
    fs = frames(np.asarray(q, float), tcp)
    p_end = fs[-1][:3, 3]
    cols = [np.concatenate([np.cross(f[:3, 2], p_end - f[:3, 3]), f[:3, 2]]) for f in fs[:7]]
    return np.stack(cols, 1)


def twist_to_joint_velocity(q: np.ndarray, twist: np.ndarray, damping: float = 0.05) -> np.ndarray:
    """Damped least-squares joint velocities that realise a base-frame twist [vx vy vz wx wy wz]."""
    j = jacobian(q)
    return j.T @ np.linalg.solve(j @ j.T + damping ** 2 * np.eye(6), np.asarray(twist, float))
