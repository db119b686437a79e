"""Action chunks -> smooth, limited end-effector velocity commands. Pure numpy, no ROS.

A chunk is ``N x 7`` actions (delta xyz [m], delta roll / pitch / yaw [rad] per action step, gripper 1 = open)
that start at the chunk's observation stamp. The rotation deltas are Euler angles (static x-y-z, as CogACT and the
Open X-Embodiment data use them): rows are blended as they are (as CogACT's ensemble does) and the blended step's
rotation becomes a rotation vector, so an angular velocity is a rotation vector over the step's time, never Euler
angles read as one (10-30% off at 0.3-0.5 rad). Row ``i`` is meant
for ``stamp + i * dt``, where ``dt`` is the chunk's own period (its points' time_from_start; the model's
action_dt). Indexing by the stamp compensates policy and transport latency. Overlapping chunks are blended
(``average``: newer weigh more; ``latest``; ``adaptive``: CogACT's adaptive ensemble, weights
exp(alpha * cosine similarity to the newest prediction)), the result is turned into a velocity, rate-limited
(acceleration) and clamped (speed). No covering chunk, or no new chunk for ``chunk_timeout`` seconds, means an
immediate zero command: the executor never extrapolates.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from molevla_ros.rotations import euler_to_rotvec

ACTION_DIM = 7
ACTION_NAMES = ["dx", "dy", "dz", "droll", "dpitch", "dyaw", "gripper"]
BLENDS = ("average", "latest", "adaptive")


@dataclass
class Limits:
    """What the executor enforces. The robot's own limits (speeds, accelerations, jerks, the hand's box) have no
    defaults here: they come from the robot profile (`from_profile`), or are spelt out where Limits is built."""
    max_linear_speed: float  # m/s
    max_angular_speed: float  # rad/s
    max_linear_accel: float  # m/s^2
    max_angular_accel: float  # rad/s^2
    max_linear_jerk: float  # m/s^3
    max_angular_jerk: float  # rad/s^3
    # End-effector box in the base frame (m); None disables. Motion towards a face slows as the hand nears it
    # (speed <= distance / workspace_approach_s) and stops at it; outside the box only inward motion is allowed.
    workspace_min: tuple[float, float, float] | None
    workspace_max: tuple[float, float, float] | None
    workspace_approach_s: float = 0.25
    # Chunks asking for more than this multiple of the speed limits in any step are refused, not clamped ...
    plausibility_margin: float = 3.0
    # ... or, where set (> 0), for more than these (from_profile: the margin times the limits before speed_scale, or
    # the serving model's fastest step where that is more: a model's own range is never refused, only clamped)
    plausible_linear_speed: float = 0.0  # m/s
    plausible_angular_speed: float = 0.0  # rad/s
    max_chunk_steps: int = 256  # longer chunks are refused
    action_dt_range: tuple[float, float] = (0.01, 1.0)  # chunk periods outside this are refused (s)

    @classmethod
    def from_profile(cls, robot, speed_scale: float = 1.0, workspace_approach_s: float = 0.25,
                     plausibility_margin: float = 3.0, model_speeds: tuple[float, float] = (0.0, 0.0)) -> "Limits":
        """A robot profile's limits (robot_profile.Limits), speeds times `speed_scale`. Steps are plausible up to
        `plausibility_margin` x the profile's speeds, or up to `model_speeds` (the model's fastest linear, angular
        step per second) where those are more."""
        box = len(robot.workspace_min) == 3
        return cls(robot.max_linear_speed * speed_scale, robot.max_angular_speed * speed_scale,
                   robot.max_linear_accel, robot.max_angular_accel, robot.max_linear_jerk, robot.max_angular_jerk,
                   tuple(robot.workspace_min) if box else None, tuple(robot.workspace_max) if box else None,
                   workspace_approach_s, plausibility_margin,
                   plausible_linear_speed=max(plausibility_margin * robot.max_linear_speed, model_speeds[0]),
                   plausible_angular_speed=max(plausibility_margin * robot.max_angular_speed, model_speeds[1]))


@dataclass
class Command:
    linear: np.ndarray = field(default_factory=lambda: np.zeros(3))
    angular: np.ndarray = field(default_factory=lambda: np.zeros(3))
    gripper_open: float | None = None  # None: leave the gripper as it is
    active: bool = False  # False: a halt (zero velocity)
    reason: str = ""
    wanted: np.ndarray | None = None  # the blended action per second before the limits (7,), for diagnostics


def validate_chunk(actions: np.ndarray, action_dt: float | None = None, limits: Limits | None = None) -> str | None:
    """Why a chunk must be refused, or None. Checks the shape and finiteness; with `action_dt` and `limits`
    also physical plausibility: no step may ask for more than the plausible speeds (default: `plausibility_margin`
    times the speed limits),
    and the gripper command must lie near [0, 1]. An implausible chunk is refused whole, never clamped and run:
    it means the producer is broken (wrong units, wrong scale, a corrupted message)."""
    if actions.ndim != 2 or actions.shape[1] != ACTION_DIM or actions.shape[0] == 0:
        return f"chunk shape {actions.shape} is not (N>0, {ACTION_DIM})"
    if not np.all(np.isfinite(actions)):
        return "chunk contains NaN or Inf"
    euler = np.abs(actions[:, 3:6])
    if euler.max() > np.pi:  # wrapped, 2 pi + 0.1 would read as a plausible 0.1 and blend as the 6.38 it says
        i = int(np.argmax(euler.max(1)))
        return (f"implausible chunk: step {i} turns {euler[i].max():.3g} rad about one axis (Euler steps lie in "
                "[-pi, pi])")
    if action_dt is None or limits is None:
        return None
    m = limits.plausibility_margin
    for name, cols, limit, bound, unit in (
            ("linear", slice(0, 3), limits.max_linear_speed, limits.plausible_linear_speed, "m/s"),
            ("angular", slice(3, 6), limits.max_angular_speed, limits.plausible_angular_speed, "rad/s")):
        speed = np.linalg.norm(actions[:, cols], axis=1) / action_dt
        i = int(np.argmax(speed))
        if speed[i] > (bound or m * limit):
            why = f"the plausible {bound:g} {unit}" if bound else f"{m:g} x the {limit:g} {unit} limit"
            return f"implausible chunk: step {i} asks for {name} speed {speed[i]:.3g} {unit} (> {why})"
    g = actions[:, 6]
    if np.any((g < -0.5) | (g > 1.5)):
        return f"implausible chunk: gripper command {g[np.argmax(np.abs(g - 0.5))]:.3g} outside [-0.5, 1.5]"
    return None


def order_by_names(names: list[str], actions: np.ndarray) -> tuple[np.ndarray, str | None]:
    """Columns of `actions` reordered from `names` to ACTION_NAMES; (actions, None) or (empty, why not).
    Every action name must appear exactly once: a chunk is never executed by column position."""
    if sorted(names) != sorted(ACTION_NAMES):
        return np.zeros((0, ACTION_DIM)), (f"chunk names {list(names)} are not the action names "
                                           f"{ACTION_NAMES} (any order)")
    if actions.ndim != 2 or actions.shape[1] != len(names):
        return np.zeros((0, ACTION_DIM)), f"chunk shape {actions.shape} does not match its {len(names)} names"
    return actions[:, [list(names).index(n) for n in ACTION_NAMES]], None


def chunk_period(times: list[float], default: float, dt_range: tuple[float, float],
                 tolerance: float = 1e-3) -> tuple[float, str | None]:
    """The chunk's period from its points' time_from_start (s), which must be i * dt, or (default, None) for
    a single point; (dt, why it must be refused) when the times are uneven or dt is out of range."""
    if len(times) < 2:
        return default, None
    dt = float(times[1] - times[0])
    if not dt_range[0] <= dt <= dt_range[1]:
        return dt, f"chunk period {dt:.4g} s is outside [{dt_range[0]}, {dt_range[1]}] s"
    expected = np.arange(len(times)) * dt
    err = np.abs(np.asarray(times, float) - expected)
    if float(err.max()) > tolerance:
        i = int(np.argmax(err))
        return dt, f"chunk point {i} is at {times[i]:.4f} s, expected {expected[i]:.4f} s (uneven time_from_start)"
    return dt, None


class ChunkExecutor:
    def __init__(self, action_dt: float, limits: Limits, blend: str = "average",
                 blend_decay: float = 0.5, max_chunk_age: float = 0.5, chunk_timeout: float = 0.5,
                 max_chunks: int = 4, adaptive_alpha: float = 0.1) -> None:
        """action_dt: the period of chunks that do not declare one (a single point, or no times given)."""
        if blend not in BLENDS:
            raise ValueError(f"blend must be one of {BLENDS}, not {blend!r}")
        self.action_dt = action_dt
        self.limits = limits
        self.blend = blend
        self.blend_decay = blend_decay
        self.adaptive_alpha = adaptive_alpha
        self.max_chunk_age = max_chunk_age
        self.chunk_timeout = chunk_timeout
        self.max_chunks = max_chunks
        self._last_chunk: float | None = None  # when the newest chunk was accepted
        self._halt_reason = "no action chunk yet"
        self._halt_pending = False
        self._chunks: list[tuple[float, np.ndarray, float]] = []  # (stamp, actions, period)
        self._lin = np.zeros(3)
        self._ang = np.zeros(3)
        self._lin_acc = np.zeros(3)
        self._ang_acc = np.zeros(3)

    def add_chunk(self, stamp: float, actions: np.ndarray, now: float, times: list[float] | None = None) -> str | None:
        """Queue a chunk; returns the reason it was rejected, or None. `times`: each action's offset from the
        stamp as the producer declared it (s), i * dt: the chunk runs at its own period dt."""
        actions = np.asarray(actions, dtype=float)
        if len(actions) > self.limits.max_chunk_steps:  # before any per-step work
            return f"chunk has {len(actions)} steps (> {self.limits.max_chunk_steps})"
        dt, problem = chunk_period(times if times is not None else [], self.action_dt, self.limits.action_dt_range)
        problem = problem or validate_chunk(actions)
        if problem:
            return problem
        motion = actions.copy()
        motion[:, 3:6] = euler_to_rotvec(actions[:, 3:6])  # the rotations as the arm will turn
        problem = validate_chunk(motion, dt, self.limits)
        if problem:
            return problem
        if self._chunks and stamp < self._chunks[-1][0]:
            return (f"chunk is out of order (stamped {self._chunks[-1][0] - stamp:.3f} s before the chunk already "
                    "queued)")
        age = now - stamp
        if age > self.max_chunk_age:
            return f"chunk is stale ({age:.3f} s old > {self.max_chunk_age} s)"
        if age < -self.max_chunk_age:
            return f"chunk stamp is {-age:.3f} s in the future (clock jump?)"
        self._chunks.append((stamp, actions, dt))
        self._last_chunk = now
        self._chunks = self._chunks[-self.max_chunks:]
        return None

    @property
    def active(self) -> bool:
        """True while chunks are queued (the arm may be moving)."""
        return self._last_chunk is not None

    def halt(self, reason: str = "halted") -> None:
        """Drop all queued actions; commands are zero until the next chunk."""
        self._halt_reason = reason
        self._halt_pending = True  # the next command is a zero one, even if a new chunk arrives first
        self._chunks.clear()
        self._last_chunk = None
        for v in (self._lin, self._ang, self._lin_acc, self._ang_acc):
            v[:] = 0.0

    def _covering(self, t: float) -> list[tuple[np.ndarray, float]]:
        """(row, period) of every queued chunk that covers time ``t``, newest first."""
        rows = []
        for stamp, actions, dt in self._chunks[::-1]:
            i = int(np.floor((t - stamp) / dt))
            if 0 <= i < len(actions):
                rows.append((actions[i], dt))
        return rows

    def _rows_at(self, now: float) -> list[tuple[np.ndarray, float]]:
        """`_covering(now)`, after dropping the chunks that have ended by ``now``."""
        self._chunks = [(s, a, dt) for s, a, dt in self._chunks if np.floor((now - s) / dt) < len(a)]
        return self._covering(now)

    def _blend(self, rows: list[tuple[np.ndarray, float]]) -> np.ndarray:
        """The blended action per second (deltas / period, rotation as Euler-angle rates; gripper as is) of covering
        rows, newest first."""
        raw = np.stack([r for r, _ in rows])
        w = self._weights(raw)
        per_second = raw.copy()
        per_second[:, :6] /= np.array([p for _, p in rows])[:, None]  # each chunk's deltas at its own period
        return (w[:, None] * per_second).sum(0)

    def _velocity(self, rows: list[tuple[np.ndarray, float]]) -> np.ndarray:
        """`_blend`, with the rotation as an angular velocity: the blended step (over the newest row's period) as a
        rotation vector, per second."""
        action, dt = self._blend(rows), rows[0][1]
        action[3:6] = euler_to_rotvec(action[3:6] * dt)[0] / dt
        return action

    def plan(self, start: float, n: int, dt: float) -> np.ndarray:
        """(m <= n, 7): what the queue will ask for at start + i * dt, blended as `step` blends, as deltas over dt
        (gripper as is); it ends at the first time no chunk covers. Real-time chunking passes this to the policy,
        which continues it instead of starting afresh."""
        out = []
        for i in range(n):
            rows = self._covering(start + (i + 0.5) * dt)  # the middle of step i
            if not rows:
                break
            action = self._blend(rows)
            action[:6] *= dt
            out.append(action)
        return np.array(out).reshape(-1, ACTION_DIM)

    def _weights(self, rows: np.ndarray) -> np.ndarray:
        """Blend weights of the covering rows (newest first)."""
        if self.blend == "latest":
            return np.eye(len(rows))[0]
        if self.blend == "adaptive":  # CogACT: similarity of each prediction to the newest one
            cos = rows @ rows[0] / (np.linalg.norm(rows, axis=1) * np.linalg.norm(rows[0]) + 1e-7)
            w = np.exp(self.adaptive_alpha * cos)
        else:
            w = self.blend_decay ** np.arange(len(rows))
        return w / w.sum()

    def step(self, now: float, dt: float, ee_pos: np.ndarray | None = None) -> Command:
        """The command for time ``now``, ``dt`` seconds after the previous one; ``ee_pos`` (base frame, m)
        enables the workspace box."""
        if self._last_chunk is None or self._halt_pending:
            self._halt_pending = False
            return Command(reason=self._halt_reason)
        silence = now - self._last_chunk
        if silence > self.chunk_timeout:
            self.halt(f"no fresh action chunk for {silence:.2f} s")
            return Command(reason=self._halt_reason)
        rows = self._rows_at(now)
        if not rows:
            self.halt("the last action chunk ran out")
            return Command(reason=self._halt_reason)
        action = self._velocity(rows)
        lim = self.limits
        want = action[:3]
        if ee_pos is not None and lim.workspace_min is not None and lim.workspace_max is not None:
            want = workspace_clamp(want, np.asarray(ee_pos, float), lim)
        self._lin, self._lin_acc = limit_motion(want, self._lin, self._lin_acc, dt,
                                                lim.max_linear_speed, lim.max_linear_accel, lim.max_linear_jerk)
        self._ang, self._ang_acc = limit_motion(action[3:6], self._ang, self._ang_acc, dt,
                                                lim.max_angular_speed, lim.max_angular_accel, lim.max_angular_jerk)
        return Command(self._lin.copy(), self._ang.copy(), 1.0 if action[6] >= 0.5 else 0.0, True, "tracking", action)


def workspace_clamp(want: np.ndarray, ee_pos: np.ndarray, lim: Limits) -> np.ndarray:
    """Linear velocity with motion towards (or beyond) a face of the workspace box limited; never pushes."""
    lo = np.minimum((np.asarray(lim.workspace_min) - ee_pos) / lim.workspace_approach_s, 0.0)
    hi = np.maximum((np.asarray(lim.workspace_max) - ee_pos) / lim.workspace_approach_s, 0.0)
    return np.clip(want, lo, hi)


def _clamp_norm(x: np.ndarray, limit: float) -> np.ndarray:
    n = float(np.linalg.norm(x))
    return x * (limit / n) if n > limit else x


def limit_motion(want: np.ndarray, vel: np.ndarray, acc: np.ndarray, dt: float, max_speed: float, max_accel: float,
                 max_jerk: float) -> tuple[np.ndarray, np.ndarray]:
    """Next (velocity, acceleration) towards the velocity ``want`` with |v|, |a| and |da/dt| bounded.

    The acceleration asked for shrinks as sqrt(2 * jerk * |dv|) near the target, so it can be ramped back
    to zero in time (no overshoot ringing). Speed and acceleration bounds hold exactly on every step; the
    jerk bound holds except on the step that lands on the target (a small, final change of acceleration).
    """
    want = _clamp_norm(want, max_speed)
    dv = want - vel
    gap = float(np.linalg.norm(dv))
    if dt <= 0:
        return vel.copy(), acc.copy()
    if gap < 1e-12:  # on target: hold it
        return want, np.zeros_like(acc)
    # Largest acceleration that can still be ramped down (jerk * dt per step) before reaching the target.
    braking = max_jerk * (np.sqrt(dt * dt / 4 + 2 * gap / max_jerk) - dt / 2) if np.isfinite(max_jerk) else np.inf
    wanted_acc = dv / gap * min(max_accel, braking, gap / dt)
    new_acc = _clamp_norm(acc + _clamp_norm(wanted_acc - acc, max_jerk * dt), max_accel)
    new_vel = vel + new_acc * dt
    if float(np.dot(want - new_vel, dv)) <= 0:  # reaches or passes the target: land on it
        new_vel = want.copy()
    new_vel = _clamp_norm(new_vel, max_speed)
    return new_vel, (new_vel - vel) / dt
