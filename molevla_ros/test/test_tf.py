"""The simulator's TF (/tf_static: camera optical frame; /tf: every arm link) over real DDS.

tf2_msgs has no PyPI wheel, so the test builds tf2_msgs/TFMessage from its definition (one field,
`geometry_msgs/TransformStamped[] transforms`, as in ROS 2's tf2_msgs, hence the same type and wire format) into a
temporary prefix with scripts/build_interfaces.sh, and runs the sim and a listener with that prefix added.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from molevla_ros.bringup import Bringup, use_local_domain
from molevla_ros.franka_kinematics import frames
from molevla_ros.sim.camera_model import optical_pose, quaternion_xyzw
from molevla_ros.sim.scene import SimConfig

REPO = Path(__file__).resolve().parents[2]
PACKAGE_XML = """<?xml version="1.0"?>
<package format="3">
  <name>tf2_msgs</name>
  <version>0.36.0</version>
  <description>tf2_msgs/TFMessage only, for tests (tf2_msgs has no PyPI wheel)</description>
  <maintainer email="dev@molevla.invalid">molevla_ros developers</maintainer>
  <license>Apache-2.0</license>
  <buildtool_depend>ament_cmake</buildtool_depend>
  <buildtool_depend>rosidl_default_generators</buildtool_depend>
  <depend>geometry_msgs</depend>
  <member_of_group>rosidl_interface_packages</member_of_group>
  <export><build_type>ament_cmake</build_type></export>
</package>
"""
CMAKE = """cmake_minimum_required(VERSION 3.10)
project(tf2_msgs)
find_package(ament_cmake REQUIRED)
find_package(rosidl_default_generators REQUIRED)
find_package(geometry_msgs REQUIRED)
rosidl_generate_interfaces(${PROJECT_NAME} "msg/TFMessage.msg" DEPENDENCIES geometry_msgs)
ament_package()
"""
LISTENER = """
import json, sys, time
import rclpy
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import JointState
from tf2_msgs.msg import TFMessage

def t(m):
    return {"parent": m.header.frame_id, "child": m.child_frame_id,
            "stamp": m.header.stamp.sec + m.header.stamp.nanosec * 1e-9,
            "xyz": [m.transform.translation.x, m.transform.translation.y, m.transform.translation.z],
            "xyzw": [m.transform.rotation.x, m.transform.rotation.y, m.transform.rotation.z, m.transform.rotation.w]}

rclpy.init()
node = rclpy.create_node("tf_listener")
got = {"static": [], "tf": [], "joints": []}
latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
node.create_subscription(TFMessage, "/tf_static", lambda m: got["static"].append([t(x) for x in m.transforms]), latched)
node.create_subscription(TFMessage, "/tf", lambda m: got["tf"].append([t(x) for x in m.transforms]), 10)
node.create_subscription(JointState, "joint_states", lambda m: got["joints"].append(
    {"stamp": m.header.stamp.sec + m.header.stamp.nanosec * 1e-9, "name": list(m.name),
     "position": list(m.position)}), qos_profile_sensor_data)
end = time.monotonic() + float(sys.argv[1])
while time.monotonic() < end and not (got["static"] and len(got["tf"]) >= 5 and len(got["joints"]) >= 5):
    rclpy.spin_once(node, timeout_sec=0.05)
print(json.dumps(got))
"""


@pytest.fixture(scope="module")
def tf2_prefix(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tf2")
    src, prefix = root / "tf2_msgs", root / "prefix"
    (src / "msg").mkdir(parents=True)
    (src / "package.xml").write_text(PACKAGE_XML)
    (src / "CMakeLists.txt").write_text(CMAKE)
    (src / "msg" / "TFMessage.msg").write_text("geometry_msgs/TransformStamped[] transforms\n")
    subprocess.run(["bash", str(REPO / "scripts" / "build_interfaces.sh"), str(src), str(prefix)], check=True)
    return prefix


def test_sim_publishes_camera_and_arm_tf(tf2_prefix, domain, tmp_path):
    py = f"python{sys.version_info.major}.{sys.version_info.minor}"
    env = {"PYTHONPATH": os.pathsep.join([str(tf2_prefix / "lib" / py / "site-packages"),
                                          os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
           "LD_LIBRARY_PATH": f"{tf2_prefix / 'lib'}{os.pathsep}{os.environ.get('LD_LIBRARY_PATH', '')}"}
    use_local_domain(domain)
    with Bringup(["sim"], log_dir=tmp_path, env=env):
        out = subprocess.run([sys.executable, "-c", LISTENER, "60"], env={**os.environ, **env}, capture_output=True,
                             text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout)
    assert got["static"] and len(got["tf"]) >= 5, {k: len(v) for k, v in got.items()}

    cfg = SimConfig()
    (camera,) = got["static"][-1]
    position, rotation = optical_pose(cfg.camera_eye, cfg.camera_target)
    assert (camera["parent"], camera["child"]) == ("panda_link0", "scene_camera")
    np.testing.assert_allclose(camera["xyz"], position, atol=1e-9)
    np.testing.assert_allclose(camera["xyzw"], quaternion_xyzw(rotation), atol=1e-9)

    # Each /tf message carries every link in panda_link0 at a joint state's stamp; links 1..8 sit where the
    # Panda's forward kinematics of that joint state puts them.
    joints = {j["stamp"]: j for j in got["joints"]}
    matched = [m for m in got["tf"] if m[0]["stamp"] in joints]
    assert matched, "no /tf message shares its stamp with a joint state"
    for message in matched:
        by_child = {x["child"]: x for x in message}
        assert {x["parent"] for x in message} == {"panda_link0"}
        assert {f"panda_link{i}" for i in range(1, 9)} | {"panda_hand"} <= set(by_child)
        state = joints[message[0]["stamp"]]
        q = np.array([state["position"][state["name"].index(f"panda_joint{i}")] for i in range(1, 8)])
        for i, frame in enumerate(frames(q, tcp=False)[:8], start=1):
            np.testing.assert_allclose(by_child[f"panda_link{i}"]["xyz"], frame[:3, 3], atol=2e-3)
