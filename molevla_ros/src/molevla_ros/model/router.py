"""STAR: the Spatial-Temporal Aware Router. Scores every LLM layer once per control step, per sample,
before layer 0, and keeps the top-k; all tokens of that sample then use the same layers."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from molevla_ros.model.config import RouterConfig


@dataclass
class Route:
    mask: torch.Tensor  # [B, L] exactly k ones per row; in training carries a straight-through gradient
    probs: torch.Tensor  # [B, L] softmax of the router logits
    logits: torch.Tensor

    def balance_loss(self) -> torch.Tensor:
        """Load-balance loss: mean over batch and layers of (top-k mask * softmax(logits))."""
        return (self.mask.detach() * self.probs).mean()


def gumbel_noise(shape: tuple[int, ...], generator: torch.Generator | None = None, dtype: torch.dtype | None = None,
                 device: torch.device | str | None = None) -> torch.Tensor:
    """Standard Gumbel samples, the noise of the router's training relaxation."""
    u = torch.rand(shape, generator=generator, dtype=dtype, device=device).clamp(1e-9, 1 - 1e-9)
    return -torch.log(-torch.log(u))


def top_k_mask(scores: torch.Tensor, k: int) -> torch.Tensor:
    """[B, L] 0/1 float mask with ones at each row's k highest scores."""
    return torch.zeros_like(scores).scatter(-1, scores.topk(k, -1).indices, 1.0)


class STARRouter(nn.Module):
    def __init__(self, hidden: int, n_layers: int, cfg: RouterConfig, proprio_dim: int) -> None:
        super().__init__()
        self.cfg, self.n_layers = cfg, n_layers
        r = cfg.proj_dim
        self.proj = nn.Linear(hidden, r)
        self.spatial = nn.Sequential(nn.Linear(r, cfg.spatial_hidden), nn.GELU(),
                                     nn.Linear(cfg.spatial_hidden, n_layers))
        self.temporal = nn.TransformerEncoderLayer(r, cfg.temporal_heads, cfg.temporal_ff, dropout=0.0,
                                                   batch_first=True)
        self.temporal_out = nn.Linear(r, n_layers)
        self.proprio = nn.Linear(proprio_dim, r) if cfg.use_proprio else None
        self.alpha = nn.Linear(r, 1)
        nn.init.constant_(self.alpha.bias, 1.0)
        self.register_buffer("prior", torch.zeros(n_layers), persistent=False)  # rebuilt from the config
        self.set_depth_prior(cfg.depth_prior)

    def set_depth_prior(self, p: float) -> None:
        """Fixed ramp added to the scores: +p for layer 0 down to -p for the last layer (RouterConfig)."""
        self.cfg.depth_prior = p
        self.prior.copy_(torch.linspace(p, -p, self.n_layers))

    def scores(self, x: torch.Tensor, vision: slice, text: slice, text_valid: torch.Tensor,
               proprio: torch.Tensor | None) -> torch.Tensor:
        """Layer logits [B, L]; x: input embeddings [B, T, D]; vision/text: their positions in x."""
        z = self.proj(x)
        spatial = self.spatial(z[:, vision].mean(1))
        tokens, valid = z[:, text], text_valid
        if self.proprio is not None and proprio is not None:
            tokens = torch.cat([self.proprio(proprio)[:, None], tokens], 1)
            valid = torch.cat([torch.ones_like(valid[:, :1]), valid], 1)
        enc = self.temporal(tokens, src_key_padding_mask=~valid)
        w = valid[..., None].to(enc.dtype)
        temporal = self.temporal_out((enc * w).sum(1) / w.sum(1).clamp(min=1))
        return (spatial + temporal) * torch.sigmoid(self.alpha(z[:, 0])) + self.prior

    def forward(self, x: torch.Tensor, vision: slice, text: slice, text_valid: torch.Tensor,
                proprio: torch.Tensor | None, k: int, stochastic: bool) -> Route:
        logits = self.scores(x, vision, text, text_valid, proprio)
        probs = logits.softmax(-1)
        if stochastic:  # Gumbel-softmax relaxation for training
            g = gumbel_noise(logits.shape, dtype=logits.dtype, device=logits.device)
            soft = F.softmax((logits + self.cfg.gumbel_scale * g) / self.cfg.gumbel_tau, -1)
        else:
            soft = probs
        hard = top_k_mask(soft, k)
        return Route(hard - soft.detach() + soft, probs, logits)
