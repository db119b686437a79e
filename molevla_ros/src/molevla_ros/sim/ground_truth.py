"""The simulator's ground truth as sim/privileged_state markers (one Marker per object, ns = its name, plus "ee"):
written by the sim node and into recorded episodes (`molevla collect`, for training-only targets), read back as the
scripted expert's PrivilegedState. Only the policy node's scripted_expert backend reads it live; a learned policy
never sees ground truth."""
from __future__ import annotations

import numpy as np
from rclpy.node import Node
from sensor_msgs.msg import JointState
from visualization_msgs.msg import Marker, MarkerArray

from molevla_ros.nodes.qos import SENSOR_QOS
from molevla_ros.topics import TOPIC_SIM_STATE
from molevla_ros.sim.expert import PrivilegedState
from molevla_ros.sim.scene import BASE_FRAME, SIM_ROBOT, FrankaTableSim

FINGERS = SIM_ROBOT.finger_joints


def state_markers(sim: FrankaTableSim, stamp) -> MarkerArray:
    """Every object's pose and the end effector's ("ee") as markers in the base frame."""
    poses = dict(sim.object_poses())
    poses["ee"] = sim.ee_pose()
    out = MarkerArray()
    for i, (name, (pos, orn)) in enumerate(poses.items()):
        m = Marker(ns=name, id=i, type=Marker.CUBE, action=Marker.ADD)
        m.header.stamp, m.header.frame_id = stamp, BASE_FRAME
        m.pose.position.x, m.pose.position.y, m.pose.position.z = map(float, pos)
        m.pose.orientation.x, m.pose.orientation.y, m.pose.orientation.z, m.pose.orientation.w = map(float, orn)
        m.scale.x = m.scale.y = m.scale.z = 0.04
        m.color.a = 1.0
        out.markers.append(m)
    return out


def marker_positions(msg: MarkerArray) -> dict[str, np.ndarray]:
    """name -> xyz of every marker."""
    return {m.ns: np.array([m.pose.position.x, m.pose.position.y, m.pose.position.z]) for m in msg.markers}


class SimGroundTruth:
    def __init__(self, node: Node, prefix: str = "") -> None:
        topic = f"{prefix}/{TOPIC_SIM_STATE}" if prefix else TOPIC_SIM_STATE
        node.create_subscription(MarkerArray, topic, self.on_markers, SENSOR_QOS)
        self.poses: dict[str, np.ndarray] | None = None

    def on_markers(self, msg: MarkerArray) -> None:
        self.poses = marker_positions(msg)

    def state(self, joints: JointState) -> PrivilegedState | None:
        """The latest ground truth with the finger opening from `joints`; None before the sim published any."""
        if self.poses is None or "ee" not in self.poses:
            return None
        objects = dict(self.poses)
        ee = objects.pop("ee")
        names = list(joints.name)
        width = sum(joints.position[names.index(n)] for n in FINGERS if n in names)
        return PrivilegedState(ee, float(width), objects)
