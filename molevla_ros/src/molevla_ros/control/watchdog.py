"""The executor's safety state, without ROS: which inputs went stale, whether the policy is alive, and whether the
arm may follow chunks at all (goal, e-stop, hold). The executor node feeds it events and times and acts on what it
says; every time is seconds on one monotonic clock.

Stop semantics: after an e-stop (even once released), when the robot's joint states vanished for `robot_lost_s`,
or after a robot error (reflex), the arm holds until a new goal arrives or the operator resumes; releasing the
e-stop never starts motion by itself.
"""
from __future__ import annotations


class Watchdog:
    """Last valid arrival per watched input, the policy's liveliness, and robot loss."""

    def __init__(self, timeouts: dict[str, float], robot_lost_s: float, liveliness_grace_s: float = 0.0,
                 robot_input: str = "joint state") -> None:
        """timeouts: input name -> longest allowed gap (s; 0 = not watched); `robot_input` is the input whose
        absence for `robot_lost_s` means the robot went away."""
        self.timeouts = dict(timeouts)
        self.robot_lost_s = robot_lost_s
        self.grace = liveliness_grace_s
        self.robot_input = robot_input
        self.last: dict[str, float] = {}  # input -> time a valid one last arrived
        self.liveliness_lost_at: float | None = None
        self.forgiven = 0  # liveliness losses regained within the grace

    def seen(self, name: str, now: float) -> None:
        """A valid `name` arrived at `now`."""
        self.last[name] = now

    def stale(self, now: float) -> str:
        """Why the arm must halt because a watched input is stale (the first one, in `timeouts` order), or ""."""
        for name, limit in self.timeouts.items():
            if limit > 0:
                age = now - self.last[name] if name in self.last else float("inf")  # never seen: stale from the start
                if age > limit:
                    return f"{name} stale: none valid for {min(age, 99.0):.2f} s (> {limit} s)"
        return ""

    def robot_lost(self, now: float) -> str:
        """Why the robot counts as gone (its input arrived before but not for `robot_lost_s`), or ""."""
        last = self.last.get(self.robot_input)
        if last is not None and now - last > self.robot_lost_s:
            return f"no valid {self.robot_input} for {now - last:.1f} s (robot or simulator restarted?)"
        return ""

    def liveliness_changed(self, change: int, now: float) -> None:
        """The chunk publisher's DDS liveliness changed by `change` publishers (< 0 lost, > 0 regained)."""
        if change < 0:
            self.liveliness_lost_at = now
        elif change > 0 and self.liveliness_lost_at is not None:
            self.liveliness_lost_at = None
            self.forgiven += 1

    def liveliness_expired(self, now: float) -> bool:
        """True once (then reset) when liveliness was lost at least the grace ago and not regained."""
        if self.liveliness_lost_at is not None and now - self.liveliness_lost_at >= self.grace:
            self.liveliness_lost_at = None
            return True
        return False


class MotionGate:
    """Whether chunks may move the arm: a goal is set, no e-stop is engaged and the arm is not held."""

    def __init__(self) -> None:
        self.goal = ""
        self.estop = False
        self.hold = ""  # why the arm holds until a new goal or a resume ("" = not held)

    @property
    def open(self) -> bool:
        return bool(self.goal) and not self.estop and not self.hold

    def set_goal(self, goal: str) -> str:
        """A new goal ("" clears it). A non-empty goal releases a hold (the operator's decision to move again)
        unless the e-stop is engaged. Returns what changed, for the status ("" when nothing to say)."""
        self.goal = goal
        if goal and not self.estop and self.hold:
            self.hold = ""
            return f"new goal '{goal}', hold released"
        return ""

    def hold_until_resumed(self, reason: str) -> bool:
        """Hold the arm for `reason`; True when this starts a hold (False: already held, reason kept)."""
        if self.hold:
            return False
        self.hold = reason
        return True

    def set_estop(self, engaged: bool) -> None:
        """An engaged e-stop also holds the arm, so that releasing it alone never restarts motion."""
        self.estop = engaged
        if engaged:
            self.hold = self.hold or "e-stop was engaged"

    def resume(self) -> tuple[bool, str]:
        """The operator's resume: (accepted, message)."""
        if self.estop:
            return False, "e-stop is engaged: release it first"
        if not self.goal:
            return False, "no goal to resume"
        message = f"resumed '{self.goal}'" + (f" (was held: {self.hold})" if self.hold else "")
        self.hold = ""
        return True, message
