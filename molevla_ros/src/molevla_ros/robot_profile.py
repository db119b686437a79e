"""Robot profiles: one YAML file per robot (robots/*.yaml) holding every robot fact the nodes use: joint names and
limits, frames, start pose, end-effector limits, gripper, and the topics of the robot's stack. No ROS here.

A profile is named (a file under the package's robots/) or given as a path to your own file; `load` checks it and
refuses an inconsistent one with a message naming the field.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from molevla_ros.paths import robots_dir

DEFAULT_ROBOT = "panda_sim"  # the simulated Panda: what runs when no robot is named
KINEMATICS = ("franka",)  # kinematic models the product has (franka_kinematics.py)
GRIPPER_INTERFACES = ("topic", "franka_action")


class ProfileError(ValueError):
    """A robot profile that cannot be used; the message names the file and field."""


@dataclass(frozen=True)
class Limits:
    """End-effector limits in the base frame (what the executor enforces)."""
    max_linear_speed: float
    max_angular_speed: float
    max_linear_accel: float
    max_angular_accel: float
    max_linear_jerk: float
    max_angular_jerk: float
    workspace_min: tuple[float, ...]  # () disables the box
    workspace_max: tuple[float, ...]


@dataclass(frozen=True)
class Gripper:
    interface: str  # topic (std_msgs/Float64, 1 open) or franka_action (franka_gripper's actions)
    width_open: float  # m
    topic: str = ""  # interface topic: the command topic
    action_ns: str = ""  # interface franka_action: the gripper node's namespace
    joint_states: str = ""  # where the finger joints come from when not on the robot's joint_states ("": there)
    speed: float = 0.1  # m/s
    force: float = 20.0  # N
    epsilon_inner: float = 0.005  # m
    epsilon_outer: float = 0.005  # m


@dataclass(frozen=True)
class Servo:
    node: str  # MoveIt Servo's node name: its topics and services are <node>/...
    moveit: bool  # a MoveIt Servo serves the twist topic (False: a plain subscriber such as the simulator)
    scale_linear: float  # Servo's scale.linear (speed_units: twists faster than this are shrunk); 0: no Servo
    scale_rotational: float


@dataclass(frozen=True)
class RobotProfile:
    name: str
    description: str
    kinematics: str
    arm_joints: tuple[str, ...]
    finger_joints: tuple[str, ...]
    joint_lower: tuple[float, ...]
    joint_upper: tuple[float, ...]
    joint_velocity: tuple[float, ...]
    joint_limit_margin: float
    base_frame: str
    tcp_frame: str
    planning_group: str  # MoveIt planning group (Servo's move_group_name; moveit_py)
    start_pose: tuple[float, ...]
    limits: Limits
    joint_states: str
    gripper: Gripper
    servo: Servo
    joint_trajectory_topic: str
    robot_state: str  # franka_msgs/FrankaRobotState topic ("": none)
    error_recovery_action: str  # franka_msgs/action/ErrorRecovery ("": none)
    path: str = field(default="", compare=False)

    @property
    def joints(self) -> tuple[str, ...]:
        """Arm then finger joints: the state a model reads."""
        return self.arm_joints + self.finger_joints

    @property
    def twist_topic(self) -> str:
        """Where end-effector twists go: MoveIt Servo's cartesian input (relative: namespaces apply)."""
        return f"{self.servo.node}/delta_twist_cmds"


def available() -> list[str]:
    """Names of the profiles the package ships."""
    return sorted(p.stem for p in robots_dir().glob("*.yaml"))


def resolve(robot: str) -> Path:
    """The profile file of `robot`: a path to a YAML file, or the name of a shipped profile."""
    p = Path(robot)
    if p.suffix in (".yaml", ".yml") or p.is_absolute() or "/" in robot:
        return p
    return robots_dir() / f"{robot}.yaml"


def load(robot: str = DEFAULT_ROBOT) -> RobotProfile:
    """The checked profile `robot` (name or path); ProfileError when missing or inconsistent."""
    path = resolve(robot)
    if not path.is_file():
        raise ProfileError(f"no robot profile {robot!r} ({path} does not exist; shipped: {', '.join(available())})")
    try:
        data = yaml.safe_load(path.read_text()) or {}
        profile = RobotProfile(
            **{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()
               if k not in ("limits", "gripper", "servo")},
            limits=Limits(**{k: tuple(v) if isinstance(v, list) else float(v) for k, v in data["limits"].items()}),
            gripper=Gripper(**data["gripper"]), servo=Servo(**data["servo"]), path=str(path))
    except (TypeError, KeyError, yaml.YAMLError) as e:
        raise ProfileError(f"robot profile {path}: {e}") from None
    problem = check(profile)
    if problem:
        raise ProfileError(f"robot profile {path}: {problem}")
    return profile


def check(p: RobotProfile) -> str:
    """What makes a profile unusable ("" when nothing)."""
    n = len(p.arm_joints)
    if n != 7 or len(set(p.arm_joints)) != n:
        return f"arm_joints must name 7 distinct joints (got {list(p.arm_joints)})"
    if len(set(p.joints)) != len(p.joints):
        return "finger_joints repeat an arm joint"
    for key in ("joint_lower", "joint_upper", "joint_velocity", "start_pose"):
        if len(getattr(p, key)) != n:
            return f"{key} has {len(getattr(p, key))} entries, not one per arm joint ({n})"
    if any(lo >= hi for lo, hi in zip(p.joint_lower, p.joint_upper)):
        return "joint_lower must be below joint_upper for every joint"
    margin = p.joint_limit_margin
    if not all(lo + margin <= q <= hi - margin for q, lo, hi in zip(p.start_pose, p.joint_lower, p.joint_upper)):
        return "start_pose must lie inside the joint limits (less joint_limit_margin)"
    if p.kinematics not in KINEMATICS:
        return f"kinematics {p.kinematics!r} is not one of {', '.join(KINEMATICS)}"
    if p.gripper.interface not in GRIPPER_INTERFACES:
        return f"gripper.interface {p.gripper.interface!r} is not one of {', '.join(GRIPPER_INTERFACES)}"
    lim = p.limits
    if min(lim.max_linear_speed, lim.max_angular_speed, lim.max_linear_accel, lim.max_angular_accel,
           lim.max_linear_jerk, lim.max_angular_jerk) <= 0:
        return "limits must all be positive"
    if p.servo.scale_linear > 0 and lim.max_linear_speed > p.servo.scale_linear:
        return (f"limits.max_linear_speed {lim.max_linear_speed} exceeds servo.scale_linear {p.servo.scale_linear}: "
                "Servo would shrink faster twists without a word")
    if p.servo.scale_rotational > 0 and lim.max_angular_speed > p.servo.scale_rotational:
        return (f"limits.max_angular_speed {lim.max_angular_speed} exceeds servo.scale_rotational "
                f"{p.servo.scale_rotational}: Servo would shrink faster twists without a word")
    box = (len(lim.workspace_min), len(lim.workspace_max))
    if box not in ((0, 0), (3, 3)):
        return "limits.workspace_min / workspace_max must both have 3 entries (or both be empty)"
    if box == (3, 3) and any(lo >= hi for lo, hi in zip(lim.workspace_min, lim.workspace_max)):
        return "limits.workspace_min must be below workspace_max"
    return ""
