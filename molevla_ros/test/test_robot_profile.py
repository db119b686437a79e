"""Robot profiles (robots/*.yaml): every robot fact in one file per robot, checked when loaded."""
import re
from pathlib import Path

import pytest
import yaml

from molevla_ros.robot_profile import ProfileError, available, load

SRC = Path(__file__).resolve().parents[1] / "src" / "molevla_ros"
ROBOTS = Path(__file__).resolve().parents[1] / "robots"


@pytest.mark.parametrize("name", ["panda_sim", "fr3"])
def test_shipped_profiles_load(name):
    p = load(name)
    assert p.name == name and len(p.arm_joints) == 7 and len(p.finger_joints) == 2
    assert p.twist_topic == f"{p.servo.node}/delta_twist_cmds"
    assert name in available()


def test_fr3_facts():
    """franka_description's FR3 limits (joint 4 upper -0.1518, joint 6 0.5445..4.5169), franka_ros2's names, the
    gripper's own joint-state topic, and end-effector limits inside Servo's scales."""
    p = load("fr3")
    assert p.arm_joints == tuple(f"fr3_joint{i}" for i in range(1, 8))
    assert (p.joint_upper[3], p.joint_lower[5], p.joint_upper[5], p.joint_upper[0]) == (-0.1518, 0.5445, 4.5169, 2.7437)
    assert (p.base_frame, p.tcp_frame, p.planning_group) == ("fr3_link0", "fr3_hand_tcp", "fr3_arm")
    assert p.gripper.interface == "franka_action" and p.gripper.joint_states == "franka_gripper/joint_states"
    assert p.limits.max_angular_speed <= p.servo.scale_rotational and p.limits.max_linear_speed <= p.servo.scale_linear
    assert p.robot_state == "franka_robot_state_broadcaster/robot_state"
    assert p.error_recovery_action == "action_server/error_recovery"


def _variant(tmp_path, **changes) -> str:
    data = yaml.safe_load((ROBOTS / "fr3.yaml").read_text())
    for key, value in changes.items():
        node = data
        *path, last = key.split(".")
        for k in path:
            node = node[k]
        node[last] = value
    f = tmp_path / "mine.yaml"
    f.write_text(yaml.safe_dump(data))
    return str(f)


def test_a_profile_of_your_own_by_path(tmp_path):
    names = [f"left_fr3_joint{i}" for i in range(1, 8)]
    p = load(_variant(tmp_path, arm_joints=names, **{"limits.max_linear_speed": 0.1}))
    assert p.arm_joints == tuple(names) and p.limits.max_linear_speed == 0.1


@pytest.mark.parametrize("changes,why", [
    ({"arm_joints": ["a"] * 7}, "7 distinct joints"),
    ({"joint_lower": [0.0] * 6}, "joint_lower has 6 entries"),
    ({"start_pose": [0.0] * 7}, "start_pose must lie inside the joint limits"),
    ({"limits.max_angular_speed": 1.0}, "exceeds servo.scale_rotational"),
    ({"limits.max_linear_speed": 0.5}, "exceeds servo.scale_linear"),
    ({"limits.workspace_min": [0.1, 0.1]}, "3 entries"),
    ({"gripper.interface": "magic"}, "gripper.interface 'magic'"),
    ({"kinematics": "ur5"}, "kinematics 'ur5'"),
])
def test_inconsistent_profiles_are_refused_with_the_field(tmp_path, changes, why):
    with pytest.raises(ProfileError, match=re.escape(why)):
        load(_variant(tmp_path, **changes))


def test_missing_profile_names_the_shipped_ones():
    with pytest.raises(ProfileError, match="shipped: fr3, panda_sim"):
        load("ur5")


def test_no_robot_fact_outside_the_profiles():
    """Joint names, frames and TCPs of the Panda or the FR3 appear in no Python file of the package: they come from
    robots/*.yaml (the simulator reads its own, panda_sim)."""
    facts = re.compile(r"(panda|fr3)_(joint\d|finger_joint\d|link\d|hand_tcp)")
    hits = [f"{p.relative_to(SRC)}:{i}" for p in SRC.rglob("*.py")
            for i, line in enumerate(p.read_text().splitlines(), 1) if facts.search(line)]
    assert not hits, hits
