"""policy: at control_hz, latest frame + goal + joint state -> backend -> action chunk (+ layer mask, stats).

The chunk is a trajectory_msgs/JointTrajectory whose "joints" are the action dimensions
(dx dy dz droll dpitch dyaw gripper), one point per action step, stamped with the observation's
capture time so the executor can compensate latency. Any input problem publishes no chunk (the
executor then halts) and reports why on molevla/status.
"""
from __future__ import annotations

import time

import numpy as np
from diagnostic_msgs.msg import DiagnosticStatus, KeyValue
from rclpy.node import Node
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import MultiArrayDimension, String, UInt8MultiArray
from trajectory_msgs.msg import JointTrajectory
from visualization_msgs.msg import MarkerArray

from molevla_ros.backends.base import Observation, PolicyBackend
from molevla_ros.backends.registry import BackendUnavailable, make_backend
from molevla_ros.control.chunk_executor import validate_chunk
from molevla_ros.inputs.images import ImageError
from molevla_ros.nodes.common import (CHUNK_PUB_QOS, LATCHED_QOS, SENSOR_QOS, TOPIC_CHUNK, TOPIC_GOAL, TOPIC_IMAGE,
                                      TOPIC_JOINT_STATES, TOPIC_LAYER_MASK, TOPIC_POLICY_STATS, TOPIC_SIM_STATE,
                                      Param, Status, chunk_to_msg, declare, msg_to_rgb, run, stamp_s)
from molevla_ros.sim.expert import PrivilegedState

FINGERS = ("panda_finger_joint1", "panda_finger_joint2")

PARAMS = [
    Param("backend", "scripted_expert",
          "Policy backend: mole_torch (PyTorch), mole_onnx (ONNX Runtime, CPU), mole_tensorrt (TensorRT, GPU), or "
          "scripted_expert (reads simulator ground truth; sim only, not a learned policy)."),
    Param("model_dir", "mole_small", "MoLe-VLA model folder: absolute, or a name under the package's models/."),
    Param("route", "mole", "Layer routing: mole (STAR router), full, random or first_k (early exit)."),
    Param("device", "cpu", "Device for mole_torch / mole_tensorrt (cpu, cuda, cuda:1, ...)."),
    Param("precision", "fp32", "mole_torch: fp32, fp16 or bf16 (GPU); mole_tensorrt: fp16 or fp32 engines."),
    Param("cuda_graphs", False, "mole_torch on CUDA: replay one captured CUDA graph per (layer, batch size)."),
    Param("control_hz", 5.0, "Policy steps (chunks) per second."),
    Param("horizon", 16, "Action steps per chunk."),
    Param("action_dt", 0.1, "Seconds between consecutive actions of a chunk."),
    Param("frame_timeout_s", 0.5, "A camera frame older than this is stale: no chunk is published."),
    Param("joint_state_timeout_s", 0.5, "A joint state older than this is stale: no chunk is published."),
]


class PolicyNode(Node):
    def __init__(self) -> None:
        super().__init__("policy")
        self.p = declare(self, PARAMS)
        self.status = Status(self)
        self.backend: PolicyBackend | None = None
        self.backend_error = ""
        try:
            self.backend = make_backend(self.p.backend, horizon=self.p.horizon, model_dir=self.p.model_dir,
                                        route=self.p.route, device=self.p.device, precision=self.p.precision,
                                        cuda_graphs=self.p.cuda_graphs)
        except BackendUnavailable as e:
            self.backend_error = str(e)
            self.status("error", self.backend_error, error=True)
        self.chunk_pub = self.create_publisher(JointTrajectory, TOPIC_CHUNK, CHUNK_PUB_QOS)
        self.mask_pub = self.create_publisher(UInt8MultiArray, TOPIC_LAYER_MASK, 5)
        self.stats_pub = self.create_publisher(DiagnosticStatus, TOPIC_POLICY_STATS, 5)
        self.create_subscription(Image, TOPIC_IMAGE, self.on_image, SENSOR_QOS)
        self.create_subscription(JointState, TOPIC_JOINT_STATES, self.on_joints, SENSOR_QOS)
        self.create_subscription(String, TOPIC_GOAL, self.on_goal, LATCHED_QOS)
        if self.backend is not None and self.backend.needs_privileged_state:
            self.get_logger().warn(f"backend '{self.backend.name}' is a scripted expert reading simulator ground "
                                   "truth; it is not a learned policy")
            self.create_subscription(MarkerArray, TOPIC_SIM_STATE, self.on_sim_state, SENSOR_QOS)
        self.frame: tuple[float, Image] | None = None  # (monotonic receipt time, msg)
        self.joints: tuple[float, JointState] | None = None
        self.sim_poses: dict[str, np.ndarray] | None = None  # ground truth, scripted expert only
        self.goal = ""
        self.steps = 0
        self.last_step = None
        self.create_timer(1.0 / self.p.control_hz, self.tick)

    def on_image(self, msg: Image) -> None:
        self.frame = (time.monotonic(), msg)

    def on_joints(self, msg: JointState) -> None:
        self.joints = (time.monotonic(), msg)

    def on_goal(self, msg: String) -> None:
        self.goal = msg.data
        if self.backend is not None:
            self.backend.reset()

    def on_sim_state(self, msg: MarkerArray) -> None:
        self.sim_poses = {m.ns: np.array([m.pose.position.x, m.pose.position.y, m.pose.position.z])
                          for m in msg.markers}

    def check_inputs(self) -> tuple[Observation | None, str]:
        now = time.monotonic()
        if self.frame is None:
            return None, "no camera frame yet"
        if now - self.frame[0] > self.p.frame_timeout_s:
            return None, f"camera frame stale ({now - self.frame[0]:.2f} s old)"
        if self.joints is None:
            return None, "no joint state yet"
        if now - self.joints[0] > self.p.joint_state_timeout_s:
            return None, f"joint state stale ({now - self.joints[0]:.2f} s old)"
        q = np.asarray(self.joints[1].position, float)
        if q.size == 0 or not np.all(np.isfinite(q)):
            return None, "joint state is empty or contains NaN/Inf"
        try:
            image = msg_to_rgb(self.frame[1])
        except ImageError as e:
            return None, f"camera frame: {e}"
        privileged = None
        if self.sim_poses is not None and "ee" in self.sim_poses:
            objects = dict(self.sim_poses)
            ee = objects.pop("ee")
            names = list(self.joints[1].name)
            width = sum(q[names.index(n)] for n in FINGERS if n in names)
            privileged = PrivilegedState(ee, float(width), objects)
        return Observation(self.goal, q, image, privileged, stamp_s(self.frame[1].header.stamp)), ""

    def tick(self) -> None:
        if not self.goal:
            return
        if self.backend is None:  # reported while a goal waits, so the operator sees why nothing moves
            self.status("halted", f"policy: {self.backend_error}", error=True)
            return
        obs, problem = self.check_inputs()
        if obs is None:
            self.status("halted", f"policy: {problem}", error=True)
            return
        frame_wait = time.monotonic() - self.frame[0]  # how long the frame waited for this step
        t0 = time.perf_counter()
        try:
            out = self.backend.act(obs)
        except Exception as e:  # a backend failure must never take the node down
            self.status("halted", f"policy backend '{self.backend.name}' failed: {e}", error=True)
            return
        latency = time.perf_counter() - t0
        problem = validate_chunk(np.asarray(out.chunk))
        if problem:
            self.status("halted", f"policy produced a bad chunk: {problem}", error=True)
            return
        self.publish(obs, out, latency, frame_wait)

    def publish(self, obs: Observation, out, latency: float, frame_wait: float) -> None:
        msg = chunk_to_msg(out.chunk, self.frame[1].header.stamp, self.frame[1].header.frame_id, self.p.action_dt)
        self.chunk_pub.publish(msg)
        if out.layer_mask is not None:
            mask = UInt8MultiArray(data=np.asarray(out.layer_mask, np.uint8).tobytes())
            mask.layout.dim.append(MultiArrayDimension(label="layer", size=len(out.layer_mask), stride=1))
            self.mask_pub.publish(mask)
        now = time.monotonic()
        hz = 1.0 / (now - self.last_step) if self.last_step else 0.0
        self.last_step = now
        self.steps += 1
        self.status.values.update(backend=self.backend.name, steps=self.steps, latency_ms=round(latency * 1e3, 3))
        values = {"backend": self.backend.name, "latency_ms": f"{latency * 1e3:.3f}", "rate_hz": f"{hz:.2f}",
                  "frame_wait_ms": f"{frame_wait * 1e3:.3f}", "obs_stamp": f"{obs.stamp:.9f}", "step": str(self.steps),
                  **{k: f"{v:.4g}" for k, v in out.info.items()}}
        if out.layer_mask is not None:
            values["layers_kept"] = str(int(np.sum(out.layer_mask)))
        self.stats_pub.publish(DiagnosticStatus(
            level=DiagnosticStatus.OK, name="molevla/policy", message="chunk published",
            values=[KeyValue(key=k, value=v) for k, v in values.items()]))
        self.status("ok", f"policy running ({self.backend.name})")  # printed once per change


def main(args: list[str] | None = None) -> None:
    run(PolicyNode, args)


if __name__ == "__main__":
    main()
