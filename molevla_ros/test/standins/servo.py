"""A stand-in for MoveIt Servo's servo_node as ROS 2 Jazzy ships it (MoveIt 2.12.4), for tests that cannot run MoveIt.

It behaves as the upstream code does where the executor meets it (facts read from moveit/moveit2 at tag 2.12.4, paths
under moveit_ros/moveit_servo/):
- parameters: every `moveit_servo.*` name must be one Servo declares (servo_parameters_jazzy.yaml beside this file,
  from config/servo_parameters.yaml); the real node ignores unknown names silently, the stand-in exits (code 3) so a
  dead key in a config is caught. `move_group_name` has no default (servo_parameters.yaml L37-43).
- start-up: subscribers, publishers and `~/switch_command_type` exist only after the Servo object is built, which
  loads the robot model and waits up to 5 s for joint states (src/servo_node.cpp L95-141, src/servo.cpp L51, L73-78):
  `standin.construct_delay_s` here. Status is published only once a robot state arrived (servo.cpp L322-345).
- command type: unset at start (include/moveit_servo/servo.hpp L220): a twist arriving before TWIST is selected is
  dropped with "Command type has not been set, cannot accept input" (servo_node.cpp L384-396). The switch service
  answers success when the type afterwards equals the one asked for (servo_node.cpp L181-195).
- twists: stale when now - header.stamp >= incoming_command_timeout (servo_node.cpp L261-262): stale or absent
  commands halt the arm and nothing more is published. A frame other than the planning frame (the IK solver's base,
  common.cpp L57-70) that cannot be resolved, or non-finite values, give INVALID (servo.cpp L414-418, command.cpp
  L153-163). No IK solver for the group (no `robot_description_kinematics.<group>.kinematics_solver`,
  kinematics_plugin_loader.cpp L260-272) gives INVALID and "No IK solver for planning group <g>." (servo.cpp
  L420-424). INVALID publishes no command (servo_node.cpp L398-416).
- speed_units: a linear (angular) velocity above scale.linear (scale.rotational) is shrunk to it, direction kept
  (command.cpp L183-198); unitless multiplies by the scales (L176-180).
- singularities: the Jacobian's condition number above lower_singularity_threshold scales the motion down
  (DECELERATE_FOR_APPROACHING_SINGULARITY), at hard_stop_singularity_threshold it stops (HALT_FOR_SINGULARITY), the
  halted state still published (common.cpp L282-378; upstream only when moving towards the singularity).
- joint bounds: moving towards a position limit within joint_limit_margins halts all joints with JOINT_BOUND
  (servo.cpp L533-542, common.cpp L411-451); the halted state is still published.
- output: trajectory_msgs/JointTrajectory on command_out_topic, positions (and velocities when
  publish_joint_velocities, Servo's default true; the last point's velocity is not zero, which Jazzy's
  joint_trajectory_controller refuses).
- status: moveit_msgs/ServoStatus on status_topic every cycle (publish_period), message text from
  SERVO_STATUS_CODE_MAP (include/moveit_servo/utils/datatypes.hpp L63-71).

Its IK is PyBullet's Jacobian of franka_panda/panda.urdf (Panda and FR3 share Franka's kinematics), independent of
the product's own kinematics. Counters (twists_received, dropped_before_twist_mode, rescaled, invalid, published)
are on ~/standin_stats (diagnostic_msgs/DiagnosticStatus) once per second.

Run: python servo.py --ros-args -r __node:=servo_node --params-file fr3_servo.yaml -p standin.robot:=fr3 ...
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pybullet as pb
import pybullet_data
import rclpy
import yaml
from diagnostic_msgs.msg import DiagnosticStatus, KeyValue
from geometry_msgs.msg import TwistStamped
from moveit_msgs.msg import ServoStatus
from moveit_msgs.srv import ServoCommandType
from rclpy.node import Node
from sensor_msgs.msg import JointState
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from molevla_ros.robot_profile import load

SERVO_PARAMETERS = yaml.safe_load((Path(__file__).parent / "servo_parameters_jazzy.yaml").read_text())
STATUS_TEXT = {-1: "Invalid", 0: "No warnings", 1: "Moving closer to a singularity, decelerating",
               2: "Very close to a singularity, emergency stop", 3: "Moving away from a singularity, decelerating",
               4: "Close to a collision, decelerating", 5: "Collision detected, emergency stop",
               6: "Close to a joint bound (position or velocity), halting"}
TCP_OFFSET = 0.1034  # panda_hand -> fingertip centre (the TCP the twists move)


class PandaJacobian:
    """Geometric Jacobian of the hand TCP from PyBullet's Panda URDF (an independent model of Franka kinematics)."""

    def __init__(self) -> None:
        self.client = pb.connect(pb.DIRECT)
        pb.setAdditionalSearchPath(pybullet_data.getDataPath(), physicsClientId=self.client)
        self.robot = pb.loadURDF("franka_panda/panda.urdf", useFixedBase=True, physicsClientId=self.client)

    def __call__(self, q: np.ndarray) -> np.ndarray:
        full = list(q) + [0.0, 0.0]  # the fingers are movable joints of the URDF too
        for i, v in enumerate(q):
            pb.resetJointState(self.robot, i, float(v), physicsClientId=self.client)
        lin, ang = pb.calculateJacobian(self.robot, 8, [0, 0, TCP_OFFSET], full, [0.0] * 9, [0.0] * 9,
                                        physicsClientId=self.client)
        return np.vstack([np.array(lin)[:, :7], np.array(ang)[:, :7]])


class ServoStandIn(Node):
    def __init__(self) -> None:
        super().__init__("servo_node", allow_undeclared_parameters=True,
                         automatically_declare_parameters_from_overrides=True)
        params = {n: self.get_parameter(n).value for n in self.list_parameters([], 0).names}
        unknown = sorted(n for n in params if n.startswith("moveit_servo.")
                         and n[len("moveit_servo."):] not in SERVO_PARAMETERS)
        if unknown:
            self.get_logger().fatal(f"unknown MoveIt Servo parameter(s) {unknown}: servo_node (Jazzy) does not "
                                    "declare them and would ignore them")
            sys.exit(3)
        self.cfg = {k: params.get(f"moveit_servo.{k}", v) for k, v in SERVO_PARAMETERS.items()}
        if not self.cfg["move_group_name"]:
            self.get_logger().fatal("parameter 'moveit_servo.move_group_name' is not set (it has no default)")
            sys.exit(3)
        group = self.cfg["move_group_name"]
        self.ik = bool(params.get(f"robot_description_kinematics.{group}.kinematics_solver"))
        self.robot = load(str(params.get("standin.robot", "fr3")))
        self.lower, self.upper = np.array(self.robot.joint_lower), np.array(self.robot.joint_upper)
        self.jacobian = PandaJacobian()
        self.command_type: int | None = None
        self.q: np.ndarray | None = None  # measured arm joints
        self.q_cmd: np.ndarray | None = None  # last commanded joint positions
        self.twist: TwistStamped | None = None
        self.new_twist = False
        self.status_code = ServoStatus.NO_WARNING
        self.stats = dict(twists_received=0, dropped_before_twist_mode=0, rescaled=0, invalid=0, published=0,
                          joint_bound=0)
        delay = float(params.get("standin.construct_delay_s", 3.0))
        self.get_logger().info(f"building Servo for group {group} ({delay} s)")
        self._construct_timer = self.create_timer(delay, self.construct)

    def construct(self) -> None:
        """What servo_node's constructor creates once the Servo object exists (servo_node.cpp L101-144)."""
        self.destroy_timer(self._construct_timer)
        c = self.cfg
        self.create_subscription(JointState, c["joint_topic"], self.on_joints, 10)
        self.create_subscription(TwistStamped, c["cartesian_command_in_topic"], self.on_twist, 10)
        self.out = self.create_publisher(JointTrajectory, c["command_out_topic"], 10)
        self.status_pub = self.create_publisher(ServoStatus, c["status_topic"], 10)
        self.stats_pub = self.create_publisher(DiagnosticStatus, "~/standin_stats", 10)
        self.create_service(ServoCommandType, "~/switch_command_type", self.on_switch)
        self.create_timer(float(c["publish_period"]), self.loop)
        self.create_timer(1.0, self.publish_stats)
        self.get_logger().info("Servo initialized successfully")

    def on_switch(self, req: ServoCommandType.Request, resp: ServoCommandType.Response) -> ServoCommandType.Response:
        if 0 <= req.command_type <= 2:
            self.command_type = req.command_type
        else:
            self.get_logger().warn(f"Unknown command type {req.command_type} requested")
        resp.success = req.command_type == self.command_type
        return resp

    def on_joints(self, msg: JointState) -> None:
        names = list(msg.name)
        if all(n in names for n in self.robot.arm_joints):
            self.q = np.array([msg.position[names.index(n)] for n in self.robot.arm_joints])

    def on_twist(self, msg: TwistStamped) -> None:
        self.twist, self.new_twist = msg, True
        self.stats["twists_received"] += 1

    def loop(self) -> None:
        if self.q is None:
            return  # "Waiting to receive robot state update." (servo.cpp L329-336): no status yet
        if self.new_twist and self.command_type != ServoCommandType.Request.TWIST:
            self.new_twist = False
            self.stats["dropped_before_twist_mode"] += 1
            self.get_logger().warn("Command type has not been set, cannot accept input", throttle_duration_sec=1.0)
        elif self.twist is not None:
            self.servo_twist()
        self.status_pub.publish(ServoStatus(code=self.status_code, message=STATUS_TEXT[self.status_code]))

    def servo_twist(self) -> None:
        msg, c = self.twist, self.cfg
        age = self.get_clock().now().nanoseconds * 1e-9 - (msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9)
        if age >= c["incoming_command_timeout"]:  # stale: halt (smoothly, upstream), publish nothing more
            self.twist, self.q_cmd = None, None
            return
        self.new_twist = False
        v = np.array([msg.twist.linear.x, msg.twist.linear.y, msg.twist.linear.z, msg.twist.angular.x,
                      msg.twist.angular.y, msg.twist.angular.z])
        if not self.ik:
            self.invalid(f"No IK solver for planning group {c['move_group_name']}.")
            return
        if msg.header.frame_id != self.robot.base_frame:
            self.invalid("Could not transform twist command to planning frame.")
            return
        if not np.all(np.isfinite(v)):
            self.invalid("Invalid twist command.")
            return
        if c["command_in_type"] == "speed_units":
            for part, scale in ((slice(0, 3), c["scale.linear"]), (slice(3, 6), c["scale.rotational"])):
                n = float(np.linalg.norm(v[part]))
                if scale > 0 and n > scale:
                    v[part] *= scale / n
                    self.stats["rescaled"] += 1
        else:
            v[:3] *= c["scale.linear"]
            v[3:] *= c["scale.rotational"]
        period = float(c["publish_period"])
        base = self.q  # the current state (upstream keeps a window of commanded states; this stays simpler)
        j = self.jacobian(base)
        dq = j.T @ np.linalg.solve(j @ j.T + 1e-4 * np.eye(6), v * period)
        sv = np.linalg.svd(j, compute_uv=False)
        condition = sv[0] / max(sv[-1], 1e-12)
        low, hard = c["lower_singularity_threshold"], c["hard_stop_singularity_threshold"]
        code = ServoStatus.NO_WARNING
        if condition >= hard:
            code, dq = ServoStatus.HALT_FOR_SINGULARITY, np.zeros(7)
        elif condition > low:
            code, dq = ServoStatus.DECELERATE_FOR_APPROACHING_SINGULARITY, dq * (1 - (condition - low) / (hard - low))
        margin = float(c["joint_limit_margins"][0])
        towards = ((base + dq > self.upper - margin) & (dq > 0)) | ((base + dq < self.lower + margin) & (dq < 0))
        if towards.any():
            code = ServoStatus.JOINT_BOUND
            self.stats["joint_bound"] += 1
            dq = np.zeros(7)  # halt_all_joints_in_cartesian_mode (default true)
        self.status_code = code
        self.q_cmd = base + dq
        point = JointTrajectoryPoint(positions=self.q_cmd.tolist())
        point.time_from_start.nanosec = int(period * 1e9)
        if c["publish_joint_velocities"]:
            point.velocities = (dq / period).tolist()
        self.out.publish(JointTrajectory(joint_names=list(self.robot.arm_joints), points=[point]))
        self.stats["published"] += 1

    def invalid(self, why: str) -> None:
        self.status_code = ServoStatus.INVALID
        self.stats["invalid"] += 1
        self.get_logger().error(why, throttle_duration_sec=1.0)

    def publish_stats(self) -> None:
        self.stats_pub.publish(DiagnosticStatus(name="servo stand-in", values=[
            KeyValue(key=k, value=str(v)) for k, v in self.stats.items()]))


def main() -> None:
    rclpy.init(args=sys.argv)
    node = ServoStandIn()
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
        pass
    finally:
        time.sleep(0.05)
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
