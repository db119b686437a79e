"""A stand-in for an FR3 under franka_ros2 (Jazzy, v3.x) with franka_fr3_moveit_config's bring-up, for tests: the
arm's joint_trajectory_controller, the joint-state topics, the robot state with its mode, error recovery, and the
Franka Hand's gripper node. One process, one rclpy node per upstream node. Behaviours and their sources:

- fr3_arm_controller (ros2_controllers jazzy, tag 4.42.1, joint_trajectory_controller/src/
  joint_trajectory_controller.cpp validate_trajectory_msg L1671-1816, in that order): joint count must equal the
  controller's (allow_partial_joints_goal false), names non-empty, points present, every name a controller joint,
  last point's velocities zero (allow_nonzero_velocity_at_trajectory_end false, parameters yaml L129-133), a
  non-zero stamp must not end in the past, time_from_start strictly increasing from the second point, positions
  sized as the names, velocities/accelerations empty or sized, no effort. A refused message is logged and dropped;
  the current trajectory goes on (L1388-1391). A valid one replaces the current trajectory at once, interpolated
  linearly from the current state (trajectory.cpp L147-168, positions only). The controller does not check joint
  limits (it reads the URDF's only for decelerate-on-cancel, L160-177).
- the robot (libfranka): a joint position outside the profile's limits, or a joint faster than its velocity limit,
  stops the arm in REFLEX with the matching error flag; `~/trigger_reflex` (std_srvs/Trigger, stand-in only) makes
  one as a collision would (cartesian_reflex). In REFLEX no command moves the arm.
- joint states: joint_state_broadcaster on franka/joint_states (ros2_control_node remaps joint_states, franka's
  moveit.launch.py L223) and joint_state_publisher on joint_states at 30 Hz merging franka/joint_states and
  fr3_gripper/joint_states (L246-253), which no node publishes: the fingers stay 0 there, as on a real FR3.
- franka_robot_state_broadcaster/robot_state: franka_msgs/FrankaRobotState with robot_mode (IDLE, MOVE, REFLEX) and
  current_errors (franka_robot_state_broadcaster, 1 kHz upstream; 50 Hz here).
- action_server/error_recovery (franka_hardware's ActionServer node "action_server", franka_action_server.cpp
  L36-69): clears a reflex and succeeds.
- franka_gripper (franka_gripper/src/gripper_action_server.cpp, config franka_gripper_node.yaml): actions
  ~/homing, ~/move, ~/grasp and service ~/stop (std_srvs/Trigger); ~/joint_states at 15 Hz with
  fr3_finger_joint1/2 = width / 2. Results: success = the motion's outcome, error empty when it simply fails; a
  grasp succeeds when the width it stops at lies in (width - epsilon.inner, width + epsilon.outer) (franka_gripper
  doc/index.rst L13-14). Fingers move at the goal's speed; an object of `standin.object_width` (m, 0 = none) stops
  them when closing.

Stand-in parameters: standin.robot (profile, default fr3), standin.start_pose (the arm's joints at start; default the
profile's start pose), standin.object_width, standin.grasp_error (a text: every grasp fails with it, as when
libfranka throws).
"""
from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticStatus, KeyValue
from franka_msgs.action import ErrorRecovery, Grasp, Homing, Move
from franka_msgs.msg import FrankaRobotState
from rclpy.action import ActionServer
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.executors import MultiThreadedExecutor, SingleThreadedExecutor
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from molevla_ros.robot_profile import RobotProfile, load

sys.path.insert(0, str(Path(__file__).parent))
from jtc import duration_s, jtc_refusal  # noqa: E402

RATE_HZ = 100.0  # the stand-in robot's control and joint_state_broadcaster rate (1 kHz upstream)
STATE_HZ = 50.0  # robot_state rate (1 kHz upstream): a reflex shows within 20 ms


class Arm:
    """The FR3's joints under the trajectory controller, with libfranka's reflexes on limit violations."""

    def __init__(self, robot: RobotProfile, start: list[float] | None = None) -> None:
        self.robot = robot
        self.q = np.array(start if start else robot.start_pose, float)
        self.lower, self.upper = np.array(robot.joint_lower), np.array(robot.joint_upper)
        self.vmax = np.array(robot.joint_velocity)
        self.segment: tuple[float, np.ndarray, list[tuple[float, np.ndarray]]] | None = None  # (t0, q0, points)
        self.mode = FrankaRobotState.ROBOT_MODE_IDLE
        self.errors: dict[str, bool] = {}
        self.why = ""  # what caused the last reflex (logged)
        self.lock = threading.Lock()

    def follow(self, now: float, points: list[tuple[float, np.ndarray]]) -> None:
        with self.lock:
            if self.mode != FrankaRobotState.ROBOT_MODE_REFLEX:
                self.segment = (now, self.q.copy(), points)

    def reflex(self, error: str) -> None:
        with self.lock:
            self.mode, self.errors, self.segment = FrankaRobotState.ROBOT_MODE_REFLEX, {error: True}, None

    def recover(self) -> None:
        with self.lock:
            self.mode, self.errors = FrankaRobotState.ROBOT_MODE_IDLE, {}

    def step(self, now: float, dt: float) -> None:
        with self.lock:
            if self.segment is None or self.mode == FrankaRobotState.ROBOT_MODE_REFLEX:
                return
            t0, q0, points = self.segment
            t, prev_t, prev_q, target = now - t0, 0.0, q0, points[-1][1]
            for tp, qp in points:  # linear between the points (positions only: the controller's linear spline)
                if t <= tp:
                    target = prev_q + (qp - prev_q) * (t - prev_t) / max(tp - prev_t, 1e-9)
                    break
                prev_t, prev_q = tp, qp
            if np.any(np.abs(target - self.q) > self.vmax * dt * 1.05 + 1e-6):
                self.mode, self.errors, self.segment = FrankaRobotState.ROBOT_MODE_REFLEX, \
                    {"joint_velocity_violation": True}, None
                self.why = f"joint velocity {np.round((target - self.q) / dt, 3).tolist()} rad/s at {self.q.round(3)}"
                return
            if np.any(target < self.lower) or np.any(target > self.upper):
                self.mode, self.errors, self.segment = FrankaRobotState.ROBOT_MODE_REFLEX, \
                    {"joint_position_limits_violation": True}, None
                self.why = f"joint position target {target.round(4).tolist()} outside the limits"
                return
            self.q = target
            done = t >= points[-1][0]
            self.mode = FrankaRobotState.ROBOT_MODE_IDLE if done else FrankaRobotState.ROBOT_MODE_MOVE
            if done:
                self.segment = None


class Controller(Node):
    """fr3_arm_controller + joint_state_broadcaster + joint_state_publisher + franka_robot_state_broadcaster."""

    def __init__(self, arm: Arm) -> None:
        super().__init__("fr3_arm_controller")
        self.arm = arm
        self.refused = self.accepted = 0
        self.create_subscription(JointTrajectory, "~/joint_trajectory", self.on_trajectory, 10)
        self.joints = list(arm.robot.arm_joints)
        self.broadcaster = self.create_publisher(JointState, "/franka/joint_states", 10)
        self.merged = self.create_publisher(JointState, "/joint_states", 10)
        self.state = self.create_publisher(FrankaRobotState, "/" + arm.robot.robot_state, 10)
        self.stats = self.create_publisher(DiagnosticStatus, "~/standin_stats", 10)
        self.create_service(Trigger, "~/trigger_reflex", self.on_trigger_reflex)
        self.last = time.monotonic()
        self.create_timer(1.0 / RATE_HZ, self.tick)
        self.create_timer(1.0 / 30.0, self.publish_merged)
        self.create_timer(1.0 / STATE_HZ, self.publish_state)
        self.create_timer(1.0, lambda: self.stats.publish(DiagnosticStatus(name="controller stand-in", values=[
            KeyValue(key="accepted", value=str(self.accepted)), KeyValue(key="refused", value=str(self.refused)),
            KeyValue(key="mode", value=str(self.arm.mode))])))

    def now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def on_trajectory(self, msg: JointTrajectory) -> None:
        why = jtc_refusal(msg, self.joints, self.now())
        if why:
            self.refused += 1
            self.get_logger().error(why, throttle_duration_sec=1.0)
            return
        self.accepted += 1
        order = [list(msg.joint_names).index(n) for n in self.joints]
        self.arm.follow(time.monotonic(), [(duration_s(p.time_from_start), np.array(p.positions)[order])
                                           for p in msg.points])

    def on_trigger_reflex(self, _req, resp):
        self.arm.why = "triggered (a collision)"
        self.arm.reflex("cartesian_reflex")
        resp.success, resp.message = True, "reflex"
        return resp

    def tick(self) -> None:
        t = time.monotonic()
        mode = self.arm.mode
        self.arm.step(t, t - self.last)
        self.last = t
        if self.arm.mode == FrankaRobotState.ROBOT_MODE_REFLEX and mode != self.arm.mode:
            self.get_logger().error(f"REFLEX: {self.arm.why}")
        self.broadcaster.publish(self.joint_state(self.joints, self.arm.q))

    def joint_state(self, names, values) -> JointState:
        msg = JointState(name=list(names), position=[float(v) for v in values])
        msg.header.stamp = self.get_clock().now().to_msg()
        return msg

    def publish_merged(self) -> None:
        fingers = self.arm.robot.finger_joints  # fr3_gripper/joint_states never arrives: 0
        self.merged.publish(self.joint_state(self.joints + list(fingers), list(self.arm.q) + [0.0] * len(fingers)))

    def publish_state(self) -> None:
        msg = FrankaRobotState(robot_mode=self.arm.mode)
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.measured_joint_state = self.joint_state(self.joints, self.arm.q)
        for name, value in self.arm.errors.items():
            setattr(msg.current_errors, name, value)
        self.state.publish(msg)


class RecoveryServer(Node):
    """franka_hardware's "action_server" node: ~/error_recovery."""

    def __init__(self, arm: Arm) -> None:
        super().__init__("action_server")
        self.arm = arm
        self.calls = 0
        ActionServer(self, ErrorRecovery, "~/error_recovery", execute_callback=self.execute)

    def execute(self, handle):
        self.calls += 1
        time.sleep(0.2)  # automaticErrorRecovery takes a moment
        self.arm.recover()
        handle.succeed()
        return ErrorRecovery.Result()


class Gripper(Node):
    """franka_gripper: homing / move / grasp actions, stop service, finger joint states."""

    MAX_WIDTH = 0.08

    def __init__(self, robot: RobotProfile, object_width: float, grasp_error: str) -> None:
        super().__init__("franka_gripper")
        self.robot, self.object_width, self.grasp_error = robot, object_width, grasp_error
        self.width = self.MAX_WIDTH / 2  # not homed yet
        self.stop_requested = False
        self.calls: dict[str, int] = {"homing": 0, "move": 0, "grasp": 0, "stop": 0}
        group = ReentrantCallbackGroup()
        ActionServer(self, Homing, "~/homing", execute_callback=self.on_homing, callback_group=group)
        ActionServer(self, Move, "~/move", execute_callback=self.on_move, callback_group=group)
        ActionServer(self, Grasp, "~/grasp", execute_callback=self.on_grasp, callback_group=group)
        self.create_service(Trigger, "~/stop", self.on_stop, callback_group=group)
        self.states = self.create_publisher(JointState, "~/joint_states", 1)
        self.stats = self.create_publisher(DiagnosticStatus, "~/standin_stats", 10)
        self.create_timer(1.0 / 15.0, self.publish_state)
        self.create_timer(1.0, lambda: self.stats.publish(DiagnosticStatus(name="gripper stand-in", values=[
            KeyValue(key=k, value=str(v)) for k, v in {**self.calls, "width": round(self.width, 4)}.items()])))

    def publish_state(self) -> None:
        msg = JointState(name=list(self.robot.finger_joints), position=[self.width / 2] * 2, velocity=[0.0] * 2,
                         effort=[0.0] * 2)
        msg.header.stamp = self.get_clock().now().to_msg()
        self.states.publish(msg)

    def travel(self, goal_width: float, speed: float, handle, feedback) -> float:
        """Move the fingers towards goal_width at speed (stopped by the object or a stop); the width reached."""
        self.stop_requested = False
        speed = max(speed, 1e-3)
        blocker = self.object_width if 0 < self.object_width < self.width else 0.0
        target = max(goal_width, blocker) if goal_width < self.width else goal_width
        while abs(self.width - target) > 1e-5 and not self.stop_requested:
            step = float(np.clip(target - self.width, -speed * 0.02, speed * 0.02))
            self.width = float(np.clip(self.width + step, 0.0, self.MAX_WIDTH))
            handle.publish_feedback(feedback(current_width=self.width))
            time.sleep(0.02)
        return self.width

    def on_homing(self, handle):
        self.calls["homing"] += 1
        self.travel(self.MAX_WIDTH, 0.1, handle, Homing.Feedback)
        handle.succeed()
        return Homing.Result(success=True)

    def on_move(self, handle):
        self.calls["move"] += 1
        g = handle.request
        if not 0.0 <= g.width <= self.MAX_WIDTH:
            handle.abort()
            return Move.Result(success=False, error=f"Commanded width {g.width} out of range")
        reached = self.travel(g.width, g.speed, handle, Move.Feedback)
        ok = abs(reached - g.width) < 1e-3
        (handle.succeed if ok else handle.abort)()
        return Move.Result(success=ok)

    def on_grasp(self, handle):
        self.calls["grasp"] += 1
        g = handle.request
        if self.grasp_error:  # libfranka threw (franka_gripper: success false, error = the exception's text)
            handle.abort()
            return Grasp.Result(success=False, error=self.grasp_error)
        reached = self.travel(g.width, g.speed, handle, Grasp.Feedback)
        ok = g.width - g.epsilon.inner < reached < g.width + g.epsilon.outer
        (handle.succeed if ok else handle.abort)()
        return Grasp.Result(success=ok)

    def on_stop(self, _req, resp):
        self.calls["stop"] += 1
        self.stop_requested = True
        resp.success = True
        return resp


def main() -> None:
    """The controller side spins alone on a single-threaded executor (rclpy's multi-threaded one falls behind its
    100 Hz on a busy 2-core machine); the gripper's and recovery's long-running actions spin on their own executor in a
    second thread."""
    rclpy.init(args=sys.argv)
    probe = Node("franka_standin", allow_undeclared_parameters=True,
                 automatically_declare_parameters_from_overrides=True)
    params = {n: probe.get_parameter(n).value for n in probe.list_parameters([], 0).names}
    robot = load(str(params.get("standin.robot", "fr3")))
    arm = Arm(robot, list(params.get("standin.start_pose", [])) or None)
    actions = MultiThreadedExecutor(num_threads=3)
    actions.add_node(RecoveryServer(arm))
    actions.add_node(Gripper(robot, float(params.get("standin.object_width", 0.0)),
                             str(params.get("standin.grasp_error", ""))))
    threading.Thread(target=actions.spin, daemon=True).start()
    control = SingleThreadedExecutor()
    control.add_node(Controller(arm))
    try:
        control.spin()
    except (KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
        pass
    finally:
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
