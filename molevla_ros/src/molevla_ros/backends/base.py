"""The policy contract: what every backend receives and returns. No ROS, no simulator types here.

An observation carries the robot state by joint name and the images by camera name, so a policy picks what
its model spec names (MoLeConfig.state_joints, MoLeConfig.camera) and never relies on message order.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np


@dataclass
class Observation:
    """What a policy sees at one control step."""

    instruction: str
    state: dict[str, float]  # joint positions (rad / m) by joint name
    images: dict[str, np.ndarray] = field(default_factory=dict)  # camera name -> (H, W, 3) uint8 RGB
    stamp: float = 0.0  # capture time of the images (s)
    # Simulator ground truth (sim.expert.PrivilegedState) for the scripted expert only; opaque to this layer.
    privileged: Any = None
    # Real-time chunking: what the executor will ask for from `stamp` on (robot units, one row per action_dt,
    # ChunkExecutor.plan), of which the first `prefix_frozen` rows run before this step's chunk can arrive. A
    # policy that supports it makes its chunk continue these rows; None: start afresh.
    prefix: np.ndarray | None = None
    prefix_frozen: int = 0


class ObservationError(ValueError):
    """The observation lacks what the policy's spec needs (a joint, a camera): no chunk."""


def state_vector(obs: Observation, names: tuple[str, ...] | list[str]) -> np.ndarray:
    """The state of `names`, in that order; ObservationError naming the missing joints."""
    missing = [n for n in names if n not in obs.state]
    if missing:
        raise ObservationError(f"the observation lacks joints {missing} (has {sorted(obs.state)[:12]})")
    return np.array([obs.state[n] for n in names], np.float32)


def camera_image(obs: Observation, camera: str) -> np.ndarray:
    if camera not in obs.images:
        raise ObservationError(f"the policy reads camera '{camera}'; the observation has {sorted(obs.images)}")
    return obs.images[camera]


@dataclass
class PolicyOutput:
    chunk: np.ndarray  # (horizon, 7): delta xyz [m], delta rpy [rad] per action step, gripper (1 = open)
    layer_mask: np.ndarray | None = None  # (n_layers,) 1 = layer ran; None for models without layers
    info: dict[str, float] = field(default_factory=dict)


class PolicyBackend(Protocol):
    """What the policy node relies on; every backend declares all of it (no probing for optional parts)."""

    name: str
    action_dt: float  # s between the actions of its chunks (a model's comes from its folder)
    note: str  # shown on the policy's status ("" = nothing to say)
    image_size: int | None  # the square frame side its model reads (frames much smaller are refused); None: any
    resize: str  # the resize filter its model was made with (inputs.images.FILTERS): raw frames are resized with it
    camera: str  # the camera name its observations carry the image under
    state_joints: tuple[str, ...]  # the joint names its model reads, in order (the profile's joints map onto them)
    familiarity: Any  # model.goal_familiarity.GoalFamiliarity of its training goals, or None (no goal check)
    layers: int  # decoder layers it can route (0: none; then `keep` does nothing)
    keep: int | None  # decoder layers per step for routes that skip (None: the model's own); set per step
    needs_privileged_state: bool  # True only for the scripted expert (simulator ground truth)

    def reset(self) -> None: ...

    def act_batch(self, observations: list[Observation]) -> list[PolicyOutput]:
        """One output per observation (several robots in one batch where the backend can)."""

    def privileged_feed(self, node: Any, prefix: str) -> Any:
        """needs_privileged_state only: an object on `node` whose state(joint_state_msg) is the ground truth."""
