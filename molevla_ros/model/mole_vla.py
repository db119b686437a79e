"""MoLe-VLA: vision encoder + projector -> Llama decoder gated by the STAR router -> cognition feature ->
diffusion action head. Pure PyTorch, no ROS.

Sequence per sample: [BOS, vision tokens, proprio token, instruction tokens (padded), cognition token].
The cognition token's final hidden state conditions the action head.
"""
from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from molevla_ros.model.action_head import DiffusionActionHead
from molevla_ros.model.config import LLMConfig, MoLeConfig, VisionConfig
from molevla_ros.model.llama import LlamaStack
from molevla_ros.model.router import Route, STARRouter

PAD, BOS = 0, 1  # token ids; words hash into 2 .. vocab - 1
ROUTE_MODES = ("full", "mole", "random", "first_k")


def tokenize(texts: list[str], cfg: LLMConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids [B, max_text] (PAD-filled) and their validity mask.

    "words": each lower-case word hashes (CRC-32) into one of vocab - 2 buckets: any sentence is
    accepted, no vocabulary file is needed, and sequences stay short for CPU inference.
    """
    if cfg.tokenizer != "words":
        raise ValueError(f"tokenizer {cfg.tokenizer!r} is not bundled (only 'words'); "
                         "imported checkpoints need their own tokenizer")
    ids = torch.full((len(texts), cfg.max_text), PAD, dtype=torch.long)
    for i, t in enumerate(texts):
        words = re.findall(r"[\w'-]+", t.lower())[: cfg.max_text]
        for j, w in enumerate(words):
            ids[i, j] = 2 + zlib.crc32(w.encode()) % (cfg.vocab - 2)
    return ids, ids != PAD


class PatchCNN(nn.Module):
    """Small convolutional patch encoder trained from scratch: image -> (image_size / patch_size)^2 tokens."""

    def __init__(self, cfg: VisionConfig) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 64, 4, stride=2, padding=1)
        k = cfg.patch_size // 2
        self.patch = nn.Conv2d(64, cfg.feature_dim, k, stride=k)
        self.pos = nn.Parameter(torch.randn(1, cfg.n_tokens, cfg.feature_dim) * 0.02)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        x = self.patch(F.gelu(self.stem(img)))
        return x.flatten(2).transpose(1, 2) + self.pos


def layer_flops(cfg: LLMConfig, tokens: int) -> float:
    """Multiply-accumulates x 2 of one decoder layer on one sample of `tokens` tokens."""
    d, kv, i = cfg.hidden, cfg.hidden // cfg.heads * cfg.kv_heads, cfg.intermediate
    proj = 2 * tokens * d * (2 * d + 2 * kv)
    attn = 2 * 2 * tokens * tokens * d
    mlp = 2 * tokens * 3 * d * i
    return float(proj + attn + mlp)


@dataclass
class Forward:
    hidden: torch.Tensor  # final-norm hidden states [B, T, D]
    cognition: torch.Tensor  # [B, D]
    route: Route | None
    gate: torch.Tensor | None  # [B, L] hard 0/1 actually used (None = all layers)
    key_valid: torch.Tensor
    embeddings: torch.Tensor  # the backbone's input [B, T, D] (a CogKD teacher runs on the same input)


class MoLeVLA(nn.Module):
    def __init__(self, cfg: MoLeConfig) -> None:
        super().__init__()
        self.cfg = cfg
        # "dinov2_siglip" (CogACT): the frozen DINOv2 + SigLIP encoders are not part of this package; their
        # per-patch features [B, 256, 2176] are passed in as vision_features.
        self.vision = PatchCNN(cfg.vision) if cfg.vision.kind == "patch_cnn" else None
        dims = (cfg.vision.feature_dim, *cfg.projector_dims)
        layers: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:]):
            layers += [nn.Linear(a, b), nn.GELU()]
        self.projector = nn.Sequential(*layers[:-1])
        if dims[-1] != cfg.llm.hidden:
            raise ValueError("projector_dims must end at llm.hidden")
        self.proprio_in = nn.Linear(cfg.proprio_dim, cfg.llm.hidden)
        self.cognition_token = nn.Parameter(torch.randn(cfg.llm.hidden) * 0.02)
        self.llm = LlamaStack(cfg.llm)
        self.router = STARRouter(cfg.llm.hidden, cfg.llm.layers, cfg.router, cfg.proprio_dim)
        self.head = DiffusionActionHead(cfg.action_head, cfg.llm.hidden)
        # Normalisation statistics (set from the training data, saved with the weights).
        a, p = cfg.action_head.action_dim, cfg.proprio_dim
        self.register_buffer("action_low", -torch.ones(a))
        self.register_buffer("action_high", torch.ones(a))
        self.register_buffer("proprio_mean", torch.zeros(p))
        self.register_buffer("proprio_std", torch.ones(p))

    # ---- normalisation ------------------------------------------------------------------------
    def normalize_actions(self, a: torch.Tensor) -> torch.Tensor:
        span = (self.action_high - self.action_low).clamp(min=1e-6)
        return (2 * (a - self.action_low) / span - 1).clamp(-1, 1)

    def unnormalize_actions(self, a: torch.Tensor) -> torch.Tensor:
        return (a + 1) / 2 * (self.action_high - self.action_low) + self.action_low

    def preprocess_images(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 [B, H, W, 3] -> normalised float [B, 3, S, S]."""
        x = images.permute(0, 3, 1, 2).float() / 255.0
        s = self.cfg.vision.image_size
        if x.shape[-1] != s or x.shape[-2] != s:
            x = F.interpolate(x, size=(s, s), mode="bilinear", antialias=True, align_corners=False)
        return (x - 0.5) / 0.25

    # ---- forward ------------------------------------------------------------------------------
    def embed(self, images: torch.Tensor | None, text_ids: torch.Tensor, text_valid: torch.Tensor,
              proprio: torch.Tensor, vision_features: torch.Tensor | None = None
              ) -> tuple[torch.Tensor, torch.Tensor, slice, slice, torch.Tensor]:
        if vision_features is None:
            if self.vision is None:
                raise ValueError(f"vision kind {self.cfg.vision.kind!r} needs vision_features from its encoder")
            vision_features = self.vision(self.preprocess_images(images))
        b, dev = text_ids.shape[0], text_ids.device
        vis = self.projector(vision_features)
        prop = (proprio - self.proprio_mean) / self.proprio_std
        bos = self.llm.embed_tokens(torch.full((b, 1), BOS, device=dev))
        txt = self.llm.embed_tokens(text_ids)
        cog = self.cognition_token.expand(b, 1, -1)
        x = torch.cat([bos, vis, self.proprio_in(prop)[:, None], txt, cog], 1)
        nv = vis.shape[1]
        ones = torch.ones(b, 1, dtype=torch.bool, device=dev)
        valid = torch.cat([ones, ones.expand(b, nv), ones, text_valid, ones], 1)
        return x, valid, slice(1, 1 + nv), slice(2 + nv, 2 + nv + text_ids.shape[1]), prop

    def forward(self, images: torch.Tensor | None, text_ids: torch.Tensor, text_valid: torch.Tensor,
                proprio: torch.Tensor, mode: str = "mole", soft: bool = False,
                generator: torch.Generator | None = None, vision_features: torch.Tensor | None = None) -> Forward:
        """Backbone pass. mode: full (all layers), mole (STAR router), random (k random layers per sample),
        first_k (early exit: layers 0..k-1). soft=True trains the router through a straight-through gate."""
        x, valid, vis, txt, prop = self.embed(images, text_ids, text_valid, proprio, vision_features)
        b, n = x.shape[0], self.cfg.llm.layers
        k = self.cfg.router.keep(n)
        route, gate = None, None
        if mode == "mole":
            route = self.router(x, vis, txt, text_valid, prop, k, stochastic=soft)
            gate = route.mask
        elif mode == "random":
            scores = torch.rand(b, n, generator=generator, device=x.device)
            gate = torch.zeros(b, n, device=x.device).scatter(-1, scores.topk(k, -1).indices, 1.0)
        elif mode == "first_k":
            gate = torch.zeros(b, n, device=x.device)
            gate[:, :k] = 1.0
        elif mode != "full":
            raise ValueError(f"mode must be one of {ROUTE_MODES}")
        hidden = self.llm(x, valid, gate, soft=soft and route is not None)
        hard = None if gate is None else (gate.detach() > 0.5).float()
        return Forward(hidden, hidden[:, -1], route, hard, valid, x)

    @torch.no_grad()
    def act(self, images: np.ndarray, instructions: list[str], proprio: np.ndarray, mode: str = "mole",
            generator: torch.Generator | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """Action chunks [B, H, 7] in robot units (gripper 1 open / 0 closed) and the layer masks [B, L]."""
        dev = self.action_low.device
        ids, valid = tokenize(instructions, self.cfg.llm)
        out = self(torch.as_tensor(images, device=dev), ids.to(dev), valid.to(dev),
                   torch.as_tensor(proprio, dtype=torch.float32, device=dev), mode=mode, generator=generator)
        chunk = self.unnormalize_actions(self.head.sample(out.cognition, generator)).cpu().numpy()
        chunk[..., 6] = (chunk[..., 6] >= 0.5).astype(chunk.dtype)
        mask = None if out.gate is None else out.gate.cpu().numpy().astype(np.uint8)
        return chunk, mask

    def sequence_length(self) -> int:
        return 3 + self.cfg.vision.n_tokens + self.cfg.llm.max_text
