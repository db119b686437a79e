"""The language-goal action (molevla_interfaces/action/LanguageGoal on molevla/language_goal) of the instruction node.

For task-level clients (behaviour trees, FlexBE, MoveIt Task Constructor): the goal is an instruction, feedback
reports the goal's state, the executor's condition and the policy's last step, the result says whether the
success detector confirmed the goal and, if not, why it ended. The goal itself is the instruction node's: it
goes through the same checks and rate limit as one on molevla/instruction, a newer goal from either path replaces
it (result `replaced`), and cancel stops the arm. Only the newest action goal is followed.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.task import Future

from molevla_ros.inputs.instructions import Instruction
from molevla_ros.topics import TOPIC_DIAGNOSTICS, TOPIC_POLICY_STATS

if TYPE_CHECKING:
    from molevla_ros.nodes.instruction_node import InstructionNode

TOPIC_ACTION = "molevla/language_goal"
FEEDBACK_HZ = 5.0


def load_action_type():
    """The LanguageGoal action type, or None when molevla_interfaces is not built (scripts/build_interfaces.sh on
    a pip install; colcon builds it with the workspace)."""
    try:
        from molevla_interfaces.action import LanguageGoal
    except ImportError:
        return None
    return LanguageGoal


class GoalAction:
    """Serves LanguageGoal for `node`; the node calls `ended(outcome, reason)` whenever its goal ends."""

    def __init__(self, node: InstructionNode, action_type) -> None:
        self.node, self.type = node, action_type
        self.handle = None  # the action goal being followed
        self.done: Future | None = None  # resolved with the result when that goal ends
        self.started = 0.0
        self.executor = ""  # the executor's last condition on /diagnostics
        self.stats: dict[str, str] = {}  # the policy's last step (molevla/policy_stats values)
        # request text -> its cleaned goals, from the goal check to execution (two requests of one text can both be
        # admitted before either executes)
        self.admitted: dict[str, list[Instruction]] = {}
        ns = node.get_namespace().rstrip("/")
        self.executor_entry = f"molevla: {ns}/executor".replace(": /", ": ")
        node.create_subscription(DiagnosticArray, TOPIC_DIAGNOSTICS, self.on_diagnostics, 10)
        node.create_subscription(DiagnosticStatus, TOPIC_POLICY_STATS, self.on_stats, 5)
        ActionServer(node, action_type, TOPIC_ACTION, execute_callback=self.execute,
                     goal_callback=self.on_goal_request, cancel_callback=self.on_cancel)
        node.create_timer(1.0 / FEEDBACK_HZ, self.publish_feedback)

    def on_goal_request(self, request) -> GoalResponse:
        goal = self.node.admit(request.instruction, via="action")
        if goal is None:
            return GoalResponse.REJECT
        self.admitted.setdefault(request.instruction, []).append(goal)
        return GoalResponse.ACCEPT

    def on_cancel(self, handle) -> CancelResponse:
        if handle is self.handle:
            self.node.stop("action goal canceled")
        return CancelResponse.ACCEPT

    async def execute(self, handle):
        # Starting the goal ends the action goal followed so far (replaced) before this one is registered.
        waiting = self.admitted[handle.request.instruction]
        goal = waiting.pop(0)
        if not waiting:
            del self.admitted[handle.request.instruction]
        self.node.start_goal(goal)
        self.handle, self.done, self.started = handle, Future(), time.monotonic()
        self.publish_feedback()
        result = await self.done
        if handle.is_cancel_requested:
            handle.canceled()
        elif result.success:
            handle.succeed()
        else:
            handle.abort()
        return result

    def ended(self, outcome: str, reason: str) -> None:
        """The node's goal ended (succeeded, failed, stopped, replaced): finish the action goal following it."""
        if self.handle is None:
            return
        result = self.type.Result(success=outcome == "succeeded", outcome=outcome, reason=reason,
                                  elapsed_s=time.monotonic() - self.started)
        done, self.handle, self.done = self.done, None, None
        done.set_result(result)

    def publish_feedback(self) -> None:
        if self.handle is None or not self.handle.is_active:
            return
        s = self.stats
        self.handle.publish_feedback(self.type.Feedback(
            state=self.node.state, elapsed_s=time.monotonic() - self.started, executor=self.executor,
            layers_kept=_number(s.get("layers_kept"), int), layers_total=_number(s.get("layers_total"), int),
            step_latency_ms=_number(s.get("latency_ms"), float)))

    def on_diagnostics(self, msg: DiagnosticArray) -> None:
        for st in msg.status:
            if st.name == self.executor_entry:
                self.executor = st.message

    def on_stats(self, msg: DiagnosticStatus) -> None:
        self.stats = {kv.key: kv.value for kv in msg.values}


def _number(value: str | None, kind: type[int] | type[float]) -> int | float:
    """A policy stats value as a number; -1 where it is missing or not a number (a malformed stats message)."""
    try:
        return kind(value)
    except (TypeError, ValueError, OverflowError):
        return kind(-1)
