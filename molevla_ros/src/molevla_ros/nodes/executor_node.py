"""executor: action chunks -> limited end-effector commands for the robot interface (MoveIt Servo twists by
default; a joint trajectory controller or moveit_py: see robot_interfaces.py) + gripper.

Runs at its own rate. Halts (zero twist) when chunks stop or go stale, when the policy process dies
(DDS liveliness of the chunk publisher), when the camera frames or joint states it watches go stale, when
the goal is cleared, on a halting MoveIt Servo status, or on e-stop (std_msgs/Bool, latched).

Refused inputs never move the arm: a chunk that is malformed, implausible (steps beyond the speed limits
times a margin), named or timed differently from the action layout, or stamped in the future halts the arm;
a late (stale) chunk is dropped like a missing one. Joint states are read by name and stamp; only valid ones
that carry every arm joint feed the watchdog.

Stop semantics: after an e-stop (even once released), or when the robot's joint states vanished for
robot_lost_s (robot or simulator restarted), the arm holds until a new goal arrives or molevla/resume
(std_srvs/Trigger) is called; releasing the e-stop never starts motion by itself.
With dry_run it computes and logs the commands but sends nothing to the robot.
"""
from __future__ import annotations

import time

import numpy as np
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.node import Node
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Bool, String
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from molevla_ros.control.chunk_executor import ChunkExecutor, Limits
from molevla_ros.control import panda_kinematics as kin
from molevla_ros.control.panda_kinematics import JOINT_NAMES
from molevla_ros.inputs.joint_states import JointStateError, read_joint_state
from molevla_ros.nodes.common import (IMAGE_SOURCE, LATCHED_QOS, REALTIME_PRIORITY, SENSOR_QOS, TOPIC_CHUNK,
                                      TOPIC_ESTOP, TOPIC_GOAL, TOPIC_GRIPPER, TOPIC_JOINT_STATES, TOPIC_PLAN,
                                      TOPIC_TWIST, Param, Status, chunk_qos, chunk_to_msg, declare, image_topic,
                                      msg_to_chunk, now_s, run, stamp_s)
from molevla_ros.nodes.robot_interfaces import (FrankaGripperActions, GripperTopic, InterfaceUnavailable,
                                                JointTrajectoryInterface, MoveItPyInterface, ServoInterface)

PARAMS = [
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
    Param("max_chunk_age_s", 0.5, "Chunks stamped longer ago than this are rejected (stale observation).",
          low=0.01, high=10.0),
    Param("chunk_timeout_s", 0.5, "No new chunk for this long halts the arm.", low=0.01, high=10.0),
    Param("max_linear_speed", 0.3, "m/s, end-effector.", low=0.0, high=1.7),
    Param("max_angular_speed", 1.0, "rad/s, end-effector.", low=0.0, high=2.5),
    Param("max_linear_accel", 3.0, "m/s^2, end-effector.", low=0.0, high=13.0),
    Param("max_angular_accel", 8.0, "rad/s^2, end-effector.", low=0.0, high=25.0),
    Param("max_linear_jerk", 50.0, "m/s^3, end-effector (bounds how fast the acceleration changes).", low=0.0),
    Param("max_angular_jerk", 400.0, "rad/s^3, end-effector.", low=0.0),
    Param("plausibility_margin", 3.0, "A chunk step asking for more than this times the speed limits is refused "
          "whole (the producer is broken: wrong units or scale) and the arm halts; never clamped and run.",
          low=1.0, high=100.0),
    Param("workspace_min", [0.15, -0.5, 0.005], "Hand (TCP) box in the base frame, lower corner (m), from the "
          "joint states' forward kinematics; empty disables the box."),
    Param("workspace_max", [0.85, 0.5, 0.7], "Upper corner of the hand box (m)."),
    Param("workspace_approach_s", 0.25, "Near a box face the speed towards it is at most distance / this.",
          low=0.01, high=10.0),
    Param("frame_id", "panda_link0", "The robot base frame (fr3_link0 on an FR3): frame of the published twists "
          "and of moveit_py goals; chunks' deltas are expressed in it."),
    Param("tcp_frame", "panda_hand_tcp", "interface moveit_py: the link whose pose is commanded (fr3_hand_tcp)."),
    IMAGE_SOURCE,
    REALTIME_PRIORITY,
    Param("camera_timeout_s", 0.35, "Halt when the last frame the policy reads (image_source) is older than this "
          "(0 disables).", low=0.0, high=10.0),
    Param("joint_state_timeout_s", 0.2, "Halt when the last valid joint state is older than this (0 disables); "
          "joint states stamped further than this in the past or future are refused.", low=0.0, high=10.0),
    Param("joint_names", JOINT_NAMES, "The 7 arm joints in kinematic order (fr3_joint1..7 on an FR3), that every "
          "joint state must carry; joint_trajectory commands name them."),
    Param("robot_lost_s", 1.0, "No valid joint state for this long means the robot (or simulator) went away: "
          "the arm then holds until a new goal or molevla/resume.", low=0.05, high=60.0),
    Param("policy_liveliness_s", 0.1, "Halt when the chunk publisher (policy process) misses its DDS liveliness "
          "lease this long; chunk publishers must offer a lease this short (0 disables). See README 'Faults' for "
          "the measured trade-off between time to halt and false halts under CPU load.", low=0.0, high=10.0),
    Param("dry_run", False, "Log commands instead of publishing them (default true in the real-robot launch)."),
    Param("interface", "servo", "Robot interface: servo (TwistStamped for MoveIt Servo), joint_trajectory "
          "(JointTrajectory from IK, for a joint trajectory controller) or moveit_py (plan + execute)."),
    Param("twist_topic", TOPIC_TWIST, "interface servo: MoveIt Servo's twist input."),
    Param("joint_trajectory_topic", "fr3_arm_controller/joint_trajectory", "interface joint_trajectory: the "
          "controller's command topic."),
    Param("trajectory_lookahead_s", 0.1, "joint_trajectory / moveit_py: how far ahead each command reaches.",
          low=0.01, high=2.0),
    Param("planning_group", "fr3_arm", "interface moveit_py: MoveIt planning group."),
    Param("gripper_interface", "topic", "Gripper: topic (std_msgs/Float64, 1 open 0 closed, sim) or "
          "franka_action (franka_gripper move/grasp actions)."),
    Param("gripper_topic", TOPIC_GRIPPER, "gripper_interface topic: command topic."),
    Param("gripper_action_ns", "franka_gripper", "gripper_interface franka_action: action namespace."),
]


class ExecutorNode(Node):
    def __init__(self) -> None:
        super().__init__("executor")
        p = self.p = declare(self, PARAMS)
        box = len(p.workspace_min) == 3 and len(p.workspace_max) == 3
        limits = Limits(p.max_linear_speed, p.max_angular_speed, p.max_linear_accel, p.max_angular_accel,
                        p.max_linear_jerk, p.max_angular_jerk, tuple(p.workspace_min) if box else None,
                        tuple(p.workspace_max) if box else None, p.workspace_approach_s, p.plausibility_margin)
        self.core = ChunkExecutor(p.action_dt, limits, p.blend, p.blend_decay, p.max_chunk_age_s, p.chunk_timeout_s,
                                  adaptive_alpha=p.adaptive_alpha)
        self.status = Status(self)
        self.seen: dict[str, float] = {}  # input -> monotonic time a valid one last arrived
        self.q: np.ndarray | None = None  # latest arm joint positions (joint_names order)
        self.hold = ""  # why the arm holds until a new goal or molevla/resume ("" = not held)
        self.interface_error = ""
        self.robot, self.gripper_out = self.make_interfaces()
        self.create_subscription(JointTrajectory, TOPIC_CHUNK, self.on_chunk, chunk_qos(p.policy_liveliness_s),
                                 event_callbacks=SubscriptionEventCallbacks(liveliness=self.on_liveliness))
        # Only the arrival time matters: taken serialized (raw), the frame is never converted to Python.
        self.create_subscription(Image, image_topic(p.image_source),
                                 lambda _m: self.seen.__setitem__("camera", time.monotonic()), SENSOR_QOS, raw=True)
        self.create_subscription(JointState, TOPIC_JOINT_STATES, self.on_joints, SENSOR_QOS)
        self.create_subscription(String, TOPIC_GOAL, self.on_goal, LATCHED_QOS)
        self.create_subscription(Bool, TOPIC_ESTOP, self.on_estop, LATCHED_QOS)
        self.create_service(Trigger, "molevla/resume", self.on_resume)
        self.estop = False
        self.goal = ""
        self.gripper: float | None = None
        self.active = False
        self.last_tick = time.monotonic()
        self.create_timer(1.0 / p.rate_hz, self.tick)
        if p.plan_hz > 0:
            self.plan_pub = self.create_publisher(JointTrajectory, TOPIC_PLAN, 5)
            self.create_timer(1.0 / p.plan_hz, self.publish_plan)

    PLAN_ROWS = 32  # rows of the published plan (a policy takes as many as its horizon)

    def publish_plan(self) -> None:
        """What the queued chunks will ask for from now on, blended, at action_dt (nothing while halted)."""
        if not self.core.active:
            return
        now = self.get_clock().now()
        plan = self.core.plan(now.nanoseconds * 1e-9, self.PLAN_ROWS, self.p.action_dt)
        if len(plan):
            self.plan_pub.publish(chunk_to_msg(plan, now.to_msg(), self.p.frame_id, self.p.action_dt))

    def make_interfaces(self):
        p = self.p
        try:
            if len(p.joint_names) != len(JOINT_NAMES) or len(set(p.joint_names)) != len(JOINT_NAMES):
                raise InterfaceUnavailable(f"joint_names must list the {len(JOINT_NAMES)} arm joints once each, in "
                                           f"kinematic order (got {list(p.joint_names)})")
            if p.interface == "servo":
                robot = ServoInterface(self, p.twist_topic, p.frame_id, self.fault)
            elif p.interface == "joint_trajectory":
                robot = JointTrajectoryInterface(self, p.joint_trajectory_topic, lambda: self.q,
                                                 p.trajectory_lookahead_s, p.joint_names)
            elif p.interface == "moveit_py":
                robot = MoveItPyInterface(self, p.planning_group, lambda: self.q, p.trajectory_lookahead_s,
                                          p.frame_id, p.tcp_frame)
            else:
                raise InterfaceUnavailable(f"unknown interface {p.interface!r} (servo, joint_trajectory, moveit_py)")
            if p.gripper_interface == "topic":
                gripper = GripperTopic(self, p.gripper_topic)
            elif p.gripper_interface == "franka_action":
                gripper = FrankaGripperActions(self, p.gripper_action_ns)
            else:
                raise InterfaceUnavailable(f"unknown gripper_interface {p.gripper_interface!r} (topic, "
                                           "franka_action)")
            return robot, gripper
        except InterfaceUnavailable as e:  # never moves: no interface to send to
            self.interface_error = str(e)
            self.status("error", f"executor: {e}", error=True)
            return None, None

    def fault(self, reason: str, repeat: bool = False) -> None:
        self.core.halt(reason)
        self.status("halted", f"executor: {reason}", error=True, repeat=repeat)

    def on_joints(self, msg: JointState) -> None:
        try:
            q = read_joint_state(msg.name, msg.position, stamp_s(msg.header.stamp), now_s(self), self.p.joint_names,
                                 self.p.joint_state_timeout_s)
        except JointStateError as e:  # not a sign of life: the watchdog keeps counting
            self.status("rejected", f"executor: {e}", error=True, event=True)
            return
        self.seen["joint state"] = time.monotonic()
        self.q = q  # the 7 arm joints (checked at start-up): the box and IK use the Panda/FR3 kinematics

    def on_chunk(self, msg: JointTrajectory) -> None:
        if self.estop or self.hold or not self.goal:
            return
        actions, times, problem = msg_to_chunk(msg)
        if problem is None and msg.header.frame_id != self.p.frame_id:
            problem = f"chunk is in frame '{msg.header.frame_id}', not the executor's base frame '{self.p.frame_id}'"
        if problem is None:
            problem = self.core.add_chunk(stamp_s(msg.header.stamp), actions, now_s(self), times)
            if problem is None and self.p.plan_hz > 0:
                self.publish_plan()  # at once: the policy's next step should continue the queue this chunk made
        if problem:
            self.status.values["chunks_rejected"] = self.status.values.get("chunks_rejected", 0) + 1
            if problem.startswith("chunk is stale"):  # late: dropped like a missing chunk (chunk_timeout_s halts)
                self.status("rejected", f"executor: refused {problem}", error=True, event=True)
            else:
                self.fault(f"refused chunk: {problem}", repeat=True)  # each refused chunk is reported

    def on_liveliness(self, info) -> None:
        self.status.values["policy_alive"] = info.alive_count
        if info.alive_count_change < 0:  # any chunk publisher lost: halt (the next live chunk resumes)
            self.fault(f"the chunk publisher (policy process) gave no sign of life for {self.p.policy_liveliness_s} s "
                       "(DDS liveliness lost: stopped, hung or starved of CPU)")

    def stale_input(self) -> str:
        now = time.monotonic()
        for name, limit in (("camera", self.p.camera_timeout_s), ("joint state", self.p.joint_state_timeout_s)):
            if limit > 0 and now - self.seen.get(name, -1e9) > limit:
                return f"{name} stale: none valid for {min(now - self.seen.get(name, -1e9), 99.0):.2f} s (> {limit} s)"
        return ""

    def hold_until_resumed(self, reason: str) -> None:
        if not self.hold:
            self.hold = reason
            self.core.halt(reason)
            self.status("held", f"executor: {reason}; send a new goal or call molevla/resume", error=True)

    def on_goal(self, msg: String) -> None:
        self.goal = msg.data
        if not self.goal:
            self.core.halt("goal cleared")
        elif not self.estop and self.hold:  # a new goal is the operator's decision to move again
            self.hold = ""
            self.status("ok", f"executor: new goal '{self.goal}', hold released")

    def on_resume(self, _req: Trigger.Request, resp: Trigger.Response) -> Trigger.Response:
        if self.estop:
            resp.success, resp.message = False, "e-stop is engaged: release it first"
        elif not self.goal:
            resp.success, resp.message = False, "no goal to resume"
        else:
            resp.success, resp.message = True, f"resumed '{self.goal}'" + (f" (was held: {self.hold})" if self.hold
                                                                          else "")
            self.hold = ""
            self.status("ok", f"executor: {resp.message}")
        return resp

    def on_estop(self, msg: Bool) -> None:
        self.estop = bool(msg.data)
        if self.estop:
            self.hold = self.hold or "e-stop was engaged"
            self.core.halt("e-stop")
            self.status("stopped", "e-stop engaged", error=True)
        elif self.hold:
            self.status("held", "executor: e-stop released; the arm holds until a new goal or molevla/resume",
                        error=True)

    def tick(self) -> None:
        if self.robot is None:
            if self.goal:  # reported while a goal waits, so the operator sees why nothing moves
                self.status("halted", f"executor: {self.interface_error}", error=True)
            return
        t, stamp = time.monotonic(), self.get_clock().now()  # one reading: commands are stamped with the tick time
        dt, self.last_tick = t - self.last_tick, t
        last_joints = self.seen.get("joint state")
        if last_joints is not None and t - last_joints > self.p.robot_lost_s:
            self.hold_until_resumed(f"no valid joint state for {t - last_joints:.1f} s (robot or simulator "
                                    "restarted?)")
        stale = self.stale_input() if self.core.active else ""
        if stale:
            self.core.halt(stale)
        ee = kin.forward(self.q)[:3, 3] if self.q is not None else None
        cmd = self.core.step(stamp.nanoseconds * 1e-9, dt, ee)
        if cmd.active:
            self.status("ok", "executing chunks")
        elif self.active:
            self.status("halted", f"executor: {cmd.reason}", error=bool(self.goal))
        self.active = cmd.active
        self.status.values.update(active=cmd.active, reason=cmd.reason, estop=self.estop, held=self.hold or "no")
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
