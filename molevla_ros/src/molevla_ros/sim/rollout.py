"""Run episodes in-process on simulated time: policy -> the executor's chunk logic -> simulator.

This is the same chain the ROS loop runs (same :class:`ChunkExecutor`, same command interface),
without transport, so data collection and evaluation run faster than real time.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from molevla_ros.backends.base import Observation
from molevla_ros.control.chunk_executor import ChunkExecutor, Limits
from molevla_ros.robot_profile import load
from molevla_ros.sim.expert import PrivilegedState
from molevla_ros.sim.scene import CAMERA, FrankaTableSim
from molevla_ros.sim.tasks import Task


@dataclass
class EpisodeResult:
    task: Task
    success: bool
    seconds: float
    control_steps: int
    frames: list[np.ndarray] = field(default_factory=list)
    # On each command tick where a new chunk takes effect: |change| of the linear velocity the executor wants
    # (m/s, blended, before its limits) between the queue without and with the new chunk. The discontinuity a
    # chunk switch causes, which the limits then have to absorb.
    boundary_jumps: list[float] = field(default_factory=list)
    # On every command tick: |change| of that wanted linear velocity since the previous tick (m/s), wherever it
    # happens (a mode that only moves a discontinuity away from the switch shows it here).
    velocity_steps: list[float] = field(default_factory=list)


def sim_executor(action_dt: float, **kw) -> ChunkExecutor:
    """The executor's chunk logic with the simulated robot's limits (robots/panda_sim.yaml), as the ROS loop runs it."""
    return ChunkExecutor(action_dt, Limits.from_profile(load("panda_sim").limits), **kw)


def privileged_state(sim: FrankaTableSim) -> PrivilegedState:
    ee, _ = sim.ee_pose()
    return PrivilegedState(ee_pos=ee, gripper_width=sim.gripper_width(),
                           objects={k: p for k, (p, _) in sim.object_poses().items()})


def observe(sim: FrankaTableSim, instruction: str, with_image: bool) -> Observation:
    names, q, _ = sim.joint_state()
    return Observation(instruction, dict(zip(names, map(float, q))), {CAMERA: sim.render()} if with_image else {},
                       sim.time, privileged_state(sim))


def land(executor: ChunkExecutor, chunks: list[tuple[float, np.ndarray]], now: float, dt: float) -> list[float]:
    """Queue (stamp, chunk) pairs at `now`; the jump they cause in the wanted linear velocity (m/s), if any."""
    before = executor.plan(now, 1, dt)
    for stamp, chunk in chunks:
        executor.add_chunk(stamp, chunk, now)
    after = executor.plan(now, 1, dt)
    return [float(np.linalg.norm(after[0, :3] - before[0, :3])) / dt] if len(before) and len(after) else []


def run_episode(sim: FrankaTableSim, task: Task, policy: Callable[[Observation], np.ndarray],
                executor: ChunkExecutor, control_hz: float = 5.0, command_hz: float = 50.0,
                max_seconds: float = 25.0, with_images: bool = False,
                on_step: Callable[[Observation, np.ndarray], None] | None = None,
                keep_frames_every: int = 0, delay_s: float = 0.0, rtc: bool = False,
                action_dt: float = 0.1, horizon: int = 16,
                on_tick: Callable[[float], None] | None = None) -> EpisodeResult:
    """One episode; ends at success (held for 0.3 s) or ``max_seconds`` of simulated time.

    delay_s: inference delay in simulated time. A chunk computed from the observation at t takes effect at
    t + delay_s (stamped t, so the executor skips the rows that are already past), while the executor keeps
    running the chunks it has; the policy starts its next step when this one is done or a control period has
    passed, whichever is later (one inference at a time, as the policy node runs). rtc: each observation carries
    the executor's plan from t on (`horizon` rows of `action_dt`) and how many rows run before the chunk arrives
    (Observation.prefix), for a policy that continues it (real-time chunking).
    """
    sim.reset(task)
    executor.halt()
    dt = 1.0 / command_hz
    every = max(1, int(round(command_hz / control_hz)))
    lag = int(round(delay_s / dt))  # command ticks from an observation to its chunk taking effect
    frames: list[np.ndarray] = []
    jumps: list[float] = []
    steps_v: list[float] = []
    wanted = None
    tick_s = dt  # simulated seconds per command tick (the physics step rounds dt)
    success_since: float | None = None
    tick, steps, next_step = 0, 0, 0
    pending: list[tuple[int, float, np.ndarray]] = []  # (tick it takes effect, observation time, chunk)
    while sim.time < max_seconds:
        now = sim.time
        if on_tick:
            on_tick(now)
        # Chunks landing now first: an observation taken on this tick sees the queue they make.
        if any(p[0] <= tick for p in pending):
            jumps += land(executor, [(s, c) for t, s, c in pending if t <= tick], now, dt)
            pending = [p for p in pending if p[0] > tick]
        if tick >= next_step:
            obs = observe(sim, task.instruction, with_images)
            if rtc:
                obs.prefix = executor.plan(now, horizon, action_dt)
                obs.prefix_frozen = int(np.ceil(lag * tick_s / action_dt - 1e-9))
            chunk = policy(obs)
            if lag:
                pending.append((tick + lag, now, chunk))
            else:
                jumps += land(executor, [(now, chunk)], now, dt)
            next_step = tick + max(every, lag)
            if on_step:
                on_step(obs, chunk)
            if keep_frames_every and CAMERA in obs.images and steps % keep_frames_every == 0:
                frames.append(obs.images[CAMERA])
            steps += 1
        cmd = executor.step(now, dt)
        if cmd.wanted is not None and wanted is not None:
            steps_v.append(float(np.linalg.norm(cmd.wanted[:3] - wanted)))
        wanted = cmd.wanted[:3] if cmd.wanted is not None else None
        sim.command_twist(cmd.linear, cmd.angular)
        if cmd.gripper_open is not None:
            sim.command_gripper(cmd.gripper_open)
        sim.advance(dt)
        tick_s = sim.time - now
        tick += 1
        if sim.success():
            success_since = now if success_since is None else success_since
            if now - success_since >= 0.3:
                break
        else:
            success_since = None
    return EpisodeResult(task, success_since is not None, sim.time, steps, frames, jumps, steps_v)
