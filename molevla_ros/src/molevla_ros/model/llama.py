"""Llama decoder layers with Llama-2's exact weight layout (q/k/v/o_proj, gate/up/down_proj, RMSNorm,
rotary embeddings), so `model.layers.N.*` of a Llama-2 checkpoint loads 1:1 into `llm.layers.N.*`.

Routed execution lives in :meth:`LlamaStack.forward`: a layer runs only on the samples whose mask kept
it (inference), or on all samples with a straight-through gate (training).
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from molevla_ros.model.config import LLMConfig


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        x = x.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x.to(dtype)


def rotary(cfg: LLMConfig, length: int, device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin of shape [length, head_dim] (Llama's rotate-half convention)."""
    hd = cfg.hidden // cfg.heads
    inv = 1.0 / (cfg.rope_theta ** (torch.arange(0, hd, 2, device=device, dtype=torch.float32) / hd))
    freqs = torch.outer(torch.arange(length, device=device, dtype=torch.float32), inv)
    emb = torch.cat([freqs, freqs], dim=-1)
    return emb.cos().to(dtype), emb.sin().to(dtype)


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    a, b = x.chunk(2, dim=-1)
    return torch.cat([-b, a], dim=-1)


class LlamaAttention(nn.Module):
    def __init__(self, cfg: LLMConfig) -> None:
        super().__init__()
        self.heads, self.kv_heads, self.hd = cfg.heads, cfg.kv_heads, cfg.hidden // cfg.heads
        self.q_proj = nn.Linear(cfg.hidden, self.heads * self.hd, bias=False)
        self.k_proj = nn.Linear(cfg.hidden, self.kv_heads * self.hd, bias=False)
        self.v_proj = nn.Linear(cfg.hidden, self.kv_heads * self.hd, bias=False)
        self.o_proj = nn.Linear(self.heads * self.hd, cfg.hidden, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        q = self.q_proj(x).view(b, t, self.heads, self.hd).transpose(1, 2)
        k = self.k_proj(x).view(b, t, self.kv_heads, self.hd).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.kv_heads, self.hd).transpose(1, 2)
        q = q * cos + _rotate_half(q) * sin
        k = k * cos + _rotate_half(k) * sin
        if self.kv_heads != self.heads:
            rep = self.heads // self.kv_heads
            k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.o_proj(out.transpose(1, 2).reshape(b, t, -1))


class LlamaMLP(nn.Module):
    def __init__(self, cfg: LLMConfig) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(cfg.hidden, cfg.intermediate, bias=False)
        self.up_proj = nn.Linear(cfg.hidden, cfg.intermediate, bias=False)
        self.down_proj = nn.Linear(cfg.intermediate, cfg.hidden, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class LlamaDecoderLayer(nn.Module):
    def __init__(self, cfg: LLMConfig) -> None:
        super().__init__()
        self.input_layernorm = RMSNorm(cfg.hidden, cfg.rms_eps)
        self.self_attn = LlamaAttention(cfg)
        self.post_attention_layernorm = RMSNorm(cfg.hidden, cfg.rms_eps)
        self.mlp = LlamaMLP(cfg)

    def forward(self, h: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = h + self.self_attn(self.input_layernorm(h), cos, sin, mask)
        return h + self.mlp(self.post_attention_layernorm(h))


class LlamaStack(nn.Module):
    """Token embeddings + decoder layers + final norm, named as in transformers' LlamaModel."""

    def __init__(self, cfg: LLMConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed_tokens = nn.Embedding(cfg.vocab, cfg.hidden)
        self.layers = nn.ModuleList([LlamaDecoderLayer(cfg) for _ in range(cfg.layers)])
        self.norm = RMSNorm(cfg.hidden, cfg.rms_eps)
        self.layer_calls = [0] * cfg.layers  # samples each layer processed (telemetry and tests)

    def forward(self, h: torch.Tensor, key_valid: torch.Tensor, gate: torch.Tensor | None = None,
                soft: bool = False) -> torch.Tensor:
        """Run the stack on embeddings h [B, T, D].

        gate: [B, L] 0/1 (None = all layers). soft=True (training): every layer runs on every sample and
        h <- g * layer(h) + (1 - g) * h, so gradients reach a straight-through gate. soft=False: layer k
        runs only on the samples with g[:, k] = 1; the others pass through untouched (no compute).
        """
        b, t, _ = h.shape
        cos, sin = rotary(self.cfg, t, h.device, h.dtype)
        mask = attention_mask(key_valid)
        if gate is not None and not soft:
            return self.norm(run_routed(h, gate, lambda k, x, idx: self.layers[k](x, cos, sin, mask[idx]),
                                        self.layer_calls))
        for k, layer in enumerate(self.layers):
            if gate is None:
                h = layer(h, cos, sin, mask)
            else:
                g = gate[:, k, None, None].to(h.dtype)
                h = g * layer(h, cos, sin, mask) + (1 - g) * h
            self.layer_calls[k] += b
        return self.norm(h)


def attention_mask(key_valid: torch.Tensor) -> torch.Tensor:
    """Causal mask that also hides padding keys: [B, 1, T, T] bool from key_valid [B, T]."""
    t = key_valid.shape[1]
    causal = torch.ones(t, t, dtype=torch.bool, device=key_valid.device).tril()
    return causal[None, None] & key_valid[:, None, None, :]


def run_routed(h: torch.Tensor, gate: torch.Tensor,
               layer: Callable[[int, torch.Tensor, torch.Tensor], torch.Tensor],
               calls: list[int] | None = None) -> torch.Tensor:
    """Routed execution shared by every backend: layer k runs, as layer(k, h[idx], idx), only on the
    samples idx whose gate row kept it; the others pass through untouched and cost nothing."""
    b = h.shape[0]
    keep = gate.detach().cpu() > 0.5  # the route, read once: no device sync per layer on a GPU
    rows = [keep[:, k].nonzero(as_tuple=True)[0] for k in range(keep.shape[1])]
    on_device = torch.cat(rows).to(h.device).split([len(r) for r in rows])
    for k, idx in enumerate(on_device):
        n = len(rows[k])
        if n == b:
            h = layer(k, h, idx)
        elif n > 0:
            h = h.index_copy(0, idx, layer(k, h[idx], idx))
        if calls is not None:
            calls[k] += n
    return h
