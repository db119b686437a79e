"""Run episodes in-process on simulated time: policy -> the executor's chunk logic -> simulator.

This is the same chain the ROS loop runs (same :class:`ChunkExecutor`, same command interface),
without transport, so data collection and evaluation run faster than real time.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from molevla_ros.backends.base import Observation
from molevla_ros.control.chunk_executor import ChunkExecutor
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


def privileged_state(sim: FrankaTableSim) -> PrivilegedState:
    ee, _ = sim.ee_pose()
    return PrivilegedState(ee_pos=ee, gripper_width=sim.gripper_width(),
                           objects={k: p for k, (p, _) in sim.object_poses().items()})


def observe(sim: FrankaTableSim, instruction: str, with_image: bool) -> Observation:
    names, q, _ = sim.joint_state()
    return Observation(instruction, dict(zip(names, map(float, q))), {CAMERA: sim.render()} if with_image else {},
                       sim.time, privileged_state(sim))


def run_episode(sim: FrankaTableSim, task: Task, policy: Callable[[Observation], np.ndarray],
                executor: ChunkExecutor, control_hz: float = 5.0, command_hz: float = 50.0,
                max_seconds: float = 25.0, with_images: bool = False,
                on_step: Callable[[Observation, np.ndarray], None] | None = None,
                keep_frames_every: int = 0) -> EpisodeResult:
    """One episode; ends at success (held for 0.3 s) or ``max_seconds`` of simulated time."""
    sim.reset(task)
    executor.halt()
    dt = 1.0 / command_hz
    every = max(1, int(round(command_hz / control_hz)))
    frames: list[np.ndarray] = []
    success_since: float | None = None
    tick, steps = 0, 0
    while sim.time < max_seconds:
        now = sim.time
        if tick % every == 0:
            obs = observe(sim, task.instruction, with_images)
            chunk = policy(obs)
            executor.add_chunk(now, chunk, now)
            if on_step:
                on_step(obs, chunk)
            if keep_frames_every and CAMERA in obs.images and steps % keep_frames_every == 0:
                frames.append(obs.images[CAMERA])
            steps += 1
        cmd = executor.step(now, dt)
        sim.command_twist(cmd.linear, cmd.angular)
        if cmd.gripper_open is not None:
            sim.command_gripper(cmd.gripper_open)
        sim.advance(dt)
        tick += 1
        if sim.success():
            success_since = now if success_since is None else success_since
            if now - success_since >= 0.3:
                break
        else:
            success_since = None
    return EpisodeResult(task, success_since is not None, sim.time, steps, frames)
