"""Shared body of launch/*.launch.py (ROS installs only: needs launch and launch_ros).

The node list and YAML files are the same ones `molevla launch` uses (molevla_ros.bringup).
"""
from __future__ import annotations

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue

from molevla_ros.bringup import PROFILE_DEFAULTS, PROFILES

ARGUMENTS = {
    "namespace": ("", "Namespace for all nodes (one per robot)."),
    "image_topic": ("image_raw", "Camera topic the camera node reads (sensor_msgs/Image)."),
    "backend": ("mole_torch", "Policy backend: mole_torch, mole_onnx, mole_tensorrt, or scripted_expert "
                "(simulation only)."),
    "model_dir": ("mole_small", "Policy model folder (absolute, or a name under the package's models/), e.g. one "
                  "written by molevla import-cogact."),
    "blend": ("average", "Executor chunk blending: average, latest or adaptive (CogACT's adaptive ensemble)."),
    "device": ("cpu", "Policy device for mole_torch / mole_tensorrt (cpu, cuda, ...)."),
    "precision": ("fp32", "Policy precision: fp32, fp16 (GPU), bf16 (mole_torch on GPU)."),
    "task_family": ("pick_place", "Simulated scene: touch, push or pick_place."),
    "seed": ("0", "Simulated layout seed."),
}


def describe(profile: str) -> LaunchDescription:
    share = get_package_share_directory("molevla_ros")
    dry_run = str(PROFILE_DEFAULTS[profile].get("executor", {}).get("dry_run", False)).lower()
    arguments = {**ARGUMENTS, "dry_run": (dry_run, "Executor logs commands instead of sending them (default true "
                                          "on a real robot).")}
    arg = {k: LaunchConfiguration(k) for k in arguments}
    given = {"sim": {"task_family": arg["task_family"], "seed": arg["seed"]},
             "policy": {"backend": arg["backend"], "model_dir": arg["model_dir"], "device": arg["device"],
                        "precision": arg["precision"]},
             "executor": {"dry_run": ParameterValue(arg["dry_run"], value_type=bool), "blend": arg["blend"]}}
    overrides = {n: {**PROFILE_DEFAULTS[profile].get(n, {}), **given.get(n, {})} for n in PROFILES[profile]}
    nodes = [
        Node(package="molevla_ros", executable=f"{name}_node", name=name, namespace=arg["namespace"],
             parameters=[os.path.join(share, "config", f"{name}.yaml"), overrides.get(name, {})],
             remappings=[("image_raw", arg["image_topic"])], output="screen", emulate_tty=True)
        for name in PROFILES[profile]
    ]
    declared = [DeclareLaunchArgument(k, default_value=v, description=d) for k, (v, d) in arguments.items()]
    return LaunchDescription(declared + nodes)
