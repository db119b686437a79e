"""The one serving pipeline behind every MoLe-VLA backend.

preprocess -> encode graph (embeddings, key validity, STAR router scores) -> top-k route per sample ->
routed decoder layers (layer k runs only on the samples that kept it) -> cognition feature -> DDIM over
the action-head graph -> unnormalised action chunks.

Backends differ only in the `Graphs` that run the four graph kinds: torch modules (eager, optionally CUDA
graphs), ONNX Runtime sessions, TensorRT engines. Several requests (robots) share one batch, each with its
own route and its own noise, and get the results they would get one at a time.
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable, Protocol

import numpy as np
import torch

from molevla_ros.model.action_head import cosine_alphas_cumprod, ddim_sample
from molevla_ros.model.config import MoLeConfig
from molevla_ros.model.io import to_serving
from molevla_ros.model.llama import attention_mask, rotary, run_routed
from molevla_ros.model.mole_vla import (MoLeVLA, cognition_at, fixed_gate, normalize_actions, preprocess_images,
                                        to_robot_units)
from molevla_ros.model.text import TextEncoder
from molevla_ros.model.router import top_k_mask


class Graphs(Protocol):
    """Runs the model's graphs on `device` tensors (float inputs in `dtype`; the action head's in `head_dtype`)."""

    device: torch.device
    dtype: torch.dtype
    head_dtype: torch.dtype  # float32 under a half-precision backbone, as CogACT serves its action model

    def encode(self, vision_in: torch.Tensor, text_ids: torch.Tensor, text_valid: torch.Tensor,
               proprio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> embeddings [B, T, D], key validity [B, T] (bool), router scores [B, L]."""

    def layer(self, k: int, hidden: torch.Tensor, key_valid: torch.Tensor) -> torch.Tensor: ...

    def finish(self, hidden: torch.Tensor, key_valid: torch.Tensor) -> torch.Tensor:
        """Final norm at the cognition position (last valid): [B, T, D] -> [B, D]."""

    def eps(self, noisy: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor: ...


@dataclass
class Request:
    """One robot's observation for one control step."""

    instruction: str
    proprio: np.ndarray  # [proprio_dim] joint positions in the model's state order
    image: np.ndarray  # (H, W, 3) uint8 RGB
    prefix: np.ndarray | None = None  # real-time chunking (Observation.prefix): robot units, one row per step
    prefix_frozen: int = 0


@dataclass
class StepResult:
    chunks: np.ndarray  # [B, H, A] robot units (cfg.actions), gripper 1 open / 0 closed
    masks: np.ndarray  # [B, L] uint8, 1 = layer ran
    cognition: np.ndarray  # [B, D]
    ms: float  # wall time of the whole step
    layers_ms: float = 0.0  # of which the routed decoder layers (what keeping fewer layers saves)


def sha256_files(*paths: Path) -> str:
    h = hashlib.sha256()
    for p in paths:
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def model_sha256(model_dir: Path) -> str:
    """Identity of a model directory's weights and config (keys the ONNX and engine caches)."""
    return sha256_files(Path(model_dir) / "config.json", Path(model_dir) / "model.safetensors")


def rtc_weights(horizon: int, frozen: int, planned: int) -> np.ndarray:
    """Inpainting weight per chunk row for real-time chunking: 1 for the rows that run before the chunk arrives,
    then decaying exponentially over the rest of the executor's plan, 0 beyond (the soft mask of Black et al.,
    2025, "Real-Time Execution of Action Chunking Flow Policies", arXiv 2506.07339)."""
    w = np.zeros(horizon, np.float32)
    frozen, planned = min(frozen, planned, horizon), min(planned, horizon)
    w[:frozen] = 1.0
    if planned > frozen:
        c = (planned - np.arange(frozen, planned)) / (planned - frozen + 1)
        w[frozen:planned] = c * np.expm1(c) / np.expm1(1.0)
    return w


class RoutedPolicy:
    def __init__(self, cfg: MoLeConfig, action_low: np.ndarray, action_high: np.ndarray, uncond: np.ndarray,
                 graphs: Graphs, text: TextEncoder) -> None:
        self.cfg, self.graphs, self.text = cfg, graphs, text
        self.low = torch.as_tensor(np.asarray(action_low, np.float32))
        self.high = torch.as_tensor(np.asarray(action_high, np.float32))
        self.uncond = torch.as_tensor(np.asarray(uncond, np.float32)).reshape(1, -1)
        self.alphas = cosine_alphas_cumprod(cfg.action_head.train_steps)

    @classmethod
    def from_model(cls, model: MoLeVLA, graphs: Graphs) -> "RoutedPolicy":
        return cls(model.cfg, model.action_low.cpu().numpy(), model.action_high.cpu().numpy(),
                   model.head.uncond.detach().float().cpu().numpy(), graphs, model.tokenize)

    def inputs(self, requests: list[Request]) -> tuple[torch.Tensor, ...]:
        g, cfg = self.graphs, self.cfg
        ids, valid = self.text([r.instruction for r in requests])
        q = np.zeros((len(requests), cfg.proprio_dim), np.float32)
        for i, r in enumerate(requests):
            p = np.asarray(r.proprio, np.float32).ravel()
            if cfg.proprio_token and len(p) != cfg.proprio_dim:  # a model without a proprio input reads none
                raise ValueError(f"the model reads {cfg.proprio_dim} joint positions, got {len(p)}")
            q[i, : min(len(p), cfg.proprio_dim)] = p[: cfg.proprio_dim]
        if any(r.image is None or np.ndim(r.image) != 3 or np.shape(r.image)[2] != 3 for r in requests):
            raise ValueError("every request needs an (H, W, 3) uint8 RGB image")
        images = torch.as_tensor(np.stack([r.image for r in requests]), device=g.device)
        vision_in = preprocess_images(images, cfg.vision)
        if ids.is_floating_point():  # MiniLM features take the graphs' dtype
            ids = ids.to(g.dtype)
        return (vision_in.to(g.dtype), ids.to(g.device), valid.to(g.device),
                torch.as_tensor(q, device=g.device).to(g.dtype))

    def guide(self, requests: list[Request], shape: torch.Size) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The DDIM inpainting guide (normalised target, weight) of the requests' prefixes; None if none has one."""
        if not any(r.prefix is not None and len(r.prefix) for r in requests):
            return None
        b, horizon, dim = shape
        target, weight = np.zeros((b, horizon, dim), np.float32), np.zeros((b, horizon, 1), np.float32)
        for i, r in enumerate(requests):
            if r.prefix is None or not len(r.prefix):
                continue
            rows = torch.as_tensor(np.asarray(r.prefix, np.float32)[:horizon])
            target[i, :len(rows)] = normalize_actions(rows, self.low, self.high).numpy()
            weight[i, :, 0] = rtc_weights(horizon, r.prefix_frozen, len(rows))
        g = self.graphs
        return (torch.as_tensor(target, device=g.device).to(g.dtype),
                torch.as_tensor(weight, device=g.device).to(g.dtype))

    @torch.no_grad()
    def step(self, requests: list[Request], noise: torch.Tensor, mode: str = "mole", keep: int | None = None,
             generator: torch.Generator | None = None) -> StepResult:
        """One control step for a batch of requests. noise: [B, H, A] initial DDIM noise (one per request);
        keep: layers per sample (default: the router's keep ratio); generator: only for mode='random'."""
        t0 = time.perf_counter()
        g, n = self.graphs, self.cfg.llm.layers
        k = self.cfg.router.keep(n) if keep is None else keep
        vision_in, ids, valid, q = self.inputs(requests)
        x, key_valid, scores = g.encode(vision_in, ids, valid, q)
        b = x.shape[0]
        if mode == "full":
            gate = torch.ones(b, n, device=g.device)
        elif mode == "mole":
            gate = top_k_mask(scores.float(), k)
        else:
            gate = fixed_gate(mode, b, n, k, generator).to(g.device)
        sync = torch.cuda.synchronize if g.device.type == "cuda" else (lambda: None)
        sync()
        t_layers = time.perf_counter()
        h = run_routed(x, gate, lambda i, hs, idx: g.layer(i, hs, key_valid[idx]))
        sync()
        layers_ms = (time.perf_counter() - t_layers) * 1e3
        cog = g.finish(h, key_valid)
        hd = g.head_dtype
        guide = self.guide(requests, noise.shape)
        norm = ddim_sample(g.eps, noise.to(g.device, hd), cog.to(hd), self.uncond.to(g.device, hd), self.alphas,
                           self.cfg.action_head, None if guide is None else (guide[0].to(hd), guide[1].to(hd)))
        chunks = to_robot_units(norm, self.low, self.high, self.cfg.actions)
        return StepResult(chunks, gate.cpu().numpy().astype(np.uint8), cog.float().cpu().numpy(),
                          (time.perf_counter() - t0) * 1e3, layers_ms)


class TorchGraphs:
    """The model's own modules. On CUDA, cuda_graphs=True replays one captured graph per decoder layer and
    one for the action head's noise predictor (per batch size): any route is a chain of graph launches, and
    each DDIM step is one launch plus a few element-wise ops."""

    def __init__(self, model: MoLeVLA, device: str = "cpu", dtype: torch.dtype = torch.float32,
                 cuda_graphs: bool = False) -> None:
        self.device, self.dtype = torch.device(device), dtype
        if cuda_graphs and self.device.type != "cuda":
            raise RuntimeError("cuda_graphs needs device 'cuda'")
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"device {device!r}: torch {torch.__version__} sees no CUDA GPU")
        self.head_dtype = torch.float32
        self.model = to_serving(model, self.device, dtype).eval()
        self.cuda_graphs = cuda_graphs
        self._rot: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        self._captured: dict[tuple, tuple] = {}  # (graph name, input shapes) -> (graph, inputs, output)

    def encode(self, vision_in, text_ids, text_valid, proprio):
        return self.model.encode(vision_in, text_ids, text_valid, proprio)

    def _layer(self, k: int, hidden: torch.Tensor, key_valid: torch.Tensor) -> torch.Tensor:
        t = hidden.shape[1]
        if t not in self._rot:
            self._rot[t] = rotary(self.model.cfg.llm, t, self.device, self.dtype)
        cos, sin = self._rot[t]
        return self.model.llm.layers[k](hidden, cos, sin, attention_mask(key_valid))

    def _replay(self, name: tuple, fn: Callable[..., torch.Tensor], *inputs: torch.Tensor) -> torch.Tensor:
        """fn(*inputs); with cuda_graphs, a CUDA graph captured on the first call for these input shapes."""
        if not self.cuda_graphs:
            return fn(*inputs)
        key = (*name, *(tuple(x.shape) for x in inputs))
        if key not in self._captured:
            static_in = [x.clone() for x in inputs]
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):  # warm-up outside the capture, as CUDA graphs require
                for _ in range(2):
                    fn(*static_in)
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                static_out = fn(*static_in)
            self._captured[key] = (graph, static_in, static_out)
        graph, static_in, static_out = self._captured[key]
        for static, x in zip(static_in, inputs):
            static.copy_(x)
        graph.replay()
        return static_out.clone()

    def layer(self, k: int, hidden: torch.Tensor, key_valid: torch.Tensor) -> torch.Tensor:
        return self._replay(("layer", k), partial(self._layer, k), hidden, key_valid)

    def finish(self, hidden, key_valid):
        return cognition_at(self.model.llm.norm(hidden), key_valid)

    def eps(self, noisy, t, cond):
        return self._replay(("eps",), self.model.head.eps, noisy.float(), t, cond.float())
