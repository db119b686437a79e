"""DiT-style diffusion action head conditioned on the cognition feature (as in CogACT).

Tokens: [condition = timestep embedding + projected cognition feature, horizon action tokens] with
learned positions; epsilon prediction; DDPM training (squaredcos_cap_v2), DDIM sampling (eta 0) with
classifier-free guidance through a learned unconditional vector.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from molevla_ros.model.config import ActionHeadConfig


def cosine_alphas_cumprod(steps: int) -> torch.Tensor:
    """squaredcos_cap_v2 (Nichol & Dhariwal) cumulative alphas, betas capped at 0.999."""
    f = lambda t: math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
    betas = torch.tensor([min(1 - f((i + 1) / steps) / f(i / steps), 0.999) for i in range(steps)])
    return torch.cumprod(1 - betas, 0)


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    half = dim // 2
    freqs = torch.exp(-math.log(10000) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([args.cos(), args.sin()], -1)


class DiTBlock(nn.Module):
    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(width)
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.norm2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm1(x)
        x = x + self.attn(y, y, y, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


class DiffusionActionHead(nn.Module):
    def __init__(self, cfg: ActionHeadConfig, cond_dim: int) -> None:
        super().__init__()
        self.cfg = cfg
        w = cfg.width
        self.t_embed = nn.Sequential(nn.Linear(w, w), nn.SiLU(), nn.Linear(w, w))
        self.cond_proj = nn.Linear(cond_dim, w)
        self.uncond = nn.Parameter(torch.zeros(cond_dim))  # learned "no condition" for CFG
        self.action_in = nn.Linear(cfg.action_dim, w)
        self.pos = nn.Parameter(torch.randn(1, cfg.horizon + 1, w) * 0.02)
        self.blocks = nn.ModuleList([DiTBlock(w, cfg.heads) for _ in range(cfg.depth)])
        self.norm = nn.LayerNorm(w)
        self.out = nn.Linear(w, cfg.action_dim)
        self.register_buffer("alphas_cumprod", cosine_alphas_cumprod(cfg.train_steps), persistent=False)

    def eps(self, noisy: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        c = self.t_embed(timestep_embedding(t, self.cfg.width)) + self.cond_proj(cond)
        x = torch.cat([c[:, None], self.action_in(noisy)], 1) + self.pos
        for blk in self.blocks:
            x = blk(x)
        return self.out(self.norm(x[:, 1:]))

    def loss(self, actions: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Epsilon-prediction MSE; each example repeated `repeats` times with fresh noise and timesteps."""
        r = self.cfg.repeats
        actions, cond = actions.repeat_interleave(r, 0), cond.repeat_interleave(r, 0)
        drop = torch.rand(cond.shape[0], 1, device=cond.device) < self.cfg.cond_dropout
        cond = torch.where(drop, self.uncond.expand_as(cond), cond)
        t = torch.randint(0, self.cfg.train_steps, (actions.shape[0],), device=actions.device)
        a = self.alphas_cumprod[t][:, None, None]
        noise = torch.randn_like(actions)
        noisy = a.sqrt() * actions + (1 - a).sqrt() * noise
        return F.mse_loss(self.eps(noisy, t, cond), noise)

    @torch.no_grad()
    def sample(self, cond: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """DDIM (eta 0) with classifier-free guidance; returns normalised actions [B, H, A] in [-1, 1]."""
        cfg, b = self.cfg, cond.shape[0]
        x = torch.randn(b, cfg.horizon, cfg.action_dim, generator=generator, device=cond.device, dtype=cond.dtype)
        ts = torch.linspace(cfg.train_steps - 1, 0, cfg.infer_steps).round().long().tolist()
        both = torch.cat([cond, self.uncond.expand_as(cond)], 0)
        for i, t in enumerate(ts):
            tt = torch.full((2 * b,), t, device=cond.device, dtype=torch.long)
            e_c, e_u = self.eps(torch.cat([x, x], 0), tt, both).chunk(2)
            e = e_u + cfg.cfg_scale * (e_c - e_u)
            a = self.alphas_cumprod[t]
            a_prev = self.alphas_cumprod[ts[i + 1]] if i + 1 < len(ts) else torch.tensor(1.0)
            x0 = ((x - (1 - a).sqrt() * e) / a.sqrt()).clamp(-1, 1)
            x = a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * e
        return x.clamp(-1, 1)
