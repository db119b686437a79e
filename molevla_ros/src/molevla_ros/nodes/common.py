"""What every node shares: declared parameters, QoS profiles, status messages, Image conversion."""
from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Callable

import numpy as np
import rclpy
from builtin_interfaces.msg import Duration as DurationMsg
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from rclpy.duration import Duration as RclpyDuration
from rclpy.qos import DurabilityPolicy, LivelinessPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import Image
from std_msgs.msg import String
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from molevla_ros.control.chunk_executor import ACTION_NAMES, order_by_names
from molevla_ros.inputs.image_wire import WireImage
from molevla_ros.inputs.images import MAX_ASPECT_CHANGE, MIN_INPUT_SCALE, decode, decode_resized
from molevla_ros.robot_profile import DEFAULT_ROBOT, ProfileError, RobotProfile, load

SENSOR_QOS = qos_profile_sensor_data  # best effort: matches reliable and best-effort publishers
RELIABLE_QOS = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
LATCHED_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL)
# Status: latched, so a late subscriber (`ros2 topic echo molevla/status`) gets each node's last messages at once;
# 10 deep so that a burst is not overwritten before a reliable reader has it.
STATUS_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)


def chunk_qos(liveliness_s: float = 0.1) -> QoSProfile:
    """Action-chunk QoS. With a lease (> 0) on both sides the executor learns within about that time that
    the policy process died (DDS liveliness), long before its chunks would run out. A subscriber asking
    for a lease only matches publishers that offer one at least as short: publish chunks with CHUNK_PUB_QOS.
    """
    if liveliness_s <= 0:
        return QoSProfile(depth=5)
    return QoSProfile(depth=5, liveliness=LivelinessPolicy.AUTOMATIC,
                      liveliness_lease_duration=RclpyDuration(seconds=liveliness_s))


CHUNK_PUB_QOS = chunk_qos(0.1)

# Default topic names: all relative, so namespaces and remapping apply.
TOPIC_IMAGE_RAW = "image_raw"
TOPIC_IMAGE = "molevla/image"
TOPIC_INSTRUCTION = "molevla/instruction"
TOPIC_GOAL = "molevla/goal"
TOPIC_STATUS = "molevla/status"
TOPIC_CHUNK = "molevla/action_chunk"
TOPIC_PLAN = "molevla/executor_plan"  # what the executor will ask for next (real-time chunking)
TOPIC_LAYER_MASK = "molevla/layer_mask"
TOPIC_POLICY_STATS = "molevla/policy_stats"
TOPIC_ESTOP = "molevla/estop"
TOPIC_SUCCESS = "molevla/task_success"
TOPIC_SIM_TASK = "sim/task"
TOPIC_SIM_STATE = "sim/privileged_state"
TOPIC_DIAGNOSTICS = "/diagnostics"  # absolute: the diagnostic aggregator's standard topic


@dataclass(frozen=True)
class Param:
    name: str
    default: Any
    description: str
    low: float | None = None  # numeric range (inclusive); None = unbounded on that side
    high: float | None = None
    choices: tuple[str, ...] | None = None  # allowed values of a string parameter
    dynamic: bool = False  # may change at run time (`ros2 param set`, checked like at start-up); else read-only

    def allowed(self) -> str:
        """The range or the choices as text ("" when unconstrained)."""
        if self.choices is not None:
            return f"one of {', '.join(self.choices)}"
        if self.low is not None or self.high is not None:
            return f"[{self.low if self.low is not None else '-inf'}, {self.high if self.high is not None else 'inf'}]"
        return ""


IMAGE_SOURCE = Param(
    "image_source", "camera", "Frames the policy steps on: 'camera' (the camera node's validated, resized frames on "
    "molevla/image) or 'raw' (the camera driver's sensor_msgs/Image on image_raw, validated and resized in the policy "
    "with the camera node's code: one DDS hop and one process less, lower latency (docs/notebook.md 'Measured'); "
    "the launch argument image_source:=raw also leaves the camera node out). The executor watches the same topic for "
    "a live camera.",
    choices=("camera", "raw"))

# The frame-size check against the model input (inputs/images.check_frame_size): camera node and policy.
FRAME_SIZE_PARAMS = [
    Param("min_input_scale", MIN_INPUT_SCALE, "Frames with a side shorter than this fraction of the model input's "
          "side are refused (a 1x1 or 8x8 frame, upscaled, shows no scene): a status names the size and no chunk is "
          "made from it. 0 disables.", low=0.0, high=1.0),
    Param("max_aspect_change", MAX_ASPECT_CHANGE, "Frames whose width/height ratio is more than this factor away "
          "from the model input's are refused (a 4000x1 line). 0 disables.", low=0.0, high=1000.0),
]


ROBOT = Param(
    "robot", DEFAULT_ROBOT, "Robot profile: a name under the package's robots/ (panda_sim: the simulator; fr3: a "
    "Franka Research 3 under franka_ros2 and MoveIt Servo) or the path of your own copy of one. Joint names and "
    "limits, frames, end-effector limits, the gripper and the robot stack's topics all come from it.")


REALTIME_PRIORITY = Param(
    "realtime_priority", 0, "Linux SCHED_FIFO priority for all of the node's threads (its DDS threads too) once it "
    "is up, as ros2_control's controller manager does; 0 = the normal scheduler. Where other processes share the "
    "cores this keeps the node's wake-ups from waiting behind them (docs/notebook.md 'Measured'). Needs the rtprio "
    "limit (e.g. the 'realtime' group of a real-time kernel install) or root; without it the node warns and runs on "
    "normally. Give it only to nodes with bounded work per callback.", low=0, high=99)


def set_realtime_priority(priority: int) -> str | None:
    """Put every thread of this process on SCHED_FIFO at `priority` (0: leave them); returns why not, or None."""
    if priority <= 0:
        return None
    try:
        for tid in os.listdir("/proc/self/task"):
            os.sched_setscheduler(int(tid), os.SCHED_FIFO, os.sched_param(priority))
    except (OSError, AttributeError) as e:  # no permission, or not Linux
        return f"realtime_priority {priority} not applied ({e}); running on the normal scheduler"
    return None


# glibc malloc's defaults hand every block over 128 KiB (a camera frame, its resized copy) back to the kernel when
# freed, so each new frame's buffers are fresh pages the kernel must fault in and zero again: about 1.7 ms of a
# 640x480 rgb8 frame's 3.3 ms round trip between two processes (scripts/frame_roundtrip.py;
# docs/notebook.md 'Measured').
MALLOC_MMAP_THRESHOLD = 16 << 20  # blocks below this come from the heap, whose pages are reused (glibc max: 32 MiB)
MALLOC_TRIM_THRESHOLD = 64 << 20  # free memory kept at the heap's top before it is returned to the kernel
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameter numbers (malloc.h)


def reuse_freed_memory() -> str | None:
    """Keep freed camera-sized buffers in this process's heap for the next frame (glibc mallopt; a few MiB more
    resident memory). Returns why not (another C library), or None."""
    import ctypes

    try:
        libc = ctypes.CDLL(None)
        ok = libc.mallopt(_M_MMAP_THRESHOLD, MALLOC_MMAP_THRESHOLD) and libc.mallopt(_M_TRIM_THRESHOLD,
                                                                                   MALLOC_TRIM_THRESHOLD)
    except (OSError, AttributeError) as e:
        return f"malloc thresholds not set ({e})"
    return None if ok else "malloc thresholds not set (mallopt refused them)"


def load_robot(node: Node, robot: str) -> RobotProfile:
    """The robot profile `robot`; a profile that is missing or inconsistent stops the node (ParameterError)."""
    try:
        return load(robot)
    except ProfileError as e:
        raise ParameterError(f"{node.get_name()}: refusing to start: {e}") from None


def image_topic(source: str) -> str:
    """The frame topic of an image_source."""
    return TOPIC_IMAGE_RAW if source == "raw" else TOPIC_IMAGE


class ParameterError(ValueError):
    """A parameter value the node refuses to start with (the message names it and what is allowed)."""


def check_param(p: Param, value: Any) -> str | None:
    """Why `value` is not allowed for `p`, or None."""
    if p.choices is not None and value not in p.choices:
        return f"{p.name} = {value!r} is not {p.allowed()}"
    if (p.low is not None and value < p.low) or (p.high is not None and value > p.high):
        return f"{p.name} = {value!r} is outside {p.allowed()}"
    return None


def declare(node: Node, specs: list[Param]) -> SimpleNamespace:
    """Declare every parameter; check ranges and choices; return the values by name. Parameters are read-only
    (read at start-up, so a later `ros2 param set` is refused rather than accepted and ignored) except the dynamic
    ones, whose new values are checked the same way and take effect in the returned namespace at once."""
    values, problems = {}, []
    for p in specs:
        allowed = f" Allowed: {p.allowed()}." if p.allowed() else ""
        when = " Can be changed at run time." if p.dynamic else " Read at start-up (restart the node to change it)."
        node.declare_parameter(p.name, p.default, ParameterDescriptor(description=f"{p.description}{allowed}{when}",
                                                                      read_only=not p.dynamic))
        values[p.name] = node.get_parameter(p.name).value
        problem = check_param(p, values[p.name])
        if problem:
            problems.append(problem)
    if problems:
        raise ParameterError(f"{node.get_name()}: refusing to start: {'; '.join(problems)}")
    ns = SimpleNamespace(**values)
    dynamic = {p.name: p for p in specs if p.dynamic}
    if dynamic:
        from rcl_interfaces.msg import SetParametersResult

        def on_set(params) -> SetParametersResult:
            problem = "; ".join(filter(None, (check_param(dynamic[q.name], q.value) for q in params
                                              if q.name in dynamic)))
            if problem:
                return SetParametersResult(successful=False, reason=problem)
            for q in params:
                if q.name in dynamic:
                    setattr(ns, q.name, q.value)
            return SetParametersResult(successful=True)

        node.add_on_set_parameters_callback(on_set)
    return ns


class Status:
    """Publishes '<state>: <reason>' on molevla/status (latched, STATUS_QOS) and logs it; repeats are suppressed.

    Two kinds of report: a condition (the node's state until the next condition: running, halted, ...) and an
    event (`event=True`: one refused input). Events are counted, published at most `event_burst` times per
    `event_period_s` (the rest only counted) and leave the condition as it was. /diagnostics
    (diagnostic_msgs/DiagnosticArray, once per second, the standard aggregator topic) carries the condition's
    level (ERROR after an error condition, else OK), WARN for `event_period_s` x 3 after a refused input, and
    `values` (counters and numbers a node keeps there). The status topic carries changes only: its messages
    say nothing about which node sent them, so a periodic repeat there would read as a new transition (a
    repeated "succeeded" as a new success); the periodic copy of each node's state is its /diagnostics entry.
    `topic=False` reports on the log and /diagnostics only.
    """

    def __init__(self, node: Node, diagnostics_hz: float = 1.0, topic: bool = True,
                 event_period_s: float = 1.0, event_burst: int = 5) -> None:
        self._node = node
        self._pub = node.create_publisher(String, TOPIC_STATUS, STATUS_QOS) if topic else None
        self._diag_pub = node.create_publisher(DiagnosticArray, TOPIC_DIAGNOSTICS, 10)
        self._last = ""  # the last message published (condition or event)
        self._condition = ""
        self._error = False
        self._event_period, self._event_burst = event_period_s, event_burst
        self._events: list[float] = []  # monotonic times of the event reports published in the last period
        self.values: dict[str, Any] = {}
        ns = node.get_namespace().rstrip("/")
        self._name = f"{ns}/{node.get_name()}".lstrip("/")
        node.create_timer(1.0 / diagnostics_hz, self.publish_diagnostics)

    def publish_diagnostics(self) -> None:
        recent_event = bool(self._events) and time.monotonic() - self._events[-1] < 3 * self._event_period
        level = (DiagnosticStatus.ERROR if self._error else DiagnosticStatus.WARN if recent_event
                 else DiagnosticStatus.OK)
        message = self._condition or "starting"
        if recent_event:
            message += f" (last refused input: {self.values.get('last_refused', '')})"
        values = [KeyValue(key=k, value=str(v)) for k, v in self.values.items()]
        st = DiagnosticStatus(level=level, name=f"molevla: {self._name}", hardware_id="molevla_ros",
                              message=message, values=values)
        arr = DiagnosticArray(status=[st])
        arr.header.stamp = self._node.get_clock().now().to_msg()
        self._diag_pub.publish(arr)

    def __call__(self, state: str, reason: str, *, error: bool = False, repeat: bool = False,
                 event: bool = False) -> None:
        text = f"{state}: {reason}"
        if event:
            self.values["refused_inputs"] = self.values.get("refused_inputs", 0) + 1
            self.values["last_refused"] = reason
            now = time.monotonic()
            recent = [t for t in self._events if now - t < self._event_period]
            if len(recent) >= self._event_burst:
                self._events = recent
                return  # counted only: a stream of bad messages must not flood the log and the status topic
            self._events = recent + [now]
        elif text == self._last and not repeat:
            return
        else:
            self._condition, self._error = text, error
        self._last = text
        if error:  # two call sites: rclpy refuses one call site logging at two severities
            self._node.get_logger().error(text)
        else:
            self._node.get_logger().info(text)
        if self._pub is not None:
            self._pub.publish(String(data=text))


def now_s(node: Node) -> float:
    return node.get_clock().now().nanoseconds * 1e-9


def stamp_s(stamp) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def to_stamp(t: float):
    from builtin_interfaces.msg import Time

    sec = int(np.floor(t))
    return Time(sec=sec, nanosec=int((t - sec) * 1e9))


def rgb_to_msg(rgb: np.ndarray, stamp, frame_id: str) -> Image:
    msg = Image()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.height, msg.width = int(rgb.shape[0]), int(rgb.shape[1])
    msg.encoding = "rgb8"
    msg.step = msg.width * 3
    msg.data = np.ascontiguousarray(rgb, np.uint8).tobytes()
    return msg


def msg_to_rgb(msg: Image | WireImage) -> np.ndarray:
    """(H, W, 3) RGB from a sensor_msgs/Image (or one read from its bytes); raises ImageError on anything
    malformed."""
    return decode(msg.encoding, msg.height, msg.width, msg.step, msg.data)


def msg_to_frame(msg: Image | WireImage, width: int, height: int) -> np.ndarray:
    """(height, width, 3) RGB from a camera's sensor_msgs/Image: what the camera node publishes; ImageError on
    anything malformed."""
    return decode_resized(msg.encoding, msg.height, msg.width, msg.step, msg.data, width, height)


def chunk_to_msg(chunk: np.ndarray, stamp, frame_id: str, action_dt: float) -> JointTrajectory:
    """An action chunk as a JointTrajectory: one "joint" per action dimension, one point per action step."""
    msg = JointTrajectory()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.joint_names = list(ACTION_NAMES)
    for i, row in enumerate(np.asarray(chunk, float)):
        t = i * action_dt
        msg.points.append(JointTrajectoryPoint(positions=row.tolist(), time_from_start=to_duration(t)))
    return msg


def to_duration(t: float) -> DurationMsg:
    ns = int(round(t * 1e9))
    return DurationMsg(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def msg_to_chunk(msg: JointTrajectory) -> tuple[np.ndarray, list[float], str | None]:
    """(N, 7) actions in ACTION_NAMES order, mapped by the message's joint_names, the points' time_from_start
    (s), and why the message must be refused (None if it may go on to validation)."""
    times = [pt.time_from_start.sec + pt.time_from_start.nanosec * 1e-9 for pt in msg.points]
    if not msg.points:
        return np.zeros((0, len(ACTION_NAMES))), times, "chunk has no points"
    try:
        rows = np.array([pt.positions for pt in msg.points], dtype=float).reshape(len(msg.points), -1)
    except ValueError:
        return np.zeros((0, len(ACTION_NAMES))), times, "chunk points have different lengths"
    actions, problem = order_by_names(list(msg.joint_names), rows)
    return actions, times, problem


def spin_until(node: Node, seconds: float, until: Callable[[], bool] | None = None, period: float = 0.01) -> bool:
    """Spin `node` for up to `seconds`. With `until`: True as soon as it holds, False on timeout."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        rclpy.spin_once(node, timeout_sec=period)
        if until is not None and until():
            return True
    return until is None


def make_executor(events: bool):
    """rclpy's EventsExecutor (C++, no wait set rebuilt in Python per callback: about 0.5 ms less per image on the
    loop benchmark) where asked for and available (rclpy >= 7.1.4 on Jazzy), else the SingleThreadedExecutor."""
    from rclpy.executors import SingleThreadedExecutor

    if events:
        try:
            from rclpy.experimental import EventsExecutor
        except ImportError:
            return SingleThreadedExecutor()
        return EventsExecutor()
    return SingleThreadedExecutor()


def run(node_factory: Callable[[], Node], args: list[str] | None = None, events: bool = False) -> None:
    """Standard main: init, spin until Ctrl-C/SIGTERM, clean shutdown. `events`: spin on the EventsExecutor
    (make_executor; nodes without actions).

    A callback that raises is logged and the node keeps running: a bug in one message's handling
    must not take a node (and the arm's watchdogs) down.
    """
    import gc
    import signal
    import traceback

    from rclpy.executors import ExternalShutdownException

    malloc_problem = reuse_freed_memory()  # before rclpy and DDS allocate their buffers
    rclpy.init(args=args if args is not None else sys.argv)
    signal.signal(signal.SIGTERM, lambda *_: rclpy.try_shutdown())
    try:
        node = node_factory()
    except ParameterError as e:  # a configuration error: say which parameter, never run with it
        from rclpy.logging import get_logger

        get_logger("molevla").fatal(str(e))
        rclpy.try_shutdown()
        sys.exit(2)
    executor = make_executor(events)
    executor.add_node(node)
    priority = getattr(getattr(node, "p", None), "realtime_priority", 0)
    problem = set_realtime_priority(priority)
    for p in (malloc_problem, problem):
        if p:
            node.get_logger().warn(p)
    if priority and not problem:
        node.get_logger().info(f"all threads on SCHED_FIFO priority {priority}")
    # Everything built so far (modules, the model) lives as long as the node: moved out of the garbage collector's
    # reach, a full collection no longer walks it, so a callback is not held up by a long pause.
    gc.collect()
    gc.freeze()
    try:
        while rclpy.ok():  # spin_once, never EventsExecutor.spin(): that delivered no messages in a test here
            try:
                executor.spin_once(timeout_sec=0.5)
            except Exception:  # noqa: BLE001 - see docstring
                node.get_logger().error(f"callback failed, node continues:\n{traceback.format_exc()}")
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
