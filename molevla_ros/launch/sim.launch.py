"""Simulated Franka + camera, instruction, policy and executor nodes (the `molevla demo` bring-up).

    ros2 launch molevla_ros sim.launch.py task_family:=push seed:=3
    ros2 topic pub --once /molevla/instruction std_msgs/String "data: 'push the red cube to the blue target'"
"""
from molevla_ros.launch_common import describe


def generate_launch_description():
    return describe("sim", robot="panda_sim")
