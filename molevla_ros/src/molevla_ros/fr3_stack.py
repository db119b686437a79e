"""How launch/fr3.launch.py meets franka_ros2 (Jazzy, v3.0.0-v3.4.0) and MoveIt 2.12: which files to read and the
parameters MoveIt Servo and moveit_py need. Plain functions of share folders and YAML (no `launch` import), so they
are tested here without a ROS install; facts come from frankarobotics/franka_ros2 and moveit/moveit2 (2.12.4).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import yaml

# share folder of a ROS package (ament_index_python.get_package_share_directory on a ROS install)
ShareOf = Callable[[str], str]


def robot_xacro(share_of: ShareOf) -> tuple[str, list[str]]:
    """The FR3's URDF xacro and its arguments as franka_fr3_moveit_config's moveit.launch.py builds them.

    franka_ros2 v3.4.0 moved the arm description to franka_bringup/urdf/franka_arm.urdf.xacro (moveit.launch.py
    L77-85); v3.0.0-v3.3.0 use franka_description/robots/fr3/fr3.urdf.xacro with ros2_control:=true. The path that
    exists in the installed franka_ros2 is used; xacro ignores arguments a file does not declare."""
    v34 = Path(share_of("franka_bringup")) / "urdf" / "franka_arm.urdf.xacro"
    if v34.is_file():
        return str(v34), ["robot_type:=fr3", "hand:=true", "ee_id:=franka_hand"]
    old = Path(share_of("franka_description")) / "robots" / "fr3" / "fr3.urdf.xacro"
    return str(old), ["hand:=true", "ee_id:=franka_hand", "ros2_control:=true"]


def semantic_xacro(share_of: ShareOf) -> tuple[str, list[str]]:
    """The FR3's SRDF xacro and arguments (franka_description robots/fr3/fr3.srdf.xacro in every v3 release)."""
    return str(Path(share_of("franka_description")) / "robots" / "fr3" / "fr3.srdf.xacro"), \
        ["hand:=true", "ee_id:=franka_hand"]


def kinematics(share_of: ShareOf) -> dict:
    """franka_fr3_moveit_config's kinematics.yaml under robot_description_kinematics, where MoveIt's kinematics
    plugin loader reads it (robot_description_kinematics.<group>.kinematics_solver, kinematics_plugin_loader.cpp
    L260-272; franka's moveit.launch.py wraps it the same way, L103-108). Given bare, the keys become
    <group>.kinematics_solver, Servo finds no IK solver and answers every twist INVALID."""
    path = Path(share_of("franka_fr3_moveit_config")) / "config" / "kinematics.yaml"
    return {"robot_description_kinematics": yaml.safe_load(path.read_text())}


def servo_parameters(share_of: ShareOf, robot_description, robot_description_semantic) -> list:
    """servo_node's parameters: the robot model as move_group has it, kinematics, then config/fr3_servo.yaml."""
    return [{"robot_description": robot_description, "robot_description_semantic": robot_description_semantic},
            kinematics(share_of), str(Path(share_of("molevla_ros")) / "config" / "fr3_servo.yaml")]


def moveit_py_config(share_of: ShareOf, robot_description: str, robot_description_semantic: str) -> dict:
    """The parameters MoveItPy (moveit_py 2.12.4) needs to plan and execute for the FR3, from the files
    franka_fr3_moveit_config gives move_group (moveit.launch.py L103-157). MoveItPy reads everything from its own
    node's parameters: `plan_request_params.planning_pipeline` must name a pipeline (empty: every plan fails)."""
    cfg = Path(share_of("franka_fr3_moveit_config")) / "config"

    def read(name: str) -> dict:
        return yaml.safe_load((cfg / name).read_text())

    ompl = {"planning_plugins": ["ompl_interface/OMPLPlanner"], "start_state_max_bounds_error": 0.1,
            "request_adapters": [f"default_planning_request_adapters/{a}" for a in (
                "ResolveConstraintFrames", "ValidateWorkspaceBounds", "CheckStartStateBounds",
                "CheckStartStateCollision")],
            "response_adapters": [f"default_planning_response_adapters/{a}" for a in (
                "AddTimeOptimalParameterization", "ValidateSolution", "DisplayMotionPath")],
            **read("ompl_planning.yaml")}
    controllers = read("fr3_controllers.yaml")
    return {
        "robot_description": robot_description, "robot_description_semantic": robot_description_semantic,
        **kinematics(share_of), "robot_description_planning": read("fr3_joint_limits.yaml"),
        "planning_scene_monitor_options": {"name": "planning_scene_monitor", "robot_description": "robot_description",
                                           "wait_for_initial_state_timeout": 10.0},
        "planning_pipelines": {"pipeline_names": ["ompl"]}, "ompl": ompl,
        "plan_request_params": {"planning_pipeline": "ompl", "planner_id": "RRTConnectkConfigDefault",
                                "planning_attempts": 1, "planning_time": 1.0, "max_velocity_scaling_factor": 0.1,
                                "max_acceleration_scaling_factor": 0.1},
        "moveit_controller_manager": "moveit_simple_controller_manager/MoveItSimpleControllerManager",
        "moveit_simple_controller_manager": controllers, "moveit_manage_controllers": True,
        "trajectory_execution": {"allowed_execution_duration_scaling": 1.2, "allowed_goal_duration_margin": 0.5,
                                 "allowed_start_tolerance": 0.01},
    }
