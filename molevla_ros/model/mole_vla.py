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
from molevla_ros.model.proprio import ProprioFeatures
from molevla_ros.model.router import Route, STARRouter, top_k_mask

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
    """Small convolutional patch encoder trained from scratch: image -> (image_size / patch_size)^2 tokens.

    With cfg.film, a summary of the instruction scales and shifts the feature maps of both convolutions
    (FiLM, initialised to identity), so the tokens can already stress the objects the goal names. With
    cfg.keypoints, K maps computed from the (FiLM-modulated) stem features are turned into their expected
    image coordinates (spatial softmax, as in Levine et al.'s visuomotor policies) and appended as one
    more token: "where is the thing the instruction names" becomes a linear read-out. On the simulator's
    data this is what makes colour grounding learnable in minutes rather than not at all.
    """

    def __init__(self, cfg: VisionConfig, text_dim: int) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 64, 4, stride=2, padding=1)
        k = cfg.patch_size // 2
        self.patch = nn.Conv2d(64, cfg.feature_dim, k, stride=k)
        self.pos = nn.Parameter(torch.randn(1, cfg.n_tokens, cfg.feature_dim) * 0.02)
        self.film = nn.Linear(text_dim, 2 * (64 + cfg.feature_dim)) if cfg.film else None
        if self.film is not None:
            nn.init.zeros_(self.film.weight)
            nn.init.zeros_(self.film.bias)
        self.keypoint_maps = nn.Conv2d(64, cfg.keypoints, 3, padding=1) if cfg.keypoints else None
        self.keypoint_proj = nn.Linear(2 * cfg.keypoints, cfg.feature_dim) if cfg.keypoints else None
        self.register_buffer("grid", torch.linspace(-1, 1, cfg.image_size // 2), persistent=False)  # stem output

    def forward(self, img: torch.Tensor, text: torch.Tensor | None = None) -> torch.Tensor:
        """img [B, 3, S, S]; text [B, text_dim] (needed with FiLM)."""
        x = self.stem(img)
        if self.film is not None:
            g1, b1, g2, b2 = self.film(text).split([64, 64, self.patch.out_channels, self.patch.out_channels], -1)
            x = x * (1 + g1[..., None, None]) + b1[..., None, None]
        x = F.gelu(x)
        tokens = self.patch(x)
        if self.film is not None:
            tokens = tokens * (1 + g2[..., None, None]) + b2[..., None, None]
        tokens = tokens.flatten(2).transpose(1, 2)
        if self.keypoint_maps is not None:
            keypoints = spatial_softmax(self.keypoint_maps(x), self.grid)
            tokens = torch.cat([tokens, self.keypoint_proj(keypoints)[:, None]], 1)
        return tokens + self.pos


def spatial_softmax(maps: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """[B, K, S, S] -> [B, 2K]: each map's softmax-weighted mean x, then y, in image coordinates given by
    grid [S] (linspace(-1, 1, S); a module buffer, so that it follows the model's dtype in exported graphs)."""
    b, k, h, w = maps.shape
    attn = maps.flatten(2).softmax(-1).view(b, k, h, w)
    return torch.cat([(attn.sum(2) * grid).sum(-1), (attn.sum(3) * grid).sum(-1)], -1)


def instruction_summary(token_embeddings: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean embedding of the valid instruction tokens [B, D]: the text input of the patch encoder's FiLM."""
    w = valid[..., None].to(token_embeddings.dtype)
    return (token_embeddings * w).sum(1) / w.sum(1).clamp(min=1)


def preprocess_images(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 [B, H, W, 3] -> normalised float [B, 3, size, size] (the patch encoder's input)."""
    x = images.permute(0, 3, 1, 2).float() / 255.0
    if x.shape[-1] != size or x.shape[-2] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return (x - 0.5) / 0.25


def to_robot_units(a: torch.Tensor, low: torch.Tensor, high: torch.Tensor) -> np.ndarray:
    """Normalised [-1, 1] action chunks -> robot units (numpy), gripper thresholded to 1 open / 0 closed."""
    chunk = ((a.float().cpu() + 1) / 2 * (high.float().cpu() - low.float().cpu()) + low.float().cpu()).numpy()
    chunk[..., 6] = (chunk[..., 6] >= 0.5).astype(chunk.dtype)
    return chunk


def fixed_gate(mode: str, b: int, n: int, k: int, generator: torch.Generator | None = None,
               device: torch.device | str = "cpu") -> torch.Tensor:
    """[B, L] gate of the router-free baselines: random (k random layers per sample) or first_k."""
    if mode == "random":
        return top_k_mask(torch.rand(b, n, generator=generator, device=device), k)
    if mode == "first_k":
        gate = torch.zeros(b, n, device=device)
        gate[:, :k] = 1.0
        return gate
    raise ValueError(f"no fixed gate for mode {mode!r}")


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
        self.vision = PatchCNN(cfg.vision, cfg.llm.hidden) if cfg.vision.kind == "patch_cnn" else None
        dims = (cfg.vision.feature_dim, *cfg.projector_dims)
        layers: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:]):
            layers += [nn.Linear(a, b), nn.GELU()]
        self.projector = nn.Sequential(*layers[:-1])
        if dims[-1] != cfg.llm.hidden:
            raise ValueError("projector_dims must end at llm.hidden")
        self.proprio = ProprioFeatures(cfg.proprio_dim, cfg.proprio_fk)
        self.proprio_in = nn.Linear(self.proprio.dim, cfg.llm.hidden)
        self.cognition_token = nn.Parameter(torch.randn(cfg.llm.hidden) * 0.02)
        self.llm = LlamaStack(cfg.llm)
        self.router = STARRouter(cfg.llm.hidden, cfg.llm.layers, cfg.router, self.proprio.dim)
        self.head = DiffusionActionHead(cfg.action_head, cfg.llm.hidden)
        # Action range (set from the training data, saved with the weights; proprio statistics live in
        # self.proprio).
        a = cfg.action_head.action_dim
        self.register_buffer("action_low", -torch.ones(a))
        self.register_buffer("action_high", torch.ones(a))

    # ---- normalisation ------------------------------------------------------------------------
    def normalize_actions(self, a: torch.Tensor) -> torch.Tensor:
        span = (self.action_high - self.action_low).clamp(min=1e-6)
        return (2 * (a - self.action_low) / span - 1).clamp(-1, 1)

    def to_robot_units(self, a: torch.Tensor) -> np.ndarray:
        return to_robot_units(a, self.action_low, self.action_high)

    # ---- forward ------------------------------------------------------------------------------
    def embed(self, pixels: torch.Tensor | None, text_ids: torch.Tensor, text_valid: torch.Tensor,
              proprio: torch.Tensor, vision_features: torch.Tensor | None = None
              ) -> tuple[torch.Tensor, torch.Tensor, slice, slice, torch.Tensor]:
        """Backbone input [B, T, D], key validity [B, T], vision and text positions, proprio features.
        pixels: preprocess_images() output (patch_cnn); vision_features: encoder features (dinov2_siglip)."""
        b, dev = text_ids.shape[0], text_ids.device
        txt = self.llm.embed_tokens(text_ids)
        if vision_features is None:
            if self.vision is None:
                raise ValueError(f"vision kind {self.cfg.vision.kind!r} needs vision_features from its encoder")
            vision_features = self.vision(pixels, instruction_summary(txt, text_valid))
        vis = self.projector(vision_features)
        prop = self.proprio(proprio)
        bos = self.llm.embed_tokens.weight[BOS].expand(b, 1, -1)
        cog = self.cognition_token.expand(b, 1, -1)
        x = torch.cat([bos, vis, self.proprio_in(prop)[:, None], txt, cog], 1)
        nv = vis.shape[1]
        ones = torch.ones(b, 1, dtype=torch.bool, device=dev)
        valid = torch.cat([ones, ones.expand(b, nv), ones, text_valid, ones], 1)
        return x, valid, slice(1, 1 + nv), slice(2 + nv, 2 + nv + text_ids.shape[1]), prop

    def encode(self, vision_in: torch.Tensor, text_ids: torch.Tensor, text_valid: torch.Tensor,
               proprio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Serving entry (torch, ONNX, TensorRT graphs): (embeddings, key validity, STAR router scores).
        vision_in: preprocessed pixels (patch_cnn) or external encoder features."""
        pixels, feats = (vision_in, None) if self.vision is not None else (None, vision_in)
        x, valid, vis, txt, prop = self.embed(pixels, text_ids, text_valid, proprio, feats)
        return x, valid, self.router.scores(x, vis, txt, text_valid, prop)

    def forward(self, images: torch.Tensor | None, text_ids: torch.Tensor, text_valid: torch.Tensor,
                proprio: torch.Tensor, mode: str = "mole", soft: bool = False,
                generator: torch.Generator | None = None, vision_features: torch.Tensor | None = None) -> Forward:
        """Backbone pass. mode: full (all layers), mole (STAR router), random (k random layers per sample),
        first_k (early exit: layers 0..k-1). soft=True trains the router through a straight-through gate."""
        pixels = None if images is None else preprocess_images(images, self.cfg.vision.image_size)
        x, valid, vis, txt, prop = self.embed(pixels, text_ids, text_valid, proprio, vision_features)
        b, n = x.shape[0], self.cfg.llm.layers
        k = self.cfg.router.keep(n)
        route, gate = None, None
        if mode == "mole":
            route = self.router(x, vis, txt, text_valid, prop, k, stochastic=soft)
            gate = route.mask
        elif mode in ("random", "first_k"):
            gate = fixed_gate(mode, b, n, k, generator, x.device)
        elif mode != "full":
            raise ValueError(f"mode must be one of {ROUTE_MODES}")
        hidden = self.llm(x, valid, gate, soft=soft and route is not None)
        hard = None if gate is None else (gate.detach() > 0.5).float()
        return Forward(hidden, hidden[:, -1], route, hard, valid, x)

    @torch.no_grad()
    def act(self, images: np.ndarray, instructions: list[str], proprio: np.ndarray, mode: str = "mole",
            generator: torch.Generator | None = None, noise: torch.Tensor | None = None
            ) -> tuple[np.ndarray, np.ndarray | None]:
        """Action chunks [B, H, 7] in robot units (gripper 1 open / 0 closed) and the layer masks [B, L].
        noise: initial DDIM noise [B, H, 7] (drawn from generator if None)."""
        dev = self.action_low.device
        ids, valid = tokenize(instructions, self.cfg.llm)
        out = self(torch.as_tensor(images, device=dev), ids.to(dev), valid.to(dev),
                   torch.as_tensor(proprio, dtype=torch.float32, device=dev), mode=mode, generator=generator)
        chunk = self.to_robot_units(self.head.sample(out.cognition, generator, noise))
        mask = None if out.gate is None else out.gate.cpu().numpy().astype(np.uint8)
        return chunk, mask

    def sequence_length(self) -> int:
        return 3 + self.cfg.vision.n_tokens + self.cfg.llm.max_text
