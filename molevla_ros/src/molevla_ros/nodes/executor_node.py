"""executor: action chunks -> limited end-effector commands for the robot interface (MoveIt Servo twists by
default; a joint trajectory controller or moveit_py: see robot_interfaces.py) + gripper.

Runs at its own rate. Halts (zero twist) when chunks stop or go stale, when the policy process dies
(DDS liveliness of the chunk publisher), when the camera frames or joint states it watches go stale, when
the goal is cleared or changed (a new goal drops the old goal's chunks, and chunks observed before the change), on a
halting MoveIt Servo status, or on e-stop (std_msgs/Bool, latched).

Refused inputs never move the arm: a chunk that is malformed, implausible (steps beyond the speed limits
times a margin), named or timed differently from the action layout, or stamped in the future halts the arm;
a late (stale) chunk, or one stamped before the chunk already queued, is dropped like a missing one. Joint
states are read by name and stamp; only valid ones that carry every arm joint feed the watchdog.

Stop semantics (control/watchdog.py): after an e-stop (even once released), when the robot's joint states vanished
for robot_lost_s (robot or simulator restarted), or after a robot error (a franka reflex), the arm holds until a new
goal arrives or molevla/resume (std_srvs/Trigger) is called; releasing the e-stop never starts motion by itself.
molevla/recover runs the robot's error recovery (franka_ros2: action_server/error_recovery) and still holds;
molevla/go_to_start moves the arm to the robot profile's start pose (the pose the models were trained from) through
its joint trajectory controller, and holds there.
Every robot fact (joint names and limits, frames, end-effector limits, gripper, topics) comes from the robot profile
(`robot`). With dry_run it computes and logs the commands but sends nothing to the robot.
"""
from __future__ import annotations

import math
import time

import numpy as np
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.node import Node
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Bool, String
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from molevla_ros import franka_kinematics as kin
from molevla_ros.control.chunk_executor import ChunkExecutor, Limits
from molevla_ros.control.watchdog import MotionGate, Watchdog
from molevla_ros.inputs.joint_states import JointStateError, read_joint_state
from molevla_ros.nodes.messages import chunk_to_msg, msg_to_chunk, now_s, stamp_s
from molevla_ros.nodes.params import IMAGE_SOURCE, REALTIME_PRIORITY, ROBOT, Param, declare, load_robot
from molevla_ros.nodes.process import run
from molevla_ros.nodes.qos import LATCHED_QOS, SENSOR_QOS, chunk_qos
from molevla_ros.nodes.status import Status
from molevla_ros.topics import TOPIC_CHUNK, TOPIC_ESTOP, TOPIC_GOAL, TOPIC_PLAN, image_topic
from molevla_ros.nodes.robot_interfaces import (GripperTopic, InterfaceUnavailable, JointTrajectoryInterface,
                                                MoveItPyInterface, ServoInterface)

GOAL_CHANGED = "goal changed"  # the halt reason when a goal replaces another

PARAMS = [
    ROBOT,
    Param("rate_hz", 50.0, "Command rate to the robot interface.", low=1.0, high=1000.0),
    Param("action_dt", 0.1, "Period (s) of a chunk that does not declare one (a single point); chunks declare "
          "their model's period through time_from_start and run at it (refused outside 0.01-1 s or uneven).",
          low=0.01, high=1.0),
    Param("blend", "average", "Overlapping chunks: 'average' (newest weighted most), 'latest', or 'adaptive' "
          "(CogACT's adaptive ensemble: weights exp(adaptive_alpha * cosine similarity to the newest)). With a "
          "real-time-chunking policy use 'latest': each chunk already continues the previous one.",
          choices=("average", "latest", "adaptive")),
    Param("plan_hz", 0.0, "Real-time chunking: publish what the queued chunks will ask for next (the blended "
          "actions at action_dt from now on, JointTrajectory on molevla/executor_plan) on each accepted chunk and "
          "this often; 0: off.", low=0.0, high=200.0),
    Param("blend_decay", 0.5, "average: weight of each older overlapping chunk relative to the next newer one.",
          low=0.0, high=1.0),
    Param("adaptive_alpha", 0.1, "adaptive: CogACT's alpha (0 = plain mean of the overlapping predictions).", low=0.0),
    Param("ensemble_window", 4, "The newest chunks that are blended (older ones are dropped); CogACT blends the last 7 "
          "(Bridge) or 2 (Google robot) predictions, one per executed action (the launch sets it from the model).",
          low=1, high=64),
    Param("max_chunk_age_s", 0.5, "Chunks stamped longer ago than this are rejected (stale observation).",
          low=0.01, high=10.0),
    Param("chunk_timeout_s", 0.5, "No new chunk for this long halts the arm.", low=0.01, high=10.0),
    Param("speed_scale", 1.0, "Fraction of the robot profile's end-effector speed limits to use (e.g. 0.3 for a "
          "first run on a new robot); takes effect at once.", low=0.01, high=1.0, dynamic=True),
    Param("plausibility_margin", 3.0, "A chunk step asking for more than this times the robot profile's speed limits "
          "(before speed_scale) is refused whole (the producer is broken: wrong units or scale) and the arm halts; "
          "never clamped and run.", low=1.0, high=100.0),
    Param("model_linear_speed", 0.0, "The serving model's fastest step (m/s, from its action range; the launch sets "
          "it from the model folder): steps up to it are plausible even above plausibility_margin (they are "
          "clamped to the profile's limits). 0: none.", low=0.0, high=100.0),
    Param("model_angular_speed", 0.0, "The same for rotation (rad/s).", low=0.0, high=100.0),
    Param("workspace_approach_s", 0.25, "Near a face of the profile's hand box the speed towards it is at most "
          "distance / this.", low=0.01, high=10.0),
    IMAGE_SOURCE,
    REALTIME_PRIORITY,
    Param("camera_timeout_s", 0.35, "Halt when the last frame the policy reads (image_source) is older than this "
          "(0 disables).", low=0.0, high=10.0),
    Param("joint_state_timeout_s", 0.2, "Halt when the last valid joint state is older than this (0 disables); "
          "joint states stamped further than this in the past or future are refused.", low=0.0, high=10.0),
    Param("robot_lost_s", 1.0, "No valid joint state for this long means the robot (or simulator) went away: "
          "the arm then holds until a new goal or molevla/resume.", low=0.05, high=60.0),
    Param("policy_liveliness_s", 0.05, "Halt when the chunk publisher (policy process) misses its DDS liveliness "
          "lease this long (plus policy_liveliness_grace_s); chunk publishers must offer a lease this short (0 "
          "disables). docs/results/false_halts: time to halt after a kill and false halts at normal load and under "
          "saturation, per setting.", low=0.0, high=10.0),
    Param("policy_liveliness_grace_s", 0.05, "A lost liveliness halts the arm only if it is not regained within "
          "this long (one late assertion of a live but CPU-starved policy is forgiven); 0: halt at once.", low=0.0,
          high=10.0),
    Param("dry_run", False, "Log commands instead of publishing them (default true in the real-robot launch)."),
    Param("interface", "servo", "Robot interface: servo (TwistStamped for MoveIt Servo), joint_trajectory "
          "(JointTrajectory from IK, for a joint trajectory controller) or moveit_py (plan + execute).",
          choices=("servo", "joint_trajectory", "moveit_py")),
    Param("trajectory_lookahead_s", 0.1, "joint_trajectory / moveit_py: how far ahead each command reaches.",
          low=0.01, high=2.0),
    Param("moveit_py_config", "", "interface moveit_py: YAML file with MoveItPy's configuration (robot model, "
          "kinematics, planning pipeline, controllers); fr3.launch.py interface:=moveit_py writes it."),
    Param("home_gripper", True, "franka_action gripper: home it once when its actions appear (not in dry run)."),
    Param("start_pose_speed", 0.2, "molevla/go_to_start: fraction of the profile's joint velocity limits to move "
          "at.", low=0.01, high=1.0),
]


class ExecutorNode(Node):
    def __init__(self) -> None:
        super().__init__("executor")
        p = self.p = declare(self, PARAMS)
        self.profile = load_robot(self, p.robot)
        self.applied_scale = p.speed_scale
        self.core = ChunkExecutor(p.action_dt, self.limits(), p.blend, p.blend_decay, p.max_chunk_age_s,
                                  p.chunk_timeout_s, max_chunks=p.ensemble_window, adaptive_alpha=p.adaptive_alpha)
        self.status = Status(self)
        self.watchdog = Watchdog({"camera": p.camera_timeout_s, "joint state": p.joint_state_timeout_s},
                                 p.robot_lost_s, p.policy_liveliness_grace_s)
        self.gate = MotionGate()
        self.q: np.ndarray | None = None  # latest arm joint positions (the profile's arm_joints order)
        self.goal_changed_at = -math.inf  # when a goal replaced another (node clock, s); older chunks are dropped
        self.interface_error = ""
        self.robot_state = None  # the robot's own mode (franka reflexes), where the profile names it
        self.start_motion: dict | None = None  # go_to_start in progress: started, duration, goal, sent
        self.robot, self.gripper_out = self.make_interfaces()
        self.create_subscription(JointTrajectory, TOPIC_CHUNK, self.on_chunk, chunk_qos(p.policy_liveliness_s),
                                 event_callbacks=SubscriptionEventCallbacks(liveliness=self.on_liveliness))
        # Only the arrival time matters: taken serialized (raw), the frame is never converted to Python.
        self.create_subscription(Image, image_topic(p.image_source),
                                 lambda _m: self.watchdog.seen("camera", time.monotonic()), SENSOR_QOS, raw=True)
        self.create_subscription(JointState, self.profile.joint_states, self.on_joints, SENSOR_QOS)
        self.create_subscription(String, TOPIC_GOAL, self.on_goal, LATCHED_QOS)
        self.create_subscription(Bool, TOPIC_ESTOP, self.on_estop, LATCHED_QOS)
        self.create_service(Trigger, "molevla/resume", self.on_resume)
        self.create_service(Trigger, "molevla/recover", self.on_recover)
        self.create_service(Trigger, "molevla/go_to_start", self.on_go_to_start)
        self.gripper: float | None = None
        self.active = False
        self.last_tick = time.monotonic()
        self.create_timer(1.0 / p.rate_hz, self.tick)
        if p.plan_hz > 0:
            self.plan_pub = self.create_publisher(JointTrajectory, TOPIC_PLAN, 5)
            self.create_timer(1.0 / p.plan_hz, self.publish_plan)

    PLAN_ROWS = 32  # rows of the published plan (a policy takes as many as its horizon)

    def limits(self) -> Limits:
        """The robot profile's end-effector limits, speeds scaled by speed_scale."""
        return Limits.from_profile(self.profile.limits, self.p.speed_scale, self.p.workspace_approach_s,
                                   self.p.plausibility_margin, (self.p.model_linear_speed, self.p.model_angular_speed))

    def publish_plan(self) -> None:
        """What the queued chunks will ask for from now on, blended, at action_dt (nothing while halted)."""
        if not self.core.active:
            return
        now = self.get_clock().now()
        plan = self.core.plan(now.nanoseconds * 1e-9, self.PLAN_ROWS, self.p.action_dt)
        if len(plan):
            self.plan_pub.publish(chunk_to_msg(plan, now.to_msg(), self.profile.base_frame, self.p.action_dt))

    def make_interfaces(self):
        p, robot = self.p, self.profile
        try:
            if p.interface == "servo":
                arm = ServoInterface(self, robot, self.fault)
            elif p.interface == "joint_trajectory":
                arm = JointTrajectoryInterface(self, robot, lambda: self.q, p.trajectory_lookahead_s)
            else:
                arm = MoveItPyInterface(self, robot, lambda: self.q, p.trajectory_lookahead_s, p.moveit_py_config)
            if robot.gripper.interface == "franka_action":
                from molevla_ros.nodes.franka import FrankaGripper

                gripper = FrankaGripper(self, robot.gripper, self.report, home=p.home_gripper and not p.dry_run)
            else:
                gripper = GripperTopic(self, robot.gripper.topic)
            if robot.robot_state:
                from molevla_ros.nodes.franka import FrankaRobotState

                self.robot_state = FrankaRobotState(self, robot.robot_state, robot.error_recovery_action,
                                                    self.on_robot_error, self.report)
            # go_to_start's joint trajectory to the controller (the arm interface itself when it is one)
            self.joint_commands = arm if isinstance(arm, JointTrajectoryInterface) else \
                JointTrajectoryInterface(self, robot, lambda: self.q, p.trajectory_lookahead_s)
            return arm, gripper
        except InterfaceUnavailable as e:  # never moves: no interface to send to
            self.interface_error = str(e)
            self.status("error", f"executor: {e}", error=True)
            return None, None

    def report(self, message: str, error: bool) -> None:
        """A message of an interface adapter (gripper results, recovery) on status."""
        self.status("error" if error else "ok", f"executor: {message}", error=error, event=error)

    def fault(self, reason: str, repeat: bool = False) -> None:
        self.core.halt(reason)
        self.status("halted", f"executor: {reason}", error=True, repeat=repeat)

    def on_robot_error(self, reason: str) -> None:
        """The robot stopped itself (reflex, user stop): stop commanding and hold until the operator resumes."""
        self.start_motion = None
        self.hold_until_resumed(f"{reason}: call molevla/recover first", replace=True)

    def on_joints(self, msg: JointState) -> None:
        try:
            q = read_joint_state(msg.name, msg.position, stamp_s(msg.header.stamp), now_s(self),
                                 self.profile.arm_joints, self.p.joint_state_timeout_s,
                                 (self.profile.joint_lower, self.profile.joint_upper))
        except JointStateError as e:  # not a sign of life: the watchdog keeps counting
            self.status("rejected", f"executor: {e}", error=True, event=True)
            return
        self.watchdog.seen("joint state", time.monotonic())
        self.q = q  # the 7 arm joints: the box and IK use the Franka kinematics

    def on_chunk(self, msg: JointTrajectory) -> None:
        if not self.gate.open:
            return
        actions, times, problem = msg_to_chunk(msg)
        frame = self.profile.base_frame
        if problem is None and msg.header.frame_id != frame:
            problem = f"chunk is in frame '{msg.header.frame_id}', not the executor's base frame '{frame}'"
        stamp = stamp_s(msg.header.stamp)
        if problem is None and stamp < self.goal_changed_at:
            # observed before the goal changed: the old goal's (a policy step under way then), or the new goal's
            # from a frame that predates it; the policy's next step brings a newer one. Expected, so no status.
            self.status.values["chunks_before_goal_change"] = self.status.values.get("chunks_before_goal_change", 0) + 1
            return
        if problem is None:
            problem = self.core.add_chunk(stamp, actions, now_s(self), times)
            if problem is None and self.p.plan_hz > 0:
                self.publish_plan()  # at once: the policy's next step should continue the queue this chunk made
        if problem:
            self.status.values["chunks_rejected"] = self.status.values.get("chunks_rejected", 0) + 1
            # late or older than what is queued: dropped like a missing chunk (chunk_timeout_s halts)
            if problem.startswith(("chunk is stale", "chunk is out of order")):
                self.status("rejected", f"executor: refused {problem}", error=True, event=True)
            else:
                self.fault(f"refused chunk: {problem}", repeat=True)  # each refused chunk is reported

    def on_liveliness(self, info) -> None:
        self.status.values["policy_alive"] = info.alive_count
        self.watchdog.liveliness_changed(info.alive_count_change, time.monotonic())
        self.status.values["liveliness_forgiven"] = self.watchdog.forgiven
        self.check_liveliness(time.monotonic())

    def check_liveliness(self, now: float) -> None:
        """Halt when the chunk publisher lost its liveliness (any of them: the next live chunk resumes) and did not
        regain it within the grace."""
        if self.watchdog.liveliness_expired(now):
            self.fault(f"the chunk publisher (policy process) gave no sign of life for {self.p.policy_liveliness_s} s "
                       f"(+ {self.p.policy_liveliness_grace_s} s grace; DDS liveliness lost: stopped, hung or starved "
                       "of CPU)")

    def hold_until_resumed(self, reason: str, replace: bool = False) -> None:
        """Halt and hold for `reason` (`replace`: also when already held, with the new reason)."""
        if replace:
            self.gate.hold = ""
        if self.gate.hold_until_resumed(reason):
            self.core.halt(reason)
            self.status("held", f"executor: {reason}; send a new goal or call molevla/resume", error=True)

    def on_goal(self, msg: String) -> None:
        previous = self.gate.goal
        change = self.gate.set_goal(msg.data)
        if not msg.data:
            self.core.halt("goal cleared")
        elif previous and msg.data != previous:  # the old goal's chunks are dropped: the arm stops following it
            self.goal_changed_at = now_s(self)  # at once and moves again on the new goal's first chunk
            self.core.halt(f"{GOAL_CHANGED} to '{msg.data[:80]}'")
        if change:
            self.status("ok", f"executor: {change}")

    def on_resume(self, _req: Trigger.Request, resp: Trigger.Response) -> Trigger.Response:
        resp.success, resp.message = self.gate.resume()
        if resp.success:
            self.status("ok", f"executor: {resp.message}")
        return resp

    def on_recover(self, _req: Trigger.Request, resp: Trigger.Response) -> Trigger.Response:
        """The robot's error recovery (franka_ros2's action); the arm keeps holding until a goal or resume."""
        if self.robot_state is None:
            resp.success, resp.message = False, f"robot profile {self.profile.name} has no error recovery"
        elif not self.robot_state.failed:
            resp.success, resp.message = False, f"the robot is not in an error state ({self.robot_state.mode})"
        else:
            resp.success, resp.message = self.robot_state.recover()
        return resp

    def on_go_to_start(self, _req: Trigger.Request, resp: Trigger.Response) -> Trigger.Response:
        """Move to the profile's start pose through the joint trajectory controller, then hold there."""
        why = ("e-stop is engaged" if self.gate.estop else
               "the robot is in an error state: molevla/recover first" if self.robot_state and self.robot_state.failed
               else "no joint state yet" if self.q is None else
               "dry run: nothing is sent to the robot" if self.p.dry_run else "")
        if why:
            resp.success, resp.message = False, why
            return resp
        goal = np.array(self.profile.start_pose)
        speed = np.array(self.profile.joint_velocity) * self.p.start_pose_speed
        duration = max(2.0, float(np.max(np.abs(goal - self.q) / speed)))
        self.hold_until_resumed("moving to the start pose", replace=True)
        self.start_motion = {"started": time.monotonic(), "duration": duration, "goal": goal, "sent": False}
        if self.gripper_out is not None:
            self.gripper_out.send(1.0)  # the models start with an open hand
            self.gripper = 1.0
        resp.success, resp.message = True, f"moving to the start pose in {duration:.1f} s"
        return resp

    def follow_start_motion(self, t: float) -> None:
        """go_to_start: after 0.3 s without twists (Servo stops publishing to the controller), one trajectory to the
        start pose; then report arrival (or not) and hold."""
        m = self.start_motion
        if t - m["started"] >= 0.3 and not m["sent"]:
            self.joint_commands.publish(m["goal"], m["duration"])
            m["sent"] = True
        arrived = self.q is not None and float(np.max(np.abs(self.q - m["goal"]))) < 0.01
        if arrived or t - m["started"] > m["duration"] + 3.0:
            self.start_motion = None
            self.hold_until_resumed("at the start pose" if arrived else "did not reach the start pose", replace=True)

    def on_estop(self, msg: Bool) -> None:
        self.gate.set_estop(bool(msg.data))
        if self.gate.estop:
            self.core.halt("e-stop")
            self.start_motion = None
            if self.gripper_out is not None and not self.p.dry_run:
                self.gripper_out.stop()
            self.status("stopped", "e-stop engaged", error=True)
        elif self.gate.hold:
            self.status("held", "executor: e-stop released; the arm holds until a new goal or molevla/resume",
                        error=True)

    def tick(self) -> None:
        if self.robot is None:
            if self.gate.goal:  # reported while a goal waits, so the operator sees why nothing moves
                self.status("halted", f"executor: {self.interface_error}", error=True)
            return
        t, stamp = time.monotonic(), self.get_clock().now()  # one reading: commands are stamped with the tick time
        dt, self.last_tick = t - self.last_tick, t
        if self.applied_scale != self.p.speed_scale:  # changed at run time (ros2 param set)
            self.core.limits, self.applied_scale = self.limits(), self.p.speed_scale
        self.check_liveliness(t)
        lost = self.watchdog.robot_lost(t)
        if lost:
            self.hold_until_resumed(lost)
        stale = self.watchdog.stale(t) if self.core.active else ""
        if stale:
            self.core.halt(stale)
        if self.robot.waiting:  # e.g. Servo not yet in twist mode: it would drop every twist
            self.core.halt(self.robot.waiting)
            if self.gate.goal:
                self.status("halted", f"executor: {self.robot.waiting}", error=True)
        if self.start_motion is not None:
            self.follow_start_motion(t)
            return  # no twists meanwhile: Servo must stop writing to the controller
        ee = kin.forward(self.q)[:3, 3] if self.q is not None else None
        cmd = self.core.step(stamp.nanoseconds * 1e-9, dt, ee)
        if cmd.active:
            self.status("ok", "executing chunks")
        elif self.active and cmd.reason.startswith(GOAL_CHANGED):  # the operator's doing, not a fault
            self.status("ok", f"executor: {cmd.reason}; waiting for its first chunk")
        elif self.active:
            self.status("halted", f"executor: {cmd.reason}", error=bool(self.gate.goal))
        self.active = cmd.active
        self.status.values.update(active=cmd.active, reason=cmd.reason, estop=self.gate.estop,
                                  held=self.gate.hold or "no")
        if cmd.active:
            key = "dry_run_commands" if self.p.dry_run else "commands_sent"
            self.status.values[key] = self.status.values.get(key, 0) + 1
        if self.p.dry_run:
            if cmd.active:
                self.get_logger().info(f"dry run: twist lin {cmd.linear.round(3)} ang {cmd.angular.round(3)} "
                                       f"gripper {cmd.gripper_open}", throttle_duration_sec=1.0)
            return
        self.robot.send(cmd, stamp.to_msg())  # a zero command while halted: the robot holds position
        if cmd.gripper_open is not None and cmd.gripper_open != self.gripper:
            self.gripper = cmd.gripper_open
            self.gripper_out.send(self.gripper)


def main(args: list[str] | None = None) -> None:
    run(ExecutorNode, args, events=True)


if __name__ == "__main__":
    main()
