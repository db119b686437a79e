"""Declared node parameters: each one's default, description and allowed range or choices, checked at start-up (and
when a dynamic one changes); the parameters several nodes share; the robot profile a node runs with."""
from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node

from molevla_ros.inputs.images import MAX_ASPECT_CHANGE, MIN_INPUT_SCALE
from molevla_ros.robot_profile import DEFAULT_ROBOT, ProfileError, RobotProfile, load

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


def load_robot(node: Node, robot: str) -> RobotProfile:
    """The robot profile `robot`; a profile that is missing or inconsistent stops the node (ParameterError)."""
    try:
        return load(robot)
    except ProfileError as e:
        raise ParameterError(f"{node.get_name()}: refusing to start: {e}") from None


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
