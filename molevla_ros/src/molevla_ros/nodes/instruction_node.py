"""instruction: language goals in, the active goal and its status out; the operator's stop path.

States on molevla/status: accepted, rejected, running, succeeded, failed, stopped.
The active goal is latched on molevla/goal; an empty goal means "no goal: hold still".

Success (molevla/task_success, std_msgs/Bool from a success detector such as the simulator) counts for a goal
only as a rising edge seen while that goal runs: the detector must first report False after the goal was set,
so a True left over from the previous task never completes a new goal.
Goals arriving faster than max_goal_rate_hz are refused (stop words never are).

The same goals also come as an action, molevla/language_goal (molevla_interfaces/action/LanguageGoal: feedback,
result, cancel = stop; see goal_action.py), when molevla_interfaces is built; without it the topic interface
works alone and the node says so once.
"""
from __future__ import annotations

import time

from rclpy.node import Node
from std_msgs.msg import Bool, String
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from molevla_ros.inputs.instructions import Instruction, InstructionError, is_stop, validate
from molevla_ros.nodes.params import Param, declare
from molevla_ros.nodes.process import run
from molevla_ros.nodes.qos import LATCHED_QOS, RELIABLE_QOS
from molevla_ros.nodes.status import Status
from molevla_ros.topics import TOPIC_CHUNK, TOPIC_GOAL, TOPIC_INSTRUCTION, TOPIC_SUCCESS
from molevla_ros.nodes.goal_action import GoalAction, load_action_type

PARAMS = [
    Param("max_chars", 256, "Longest accepted instruction, in characters."),
    Param("goal_timeout_s", 90.0, "A goal not succeeded after this long fails and the arm stops (0: never)."),
    Param("max_goal_rate_hz", 5.0, "New goals faster than this are refused, so a flood cannot starve the loop."),
]


class InstructionNode(Node):
    def __init__(self) -> None:
        super().__init__("instruction")
        self.p = declare(self, PARAMS)
        self.status = Status(self)
        self.goal_pub = self.create_publisher(String, TOPIC_GOAL, LATCHED_QOS)
        # raw=True: bytes arrive undecoded, so invalid UTF-8 is reported instead of raising inside rclpy.
        self.create_subscription(String, TOPIC_INSTRUCTION, self.on_instruction, RELIABLE_QOS, raw=True)
        self.create_subscription(JointTrajectory, TOPIC_CHUNK, self.on_chunk, 5)
        self.create_subscription(Bool, TOPIC_SUCCESS, self.on_success, 10)
        self.create_service(Trigger, "molevla/stop", self.on_stop_service)
        self.create_timer(0.5, self.check_timeout)
        self.goal = ""
        self.state = "idle"
        self.started = 0.0
        self.last_accepted = -1e9  # monotonic time of the last admitted goal (rate limit)
        self.success_armed = False  # the detector reported False since the goal was set
        self.goal_pub.publish(String(data=""))
        action_type = load_action_type()
        self.action = GoalAction(self, action_type) if action_type is not None else None
        if self.action is None:
            self.get_logger().warn("molevla_interfaces is not built: no molevla/language_goal action, goals come on "
                                   f"{TOPIC_INSTRUCTION} only (scripts/build_interfaces.sh on a pip install)")

    def on_instruction(self, raw: bytes) -> None:
        try:
            text = _cdr_string(raw)
        except InstructionError as e:
            self.status("rejected", str(e), error=True, event=True)
            return
        goal = self.admit(text, via="topic")
        if goal is not None:
            self.start_goal(goal)

    def admit(self, raw: bytes | str, via: str) -> Instruction | None:
        """The cleaned goal if `raw` may become the goal now, else None with the reason on status. A stop word stops
        the arm and is never a goal; goals faster than max_goal_rate_hz are refused, counted from each admission
        (an action goal is admitted before it starts executing)."""
        try:
            goal = validate(raw, self.p.max_chars)
        except InstructionError as e:
            self.status("rejected", f"{e} ({via})", error=True, event=True)
            return None
        if is_stop(goal.text):
            self.stop(f"operator stop ({via})")
            return None
        since = time.monotonic() - self.last_accepted
        if since < 1.0 / self.p.max_goal_rate_hz:
            self.status("rejected", f"'{goal.text[:40]}' came {since * 1e3:.0f} ms after the last goal (more than "
                        f"{self.p.max_goal_rate_hz:g} goals/s; {via})", error=True, event=True)
            return None
        self.last_accepted = time.monotonic()
        return goal

    def start_goal(self, goal: Instruction) -> None:
        replaced = f" (replaces '{self.goal}')" if self.goal else ""
        self.set_goal(goal.text, "accepted", goal.text + replaced, goal.note)

    def set_goal(self, goal: str, state: str, reason: str, note: str = "") -> None:
        """Make `goal` the goal ("" = none) in `state`; the goal it replaces ends (and its action goal with it).
        `note` is shown with the state ("accepted (control characters removed): ...").

        The new goal is published first so that the arm stops following the old one before anything else."""
        self.goal_pub.publish(String(data=goal))
        if self.action is not None and self.goal:
            outcome = "replaced" if state == "accepted" else state
            self.action.ended(outcome, f"replaced by '{goal}'" if outcome == "replaced" else reason)
        self.goal, self.state, self.started = goal, state, time.monotonic()
        self.success_armed = False
        self.status(f"{state} ({note})" if note else state, reason, repeat=True)

    def stop(self, reason: str) -> None:
        self.set_goal("", "stopped", reason)

    def on_chunk(self, _msg: JointTrajectory) -> None:
        if self.state == "accepted":
            self.state = "running"
            self.status("running", self.goal)

    def on_success(self, msg: Bool) -> None:
        if not msg.data:
            self.success_armed = bool(self.goal)
        elif self.state == "running" and self.success_armed:
            goal = self.goal
            self.set_goal("", "succeeded", goal)

    def check_timeout(self) -> None:
        t = self.p.goal_timeout_s
        if self.goal and t > 0 and time.monotonic() - self.started > t:
            self.set_goal("", "failed", f"'{self.goal}' timed out after {t:.0f} s")

    def on_stop_service(self, _req: Trigger.Request, resp: Trigger.Response) -> Trigger.Response:
        self.stop("stop service called")
        resp.success, resp.message = True, "stopped"
        return resp


def _cdr_string(raw: bytes) -> bytes:
    """The payload bytes of a CDR-serialised std_msgs/String (4-byte encapsulation, uint32 length, text, NUL)."""
    if len(raw) < 8:
        raise InstructionError("malformed message")
    n = int.from_bytes(raw[4:8], "little" if raw[1] == 1 else "big")
    if n == 0 or 8 + n > len(raw):
        raise InstructionError("malformed message")
    return raw[8:8 + n - 1]  # drop the terminating NUL


def main(args: list[str] | None = None) -> None:
    run(InstructionNode, args)


if __name__ == "__main__":
    main()
