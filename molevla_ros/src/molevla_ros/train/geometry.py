"""Goal geometry from the simulator's ground truth: a training-only target for the vision features.

For every recorded step: the table-plane position (base frame, x and y in metres) of the cube the goal names, of its
goal (the named target disc for push, the tray for pick-and-place), and of the point behind the cube where the
expert's push starts (push only). A policy that pushes has to know these from the image; `molevla train
--geometry-weight` asks the keypoint token (what the decoder reads as "where") to hold them, and
`scripts/notebook/push_diagnostics.py` measures how well a model's features hold them.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from molevla_ros.model.goal_locator import SCALE as SCALE  # metres <-> the regression scale (the locator's)
from molevla_ros.model.goal_locator import denormalise as denormalise
from molevla_ros.model.goal_locator import normalise as normalise
from molevla_ros.sim.expert import push_start
from molevla_ros.model.language import parse_instruction

POINTS = ("cube", "goal", "push_start")


def goal_points(instruction: str, objects: dict[str, np.ndarray]) -> np.ndarray:
    """[3, 2] base-frame xy of POINTS for this goal and these object positions; NaN rows where the family has no such
    point (touch: goal and push start; pick-and-place: push start)."""
    out = np.full((len(POINTS), 2), np.nan, np.float32)
    parsed = parse_instruction(instruction)
    if parsed is None:
        return out
    family, cube, target = parsed
    out[0] = objects[f"{cube}_cube"][:2]
    goal = objects.get(f"{target}_target") if target else objects.get("tray") if family == "pick_place" else None
    if goal is not None:
        out[1] = goal[:2]
    if family == "push" and goal is not None:
        out[2] = push_start(out[0].astype(float), np.asarray(goal[:2], float))
    return out


def with_push_start(points: np.ndarray) -> np.ndarray:
    """[N, 2, 2] cube and goal xy (metres) -> [N, 3, 2] POINTS, the push start derived as the expert derives it."""
    start = np.stack([push_start(c.astype(float), g.astype(float)) for c, g in points]).astype(points.dtype)
    return np.concatenate([points, start[:, None]], 1)


def keypoint_token(embeddings: torch.Tensor, n_vision_tokens: int) -> torch.Tensor:
    """The projected keypoint token (the last vision token) from the decoder input [B, T, D] -> [B, D]."""
    return embeddings[:, n_vision_tokens]


class GeometryHead(nn.Module):
    """Training-only read-out: keypoint token -> normalised xy of POINTS [B, 3, 2]."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(width, 256), nn.GELU(), nn.Linear(256, 2 * len(POINTS)))

    def forward(self, token: torch.Tensor) -> torch.Tensor:
        return self.net(token).view(-1, len(POINTS), 2)


def geometry_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """MSE over the defined points (target rows that are NaN are skipped)."""
    known = ~torch.isnan(target)
    return (pred[known] - target[known]).pow(2).mean() if known.any() else pred.sum() * 0
