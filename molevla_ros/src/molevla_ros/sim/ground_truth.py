"""Sim-side adapter: the simulator's ground truth (sim/privileged_state markers + finger joints) as the
scripted expert's PrivilegedState. Only the policy node's scripted_expert backend creates one; a learned
policy never sees ground truth."""
from __future__ import annotations

import numpy as np
from rclpy.node import Node
from sensor_msgs.msg import JointState
from visualization_msgs.msg import MarkerArray

from molevla_ros.nodes.common import SENSOR_QOS, TOPIC_SIM_STATE
from molevla_ros.sim.expert import PrivilegedState

FINGERS = ("panda_finger_joint1", "panda_finger_joint2")


class SimGroundTruth:
    def __init__(self, node: Node, prefix: str = "") -> None:
        topic = f"{prefix}/{TOPIC_SIM_STATE}" if prefix else TOPIC_SIM_STATE
        node.create_subscription(MarkerArray, topic, self.on_markers, SENSOR_QOS)
        self.poses: dict[str, np.ndarray] | None = None

    def on_markers(self, msg: MarkerArray) -> None:
        self.poses = {m.ns: np.array([m.pose.position.x, m.pose.position.y, m.pose.position.z]) for m in msg.markers}

    def state(self, joints: JointState) -> PrivilegedState | None:
        """The latest ground truth with the finger opening from `joints`; None before the sim published any."""
        if self.poses is None or "ee" not in self.poses:
            return None
        objects = dict(self.poses)
        ee = objects.pop("ee")
        names = list(joints.name)
        width = sum(joints.position[names.index(n)] for n in FINGERS if n in names)
        return PrivilegedState(ee, float(width), objects)
