"""Robot-interface adapters of the executor: where its limited Cartesian commands go.

- servo: geometry_msgs/TwistStamped for MoveIt Servo (the default; the simulator reads the same topic).
  Where moveit_msgs is importable, Servo is switched to twist mode once and `servo_node/status` is watched:
  a halting status code (singularity / collision / joint bound) stops the executor.
- joint_trajectory: trajectory_msgs/JointTrajectory for a joint trajectory controller, from damped
  least-squares IK of the twist at the latest joint state (Panda/FR3 kinematics), named with the
  executor's joint_names. One position-only point `lookahead_s` ahead: ros2_controllers' (Jazzy)
  joint_trajectory_controller accepts it with its default parameters (no velocity at the trajectory end,
  allow_nonzero_velocity_at_trajectory_end false; time_from_start > 0; every controller joint named once).
- moveit_py: plan + execute to the pose the twist reaches after `lookahead_s` (slow, planned moves);
  needs MoveIt's Python API (`moveit.planning.MoveItPy`).
Gripper: std_msgs/Float64 (1 open, 0 closed) on a topic, or the franka_gripper Move/Grasp actions where
franka_msgs is importable. Interfaces whose packages are missing raise InterfaceUnavailable with the reason.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
from geometry_msgs.msg import TwistStamped
from rclpy.node import Node
from std_msgs.msg import Float64
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from molevla_ros.control import panda_kinematics as kin
from molevla_ros.control.chunk_executor import Command
from molevla_ros.nodes.common import to_duration

SERVO_HALT_CODES = {"DECELERATE_FOR_APPROACHING_SINGULARITY": False, "HALT_FOR_SINGULARITY": True,
                    "DECELERATE_FOR_COLLISION": False, "HALT_FOR_COLLISION": True, "JOINT_BOUND": True}


class InterfaceUnavailable(RuntimeError):
    pass


class ServoInterface:
    def __init__(self, node: Node, topic: str, frame_id: str, on_fault: Callable[[str], None]) -> None:
        self.node, self.frame_id = node, frame_id
        self.pub = node.create_publisher(TwistStamped, topic, 10)
        try:  # optional MoveIt integration: twist mode + status watch
            from moveit_msgs.msg import ServoStatus
            from moveit_msgs.srv import ServoCommandType
        except ImportError:
            node.get_logger().info("moveit_msgs not importable: not switching Servo's command type or watching "
                                   "its status (publish twists only)")
            return
        self.switch = node.create_client(ServoCommandType, "servo_node/switch_command_type")
        if self.switch.wait_for_service(timeout_sec=2.0):
            self.switch.call_async(ServoCommandType.Request(command_type=ServoCommandType.Request.TWIST))
        else:
            node.get_logger().warn("servo_node/switch_command_type not available; is MoveIt Servo running?")
        names = {getattr(ServoStatus, k): k for k in dir(ServoStatus) if k.isupper()}

        def on_status(msg) -> None:
            code = names.get(msg.code, str(msg.code))
            if SERVO_HALT_CODES.get(code):
                on_fault(f"MoveIt Servo reports {code}: {msg.message}")

        node.create_subscription(ServoStatus, "servo_node/status", on_status, 10)

    def send(self, cmd: Command, stamp) -> None:
        msg = TwistStamped()
        msg.header.stamp = stamp
        msg.header.frame_id = self.frame_id
        if cmd.active:
            msg.twist.linear.x, msg.twist.linear.y, msg.twist.linear.z = map(float, cmd.linear)
            msg.twist.angular.x, msg.twist.angular.y, msg.twist.angular.z = map(float, cmd.angular)
        self.pub.publish(msg)  # zero twist while halted: Servo holds position


class JointTrajectoryInterface:
    def __init__(self, node: Node, topic: str, joint_positions: Callable[[], np.ndarray | None],
                 lookahead_s: float, joint_names: list[str]) -> None:
        self.node, self.joint_positions, self.lookahead = node, joint_positions, lookahead_s
        self.joint_names = list(joint_names)
        self.pub = node.create_publisher(JointTrajectory, topic, 10)

    def send(self, cmd: Command, stamp) -> None:
        q = self.joint_positions()
        if q is None:
            return  # no joint state: nothing safe to send (the executor's watchdog halts)
        twist = np.concatenate([cmd.linear, cmd.angular]) if cmd.active else np.zeros(6)
        dq = kin.twist_to_joint_velocity(q, twist)
        target = np.clip(q + dq * self.lookahead, kin.Q_MIN, kin.Q_MAX)
        msg = JointTrajectory(joint_names=self.joint_names)
        msg.header.stamp = stamp
        msg.points.append(JointTrajectoryPoint(positions=target.tolist(), time_from_start=to_duration(self.lookahead)))
        self.pub.publish(msg)


class MoveItPyInterface:
    def __init__(self, node: Node, planning_group: str, joint_positions: Callable[[], np.ndarray | None],
                 lookahead_s: float, base_frame: str, tcp_frame: str) -> None:
        try:
            from moveit.planning import MoveItPy
        except ImportError as e:
            raise InterfaceUnavailable("moveit_py is not importable (install MoveIt 2's Python bindings); use "
                                       "interface 'servo' or 'joint_trajectory'") from e
        self.moveit = MoveItPy(node_name=f"{node.get_name()}_moveit_py")
        self.arm = self.moveit.get_planning_component(planning_group)
        self.joint_positions, self.lookahead, self.node = joint_positions, lookahead_s, node
        self.base_frame, self.tcp_frame = base_frame, tcp_frame

    def send(self, cmd: Command, _stamp=None) -> None:
        """Plans and executes one short motion; blocks until it ends (the executor's tick waits meanwhile)."""
        q = self.joint_positions()
        if not cmd.active or q is None:
            return
        from geometry_msgs.msg import PoseStamped

        pose = kin.forward(q)
        pos = pose[:3, 3] + cmd.linear * self.lookahead
        rot = kin.rotvec_to_matrix(cmd.angular * self.lookahead) @ pose[:3, :3]
        goal = PoseStamped()
        goal.header.frame_id = self.base_frame
        goal.pose.position.x, goal.pose.position.y, goal.pose.position.z = map(float, pos)
        qx, qy, qz, qw = kin.matrix_to_quaternion(rot)
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


class FrankaGripperActions:
    """franka_gripper's Move (open) and Grasp (close) actions."""

    def __init__(self, node: Node, namespace: str, width_open: float = 0.08, speed: float = 0.1,
                 force: float = 20.0) -> None:
        try:
            from franka_msgs.action import Grasp, Move
            from rclpy.action import ActionClient
        except ImportError as e:
            raise InterfaceUnavailable("franka_msgs is not importable (install franka_ros2); use gripper "
                                       "interface 'topic'") from e
        self.Move, self.Grasp = Move, Grasp
        self.move = ActionClient(node, Move, f"{namespace}/move")
        self.grasp = ActionClient(node, Grasp, f"{namespace}/grasp")
        self.width_open, self.speed, self.force = width_open, speed, force

    def send(self, open_: float) -> None:
        if open_ >= 0.5:
            self.move.send_goal_async(self.Move.Goal(width=self.width_open, speed=self.speed))
        else:
            goal = self.Grasp.Goal(width=0.0, speed=self.speed, force=self.force)
            goal.epsilon.inner, goal.epsilon.outer = 0.08, 0.08  # accept any object width
            self.grasp.send_goal_async(goal)
