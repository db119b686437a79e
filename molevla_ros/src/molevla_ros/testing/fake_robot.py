"""A still, synthetic robot for benchmarks and tests that need the policy to run without the simulator:
a Panda joint state and the ground-truth markers the scripted expert reads."""
from __future__ import annotations

from builtin_interfaces.msg import Time
from sensor_msgs.msg import JointState
from visualization_msgs.msg import Marker, MarkerArray

from molevla_ros.sim.scene import JOINT_NAMES

HOME = [0.0] * 7 + [0.04, 0.04]  # arm joints, finger joints (open)
OBJECTS = {"ee": (0.45, 0.0, 0.3), "red_cube": (0.5, 0.1, 0.02)}


def fake_robot_msgs(stamp: Time, q: list[float] | None = None) -> tuple[JointState, MarkerArray]:
    js = JointState(name=JOINT_NAMES, position=list(HOME if q is None else q))
    js.header.stamp = stamp
    arr = MarkerArray()
    for name, pos in OBJECTS.items():
        m = Marker(ns=name)
        m.pose.position.x, m.pose.position.y, m.pose.position.z = pos
        arr.markers.append(m)
    return js, arr
