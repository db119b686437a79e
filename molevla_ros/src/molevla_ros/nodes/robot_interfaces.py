"""Robot-interface adapters of the executor: where its limited Cartesian commands go. Topics, frames, joint names
and limits come from the robot profile.

- servo: geometry_msgs/TwistStamped for MoveIt Servo (the default; the simulator reads the same topic). Where
  moveit_msgs is importable, Servo is switched to twist mode (retried until Servo answers success: its service only
  appears once Servo is built, and until then it drops every twist) and its status is watched: INVALID (it refuses
  the twists), singularity and collision halts and joint bounds halt the executor with the reason.
- joint_trajectory: trajectory_msgs/JointTrajectory for a joint trajectory controller, from damped least-squares
  IK of the twist at the latest joint state, kept inside the profile's joint limits (less its margin). One
  position-only point `lookahead_s` ahead: Jazzy's joint_trajectory_controller accepts it with its defaults.
- moveit_py: plan + execute to the pose the twist reaches after `lookahead_s` (slow, planned moves); needs MoveIt's
  Python API and the MoveIt configuration file fr3.launch.py writes (moveit_py_config).
Grippers: std_msgs/Float64 (1 open, 0 closed) on a topic (the simulator), or franka_gripper's actions (franka.py).
Interfaces whose packages are missing raise InterfaceUnavailable with the reason.
"""
from __future__ import annotations

import time
from typing import Callable

import numpy as np
from geometry_msgs.msg import TwistStamped
from rclpy.node import Node
from std_msgs.msg import Float64
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from molevla_ros import franka_kinematics as kin
from molevla_ros.rotations import matrix_to_quaternion, rotvec_to_matrix
from molevla_ros.control.chunk_executor import Command
from molevla_ros.nodes.messages import to_duration
from molevla_ros.robot_profile import RobotProfile

# MoveIt Servo status codes that stop the executor, with what they mean for the operator.
SERVO_HALTS = {
    "INVALID": "Servo refuses the twists (no IK solver for the planning group: is robot_description_kinematics "
               "given to servo_node?; or a command frame it cannot resolve)",
    "HALT_FOR_SINGULARITY": "the arm is at a singularity",
    "HALT_FOR_COLLISION": "a collision is imminent",
    "JOINT_BOUND": "a joint is at its position or velocity limit",
}


class InterfaceUnavailable(RuntimeError):
    pass


class ServoInterface:
    def __init__(self, node: Node, robot: RobotProfile, on_fault: Callable[[str], None]) -> None:
        self.node, self.frame_id = node, robot.base_frame
        self.pub = node.create_publisher(TwistStamped, robot.twist_topic, 10)
        self.waiting = ""  # why Servo would drop twists now ("" once it accepts them)
        if not robot.servo.moveit:  # a plain twist subscriber (the simulator): nothing to switch or watch
            return
        try:  # MoveIt integration: twist mode + status watch
            from moveit_msgs.msg import ServoStatus
            from moveit_msgs.srv import ServoCommandType
        except ImportError:
            raise InterfaceUnavailable("moveit_msgs is not importable (install MoveIt 2): the robot profile's twists "
                                       "go to MoveIt Servo, which must be switched to twist commands and watched"
                                       ) from None
        self.request = ServoCommandType.Request(command_type=ServoCommandType.Request.TWIST)
        self.switch = node.create_client(ServoCommandType, f"{robot.servo.node}/switch_command_type")
        self.waiting = f"waiting for MoveIt Servo to accept twists ({robot.servo.node}/switch_command_type)"
        self.pending, self.sent_at = None, 0.0  # the switch call in flight, and when it was sent (monotonic s)
        self.timer = node.create_timer(0.5, self.switch_to_twists)
        names = {v: k for k in dir(ServoStatus) if k.isupper() and isinstance(v := getattr(ServoStatus, k), int)}

        def on_status(msg) -> None:
            code = names.get(msg.code, str(msg.code))
            if code in SERVO_HALTS:
                on_fault(f"MoveIt Servo reports {code} ('{msg.message}'): {SERVO_HALTS[code]}")

        node.create_subscription(ServoStatus, f"{robot.servo.node}/status", on_status, 10)

    def switch_to_twists(self) -> None:
        """Ask Servo for twist mode until it answers success (its service appears only once Servo is built). An answer
        missing after 2 s is asked for again: a server that answers before it has matched our reply reader drops the
        answer (rmw_fastrtps waits 100 ms for that match: ros2/rmw_fastrtps#467)."""
        if self.pending is not None and not self.pending.done():
            if time.monotonic() - self.sent_at < 2.0:
                return
            self.switch.remove_pending_request(self.pending)  # the answer is lost: ask again below
            self.pending = None
        if self.pending is not None:
            result, self.pending = self.pending.result(), None
            if result is not None and result.success:
                self.waiting = ""
                self.node.destroy_timer(self.timer)
                self.node.get_logger().info("MoveIt Servo switched to twist commands")
                return
            self.node.get_logger().warn("MoveIt Servo did not switch to twist commands; asking again")
        if self.switch.service_is_ready():
            self.pending, self.sent_at = self.switch.call_async(self.request), time.monotonic()

    def send(self, cmd: Command, stamp) -> None:
        msg = TwistStamped()
        msg.header.stamp = stamp
        msg.header.frame_id = self.frame_id
        if cmd.active:
            msg.twist.linear.x, msg.twist.linear.y, msg.twist.linear.z = map(float, cmd.linear)
            msg.twist.angular.x, msg.twist.angular.y, msg.twist.angular.z = map(float, cmd.angular)
        self.pub.publish(msg)  # zero twist while halted: Servo holds position


class JointTrajectoryInterface:
    def __init__(self, node: Node, robot: RobotProfile, joint_positions: Callable[[], np.ndarray | None],
                 lookahead_s: float) -> None:
        self.joint_positions, self.lookahead = joint_positions, lookahead_s
        self.joint_names = list(robot.arm_joints)
        self.low = np.array(robot.joint_lower) + robot.joint_limit_margin
        self.high = np.array(robot.joint_upper) - robot.joint_limit_margin
        self.pub = node.create_publisher(JointTrajectory, robot.joint_trajectory_topic, 10)
        self.waiting = ""

    def send(self, cmd: Command, stamp) -> None:
        q = self.joint_positions()
        if q is None:
            return  # no joint state: nothing safe to send (the executor's watchdog halts)
        if not cmd.active:  # a halt holds the joints where they are, even within the margin of a limit
            self.publish(q, self.lookahead, stamp)
            return
        twist = np.concatenate([cmd.linear, cmd.angular])
        # The margin stops motion towards a limit; a joint already inside the margin is never pulled out of it
        target = np.clip(q + kin.twist_to_joint_velocity(q, twist) * self.lookahead, np.minimum(self.low, q),
                         np.maximum(self.high, q))
        self.publish(target, self.lookahead, stamp)

    def publish(self, target: np.ndarray, duration: float, stamp=None) -> None:
        """One position-only point `duration` seconds from now (a zero stamp: the controller starts it at once)."""
        msg = JointTrajectory(joint_names=self.joint_names)
        msg.points.append(JointTrajectoryPoint(positions=[float(v) for v in target],
                                               time_from_start=to_duration(duration)))
        self.pub.publish(msg)


class MoveItPyInterface:
    def __init__(self, node: Node, robot: RobotProfile, joint_positions: Callable[[], np.ndarray | None],
                 lookahead_s: float, config_file: str) -> None:
        try:
            from moveit.planning import MoveItPy
        except ImportError as e:
            raise InterfaceUnavailable("moveit_py is not importable (install MoveIt 2's Python bindings); use "
                                       "interface 'servo' or 'joint_trajectory'") from e
        if not config_file:
            raise InterfaceUnavailable("interface moveit_py needs moveit_py_config: the MoveIt configuration file "
                                       "(fr3.launch.py interface:=moveit_py writes it)")
        import yaml

        with open(config_file) as f:
            config = yaml.safe_load(f)
        self.moveit = MoveItPy(node_name=f"{node.get_name()}_moveit_py", config_dict=config,
                               provide_planning_service=False)  # move_group already serves the planning scene
        self.arm = self.moveit.get_planning_component(robot.planning_group)
        self.joint_positions, self.lookahead = joint_positions, lookahead_s
        self.base_frame, self.tcp_frame = robot.base_frame, robot.tcp_frame
        self.waiting = ""

    def send(self, cmd: Command, _stamp=None) -> None:
        """Plans and executes one short motion; blocks until it ends (the executor's tick waits meanwhile)."""
        q = self.joint_positions()
        if not cmd.active or q is None:
            return
        from geometry_msgs.msg import PoseStamped

        pose = kin.forward(q)
        pos = pose[:3, 3] + cmd.linear * self.lookahead
        rot = rotvec_to_matrix(cmd.angular * self.lookahead) @ pose[:3, :3]
        goal = PoseStamped()
        goal.header.frame_id = self.base_frame
        goal.pose.position.x, goal.pose.position.y, goal.pose.position.z = map(float, pos)
        qx, qy, qz, qw = matrix_to_quaternion(rot)
        goal.pose.orientation.x, goal.pose.orientation.y, goal.pose.orientation.z, goal.pose.orientation.w = (
            float(qx), float(qy), float(qz), float(qw))
        self.arm.set_start_state_to_current_state()
        self.arm.set_goal_state(pose_stamped_msg=goal, pose_link=self.tcp_frame)
        plan = self.arm.plan()
        if plan:
            self.moveit.execute(plan.trajectory, controllers=[])


class GripperTopic:
    def __init__(self, node: Node, topic: str) -> None:
        self.pub = node.create_publisher(Float64, topic, 10)

    def send(self, open_: float) -> None:
        self.pub.publish(Float64(data=float(open_)))

    def stop(self) -> None:
        pass  # the simulator's fingers stop where the last command left them
