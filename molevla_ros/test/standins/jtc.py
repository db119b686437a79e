"""Jazzy's joint_trajectory_controller acceptance rules (ros2_controllers jazzy, tag 4.42.1,
joint_trajectory_controller/src/joint_trajectory_controller.cpp validate_trajectory_msg L1671-1816), checks in the
controller's order, with its default parameters: allow_partial_joints_goal false, allow_nonzero_velocity_at_trajectory_
end false (joint_trajectory_controller_parameters.yaml L75-79, L129-133), allow_integration_in_goal_trajectories
false, position command interface (no effort). Used by the franka stand-in and by tests of the executor's output."""
from __future__ import annotations

import numpy as np
from trajectory_msgs.msg import JointTrajectory


def stamp_s(stamp) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def duration_s(d) -> float:
    return d.sec + d.nanosec * 1e-9


def jtc_refusal(msg: JointTrajectory, joints: list[str], now: float) -> str | None:
    """Why Jazzy's joint_trajectory_controller refuses `msg` (its validate_trajectory_msg, checks in order), or None."""
    names = list(msg.joint_names)
    if len(names) != len(joints):
        return "Joints on incoming trajectory don't match the controller joints."
    if not names:
        return "Empty joint names on incoming trajectory."
    if not msg.points:
        return "Empty trajectory received."
    bad = next((n for n in names if n not in joints), None)
    if bad is not None:
        return f"Incoming joint {bad} doesn't match the controller's joints."
    for i, v in enumerate(msg.points[-1].velocities):
        if abs(v) > np.finfo(np.float32).eps:
            return f"Velocity of last trajectory point of joint {names[i]} is not zero: {v:.15f}"
    start = stamp_s(msg.header.stamp)
    if start != 0.0 and start + duration_s(msg.points[-1].time_from_start) < now:
        return "Received trajectory with non-zero start time that ends in the past"
    for i, p in enumerate(msg.points):
        if i > 0 and duration_s(p.time_from_start) <= duration_s(msg.points[i - 1].time_from_start):
            return f"Time between points {i - 1} and {i} is not strictly increasing"
        if len(p.positions) != len(names):
            return f"Mismatch between joint_names size ({len(names)}) and positions ({len(p.positions)}) at point #{i}."
        for field in ("velocities", "accelerations"):
            if len(getattr(p, field)) not in (0, len(names)):
                return f"Mismatch between joint_names size ({len(names)}) and {field} at point #{i}."
        if len(p.effort):
            return "Trajectories with effort fields are only supported for controllers using the 'effort' command " \
                   "interface."
    return None
