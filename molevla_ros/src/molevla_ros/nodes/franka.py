"""The executor's adapters to franka_ros2 (Jazzy, v3.x): the Franka Hand through franka_gripper's actions, the arm's
robot mode (reflexes) and error recovery. franka_msgs is imported here only, so the package runs without it; a
profile that asks for these interfaces where franka_msgs is missing is refused (InterfaceUnavailable).

Action results are polled from a timer (no callbacks from futures), so they work on any rclpy executor.
"""
from __future__ import annotations

from typing import Callable

from action_msgs.msg import GoalStatus
from rclpy.node import Node
from std_srvs.srv import Trigger

from molevla_ros.robot_profile import Gripper
from molevla_ros.nodes.robot_interfaces import InterfaceUnavailable

Report = Callable[[str, bool], None]  # (message, is_error): the executor's status
GOAL_STATES = {GoalStatus.STATUS_ABORTED: "aborted", GoalStatus.STATUS_CANCELED: "canceled"}


def _franka_msgs(what: str):
    try:
        from franka_msgs import action, msg
    except ImportError as e:
        raise InterfaceUnavailable(f"franka_msgs is not importable (install franka_ros2): needed for {what}") from e
    return action, msg


class ActionCalls:
    """Goals in flight on action clients, polled: each finished goal's result goes to its callback."""

    def __init__(self, node: Node) -> None:
        self.calls: list[list] = []  # [stage future, callback]
        node.create_timer(0.05, self.poll)

    def send(self, client, goal, done: Callable[[object | None, str], None]) -> None:
        """Send `goal`; `done(result, why_not)` gets the result, or None and why there is none."""
        self.calls.append([client.send_goal_async(goal), done, "goal"])

    def poll(self) -> None:
        for call in list(self.calls):
            future, done, stage = call
            if not future.done():
                continue
            if stage == "goal":
                handle = future.result()
                if handle is None or not handle.accepted:
                    self.calls.remove(call)
                    done(None, "goal rejected")
                    continue
                call[0], call[2] = handle.get_result_async(), "result"
            else:
                self.calls.remove(call)
                res = future.result()
                if res is None:
                    done(None, "no result")
                else:
                    done(res.result, "" if res.status == GoalStatus.STATUS_SUCCEEDED else
                         GOAL_STATES.get(res.status, f"status {res.status}"))


class FrankaGripper:
    """franka_gripper's homing (once, when its server appears), move (open) and grasp (close) actions and its stop
    service; every result that is not a success is reported."""

    def __init__(self, node: Node, g: Gripper, report: Report, home: bool) -> None:
        from rclpy.action import ActionClient

        action, _ = _franka_msgs("the franka_action gripper")
        self.action, self.g, self.report, self.node = action, g, report, node
        ns = g.action_ns
        self.homing_client = ActionClient(node, action.Homing, f"{ns}/homing")
        self.move = ActionClient(node, action.Move, f"{ns}/move")
        self.grasp = ActionClient(node, action.Grasp, f"{ns}/grasp")
        self.stop_client = node.create_client(Trigger, f"{ns}/stop")
        self.calls = ActionCalls(node)
        self.homed = not home
        self.queued: float | None = None  # a command that waits for homing to end
        self.stop_retry = None  # a timer while an e-stop waits for the stop service
        if home:
            self.home_timer = node.create_timer(0.5, self.try_homing)

    def try_homing(self) -> None:
        if self.homing_client.server_is_ready():
            self.node.destroy_timer(self.home_timer)
            self.report("gripper homing", False)
            self.calls.send(self.homing_client, self.action.Homing.Goal(), self.homed_done)

    def homed_done(self, result, why: str) -> None:
        self.homed = True
        self.check("homing", result, why)
        if self.queued is not None:
            self.send(self.queued)

    def send(self, open_: float) -> None:
        self.cancel_stop_retry()
        if not self.homed:
            self.queued = open_
            return
        g = self.g
        if open_ >= 0.5:
            self.calls.send(self.move, self.action.Move.Goal(width=g.width_open, speed=g.speed),
                            lambda r, why: self.check("open", r, why))
        else:
            goal = self.action.Grasp.Goal(width=0.0, speed=g.speed, force=g.force)
            goal.epsilon.inner, goal.epsilon.outer = g.epsilon_inner, g.epsilon_outer
            self.calls.send(self.grasp, goal, lambda r, why: self.check("grasp", r, why))

    def check(self, what: str, result, why: str) -> None:
        if result is not None and result.success:
            return
        detail = result.error if result is not None and result.error else \
            "the fingers did not end within the commanded width band" if result is not None else why
        self.report(f"gripper {what} failed ({why or 'no success'}): {detail}", True)

    def stop(self) -> None:
        """franka_gripper's stop service (e-stop): the fingers stop where they are."""
        self.queued = None
        if self.stop_client.service_is_ready():
            self.cancel_stop_retry()
            self.stop_client.call_async(Trigger.Request())
        elif self.stop_retry is None:  # sent as soon as the service appears, unless a new command comes first
            self.report("gripper stop service not available yet; it is sent when the service appears", True)
            self.stop_retry = self.node.create_timer(0.1, self.stop)

    def cancel_stop_retry(self) -> None:
        if self.stop_retry is not None:
            self.node.destroy_timer(self.stop_retry)
            self.stop_retry = None


class FrankaRobotState:
    """Watches franka_robot_state_broadcaster's robot_mode: a reflex (or the user stop) stops the executor; error
    recovery is franka_hardware's action, sent only when the operator asks."""

    def __init__(self, node: Node, topic: str, recovery_action: str, on_error: Callable[[str], None],
                 report: Report) -> None:
        from rclpy.action import ActionClient

        action, msg = _franka_msgs("watching the robot's reflexes")
        self.msg, self.action, self.on_error, self.report = msg, action, on_error, report
        self.modes = {getattr(msg.FrankaRobotState, k): k.removeprefix("ROBOT_MODE_")
                      for k in dir(msg.FrankaRobotState) if k.startswith("ROBOT_MODE_")}
        self.mode = ""
        self.recovery = ActionClient(node, action.ErrorRecovery, recovery_action)
        self.calls = ActionCalls(node)
        node.create_subscription(msg.FrankaRobotState, topic, self.on_state, 10)

    @property
    def failed(self) -> bool:
        return self.mode in ("REFLEX", "USER_STOPPED")

    def on_state(self, m) -> None:
        mode = self.modes.get(m.robot_mode, str(m.robot_mode))
        changed, self.mode = mode != self.mode, mode
        if self.failed and changed:
            errors = [f for f in m.current_errors.get_fields_and_field_types() if getattr(m.current_errors, f)]
            self.on_error(f"the robot reports {mode}" + (f" ({', '.join(errors)})" if errors else ""))

    def recover(self) -> tuple[bool, str]:
        """Send franka's error recovery; the result is reported on status."""
        if not self.recovery.server_is_ready():
            return False, "the error recovery action is not available (franka_hardware not running?)"
        self.calls.send(self.recovery, self.action.ErrorRecovery.Goal(), self.recovered)
        return True, "error recovery sent; watch molevla/status"

    def recovered(self, _result, why: str) -> None:
        if why:
            self.report(f"error recovery failed: {why}", True)
        else:
            self.report("recovered: the arm holds until a new goal or molevla/resume", False)
