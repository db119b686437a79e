"""ONNX export of a MoLe-VLA model as separate graphs, and ONNX Runtime execution of them.

One graph per decoder layer (not one for the whole backbone) is what makes layer skipping free at run
time: the serving loop chains only the layers the router kept. The same files feed TensorRT
(:mod:`molevla_ros.backends.tensorrt_graphs`). Folder layout::

    manifest.json   model hash, config, sequence length, graph names, the CFG null condition, stats
    encode.onnx     (vision_in, text_ids, text_valid, proprio) -> (embeddings, key_valid, router_scores)
    layer_00.onnx   (hidden, key_valid) -> hidden          ... one per decoder layer
    finish.onnx     (hidden, key_valid) -> cognition (final norm at the last valid position)
    eps.onnx        (noisy, t, cond) -> eps                 (one DiT denoising step)
"""
from __future__ import annotations

import json
import os
import warnings
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from molevla_ros.backends.routed import model_sha256
from molevla_ros.model.config import MoLeConfig
from molevla_ros.model.io import load_model
from molevla_ros.model.llama import attention_mask, rotary
from molevla_ros.model.mole_vla import MoLeVLA, cognition_at

OPSET = 18
FORMAT = 3  # bump when the graph set or their signatures change


class _Encode(nn.Module):
    def __init__(self, m: MoLeVLA) -> None:
        super().__init__()
        self.m = m

    def forward(self, vision_in, text_ids, text_valid, proprio):
        return self.m.encode(vision_in, text_ids, text_valid, proprio)


class _Layer(nn.Module):
    def __init__(self, m: MoLeVLA, k: int, t: int, dtype: torch.dtype) -> None:
        super().__init__()
        self.layer = m.llm.layers[k]
        cos, sin = rotary(m.cfg.llm, t, torch.device("cpu"), dtype)
        self.register_buffer("cos", cos)
        self.register_buffer("sin", sin)

    def forward(self, hidden, key_valid):
        return self.layer(hidden, self.cos, self.sin, attention_mask(key_valid))


class _Finish(nn.Module):
    def __init__(self, m: MoLeVLA) -> None:
        super().__init__()
        self.norm = m.llm.norm

    def forward(self, hidden, key_valid):
        return cognition_at(self.norm(hidden), key_valid)


class _Eps(nn.Module):
    def __init__(self, m: MoLeVLA) -> None:
        super().__init__()
        self.head = m.head

    def forward(self, noisy, t, cond):
        return self.head.eps(noisy, t, cond)


def example_inputs(model: MoLeVLA, batch: int = 2, dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, ...]:
    cfg = model.cfg
    vision_in = torch.rand(batch, 3, cfg.vision.image_size, cfg.vision.image_size)  # preprocess_images() output
    valid = torch.ones(batch, cfg.llm.max_text, dtype=torch.bool)
    valid[:, cfg.llm.max_text // 2:] = False
    if model.text_in is not None:  # MiniLM token features
        text = torch.randn(batch, cfg.llm.max_text, model.text_in.in_features).to(dtype) * valid[..., None]
    else:
        text = torch.randint(2, cfg.llm.vocab, (batch, cfg.llm.max_text)) * valid
    return vision_in.to(dtype), text, valid, torch.randn(batch, cfg.proprio_dim).to(dtype)


def _export(module: nn.Module, args: tuple, path: Path, inputs: list[str], outputs: list[str]) -> None:
    axes = {n: {0: "batch"} for n in inputs + outputs}
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)  # the router's fused encoder-layer kernel has no ONNX form
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(module, args, str(path), input_names=inputs, output_names=outputs, dynamic_axes=axes,
                              opset_version=OPSET, dynamo=False)
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)


def export_onnx(model_dir: Path, out: Path, dtype: str = "fp32", progress: bool = True) -> Path:
    """Write the graph set of the model in model_dir to out (fp32 for ONNX Runtime; fp16 for TensorRT)."""
    tdt = {"fp32": torch.float32, "fp16": torch.float16}[dtype]
    model = load_model(Path(model_dir), dtype=tdt)  # the action head stays float32 (io.FP32_PARTS)
    return _export_model(model, out, model_sha256(Path(model_dir)), dtype, progress)


def _export_model(model: MoLeVLA, out: Path, sha: str, dtype: str, progress: bool = True) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    tdt, hdt = model.llm.norm.weight.dtype, model.head.final_layer.linear.weight.dtype
    cfg, b = model.cfg, 2
    t = model.sequence_length()
    d = cfg.llm.hidden
    ah = cfg.action_head
    jobs = [("encode", _Encode(model), example_inputs(model, b, tdt),
             ["vision_in", "text_ids", "text_valid", "proprio"], ["embeddings", "key_valid", "router_scores"])]
    valid = torch.ones(b, t, dtype=torch.bool)
    for k in range(cfg.llm.layers):
        jobs.append((f"layer_{k:02d}", _Layer(model, k, t, tdt), (torch.randn(b, t, d).to(tdt), valid),
                     ["hidden", "key_valid"], ["hidden_out"]))
    jobs.append(("finish", _Finish(model), (torch.randn(b, t, d).to(tdt), valid), ["hidden", "key_valid"],
                 ["cognition"]))
    jobs.append(("eps", _Eps(model), (torch.randn(b, ah.horizon, ah.action_dim).to(hdt),
                                      torch.randint(0, ah.train_steps, (b,)), torch.randn(b, d).to(hdt)),
                 ["noisy", "t", "cond"], ["eps"]))
    with torch.no_grad():
        for name, module, args, ins, outs in tqdm(jobs, desc=f"export ONNX ({dtype})", unit="graph",
                                                  disable=not progress):
            _export(module.eval(), args, out / f"{name}.onnx", ins, outs)
    manifest = {"format": FORMAT, "model_sha256": sha, "dtype": dtype, "head_dtype": str(hdt).removeprefix("torch."),
                "opset": OPSET, "seq_len": t,
                "layers": [f"layer_{k:02d}" for k in range(cfg.llm.layers)], "config": asdict(cfg),
                "uncond": model.head.uncond.detach().float().reshape(-1).tolist(),
                "action_low": model.action_low.float().tolist(), "action_high": model.action_high.float().tolist()}
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


def cache_root() -> Path:
    return Path(os.environ.get("MOLEVLA_CACHE", Path.home() / ".cache" / "molevla_ros"))


def ensure_onnx(model_dir: Path, dtype: str = "fp32", cache: Path | None = None) -> Path:
    """The model's graph set, exported once per (model hash, dtype, format) into the cache."""
    sha = model_sha256(Path(model_dir))
    out = (cache or cache_root()) / sha[:16] / f"onnx_{dtype}"
    m = out / "manifest.json"
    if m.is_file():
        man = json.loads(m.read_text())
        if man.get("format") == FORMAT and man.get("model_sha256") == sha:
            return out
    return export_onnx(Path(model_dir), out, dtype)


def head_dtype(manifest: dict) -> torch.dtype:
    """The eps graph's float type (float32 since the action head stays float32; older sets: the graphs' dtype)."""
    name = manifest.get("head_dtype") or {"fp32": "float32", "fp16": "float16"}[manifest["dtype"]]
    return getattr(torch, name)


def load_manifest(folder: Path) -> tuple[dict, MoLeConfig]:
    man = json.loads((Path(folder) / "manifest.json").read_text())
    return man, MoLeConfig.from_dict(man["config"])


class OrtGraphs:
    """ONNX Runtime (CPU) sessions of the graph set (fp32 for serving; the fp16 set that TensorRT builds from
    also runs here, which is how its graphs are checked on machines without TensorRT)."""

    def __init__(self, folder: Path, threads: int = 0) -> None:
        import onnxruntime as ort

        man, _ = load_manifest(folder)
        self.device, self.dtype = torch.device("cpu"), {"fp32": torch.float32, "fp16": torch.float16}[man["dtype"]]
        self.head_dtype = head_dtype(man)
        opts = ort.SessionOptions()
        # ORT 1.32 crashes optimising the fp16 encoder graph at ORT_ENABLE_ALL; the fp16 set is only checked here.
        level = "ORT_ENABLE_ALL" if man["dtype"] == "fp32" else "ORT_ENABLE_BASIC"
        opts.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
        if threads:
            opts.intra_op_num_threads = threads
        # Idle ORT threads must not spin: between graph calls the pipeline runs torch ops (preprocessing,
        # DDIM arithmetic) whose threads a spinning pool would starve (measured: 2x slower steps).
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        names = ["encode", *man["layers"], "finish", "eps"]
        self.sessions = {n: ort.InferenceSession(str(Path(folder) / f"{n}.onnx"), opts,
                                                 providers=["CPUExecutionProvider"]) for n in names}
        self.layer_names = man["layers"]

    def _run(self, name: str, **inputs: torch.Tensor) -> list[torch.Tensor]:
        used = {i.name for i in self.sessions[name].get_inputs()}  # the exporter drops unused inputs
        dtype = self.head_dtype if name == "eps" else self.dtype
        feed = {k: np.ascontiguousarray((v.to(dtype) if v.is_floating_point() else v).numpy())
                for k, v in inputs.items() if k in used}
        return [torch.from_numpy(o) for o in self.sessions[name].run(None, feed)]

    def encode(self, vision_in, text_ids, text_valid, proprio):
        x, valid, scores = self._run("encode", vision_in=vision_in, text_ids=text_ids, text_valid=text_valid,
                                     proprio=proprio)
        return x, valid, scores

    def layer(self, k, hidden, key_valid):
        return self._run(self.layer_names[k], hidden=hidden, key_valid=key_valid)[0]

    def finish(self, hidden, key_valid):
        return self._run("finish", hidden=hidden, key_valid=key_valid)[0]

    def eps(self, noisy, t, cond):
        return self._run("eps", noisy=noisy, t=t, cond=cond)[0]
