"""Goal locator (ours, small simulator model): where on the table are the cube the goal names and its goal?

A convolution computes features of the frame at half resolution, scaled and shifted by a summary of the instruction
(FiLM, as in the patch encoder), optionally widened by dilated context blocks; K more maps over them become K image
positions (spatial softmax), and an MLP reads the K positions as the table-plane coordinates of the named cube and
of its goal (the camera is fixed). The two points and the unit direction from cube to goal, with Fourier features so
that centimetres stay visible in a wide range, become one extra vision token of the decoder, together with the two
points relative to the fingertip (forward kinematics of the arm state): "where is the cube from the hand" is what
the expert's motion follows.

With `roles`, the stem's FiLM also reads one summary per point: a learned query per point attends over the
instruction's contextual tokens. The mean of the tokens (the patch encoder's summary) hardly tells "push the yellow
cube to the blue target" from "push the blue cube to the yellow target" (cosine 0.996 on the shipped model's text
input), so a locator that reads only the mean can mix up which colour is the cube's and which the goal's
(docs/notebook.md 'Why push fails').

Why: the patch encoder learns where one cube is (touch) but not, to better than 4-7 cm, where the goal is or where
"behind the cube" lies (docs/notebook.md 'Why push fails'). The locator is trained for exactly that on the simulator's
ground truth (`molevla train --stage locator`, train/geometry.py); the policy then learns to read it. The same
recipe, trained as the patch encoder's keypoint token (scripts/notebook/geometry_fit.py), reached 2-3 cm held out.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from molevla_ros.model.proprio import fingertip_position

N_POINTS = 2  # the named cube, its goal (target disc or tray)
FOURIER = 4  # frequencies pi * 2^k, k < FOURIER
# Table-plane xy (metres, robot base frame) -> the locator's output scale, about [-1, 1] over the table
CENTRE, SCALE = (0.5, 0.0), 0.2


def normalise(xy: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """Table-plane xy in metres (numpy or torch, [..., 2]) -> the locator's scale (about [-1, 1] over the table)."""
    if isinstance(xy, torch.Tensor):
        return (xy - torch.tensor(CENTRE, dtype=xy.dtype, device=xy.device)) / SCALE
    return (xy - np.asarray(CENTRE, xy.dtype)) / SCALE


def denormalise(points: np.ndarray) -> np.ndarray:
    """The locator's scale -> table-plane xy in metres (numpy; inverse of normalise)."""
    return points * SCALE + np.asarray(CENTRE, points.dtype)


def spatial_softmax(maps: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """[B, K, S, S] -> [B, 2K]: each map's softmax-weighted mean x, then y, in image coordinates given by
    grid [S] (linspace(-1, 1, S); a module buffer, so that it follows the model's dtype in exported graphs)."""
    b, k, h, w = maps.shape
    attn = maps.flatten(2).softmax(-1).view(b, k, h, w)
    return torch.cat([(attn.sum(2) * grid).sum(-1), (attn.sum(3) * grid).sum(-1)], -1)


def fourier(x: torch.Tensor) -> torch.Tensor:
    """[..., N] -> [..., N * (1 + 2 * FOURIER)]: the values, then their sines and cosines at pi * 2^k."""
    f = x[..., None] * (math.pi * 2.0 ** torch.arange(FOURIER, dtype=x.dtype, device=x.device))
    return torch.cat([x, f.sin().flatten(-2), f.cos().flatten(-2)], -1)


class ContextBlock(nn.Module):
    """Residual block that widens the view: a depthwise 3x3 convolution with the given dilation, then a per-pixel
    MLP whose output layer starts at zero, so that a new block leaves the locator's output unchanged (a trained
    locator can grow blocks and go on training; docs/notebook.md 'Why push fails': blocks initialised otherwise did not
    train)."""

    def __init__(self, channels: int, dilation: int) -> None:
        super().__init__()
        self.spatial = nn.Conv2d(channels, channels, 3, padding=dilation, dilation=dilation, groups=channels)
        self.mix = nn.Conv2d(channels, channels, 1)
        self.out = nn.Conv2d(channels, channels, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.out(F.gelu(self.mix(self.spatial(x))))


class GoalLocator(nn.Module):
    """(image, instruction tokens) -> table-plane points [B, 2, 2] (normalised as train/geometry.normalise) and
    the decoder token [B, 1, hidden] made from them. `blocks` context blocks (dilations 1, 2, 4, ...) between the
    instruction-conditioned stem and the keypoint maps let a map see a whole object, not a 4x4 colour patch."""

    def __init__(self, image_size: int, hidden: int, channels: int = 64, keypoints: int = 32, blocks: int = 0,
                 roles: bool = False) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, channels, 4, stride=2, padding=1)
        self.film = nn.Linear(hidden, 2 * channels)
        nn.init.zeros_(self.film.weight)
        nn.init.zeros_(self.film.bias)
        self.role_queries: nn.Parameter | None = None
        self.role_film: nn.Linear | None = None
        if roles:
            self.add_roles()
        self.blocks = nn.Sequential()
        self.grow(blocks)
        self.maps = nn.Conv2d(channels, keypoints, 3, padding=1)
        self.to_table = nn.Sequential(nn.Linear(2 * keypoints, 256), nn.GELU(), nn.Linear(256, 2 * N_POINTS))
        self.token = nn.Linear(5 * 2 * (1 + 2 * FOURIER), hidden)
        self.register_buffer("grid", torch.linspace(-1, 1, image_size // 2), persistent=False)

    def grow(self, blocks: int) -> None:
        """Append context blocks (output unchanged) until there are `blocks`."""
        channels = self.stem.out_channels
        while len(self.blocks) < blocks:
            self.blocks.append(ContextBlock(channels, 2 ** len(self.blocks)))

    def add_roles(self) -> None:
        """Add the per-point instruction summaries (output unchanged: their FiLM layer starts at zero)."""
        if self.role_queries is not None:
            return
        hidden, channels = self.film.in_features, self.stem.out_channels
        self.role_queries = nn.Parameter(0.02 * torch.randn(N_POINTS, hidden))
        self.role_film = nn.Linear(N_POINTS * hidden, 2 * channels)
        nn.init.zeros_(self.role_film.weight)
        nn.init.zeros_(self.role_film.bias)

    def film_input(self, summary: torch.Tensor, tokens: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """The stem's FiLM gain and shift [B, 2 * channels] from the instruction summary [B, hidden] and, with roles,
        one attention-pooled summary per point of the instruction's tokens [B, T, hidden] (validity [B, T])."""
        film = self.film(summary)
        if self.role_queries is not None:
            scores = torch.einsum("btd,kd->bkt", tokens, self.role_queries) / math.sqrt(tokens.shape[-1])
            scores = scores.masked_fill(~valid.bool()[:, None], -1e4)
            pooled = torch.einsum("bkt,btd->bkd", scores.softmax(-1), tokens)
            film = film + self.role_film(pooled.flatten(1))
        return film

    def points(self, pixels: torch.Tensor, summary: torch.Tensor, tokens: torch.Tensor,
               valid: torch.Tensor) -> torch.Tensor:
        """pixels: the patch encoder's input [B, 3, S, S]; summary: the instruction summary [B, hidden]
        (mole_vla.instruction_summary, the patch encoder's FiLM input too); tokens, valid: the instruction's text
        tokens [B, T, hidden] (MoLeVLA.text_tokens) and their validity [B, T] -> [B, 2, 2]."""
        gain, shift = self.film_input(summary, tokens, valid).chunk(2, -1)
        x = self.blocks(F.gelu(self.stem(pixels) * (1 + gain[..., None, None]) + shift[..., None, None]))
        return self.to_table(spatial_softmax(self.maps(x), self.grid)).view(-1, N_POINTS, 2)

    def embed(self, points: torch.Tensor, joints: torch.Tensor) -> torch.Tensor:
        """[B, 2, 2] points and the arm's 7 joint angles [B, 7] -> the decoder token [B, 1, hidden]: cube, goal, the
        unit direction from cube to goal, and cube and goal relative to the fingertip."""
        cube, goal = points[:, 0], points[:, 1]
        direction = F.normalize(goal - cube, dim=-1, eps=1e-6)
        tip = normalise(fingertip_position(joints)[:, :2])
        return self.token(fourier(torch.cat([cube, goal, direction, cube - tip, goal - tip], -1)))[:, None]
