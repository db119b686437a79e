"""A real FR3: franka_ros2 + MoveIt 2 (franka_fr3_moveit_config) + MoveIt Servo (config/fr3_servo.yaml) + the
molevla_ros nodes (robot profile: FR3 names, executor dry_run true until you set dry_run:=false).

    ros2 launch molevla_ros fr3.launch.py robot_ip:=172.16.0.2 image_topic:=/camera/color/image_raw
    ros2 launch molevla_ros fr3.launch.py robot_ip:=dont-care use_fake_hardware:=true   # no robot attached
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import Command, FindExecutable, LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue

from molevla_ros.launch_common import describe


def _xacro(package: str, path: tuple[str, ...], *args) -> ParameterValue:
    """The output of xacro on a file of `package` with arguments (strings and substitutions)."""
    return ParameterValue(Command([FindExecutable(name="xacro"), " ",
                                   os.path.join(get_package_share_directory(package), *path), *args]), value_type=str)


def generate_launch_description():
    import yaml

    robot_ip, fake = LaunchConfiguration("robot_ip"), LaunchConfiguration("use_fake_hardware")
    moveit_config = get_package_share_directory("franka_fr3_moveit_config")
    franka = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(os.path.join(moveit_config, "launch", "moveit.launch.py")),
        launch_arguments={"robot_ip": robot_ip, "use_fake_hardware": fake, "load_gripper": "true"}.items())
    # Servo needs the same robot model as move_group: franka_ros2's URDF and SRDF xacros, its kinematics.yaml.
    description = _xacro("franka_bringup", ("urdf", "franka_arm.urdf.xacro"), " hand:=true robot_ip:=", robot_ip,
                         " use_fake_hardware:=", fake)
    semantic = _xacro("franka_description", ("robots", "fr3", "fr3.srdf.xacro"), " hand:=true")
    with open(os.path.join(moveit_config, "config", "kinematics.yaml")) as f:
        kinematics = yaml.safe_load(f)  # given to Servo exactly as franka's moveit.launch.py gives it to move_group
    servo = Node(package="moveit_servo", executable="servo_node", name="servo_node", output="screen",
                 parameters=[{"robot_description": description, "robot_description_semantic": semantic}, kinematics,
                             os.path.join(get_package_share_directory("molevla_ros"), "config", "fr3_servo.yaml")])
    molevla = describe("robot")
    args = [DeclareLaunchArgument("robot_ip", description="FR3 control unit address (franka_ros2)."),
            DeclareLaunchArgument("use_fake_hardware", default_value="false",
                                  description="true: franka_ros2's mock hardware, no robot needed.")]
    for entity in args + [franka, servo]:
        molevla.add_action(entity)
    return molevla
