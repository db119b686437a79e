"""Proprio features: normalised joint state, plus (optionally) the hand's fingertip position from Panda
forward kinematics, in torch so that it runs (and exports) inside the model's encoder graph.

A policy trained on a few thousand episodes learns "move towards the cube" far more easily from a
Cartesian hand position than from seven joint angles it would first have to turn into one.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from molevla_ros.franka_kinematics import DH, FLANGE_D, TCP_OFFSET

FK_DIM = 3


def _dh(a: float, d: float, alpha: float, theta: torch.Tensor) -> torch.Tensor:
    """[B, 4, 4] modified-DH transforms for joint angles theta [B]."""
    ca, sa = math.cos(alpha), math.sin(alpha)
    ct, st = theta.cos(), theta.sin()
    zero, one = torch.zeros_like(theta), torch.ones_like(theta)
    rows = [[ct, -st, zero, zero + a], [st * ca, ct * ca, zero - sa, zero - d * sa],
            [st * sa, ct * sa, zero + ca, zero + d * ca], [zero, zero, zero, one]]
    return torch.stack([torch.stack(r, -1) for r in rows], -2)


def fingertip_position(q: torch.Tensor) -> torch.Tensor:
    """[B, 7] arm joint angles -> [B, 3] fingertip centre in the base frame (same as franka_kinematics.forward)."""
    t = _dh(*DH[0], q[:, 0])
    for i in range(1, 7):
        t = t @ _dh(*DH[i], q[:, i])
    return t[:, :3, 3] + t[:, :3, 2] * (FLANGE_D + TCP_OFFSET)


class ProprioFeatures(nn.Module):
    """proprio [B, P] -> normalised features [B, P (+ 3 with fk)]; statistics are set from the training data."""

    def __init__(self, proprio_dim: int, fk: bool) -> None:
        super().__init__()
        self.fk = fk
        self.register_buffer("proprio_mean", torch.zeros(proprio_dim))
        self.register_buffer("proprio_std", torch.ones(proprio_dim))
        if fk:
            self.register_buffer("ee_mean", torch.zeros(FK_DIM))
            self.register_buffer("ee_std", torch.ones(FK_DIM))

    @property
    def dim(self) -> int:
        return len(self.proprio_mean) + (FK_DIM if self.fk else 0)

    def set_statistics(self, proprio: torch.Tensor) -> None:
        self.proprio_mean.copy_(proprio.mean(0))
        self.proprio_std.copy_(proprio.std(0) + 1e-3)
        if self.fk:
            ee = fingertip_position(proprio[:, :7].double()).float()
            self.ee_mean.copy_(ee.mean(0))
            self.ee_std.copy_(ee.std(0) + 1e-3)

    def forward(self, proprio: torch.Tensor) -> torch.Tensor:
        out = (proprio - self.proprio_mean) / self.proprio_std
        if self.fk:
            ee = fingertip_position(proprio[:, :7])
            out = torch.cat([out, (ee - self.ee_mean) / self.ee_std], -1)
        return out
