"""Scripted expert: a hand-written controller that reads the simulator's true object poses.

It is NOT a learned policy. It records demonstrations and proves the loop before a model exists.
It is stateless: every call re-plans from the current state, so it recovers from disturbances and
works at any re-planning rate. The output is an action chunk in the policy format
(``horizon`` x 7: delta xyz in metres per action step, delta rpy, gripper 1 = open / 0 = closed).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from molevla_ros.model.language import parse_instruction
from molevla_ros.sim.tasks import CUBE_SIZE

HOVER = 0.10  # height above an object before descending (m)
CARRY_Z = 0.14
FAST, SLOW = 0.025, 0.012  # max EE travel per action step (m)


@dataclass
class PrivilegedState:
    ee_pos: np.ndarray
    gripper_width: float  # metres between the fingers
    objects: dict[str, np.ndarray]  # name -> xyz ("red_cube", "blue_target", "tray")


def offset_chunk(chunk: np.ndarray, noise: float, rng: np.random.Generator) -> np.ndarray:
    """A copy of `chunk` with one random xyz offset, N(0, `noise`) metres per action step, added to every row:
    what the expert executes when recording with DART noise (`molevla collect --noise`, `molevla bench-push`)."""
    out = np.array(chunk, dtype=float)
    if noise:
        out[:, :3] += rng.normal(0.0, noise, 3)
    return out


def push_start(cube_xy: np.ndarray, goal_xy: np.ndarray) -> np.ndarray:
    """xy where the expert's push starts: behind the cube on the line from the goal through the cube, 3 cm clear of
    its face."""
    d = goal_xy - cube_xy
    return cube_xy - d / max(np.linalg.norm(d), 1e-6) * (CUBE_SIZE / 2 + 0.03)


class ScriptedExpert:
    action_dt = 0.1  # s between the actions of its chunks: the simulator's training data and its models use it
    def __init__(self, horizon: int = 16) -> None:
        self.horizon = horizon

    def act(self, instruction: str, state: PrivilegedState) -> np.ndarray:
        parsed = parse_instruction(instruction)
        if parsed is None:
            raise ValueError(f"the scripted expert knows no task for {instruction!r}")
        family, cube, target = parsed
        plan = {"touch": self._touch, "push": self._push, "pick_place": self._pick_place}[family]
        ee = state.ee_pos.astype(float).copy()
        cube_pos = state.objects[f"{cube}_cube"].astype(float).copy()
        goal = state.objects[f"{target}_target"] if target else state.objects.get("tray")
        grasped = self._holding(state, cube_pos)
        closing_steps = 0
        chunk = np.zeros((self.horizon, 7))
        for k in range(self.horizon):
            waypoint, speed, grip = plan(ee, cube_pos, goal, grasped, closing_steps)
            step = waypoint - ee
            n = np.linalg.norm(step)
            if n > speed:
                step *= speed / n
            chunk[k, :3] = step
            chunk[k, 6] = grip
            # Roll the plan forward on a kinematic model of the arm (and a held cube).
            ee = ee + step
            if grasped:
                cube_pos = cube_pos + step
            if grip == 0.0 and not grasped and family == "pick_place":
                closing_steps += 1
                grasped = closing_steps >= 4
            elif grip == 1.0:
                grasped, closing_steps = False, 0
        return chunk

    @staticmethod
    def _holding(state: PrivilegedState, cube: np.ndarray) -> bool:
        near = np.linalg.norm(state.ee_pos - cube) < 0.025
        return bool(near and 0.02 < state.gripper_width < 0.06)  # fingers closed on a (maybe rotated) cube

    @staticmethod
    def _touch(ee, cube, goal, grasped, closing):
        above = cube + [0, 0, HOVER]
        if np.linalg.norm((ee - cube)[:2]) > 0.01 and ee[2] < cube[2] + HOVER - 0.03:
            return ee + [0, 0, FAST], FAST, 0.0  # rise before travelling
        if np.linalg.norm((ee - cube)[:2]) > 0.008:
            return above, FAST, 0.0
        return cube + [0, 0, CUBE_SIZE / 2 - 0.012], SLOW, 0.0  # closed fingertips onto the top face

    @staticmethod
    def _push(ee, cube, goal, grasped, closing):
        d = goal[:2] - cube[:2]
        dist = np.linalg.norm(d)
        u = d / max(dist, 1e-6)
        behind = np.r_[push_start(cube[:2], goal[:2]), 0.015]
        # Offset of the EE from the pushing line (through the cube along u), and how far behind it is.
        rel = ee[:2] - cube[:2]
        along = rel @ u
        across = abs(rel @ np.array([-u[1], u[0]]))
        aligned = along < -(CUBE_SIZE / 2 + 0.005) and across < 0.015
        if dist < 0.01:
            return ee + [0, 0, 0.01], SLOW, 0.0  # done: back off upwards
        if aligned and ee[2] < 0.03:
            return np.r_[goal[:2] - u * (CUBE_SIZE / 2 + 0.015), 0.015], SLOW, 0.0
        if np.linalg.norm(ee[:2] - behind[:2]) < 0.012:
            return behind, FAST, 0.0  # descend behind the cube
        if ee[2] < 0.08 and np.linalg.norm(ee[:2] - behind[:2]) > 0.02:
            return np.r_[ee[:2], 0.1], FAST, 0.0  # lift clear before moving around the cube
        return np.r_[behind[:2], 0.1], FAST, 0.0

    @staticmethod
    def _pick_place(ee, cube, tray, grasped, closing):
        if grasped:
            above_tray = np.r_[tray[:2], CARRY_Z]
            if ee[2] < CARRY_Z - 0.04 and np.linalg.norm((ee - tray)[:2]) > 0.03:
                return np.r_[ee[:2], CARRY_Z], FAST, 0.0  # lift first
            if np.linalg.norm((ee - above_tray)[:2]) > 0.015:
                return above_tray, FAST, 0.0
            return np.r_[tray[:2], 0.08], FAST, 1.0 if ee[2] < 0.1 else 0.0  # lower, then release
        if np.all(np.abs((cube - tray)[:2]) < 0.06) and cube[2] < 0.06:
            return np.r_[ee[:2], CARRY_Z], FAST, 1.0  # done: the cube is in the tray, back off
        grasp = cube.copy()
        if closing > 0:
            return grasp, SLOW, 0.0
        near_xy = np.linalg.norm((ee - cube)[:2]) < 0.01
        if near_xy and abs(ee[2] - grasp[2]) < 0.008:
            return grasp, SLOW, 0.0  # at the grasp pose: close
        if near_xy:
            return grasp, FAST, 1.0
        if ee[2] < cube[2] + 0.05:
            return np.r_[ee[:2], cube[2] + HOVER], FAST, 1.0
        return cube + [0, 0, HOVER], FAST, 1.0
