"""The one interface every policy backend implements."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np


@dataclass
class Observation:
    """What a policy sees at one control step."""

    instruction: str
    joint_positions: np.ndarray
    image: np.ndarray | None = None  # (H, W, 3) uint8 RGB
    # Simulator ground truth (sim.expert.PrivilegedState) for the scripted expert only; opaque to this layer.
    privileged: Any = None
    stamp: float = 0.0


@dataclass
class PolicyOutput:
    chunk: np.ndarray  # (horizon, 7): delta xyz [m], delta rpy [rad] per action step, gripper (1 = open)
    layer_mask: np.ndarray | None = None  # (n_layers,) 1 = layer ran; None for models without layers
    info: dict[str, float] = field(default_factory=dict)


class PolicyBackend(Protocol):
    name: str
    needs_privileged_state: bool  # True only for the scripted expert (simulator ground truth)
    action_dt: float  # s between the actions of its chunks (a model's comes from its folder)
    note: str  # shown on the policy's status ("" = nothing to say)

    def reset(self) -> None: ...

    def act(self, obs: Observation) -> PolicyOutput: ...
