"""MoLe-VLA: vision encoder + projector -> Llama decoder gated by the STAR router -> cognition feature ->
diffusion action head. Pure PyTorch, no ROS.

Sequence per sample, small model ("minilm" or "words" tokenizer): [BOS, vision tokens, proprio token, instruction
tokens (padded), learned cognition token]. Imported CogACT ("cogact"): [BOS, vision tokens, prompt tokens ending
with "▁" EOS, padding]. The final hidden state at the last valid position (the cognition token / EOS) is the
cognition feature that conditions the action head.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from molevla_ros.model.action_head import DiffusionActionHead
from molevla_ros.model.config import ActionSpec, LLMConfig, MoLeConfig, VisionConfig
from molevla_ros.model.goal_locator import GoalLocator, spatial_softmax
from molevla_ros.model.llama import LlamaStack
from molevla_ros.model.minilm import WIDTH as TEXT_FEATURES
from molevla_ros.model.proprio import ProprioFeatures
from molevla_ros.model.router import Route, STARRouter, top_k_mask
from molevla_ros.model.text import TextEncoder, text_encoder

ROUTE_MODES = ("full", "mole", "random", "first_k")


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


def instruction_summary(token_embeddings: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean embedding of the valid instruction tokens [B, D]: the text input of the patch encoder's FiLM."""
    w = valid[..., None].to(token_embeddings.dtype)
    return (token_embeddings * w).sum(1) / w.sum(1).clamp(min=1)


def resize_images(images: torch.Tensor, cfg: VisionConfig) -> torch.Tensor:
    """uint8 [B, H, W, 3] -> RGB in [0, 1], [B, 3, S, S]: resized (antialiased, cfg.resize) to cfg.image_size.
    Training data are stored through it (episodes.load_samples) and served through it (preprocess_images)."""
    x = images.permute(0, 3, 1, 2).float() / 255.0
    size = cfg.image_size
    if x.shape[-1] != size or x.shape[-2] != size:
        x = F.interpolate(x, size=(size, size), mode=cfg.resize, antialias=True, align_corners=False).clamp(0, 1)
    return x


def preprocess_images(images: torch.Tensor, cfg: VisionConfig) -> torch.Tensor:
    """uint8 [B, H, W, 3] -> the vision encoder's input [B, 3, S, S]: the one image preprocessing of training
    and serving. The patch encoder's input is centred ((x - 0.5) / 0.25); the DINOv2 + SigLIP towers take
    [0, 1] and normalise each in its own way."""
    x = resize_images(images, cfg)
    return (x - 0.5) / 0.25 if cfg.kind == "patch_cnn" else x


def normalize_actions(a: torch.Tensor, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """Robot-unit actions -> the model's [-1, 1] range (q01/q99 -> -1/1), clamped; the inverse of to_robot_units
    (up to its gripper binarisation)."""
    span = (high - low).clamp(min=1e-6)
    return (2 * (a - low) / span - 1).clamp(-1, 1)


def to_robot_units(a: torch.Tensor, low: torch.Tensor, high: torch.Tensor, spec: ActionSpec) -> np.ndarray:
    """Normalised [-1, 1] action chunks -> robot units (numpy), gripper binarised to 1 open / 0 closed
    (thresholded before or after unnormalising, as spec.gripper_threshold_on says)."""
    a = a.float().cpu().clamp(-1, 1)
    lo, hi = low.float().cpu(), high.float().cpu()
    chunk = ((a + 1) / 2 * (hi - lo) + lo).numpy()
    g = spec.gripper_index
    value = a[..., g].numpy() if spec.gripper_threshold_on == "normalized" else chunk[..., g]
    chunk[..., g] = (value >= spec.gripper_threshold).astype(chunk.dtype)
    return chunk


def last_valid(valid: torch.Tensor) -> torch.Tensor:
    """Index of the last True per row of [B, T] (the cognition position)."""
    pos = torch.arange(valid.shape[1], device=valid.device)
    return (valid.long() * (pos + 1)).argmax(1)


def cognition_at(hidden: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """[B, T, D] -> [B, D] at each row's last valid position."""
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), last_valid(valid)]


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
    cognition: torch.Tensor  # [B, D] at the last valid position
    route: Route | None
    gate: torch.Tensor | None  # [B, L] hard 0/1 actually used (None = all layers)
    key_valid: torch.Tensor
    embeddings: torch.Tensor  # the backbone's input [B, T, D] (a CogKD teacher runs on the same input)
    points: torch.Tensor | None = None  # the goal locator's table points [B, 2, 2] (None without a locator)


class MoLeVLA(nn.Module):
    def __init__(self, cfg: MoLeConfig) -> None:
        super().__init__()
        self.cfg = cfg
        if cfg.vision.kind == "patch_cnn":
            self.vision: nn.Module = PatchCNN(cfg.vision, cfg.llm.hidden)
        elif cfg.vision.kind == "dinov2_siglip":  # CogACT's frozen towers (timm)
            from molevla_ros.model.dinosiglip import DinoSigLIP

            self.vision = DinoSigLIP(cfg.vision)
        else:
            raise ValueError(f"unknown vision kind {cfg.vision.kind!r} (patch_cnn, dinov2_siglip)")
        # Instruction -> ids or features; a "cogact" tokenizer lives in the model folder (set by load_model).
        self.text: TextEncoder | None = text_encoder(cfg.llm) if cfg.llm.tokenizer != "cogact" else None
        self.text_in = nn.Linear(TEXT_FEATURES, cfg.llm.hidden) if cfg.llm.tokenizer == "minilm" else None
        dims = (cfg.vision.feature_dim, *cfg.projector_dims)
        layers: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:]):
            layers += [nn.Linear(a, b), nn.GELU()]
        self.projector = nn.Sequential(*layers[:-1])
        if dims[-1] != cfg.llm.hidden:
            raise ValueError("projector_dims must end at llm.hidden")
        self.locator = (GoalLocator(cfg.vision.image_size, cfg.llm.hidden, blocks=cfg.vision.locator_blocks,
                                    roles=cfg.vision.locator_roles)
                        if cfg.vision.locator else None)
        self.llm = LlamaStack(cfg.llm)
        self.head = DiffusionActionHead(cfg.action_head, cfg.llm.hidden)
        self.init_mole_parts()

    def init_mole_parts(self) -> None:
        """(Re)create what MoLe-VLA adds to a CogACT-style model, freshly initialised: the STAR router, the
        proprio input, the learned cognition token, and the action range (set from the training data and
        saved with the weights; proprio statistics live in self.proprio)."""
        cfg = self.cfg
        self.proprio = ProprioFeatures(cfg.proprio_dim, cfg.proprio_fk)
        self.proprio_in = nn.Linear(self.proprio.dim, cfg.llm.hidden)
        self.cognition_token = nn.Parameter(torch.randn(cfg.llm.hidden) * 0.02)
        self.router = STARRouter(cfg.llm.hidden, cfg.llm.layers, cfg.router, self.proprio.dim)
        a = cfg.action_head.action_dim
        self.register_buffer("action_low", -torch.ones(a))
        self.register_buffer("action_high", torch.ones(a))

    # ---- normalisation ------------------------------------------------------------------------
    def normalize_actions(self, a: torch.Tensor) -> torch.Tensor:
        return normalize_actions(a, self.action_low, self.action_high)

    def to_robot_units(self, a: torch.Tensor) -> np.ndarray:
        return to_robot_units(a, self.action_low, self.action_high, self.cfg.actions)

    def tokenize(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        if self.text is None:
            raise ValueError("this model's tokenizer lives in its folder: load it with load_model(folder)")
        return self.text(texts)

    def text_tokens(self, text: torch.Tensor) -> torch.Tensor:
        """Tokenizer output (ids [B, T], or MiniLM features [B, T, 384]) -> text tokens [B, T, hidden]."""
        return self.llm.embed_tokens(text) if self.text_in is None else self.text_in(text)

    # ---- forward ------------------------------------------------------------------------------
    def embed(self, pixels: torch.Tensor | None, text_ids: torch.Tensor, text_valid: torch.Tensor,
              proprio: torch.Tensor, vision_features: torch.Tensor | None = None,
              hide_proprio: torch.Tensor | None = None, hide_patches: torch.Tensor | None = None
              ) -> tuple[torch.Tensor, torch.Tensor, slice, slice, torch.Tensor, torch.Tensor | None]:
        """Backbone input [B, T, D], key validity [B, T], vision and text positions, proprio features, and the goal
        locator's table points [B, 2, 2] (None without a locator).
        pixels: preprocess_images() output; vision_features: precomputed encoder features (skip the encoder);
        hide_proprio [B] (training only): samples whose proprio token the decoder may not attend to;
        hide_patches [B] (training only): samples whose vision encoder tokens the decoder may not attend to (the goal
        locator's token stays visible)."""
        b, dev = text_ids.shape[0], text_ids.device
        txt = self.text_tokens(text_ids)
        patch_cnn = self.cfg.vision.kind == "patch_cnn"
        summary = instruction_summary(txt, text_valid) if patch_cnn else None  # FiLM input of encoder and locator
        if vision_features is None:
            vision_features = self.vision(pixels, summary) if patch_cnn else self.vision(pixels)
        vis = self.projector(vision_features)
        points, located = None, None
        if self.locator is not None:
            if pixels is None:
                raise ValueError("the goal locator needs the pixels, not precomputed vision features")
            points = self.locator.points(pixels, summary, txt, text_valid)
            located = self.locator.embed(points, proprio[:, :7])
            if self.cfg.vision.locator_input == "token":
                vis, located = torch.cat([vis, located], 1), None
        prop = self.proprio(proprio)
        bos = self.llm.embed_tokens.weight[self.cfg.llm.bos_id].expand(b, 1, -1)
        nv = vis.shape[1]
        ones = torch.ones(b, 1, dtype=torch.bool, device=dev)
        if not self.cfg.proprio_token:  # CogACT: [BOS, vision, prompt ... EOS, padding]
            x = torch.cat([bos, vis, txt], 1)
            valid = torch.cat([ones, ones.expand(b, nv), text_valid], 1)
            return x, valid, slice(1, 1 + nv), slice(1 + nv, 1 + nv + text_ids.shape[1]), prop, points
        cog = self.cognition_token.expand(b, 1, -1)
        state = self.proprio_in(prop)[:, None] + (0 if located is None else located)
        x = torch.cat([bos, vis, state, txt, cog], 1)
        shown = ones if hide_proprio is None else ~hide_proprio[:, None]
        vis_shown = ones.expand(b, nv)
        if hide_patches is not None:
            n_patches = vision_features.shape[1]  # the encoder's tokens; a locator token follows them
            vis_shown = torch.cat([~hide_patches[:, None].expand(b, n_patches), ones.expand(b, nv - n_patches)], 1)
        valid = torch.cat([ones, vis_shown, shown, text_valid, ones], 1)
        return x, valid, slice(1, 1 + nv), slice(2 + nv, 2 + nv + text_ids.shape[1]), prop, points

    def encode(self, vision_in: torch.Tensor, text_ids: torch.Tensor, text_valid: torch.Tensor,
               proprio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Serving entry (torch, ONNX, TensorRT graphs): (embeddings, key validity, STAR router scores).
        vision_in: preprocess_images() output."""
        x, valid, vis, txt, prop, _ = self.embed(vision_in, text_ids, text_valid, proprio)
        return x, valid, self.router.scores(x, vis, txt, text_valid, prop)

    def forward(self, images: torch.Tensor | None, text_ids: torch.Tensor, text_valid: torch.Tensor,
                proprio: torch.Tensor, mode: str = "mole", soft: bool = False,
                generator: torch.Generator | None = None, vision_features: torch.Tensor | None = None,
                keep: int | None = None, hide_proprio: torch.Tensor | None = None,
                hide_patches: torch.Tensor | None = None) -> Forward:
        """Backbone pass. mode: full (all layers), mole (STAR router), random (k random layers per sample),
        first_k (early exit: layers 0..k-1). soft=True trains the router through a straight-through gate.
        keep: k, the layers per sample (default: the router's keep ratio)."""
        pixels = None if images is None else preprocess_images(images, self.cfg.vision)
        x, valid, vis, txt, prop, points = self.embed(pixels, text_ids, text_valid, proprio, vision_features,
                                                      hide_proprio, hide_patches)
        b, n = x.shape[0], self.cfg.llm.layers
        k = self.cfg.router.keep(n) if keep is None else keep
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
        return Forward(hidden, cognition_at(hidden, valid), route, hard, valid, x, points)

    def sequence_length(self) -> int:
        return self.cfg.sequence_length
