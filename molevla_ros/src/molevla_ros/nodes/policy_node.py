"""policy: latest frame + goal + joint state -> backend -> action chunk (+ layer mask, stats), at most control_hz.

`trigger: frame` (default) steps as soon as a new camera frame arrives and a step is due (at most control_hz), so
the frame does not wait for a timer; a timer at control_hz still reports why a robot with a goal is not stepping
(no frame, stale inputs). `trigger: timer` steps on the timer: one node can then serve several robots (`robots`:
namespace prefixes) with one batch per tick (each MoLe request keeps its own layer route).

The chunk is a trajectory_msgs/JointTrajectory whose "joints" are the action dimensions
(dx dy dz droll dpitch dyaw gripper), one point per action step, stamped with the observation's
capture time so the executor can compensate latency. Any input problem publishes no chunk (the
executor then halts) and reports why on molevla/status.
"""
from __future__ import annotations

import time

import numpy as np
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticStatus, KeyValue
from rclpy.node import Node
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import MultiArrayDimension, String, UInt8MultiArray
from trajectory_msgs.msg import JointTrajectory

from molevla_ros.backends.base import Observation, PolicyBackend
from molevla_ros.backends.registry import BackendUnavailable, make_backend
from molevla_ros.paths import DEFAULT_MODEL
from molevla_ros.control.chunk_executor import validate_chunk
from molevla_ros.inputs.image_wire import WireImage, read_image
from molevla_ros.inputs.images import ImageError, check_frame_size
from molevla_ros.inputs.joint_states import JointStateError, read_joint_state
from molevla_ros.model.goal_familiarity import DEFAULT_MIN_SIMILARITY
from molevla_ros.nodes.messages import chunk_to_msg, msg_to_chunk, msg_to_frame, msg_to_rgb, now_s, stamp_s
from molevla_ros.nodes.params import (FRAME_SIZE_PARAMS, IMAGE_SOURCE, REALTIME_PRIORITY, ROBOT, Param, declare,
                                      load_robot)
from molevla_ros.nodes.process import run
from molevla_ros.nodes.qos import LATCHED_QOS, SENSOR_QOS, chunk_qos
from molevla_ros.nodes.status import Status
from molevla_ros.topics import TOPIC_CHUNK, TOPIC_GOAL, TOPIC_LAYER_MASK, TOPIC_PLAN, TOPIC_POLICY_STATS, image_topic

PARAMS = [
    ROBOT,
    Param("backend", "mole_torch",
          "Policy backend: mole_torch (PyTorch), mole_onnx (ONNX Runtime, CPU), mole_tensorrt (TensorRT, GPU), or "
          "scripted_expert (reads simulator ground truth; sim only, not a learned policy)."),
    Param("model_dir", DEFAULT_MODEL, "MoLe-VLA model folder: absolute, or a name under the package's models/ "
          "(an imported CogACT: molevla import-cogact). Its config.json carries the action period, horizon, "
          "action layout and image preprocessing."),
    Param("route", "mole", "Layer routing: mole (STAR router), full, random or first_k (early exit). A model "
          "whose router is not trained yet (fresh import) runs full depth and says so on its status.",
          choices=("mole", "full", "random", "first_k")),
    Param("device", "cpu", "Device for mole_torch / mole_tensorrt (cpu, cuda, cuda:1, ...)."),
    Param("precision", "fp32", "mole_torch: fp32, fp16 or bf16 (GPU); mole_tensorrt: fp16 or fp32 engines.",
          choices=("fp32", "fp16", "bf16")),
    Param("cuda_graphs", False, "mole_torch on CUDA: replay captured CUDA graphs (each decoder layer, the action "
          "head) per batch size; with fp16 about 3x faster than eager on an H100 "
          "(docs/backends.md 'Measured on a GPU')."),
    Param("threads", 1, "CPU threads for the backend's own work (torch, ONNX Runtime); 0: the library default (one "
          "per core). The other nodes share these cores: one thread avoids pools that wait on each other "
          "(docs/operating.md 'Safety behaviour').",
          low=0, high=256),
    Param("control_hz", 5.0, "Policy steps (chunks) per second (trigger frame: at most this many).", low=0.1,
          high=100.0),
    Param("keep_layers", 0, "Decoder layers per step for the routes that skip (mole: the router's top k); 0: the "
          "model's own keep ratio. The compute knob: fewer layers, faster steps.", low=0, high=1024, dynamic=True),
    Param("latency_budget_ms", 0.0, "When > 0: each step keeps as many decoder layers as fit this model time, from "
          "the last step's measured fixed and per-layer times (overrides keep_layers; at least 1 layer).", low=0.0,
          high=60000.0, dynamic=True),
    Param("min_goal_similarity", DEFAULT_MIN_SIMILARITY, "Models with a goal reference (MiniLM text): a goal whose "
          "sentence embedding has cosine similarity below this to every goal the model was trained on is refused: no "
          "chunks, the reason and the nearest known goal on status. Paraphrases score about 0.55-1, other languages "
          "and unrelated requests 0.1-0.5 (docs/model.md 'Goals in operators' words'). Refused too: a goal naming "
          "none of the training goals' colours, a colour they do not have, a negation, or a colour naming another kind "
          "of thing than in the goal it would be read as ('stack the red cube on the blue cube'). 0 disables the "
          "checks. Typing errors are corrected against the "
          "training goals' words either way (status 'accepted (typing corrected)').", low=0.0, high=1.0),
    Param("read_as_known_goal", True, "Models with a goal reference: act on the training goal an accepted goal means "
          "(of the recorded goals naming the same colours in the same order, the one whose training wordings' mean "
          "embedding is nearest: 'Drive the red cuboid across to the green marker' is acted on as 'push the red cube "
          "to the green target'; status 'accepted (read as a known goal)'); false: the model reads the operator's "
          "words (typing corrected)."),
    IMAGE_SOURCE,
    REALTIME_PRIORITY,
    Param("raw_width", 224, "image_source raw: frame width after resizing here (the camera node's width: the size the "
          "model was trained on).", low=1, high=8192),
    Param("raw_height", 224, "image_source raw: frame height after resizing here (the camera node's height).", low=1,
          high=8192),
    *FRAME_SIZE_PARAMS,
    Param("trigger", "frame", "When to step: 'frame' (on each new camera frame once a step is due: no timer wait) or "
          "'timer' (every 1/control_hz, all robots in one batch).", choices=("frame", "timer")),
    Param("horizon", 16, "scripted_expert only: action steps per chunk (a model's horizon is in its folder).",
          low=1, high=256),
    Param("frame_timeout_s", 0.5, "A camera frame older than this is stale: no chunk is published.",
          low=0.01, high=10.0),
    Param("finger_state_timeout_s", 1.0, "Robots whose fingers come on the gripper's own topic (franka_gripper: 15 "
          "Hz): a finger state older than this is stale: no chunk is published.", low=0.05, high=10.0),
    Param("joint_state_timeout_s", 0.5, "A joint state older than this is stale: no chunk is published; joint "
          "states stamped further than this in the past or future are refused.", low=0.0, high=10.0),
    Param("liveliness_s", 0.05, "DDS liveliness lease offered on the chunk topic: the executor notices a dead policy "
          "process within about this long; must be <= the executor's policy_liveliness_s.", low=0.0, high=10.0),
    Param("real_time_chunking", False, "Make each chunk continue what the executor will run while the model thinks "
          "(its molevla/executor_plan, executor plan_hz > 0, blend latest): the rows that run before the chunk can "
          "arrive are inpainted during DDIM (MoLe-VLA backends; off by default, the shipped mole_locator succeeds "
          "less with it: docs/notebook.md 'Inference delay and real-time chunking')."),
    Param("robots", [""], "Robots served, as topic prefixes (e.g. ['arm_left', 'arm_right'] reads "
          "arm_left/molevla/image, arm_left/joint_states, ... and publishes arm_left/molevla/action_chunk); "
          "[''] is one robot on the node's own topics."),
]


class RobotIO:
    """One robot's inputs (latest frame, joint state, goal, sim ground truth) and output publishers."""

    def __init__(self, node: "PolicyNode", prefix: str, privileged: bool, on_goal) -> None:
        t = (lambda name: f"{prefix}/{name}") if prefix else (lambda name: name)
        self.label = prefix or "robot"
        self.chunk_pub = node.create_publisher(JointTrajectory, t(TOPIC_CHUNK), chunk_qos(node.p.liveliness_s))
        self.mask_pub = node.create_publisher(UInt8MultiArray, t(TOPIC_LAYER_MASK), 5)
        self.stats_pub = node.create_publisher(DiagnosticStatus, t(TOPIC_POLICY_STATS), 5)
        # raw=True: the frame's bytes, read in place (inputs/image_wire.py) instead of rclpy's 1.4 ms conversion
        node.create_subscription(Image, t(image_topic(node.p.image_source)), lambda m: node.on_frame(self, m),
                                 SENSOR_QOS, raw=True)
        profile = node.profile
        node.create_subscription(JointState, t(profile.joint_states), lambda m: node.on_joints(self, m), SENSOR_QOS)
        if profile.gripper.joint_states:  # fingers on their own topic (franka_gripper), not on joint_states
            node.create_subscription(JointState, t(profile.gripper.joint_states),
                                     lambda m: node.on_fingers(self, m), SENSOR_QOS)
        node.create_subscription(String, t(TOPIC_GOAL), lambda m: on_goal(self, m.data), LATCHED_QOS)
        self.plan: tuple[float, np.ndarray, float] | None = None  # executor's plan: (stamp, rows, period)
        if node.p.real_time_chunking:
            node.create_subscription(JointTrajectory, t(TOPIC_PLAN), self.on_plan, 5)
        self.truth = None
        if privileged:  # the scripted expert only: simulator ground truth through the backend's own feed
            self.truth = node.backend.privileged_feed(node, prefix)
        self.frame: tuple[float, WireImage] | None = None  # (monotonic receipt time, frame)
        self.frame_age = 0.0  # s from the last frame's stamp to its receipt here (the image's transport)
        self.joints: tuple[float, JointState, np.ndarray] | None = None  # last valid: (receipt, msg, positions)
        self.fingers: tuple[float, np.ndarray] | None = None  # fingers from the gripper's own topic: (receipt, q)
        self.goal = ""
        self.steps = 0
        self.prep = 0.0  # s the last step spent checking and preparing the inputs (raw frames: decode + resize)
        self.last_step: float | None = None  # monotonic time of the last published chunk
        self.stepped_frame: WireImage | None = None  # the frame of the last step (trigger frame: never twice)
        self.next_due = 0.0  # trigger frame: monotonic time from which a new frame starts a step

    def on_plan(self, msg: JointTrajectory) -> None:
        rows, times, problem = msg_to_chunk(msg)
        if problem is None and len(rows):
            self.plan = (stamp_s(msg.header.stamp), rows, times[1] - times[0] if len(times) > 1 else 0.0)


class PolicyNode(Node):
    def __init__(self) -> None:
        super().__init__("policy")
        self.p = declare(self, PARAMS)
        self.profile = load_robot(self, self.p.robot)
        # joint_states carries the arm (and the fingers, unless the gripper publishes them on its own topic)
        self.joint_names = self.profile.arm_joints + (() if self.profile.gripper.joint_states else
                                                      self.profile.finger_joints)
        self.status = Status(self)
        self.backend: PolicyBackend | None = None
        self.backend_error = ""
        try:
            self.backend = make_backend(self.p.backend, horizon=self.p.horizon, model_dir=self.p.model_dir,
                                        route=self.p.route, device=self.p.device, precision=self.p.precision,
                                        cuda_graphs=self.p.cuda_graphs, threads=self.p.threads)
        except BackendUnavailable as e:
            self.backend_error = str(e)
        reads = len(self.backend.state_joints) if self.backend is not None else 0
        if reads and reads != len(self.profile.joints):
            self.backend_error = (f"the model reads {reads} joint positions but robot profile {self.profile.name} has "
                                  f"{len(self.profile.joints)} joints")
            self.backend = None
        if self.p.threads:  # also the raw frames' resize (torch) for every backend
            import torch

            torch.set_num_threads(self.p.threads)
        self.status.values["ready"] = self.backend is not None
        self.last_latency = 0.0  # s, the last policy step (real-time chunking's estimate of the next one)
        self.step_cost: tuple[float, float] | None = None  # (fixed ms, ms per decoder layer): latency_budget_ms
        if self.backend_error:
            self.status("error", self.backend_error, error=True)
        privileged = self.backend is not None and self.backend.needs_privileged_state
        if self.backend is not None and self.backend.note:
            self.get_logger().warn(f"backend '{self.backend.name}': {self.backend.note}")
        prefixes = [r.strip("/") for r in self.p.robots] or [""]
        self.robots = [RobotIO(self, r, privileged, self.on_goal) for r in prefixes]
        self.period = 1.0 / self.p.control_hz
        self.create_timer(self.period, self.on_timer)
        if self.backend is not None:  # the model is loaded: goals act from now on
            self.status.values.update(backend=self.backend.name, model=str(self.p.model_dir), route=self.p.route)
            self.status("ready", f"policy ready ({self.backend.name}, {self.p.model_dir}, route {self.p.route}); "
                        "waiting for a goal")

    def on_goal(self, robot: RobotIO, goal: str) -> None:
        if goal != robot.goal:
            robot.plan = None  # the executor drops the old goal's chunks: its plan is not continued
        robot.goal = goal
        if self.backend is None:
            return
        self.backend.reset()
        familiarity = self.backend.familiarity
        if goal and familiarity is not None:
            reading = familiarity.read(goal, self.p.min_goal_similarity)
            self.status.values["goal_similarity"] = round(reading.similarity, 3)
            if reading.refusal:
                robot.goal = ""  # no chunks: the executor stops when the last one runs out
                self.status("rejected", f"policy{self.where(robot)}: goal '{goal[:80]}' {reading.refusal}; not "
                            "acting on it", error=True)
                return
            text = reading.acted_on(self.p.read_as_known_goal)
            if text == goal:
                return
            robot.goal = text
            how = [f"typing: {reading.correction_note()}"] if reading.fixes else []
            if text != reading.text:
                how.append("the training goal it means")
            self.status("accepted (read as a known goal)" if text != reading.text else "accepted (typing corrected)",
                        f"policy{self.where(robot)}: goal '{goal[:80]}' read as '{text[:80]}' ({'; '.join(how)})")

    def on_joints(self, robot: RobotIO, msg: JointState) -> None:
        try:
            q = read_joint_state(msg.name, msg.position, stamp_s(msg.header.stamp), now_s(self), self.joint_names,
                                 self.p.joint_state_timeout_s, (self.profile.joint_lower, self.profile.joint_upper))
        except JointStateError as e:  # the last valid state ages out: no chunk once it is stale
            self.status("rejected", f"policy{self.where(robot)}: {e}", error=True, event=True)
            return
        robot.joints = (time.monotonic(), msg, q)

    def on_fingers(self, robot: RobotIO, msg: JointState) -> None:
        try:
            q = read_joint_state(msg.name, msg.position, stamp_s(msg.header.stamp), now_s(self),
                                 self.profile.finger_joints, self.p.finger_state_timeout_s)
        except JointStateError as e:
            self.status("rejected", f"policy{self.where(robot)}: {self.profile.gripper.joint_states}: {e}", error=True,
                        event=True)
            return
        robot.fingers = (time.monotonic(), q)

    def where(self, robot: RobotIO) -> str:
        return f" [{robot.label}]" if len(self.robots) > 1 else ""

    def check_inputs(self, r: RobotIO) -> tuple[Observation | None, str]:
        now = time.monotonic()
        if r.frame is None:
            return None, "no camera frame yet"
        if now - r.frame[0] > self.p.frame_timeout_s:
            return None, f"camera frame stale ({now - r.frame[0]:.2f} s old)"
        if r.joints is None:
            return None, "no joint state yet"
        if now - r.joints[0] > self.p.joint_state_timeout_s:
            return None, f"no valid joint state for {now - r.joints[0]:.2f} s"
        q = r.joints[2]
        if self.profile.gripper.joint_states:
            if r.fingers is None or now - r.fingers[0] > self.p.finger_state_timeout_s:
                return None, f"no valid finger joint state on {self.profile.gripper.joint_states}"
            q = np.concatenate([q, r.fingers[1]])
        f = r.frame[1]
        try:  # a raw frame is validated and resized as the camera node would (one DDS hop less)
            side = self.backend.image_size  # the model's own input; without one, the size frames are resized to
            check_frame_size(f.width, f.height, side or self.p.raw_width, side or self.p.raw_height,
                             self.p.min_input_scale, self.p.max_aspect_change)
            image = msg_to_rgb(r.frame[1]) if self.p.image_source == "camera" else \
                msg_to_frame(r.frame[1], self.p.raw_width, self.p.raw_height, self.backend.resize)
        except ImageError as e:
            return None, f"camera frame: {e}"
        privileged = r.truth.state(r.joints[1]) if r.truth is not None else None
        # The profile's joints (arm, fingers) map in order onto the names the model reads (its state_joints).
        model_names = self.backend.state_joints or self.profile.joints
        state = dict(zip(model_names if len(model_names) == len(q) else self.profile.joints, map(float, q)))
        images = {self.backend.camera: image}
        stamp = r.frame[1].stamp_s
        prefix, frozen = self.prefix(r, stamp)
        return Observation(r.goal, state, images, stamp, privileged, prefix, frozen), ""

    def prefix(self, r: RobotIO, stamp: float) -> tuple[np.ndarray | None, int]:
        """Real-time chunking: the executor's plan from the observation time on, and how many of its rows run
        before this step's chunk can arrive (the time since the observation plus the last step's latency)."""
        dt = self.backend.action_dt
        if r.plan is None or abs(r.plan[2] - dt) > 1e-6:  # none yet, or at another period than the model's
            return None, 0
        plan_stamp, rows, _ = r.plan
        shift = int(round((stamp - plan_stamp) / dt))
        if shift >= len(rows) or shift < -len(rows):  # the plan ended before, or starts long after, the frame
            return None, 0
        # A plan newer than the frame: its first row stands in for the rows before it (they are past when the chunk
        # lands, so never executed).
        rows = rows[shift:] if shift >= 0 else np.vstack([np.repeat(rows[:1], -shift, 0), rows])
        ahead = now_s(self) - stamp + self.last_latency
        return rows, int(np.ceil(ahead / dt))

    def choose_keep(self) -> None:
        """The compute knob: decoder layers for the next step from latency_budget_ms (with a cost estimate) or
        keep_layers (MoLe backends; read at every step, so `ros2 param set` acts on the next one)."""
        if not self.backend.layers:
            return
        n = self.backend.layers
        keep = min(self.p.keep_layers, n) or None
        if self.p.latency_budget_ms > 0 and self.step_cost is not None:
            fixed, per_layer = self.step_cost
            keep = int(np.clip((self.p.latency_budget_ms - fixed) // max(per_layer, 1e-6), 1, n))
        self.backend.keep = keep

    def learn_step_cost(self, info: dict[str, float]) -> None:
        """(fixed ms, ms per kept layer) of a step, smoothed over steps, from the backend's own timing."""
        if not info.get("layers_kept") or "layers_ms" not in info:
            return
        cost = (info["model_ms"] - info["layers_ms"], info["layers_ms"] / info["layers_kept"])
        old = self.step_cost or cost
        self.step_cost = (0.7 * old[0] + 0.3 * cost[0], 0.7 * old[1] + 0.3 * cost[1])

    def on_frame(self, robot: RobotIO, data: bytes) -> None:
        now = time.monotonic()
        try:
            frame = read_image(data)
        except ImageError as e:  # the last good frame ages out: no chunk once it is stale
            self.status("rejected", f"policy{self.where(robot)}: camera frame: {e}", error=True, event=True)
            return
        robot.frame = (now, frame)
        robot.frame_age = now_s(self) - frame.stamp_s
        if self.p.trigger == "frame" and robot.goal and now >= robot.next_due:
            # Due times on a grid of control periods: on average never faster than control_hz, whatever the
            # frame rate and jitter; a robot that fell behind (slow frames) steps on its next frame.
            robot.next_due += self.period
            if robot.next_due < now:
                robot.next_due = now + 0.5 * self.period
            self.tick([robot])

    def on_timer(self) -> None:
        if self.p.trigger == "timer":
            self.tick(self.robots)
        else:  # frames drive the steps; the timer steps in (and reports why) only for robots left waiting
            now = time.monotonic()
            self.tick([r for r in self.robots if r.last_step is None or now - r.last_step >= 2 * self.period])

    def tick(self, robots: list[RobotIO]) -> None:
        ready: list[tuple[RobotIO, Observation, float]] = []
        for r in robots:
            if not r.goal:
                continue
            if self.p.trigger == "frame" and r.frame is not None and r.frame[1] is r.stepped_frame and \
                    time.monotonic() - r.frame[0] <= self.p.frame_timeout_s:
                continue  # this frame was already used; the next one triggers the next step
            if self.backend is None:  # reported while a goal waits, so the operator sees why nothing moves
                self.status("halted", f"policy{self.where(r)}: {self.backend_error}", error=True)
                continue
            waited = time.monotonic() - r.frame[0] if r.frame is not None else 0.0  # the frame's wait for this step
            t0 = time.perf_counter()
            obs, problem = self.check_inputs(r)  # (with image_source raw, this decodes and resizes the frame)
            r.prep = time.perf_counter() - t0
            if obs is None:
                self.status("halted", f"policy{self.where(r)}: {problem}", error=True)
                continue
            ready.append((r, obs, waited))
        if not ready:
            return
        self.choose_keep()
        t0 = time.perf_counter()
        try:
            outs = self.backend.act_batch([obs for _, obs, _ in ready])
        except Exception as e:  # a backend failure must never take the node down
            self.status("halted", f"policy backend '{self.backend.name}' failed: {e}", error=True)
            return
        latency = self.last_latency = time.perf_counter() - t0
        self.learn_step_cost(outs[0].info)
        for (r, obs, frame_wait), out in zip(ready, outs):
            problem = validate_chunk(np.asarray(out.chunk))
            if problem:
                self.status("halted", f"policy{self.where(r)} produced a bad chunk: {problem}", error=True)
                continue
            r.stepped_frame = r.frame[1]
            self.publish(r, obs, out, latency, frame_wait, len(ready))

    def publish(self, r: RobotIO, obs: Observation, out, latency: float, frame_wait: float, batch: int) -> None:
        msg = chunk_to_msg(out.chunk, Time(sec=r.frame[1].sec, nanosec=r.frame[1].nanosec), self.profile.base_frame,
                           self.backend.action_dt)
        r.chunk_pub.publish(msg)
        if out.layer_mask is not None:
            mask = UInt8MultiArray(data=np.asarray(out.layer_mask, np.uint8).tobytes())
            mask.layout.dim.append(MultiArrayDimension(label="layer", size=len(out.layer_mask), stride=1))
            r.mask_pub.publish(mask)
        now = time.monotonic()
        hz = 1.0 / (now - r.last_step) if r.last_step else 0.0
        r.last_step = now
        r.steps += 1
        values = {"backend": self.backend.name, "latency_ms": f"{latency * 1e3:.3f}", "rate_hz": f"{hz:.2f}",
                  "frame_wait_ms": f"{frame_wait * 1e3:.3f}", "frame_age_ms": f"{r.frame_age * 1e3:.3f}",
                  "prep_ms": f"{r.prep * 1e3:.3f}", "obs_stamp": f"{obs.stamp:.9f}", "step": str(r.steps),
                  "batch": str(batch), "fingers_m": " ".join(f"{v:.4f}" for v in list(obs.state.values())[7:]),
                  **{k: f"{v:.4g}" for k, v in out.info.items()}}
        if obs.prefix is not None:  # real-time chunking: rows of the plan continued, of which frozen
            values.update(rtc_rows=str(len(obs.prefix)), rtc_frozen=str(obs.prefix_frozen))
        if out.layer_mask is not None:
            values["layers_kept"] = str(int(np.sum(out.layer_mask)))
            values["layers_total"] = str(len(out.layer_mask))
        r.stats_pub.publish(DiagnosticStatus(
            level=DiagnosticStatus.OK, name=f"molevla/policy{self.where(r)}", message="chunk published",
            values=[KeyValue(key=k, value=v) for k, v in values.items()]))
        # /diagnostics carries the step's numbers too (rqt_robot_monitor, Foxglove): plain numbers, units in names
        numbers = {"latency_ms": round(latency * 1e3, 3), "rate_hz": round(hz, 2),
                   "frame_wait_ms": round(frame_wait * 1e3, 3), "batch": batch}
        if out.layer_mask is not None:
            numbers["layers_kept"] = int(np.sum(out.layer_mask))
            numbers["layers_total"] = len(out.layer_mask)
        self.status.values.update(numbers, **{f"steps{self.where(x)}": x.steps for x in self.robots})
        note = f"; {self.backend.note}" if self.backend.note else ""
        self.status("ok", f"policy running ({self.backend.name}{note})")  # printed once per change


def main(args: list[str] | None = None) -> None:
    run(PolicyNode, args, events=True)


if __name__ == "__main__":
    main()
