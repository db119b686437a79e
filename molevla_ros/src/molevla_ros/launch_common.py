"""Shared body of launch/*.launch.py (ROS installs only: needs launch and launch_ros).

The node list and YAML files are the same ones `molevla launch` uses (molevla_ros.bringup).
"""
from __future__ import annotations

import os
from typing import Callable

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from molevla_ros.bringup import (LAUNCH_ARGUMENTS, bringup_nodes, launch_overrides, model_hint_params,
                                 ros_environment)

COMMON = {
    "namespace": ("", "Namespace for all nodes (one per robot)."),
    "image_topic": ("image_raw", "Camera topic (sensor_msgs/Image) the camera node reads, or the policy and "
                    "executor with image_source:=raw."),
    "params_file": ("", "Your own parameter YAML (ros__parameters per node name), applied after config/*.yaml "
                    "and before the arguments above."),
    "log_level": ("", "Node log level (debug, info, warn, error); empty: the ROS default."),
    "use_sim_time": ("", "true: every node uses /clock; empty: the ROS default (false)."),
}


def _nodes(context, bringup: str) -> list[Node]:
    given = {k: LaunchConfiguration(k).perform(context) for k in [*LAUNCH_ARGUMENTS, *COMMON]}
    overrides = launch_overrides(bringup, given)
    if context.launch_configurations.get("moveit_py_config"):  # written by the robot's stack (fr3.launch.py)
        overrides["executor"]["moveit_py_config"] = context.launch_configurations["moveit_py_config"]
    hints = model_hint_params(bringup, overrides)  # the model's own settings, below a params file and the arguments
    share = get_package_share_directory("molevla_ros")
    extra = [given["params_file"]] if given["params_file"] else []
    args = ["--ros-args", "--log-level", given["log_level"]] if given["log_level"] else []
    return [Node(package="molevla_ros", executable=f"{name}_node", name=name, namespace=given["namespace"],
                 parameters=[os.path.join(share, "config", f"{name}.yaml"),
                             *([hints[name]] if hints.get(name) else []), *extra, overrides[name]],
                 remappings=[("image_raw", given["image_topic"])], arguments=args, output="screen",
                 emulate_tty=True, additional_env=ros_environment())
            for name in bringup_nodes(bringup, overrides)]


def describe(bringup: str, robot: str = "", stack: Callable | None = None,
             arguments: tuple[DeclareLaunchArgument, ...] = ()) -> LaunchDescription:
    """Declared arguments (the robot stack's `arguments`, then ours: a launch argument changes its parameter only
    when given; `robot` defaults to the given profile), then the robot's own stack (`stack`, an OpaqueFunction body:
    MoveIt, Servo, the robot driver), then the bring-up's nodes (bringup.BRINGUPS)."""
    declared = list(arguments) + [DeclareLaunchArgument(k, default_value=robot if k == "robot" else "", description=d)
                                  for k, (_, _, d) in LAUNCH_ARGUMENTS.items()]
    declared += [DeclareLaunchArgument(k, default_value=v, description=d) for k, (v, d) in COMMON.items()]
    stack_actions = [OpaqueFunction(function=stack)] if stack else []
    return LaunchDescription(declared + stack_actions + [OpaqueFunction(function=_nodes, args=[bringup])])
