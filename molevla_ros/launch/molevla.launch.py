"""Policy stack for a real Franka: camera, instruction, policy and executor nodes; MoveIt Servo and the
camera driver come from your own bring-up (e.g. franka_fr3_moveit_config + servo).

    ros2 launch molevla_ros molevla.launch.py image_topic:=/camera/color/image_raw
"""
from molevla_ros.launch_common import describe


def generate_launch_description():
    return describe("robot")
