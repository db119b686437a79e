"""Policy stack for a real robot: camera, instruction, policy and executor nodes; MoveIt Servo, the robot driver
and the camera driver come from your own bring-up. robot:= names the robot profile (default fr3; a path to your own
copy of robots/fr3.yaml for another robot).

    ros2 launch molevla_ros molevla.launch.py image_topic:=/camera/color/image_raw
"""
from molevla_ros.launch_common import describe


def generate_launch_description():
    return describe("robot", robot="fr3")
