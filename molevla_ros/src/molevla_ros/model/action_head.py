"""DiT-style diffusion action head conditioned on the cognition feature (as in CogACT).

Tokens: [condition = timestep embedding + projected cognition feature, horizon action tokens] with
learned positions; epsilon prediction; DDPM training (squaredcos_cap_v2), DDIM sampling (eta 0) with
classifier-free guidance through a learned unconditional vector.
"""
from __future__ import annotations

import math
from typing import Callable

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


class Linear1(nn.Module):
    """A module holding one Linear named `linear` (CogACT's ActionEmbedder layout)."""

    def __init__(self, a: int, b: int) -> None:
        super().__init__()
        self.linear = nn.Linear(a, b)


class TimestepEmbedder(nn.Module):
    def __init__(self, width: int, freq_dim: int = 256) -> None:
        super().__init__()
        self.freq_dim = freq_dim
        self.mlp = nn.Sequential(nn.Linear(freq_dim, width), nn.SiLU(), nn.Linear(width, width))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.mlp(timestep_embedding(t, self.freq_dim).to(self.mlp[0].weight.dtype))


class ConditionEmbedder(nn.Module):
    """Cognition feature -> condition token, with the learned unconditional vector for CFG."""

    def __init__(self, cond_dim: int, width: int) -> None:
        super().__init__()
        self.linear = nn.Linear(cond_dim, width)
        self.uncondition = nn.Parameter(torch.randn(1, cond_dim) * 0.02)


class Attention(nn.Module):
    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, w = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, w // self.heads).permute(2, 0, 3, 1, 4)
        return self.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, t, w))


class Mlp(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(width, 4 * width)
        self.fc2 = nn.Linear(4 * width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


class DiTBlock(nn.Module):
    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(width, heads)
        self.norm2 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.mlp = Mlp(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class FinalLayer(nn.Module):
    def __init__(self, width: int, out: int) -> None:
        super().__init__()
        self.norm_final = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(width, out)


class DiffusionActionHead(nn.Module):
    """Parameter names and math follow CogACT's DiT (x/t/z_embedder, positional_embedding, blocks with
    qkv/proj and fc1/fc2, final_layer), so its action-model weights import by renaming alone."""

    def __init__(self, cfg: ActionHeadConfig, cond_dim: int) -> None:
        super().__init__()
        self.cfg = cfg
        w = cfg.width
        self.x_embedder = Linear1(cfg.action_dim, w)
        self.t_embedder = TimestepEmbedder(w)
        self.z_embedder = ConditionEmbedder(cond_dim, w)
        self.positional_embedding = nn.Parameter(torch.randn(cfg.horizon + 1, w) * w ** -0.5)
        self.blocks = nn.ModuleList([DiTBlock(w, cfg.heads) for _ in range(cfg.depth)])
        self.final_layer = FinalLayer(w, cfg.action_dim)
        self.register_buffer("alphas_cumprod", cosine_alphas_cumprod(cfg.train_steps), persistent=False)

    @property
    def uncond(self) -> torch.Tensor:
        return self.z_embedder.uncondition[0]

    def eps(self, noisy: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        c = self.t_embedder(t) + self.z_embedder.linear(cond)
        x = torch.cat([c[:, None], self.x_embedder.linear(noisy)], 1) + self.positional_embedding
        for blk in self.blocks:
            x = blk(x)
        return self.final_layer.linear(self.final_layer.norm_final(x[:, 1:]))

    def loss(self, actions: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Epsilon-prediction MSE; each example repeated `repeats` times with fresh noise and timesteps."""
        r = self.cfg.repeats
        actions, cond = actions.repeat_interleave(r, 0), cond.repeat_interleave(r, 0)
        drop = torch.rand(cond.shape[0], 1, device=cond.device) < self.cfg.cond_dropout
        cond = torch.where(drop, self.uncond.expand_as(cond), cond)
        t = torch.randint(0, self.cfg.train_steps, (actions.shape[0],), device=actions.device)
        return self.eps_error(actions, cond, t, torch.randn_like(actions)).mean()

    def eps_error(self, actions: torch.Tensor, cond: torch.Tensor, t: torch.Tensor, noise: torch.Tensor
                  ) -> torch.Tensor:
        """Per-example epsilon-prediction MSE [B] at timesteps t [B] with the given noise [B, H, A]."""
        a = self.alphas_cumprod[t][:, None, None]
        noisy = a.sqrt() * actions + (1 - a).sqrt() * noise
        return (self.eps(noisy, t, cond) - noise).pow(2).flatten(1).mean(1)

    @torch.no_grad()
    def sample(self, cond: torch.Tensor, generator: torch.Generator | None = None,
               noise: torch.Tensor | None = None) -> torch.Tensor:
        """DDIM (eta 0) with classifier-free guidance from `noise` (drawn from `generator` if None);
        returns normalised actions [B, H, A] in [-1, 1]."""
        if noise is None:
            noise = torch.randn(cond.shape[0], self.cfg.horizon, self.cfg.action_dim, generator=generator,
                                device=cond.device, dtype=cond.dtype)
        return ddim_sample(self.eps, noise, cond, self.uncond, self.alphas_cumprod, self.cfg)


def ddim_timesteps(train_steps: int, steps: int, schedule: str) -> list[int]:
    """Descending DDIM timesteps. "linspace": evenly from train_steps - 1 to 0. "stride": the stride that gives
    exactly `steps` timesteps 0, s, 2s, ... (CogACT's "ddim<steps>" respacing: 100 -> 90, 80, ..., 0)."""
    if schedule == "linspace":
        return torch.linspace(train_steps - 1, 0, steps).round().long().tolist()
    if schedule == "stride":
        stride = next((s for s in range(1, train_steps) if len(range(0, train_steps, s)) == steps), None)
        if stride is None:
            raise ValueError(f"no stride gives {steps} DDIM steps out of {train_steps}")
        return list(range(0, train_steps, stride))[::-1]
    raise ValueError(f"unknown ddim_schedule {schedule!r} (linspace, stride)")


@torch.no_grad()
def ddim_sample(eps: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor], noise: torch.Tensor,
                cond: torch.Tensor, uncond: torch.Tensor, alphas_cumprod: torch.Tensor,
                cfg: ActionHeadConfig, guide: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """The DDIM loop around any epsilon predictor eps(noisy [2B, H, A], t [2B], cond [2B, D]) (the torch head,
    an ONNX Runtime session or a TensorRT engine). Conditional and unconditional passes share one batch.

    guide = (target [B, H, A], weight [B, H, 1] in [0, 1]): inpainting for real-time chunking. At every step the
    clean estimate is pulled towards the target by the weight (1: replaced) before the next noisy sample is formed,
    so the later steps denoise the rest of the chunk around the fixed rows; the last step returns the target
    exactly where the weight is 1. Gradient-free, so every backend's predictor can run it."""
    b, x = cond.shape[0], noise
    ts = ddim_timesteps(cfg.train_steps, cfg.infer_steps, cfg.ddim_schedule)
    both = torch.cat([cond, uncond.to(cond.dtype).expand_as(cond)], 0)
    alphas = alphas_cumprod.to(torch.float32).cpu()
    for i, t in enumerate(ts):
        tt = torch.full((2 * b,), t, device=cond.device, dtype=torch.long)
        e_c, e_u = eps(torch.cat([x, x], 0), tt, both).chunk(2)
        e = e_u + cfg.cfg_scale * (e_c - e_u)
        a = float(alphas[t])
        a_prev = float(alphas[ts[i + 1]]) if i + 1 < len(ts) else 1.0
        x0 = (x - math.sqrt(1 - a) * e) / math.sqrt(a)
        if cfg.clip_denoised:
            x0 = x0.clamp(-1, 1)
        if guide is not None:
            x0 = x0 + guide[1] * (guide[0] - x0)
        x = math.sqrt(a_prev) * x0 + math.sqrt(1 - a_prev) * e
    return x.clamp(-1, 1)
