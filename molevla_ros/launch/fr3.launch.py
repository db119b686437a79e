"""A real FR3: franka_ros2 + MoveIt 2 (franka_fr3_moveit_config) + MoveIt Servo (config/fr3_servo.yaml) + the
molevla_ros nodes with the fr3 robot profile (robots/fr3.yaml); the executor starts in dry run (commands logged,
nothing sent) until you pass dry_run:=false.

    ros2 launch molevla_ros fr3.launch.py robot_ip:=172.16.0.2 image_topic:=/camera/color/image_raw
    ros2 launch molevla_ros fr3.launch.py robot_ip:=dont-care use_fake_hardware:=true   # no robot: no motion either

Works with franka_ros2 v3.0.0-v3.4.0 (the arm's URDF moved in v3.4.0: molevla_ros.fr3_stack picks the one
installed). interface:=moveit_py hands MoveItPy the same MoveIt configuration as move_group.
"""
import os
import tempfile

import yaml
from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from molevla_ros import fr3_stack
from molevla_ros.launch_common import describe


def _xacro(path: str, args: list[str]) -> str:
    import xacro

    return xacro.process_file(path, mappings=dict(a.split(":=", 1) for a in args)).toxml()


def _stack(context):
    robot_ip, fake = (LaunchConfiguration(k).perform(context) for k in ("robot_ip", "use_fake_hardware"))
    namespace = LaunchConfiguration("namespace").perform(context)
    share = get_package_share_directory
    urdf, urdf_args = fr3_stack.robot_xacro(share)
    srdf, srdf_args = fr3_stack.semantic_xacro(share)
    description = _xacro(urdf, urdf_args + [f"robot_ip:={robot_ip}", f"use_fake_hardware:={fake}"])
    semantic = _xacro(srdf, srdf_args)
    franka = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(os.path.join(share("franka_fr3_moveit_config"), "launch", "moveit.launch.py")),
        launch_arguments={"robot_ip": robot_ip, "use_fake_hardware": fake, "load_gripper": "true",
                          "namespace": namespace}.items())
    servo = Node(package="moveit_servo", executable="servo_node", name="servo_node", namespace=namespace,
                 output="screen", parameters=fr3_stack.servo_parameters(share, description, semantic))
    actions = [franka, servo]
    if LaunchConfiguration("interface").perform(context) == "moveit_py":
        config = tempfile.NamedTemporaryFile("w", prefix="molevla_moveit_py_", suffix=".yaml", delete=False)
        yaml.safe_dump(fr3_stack.moveit_py_config(share, description, semantic), config)
        config.close()
        context.launch_configurations["moveit_py_config"] = config.name  # read by the executor (launch_common)
    return actions


def generate_launch_description():
    return describe("robot", robot="fr3", stack=_stack, arguments=(
        DeclareLaunchArgument("robot_ip", description="FR3 control unit address (franka_ros2)."),
        DeclareLaunchArgument("use_fake_hardware", default_value="false",
                              description="true: franka_ros2's mock hardware (no robot needed; the arm cannot move: "
                                          "its controller commands effort)."),
    ))
