"""Task layouts of the simulated table from a seed, for the goal language of :mod:`molevla_ros.model.language`
(touch, push, pick_place); each family has an automatic success check in :mod:`molevla_ros.sim.scene`."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from molevla_ros.model.language import COLOUR_NAMES, FAMILIES, colours_named, instruction_for

# the rendered colour (RGBA) of each colour word
COLOURS: dict[str, tuple[float, float, float, float]] = dict(zip(COLOUR_NAMES, [
    (0.85, 0.1, 0.1, 1.0), (0.1, 0.7, 0.15, 1.0), (0.1, 0.25, 0.85, 1.0), (0.95, 0.85, 0.1, 1.0)]))


# Reachable tabletop region in the robot base frame (metres).
WORKSPACE_X = (0.38, 0.68)
WORKSPACE_Y = (-0.22, 0.22)
MIN_SEPARATION = 0.11
CUBE_SIZE = 0.04  # cube side (m)


@dataclass
class Task:
    """One episode's goal and layout. Positions are (x, y) on the table."""

    family: str
    instruction: str
    cube: str  # colour of the cube the goal is about
    target: str | None = None  # colour of the target disc (push)
    cubes: dict[str, tuple[float, float, float]] = field(default_factory=dict)  # colour -> (x, y, yaw)
    targets: dict[str, tuple[float, float]] = field(default_factory=dict)  # colour -> (x, y)
    tray: tuple[float, float] | None = None  # (x, y) of the tray centre (pick_place)


def is_goal_of(goal: str, task: Task) -> bool:
    """Whether a goal sentence, however worded, names this task's colours: the cube's colour, then the target's
    (push; named once when it is the cube's colour too), and no other. The simulator judges success only for
    such goals."""
    return colours_named(goal) == list(dict.fromkeys([task.cube] + ([task.target] if task.target else [])))


def _scatter(rng: np.random.Generator, n: int, taken: list[np.ndarray], margin: float = 0.0) -> list[np.ndarray]:
    out: list[np.ndarray] = []
    while len(out) < n:
        p = np.array([rng.uniform(WORKSPACE_X[0] + margin, WORKSPACE_X[1] - margin),
                      rng.uniform(WORKSPACE_Y[0] + margin, WORKSPACE_Y[1] - margin)])
        if all(np.linalg.norm(p - q) >= MIN_SEPARATION for q in taken + out):
            out.append(p)
    return out


def sample_task(family: str, seed: int, n_cubes: int = 3, goal: int = 0) -> Task:
    """A random layout and goal of one family, fully determined by ``seed`` and ``goal``.

    ``goal`` (0 .. n_cubes - 1) picks which cube of the same layout the instruction is about, so training
    data can hold one layout with several goals: a policy then has to read the colour word, because the
    picture alone no longer tells the answer. goal=0 is the original task of each seed.
    """
    if not 0 <= goal < n_cubes:
        raise ValueError(f"goal must be in 0..{n_cubes - 1}")
    if family not in FAMILIES:
        raise ValueError(f"unknown task family {family!r}; known: {', '.join(FAMILIES)}")
    rng = np.random.default_rng(seed)
    colours = list(rng.permutation(list(COLOURS)))
    cube_colours = colours[:n_cubes]
    taken: list[np.ndarray] = []
    task = Task(family=family, instruction="", cube=str(cube_colours[goal]))
    if family == "pick_place":
        tray = _scatter(rng, 1, taken, margin=0.04)[0]
        taken.append(tray)
        taken.append(tray)  # the tray is wide: keep cubes further away
        task.tray = (float(tray[0]), float(tray[1]))
    for c, p in zip(cube_colours, _scatter(rng, n_cubes, taken)):
        task.cubes[str(c)] = (float(p[0]), float(p[1]), float(rng.uniform(-0.4, 0.4)))
        taken.append(p)
    if family == "push":
        target_colours = list(rng.permutation(list(COLOURS)))[:2]
        cube = np.array(task.cubes[task.cube][:2])
        for i, c in enumerate(target_colours):
            if i == 0:  # the goal target: 0.10-0.18 m from its cube, inside the workspace
                while True:
                    ang, dist = rng.uniform(-np.pi, np.pi), rng.uniform(0.10, 0.18)
                    p = cube + dist * np.array([np.cos(ang), np.sin(ang)])
                    inside = WORKSPACE_X[0] <= p[0] <= WORKSPACE_X[1] and WORKSPACE_Y[0] <= p[1] <= WORKSPACE_Y[1]
                    others = [np.array(v[:2]) for k, v in task.cubes.items() if k != task.cube]
                    if inside and all(np.linalg.norm(p - q) >= 0.08 for q in others):
                        break
            else:
                p = _scatter(rng, 1, taken)[0]
            task.targets[str(c)] = (float(p[0]), float(p[1]))
            taken.append(p)
        task.target = str(target_colours[0])
    task.instruction = instruction_for(family, task.cube, task.target)
    return task
