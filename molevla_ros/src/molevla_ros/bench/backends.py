"""Policy-step latency and throughput per backend, full depth vs MoLe at several keep ratios, in one run.

For each backend and keep ratio (1.0 = full depth; below 1.0 the STAR router keeps the top-k layers):
- step latency p50/p99: one request (batch 1), the whole policy step (preprocess, encoder, router, kept
  layers, DDIM head, unnormalise); every keep ratio is warmed up before any is timed, then the keep ratios
  take turns step by step (a cold first configuration once inflated its speed-up 2x);
- throughput: requests per second for a batch of `batch` robots with their own routes;
- compute per step from torch's FLOP counter on the same pipeline (backbone and whole step), and the
  ideal speed-up it implies; efficiency = measured speed-up / ideal (goal >= 0.8).
"""
from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode
from tqdm import tqdm

from molevla_ros.paths import DEFAULT_MODEL
from molevla_ros.bench.report import header
from molevla_ros.config_cli import option
from molevla_ros.backends.mole import make_mole_backend
from molevla_ros.backends.routed import Request, RoutedPolicy, TorchGraphs
from molevla_ros.model.config import cogact_base
from molevla_ros.model.io import load_model, save_model
from molevla_ros.model.mole_vla import MoLeVLA

KEEPS = (1.0, 0.75, 0.5, 0.25)


@dataclass
class Backend:
    label: str
    kind: str  # torch | onnx | tensorrt
    device: str = "cpu"
    precision: str = "fp32"
    cuda_graphs: bool = False


BACKENDS = {
    "torch": Backend("torch eager", "torch"),
    "onnx": Backend("onnxruntime", "onnx"),
    "torch-cuda": Backend("torch eager cuda fp32", "torch", "cuda"),
    "torch-cuda-fp16": Backend("torch eager cuda fp16", "torch", "cuda", "fp16"),
    "torch-cuda-graphs": Backend("torch cuda graphs fp16", "torch", "cuda", "fp16", True),
    "tensorrt": Backend("tensorrt fp16", "tensorrt", "cuda", "fp16"),
}


def make_requests(policy: RoutedPolicy, n: int, seed: int = 0) -> list[Request]:
    rng = np.random.default_rng(seed)
    cfg = policy.cfg
    texts = ["touch the red cube", "push the blue cube to the green target",
             "pick up the yellow cube and put it in the tray"]
    return [Request(texts[i % 3], rng.normal(0, 0.3, cfg.proprio_dim).astype(np.float32),
                    rng.integers(0, 255, (224, 224, 3), dtype=np.uint8)) for i in range(n)]


def route_args(keep: float, layers: int) -> tuple[str, int]:
    k = max(1, int(round(keep * layers)))
    return ("full", layers) if k == layers else ("mole", k)


def count_flops(policy: RoutedPolicy, keep: float) -> tuple[float, float]:
    """(backbone, whole step) FLOPs of one batch-1 step, counted by torch on the torch pipeline."""
    req = make_requests(policy, 1)
    mode, k = route_args(keep, policy.cfg.llm.layers)
    noise = torch.zeros(1, policy.cfg.action_head.horizon, policy.cfg.action_head.action_dim)
    inner, backbone = policy.graphs, []

    class Split:  # count the decoder layers separately from the rest
        device, dtype = inner.device, inner.dtype
        encode, finish, eps = inner.encode, inner.finish, inner.eps

        def layer(self, i, h, v):
            with FlopCounterMode(display=False) as c:  # a counter restarts at each entry: one per layer call
                out = inner.layer(i, h, v)
            backbone.append(c.get_total_flops())
            return out

    policy.graphs = Split()
    try:
        policy.step(req, noise, mode, k)
        backbone.clear()
        with FlopCounterMode(display=False) as total:
            policy.step(req, noise, mode, k)
    finally:
        policy.graphs = inner
    return float(sum(backbone)), float(total.get_total_flops())


def time_steps(policy: RoutedPolicy, requests: list[Request], iters: int, warmup: int = 3,
               desc: str = "timing") -> dict[float, np.ndarray]:
    """Step times (ms) per keep ratio. Every keep is warmed up before any is timed, then the keeps take turns
    step by step, so a cold first configuration or a drifting machine cannot favour one of them."""
    ah = policy.cfg.action_head
    noise = torch.randn(len(requests), ah.horizon, ah.action_dim, generator=torch.Generator().manual_seed(0))
    routes = {keep: route_args(keep, policy.cfg.llm.layers) for keep in KEEPS}
    for _ in range(warmup):
        for mode, k in routes.values():
            policy.step(requests, noise, mode, k)
    times: dict[float, list[float]] = {keep: [] for keep in KEEPS}
    for _ in tqdm(range(iters), desc=desc, unit="round", leave=False):
        for keep, (mode, k) in routes.items():
            t0 = time.perf_counter()
            policy.step(requests, noise, mode, k)  # returns numpy: includes the device sync
            times[keep].append(time.perf_counter() - t0)
    return {keep: np.array(t) * 1e3 for keep, t in times.items()}


def random_model_dir(layers: int) -> Path:
    """A CogACT-scale model (random weights: DINOv2 + SigLIP towers, Llama-2-7B-sized layers, DiT-B) and a small
    synthetic Llama-style tokenizer (the prompt's length matters here, not its words), in a temporary folder."""
    from molevla_ros.testing.synthetic_cogact import write_tokenizer
    from molevla_ros.model.text import TOKENIZER_DIR

    out = Path(tempfile.mkdtemp(prefix="molevla_cogact_"))
    torch.manual_seed(0)
    save_model(MoLeVLA(cogact_base(layers)).eval(), out)
    write_tokenizer(out / TOKENIZER_DIR)
    return out


@dataclass
class BackendBenchOptions:
    model: str = option(DEFAULT_MODEL, "model folder or shipped model name")
    config: str = option("model", "cogact: a random-weight CogACT-scale model (Llama-2-7B-sized layers) instead of "
                         "--model", choices=("model", "cogact"))
    layers: int = option(32, "decoder layers of the cogact configuration")
    backends: tuple[str, ...] = option(("torch", "onnx"), "backends to time", choices=tuple(BACKENDS))
    iters: int = option(30, "timed rounds at batch 1 (a quarter of them at --batch)")
    batch: int = option(8, "robots per batch for the throughput column")
    out: str = option("docs/results/bench_backends", "folder for the table (JSON and Markdown)")


def run(o: BackendBenchOptions) -> list[dict]:
    """Time the model named by `o` (or a temporary CogACT-scale one, deleted afterwards) on each backend."""
    from molevla_ros.paths import resolve_model

    if o.config == "cogact":
        model_dir, label = random_model_dir(o.layers), f"CogACT-scale, random weights, {o.layers} Llama-2-7B layers"
    else:
        model_dir, label = resolve_model(o.model), f"model {o.model}"
    try:
        return measure(model_dir, list(o.backends), o.iters, o.batch, Path(o.out), label)
    finally:
        if o.config == "cogact":
            shutil.rmtree(model_dir, ignore_errors=True)  # GBs of random weights


def measure(model_dir: Path, backends: list[str], iters: int, batch: int, out: Path | None, label: str) -> list[dict]:
    """Latency and throughput of every backend at every keep ratio (table printed; saved under `out`)."""
    rows = []
    model = load_model(model_dir)
    reference = RoutedPolicy.from_model(model, TorchGraphs(model))
    flops = {keep: count_flops(reference, keep) for keep in tqdm(KEEPS, desc="counting FLOPs", unit="keep")}
    del model, reference
    for name in backends:
        b = BACKENDS[name]
        try:
            policy = make_mole_backend(b.kind, model_dir, device=b.device, precision=b.precision,
                                       cuda_graphs=b.cuda_graphs).policy
        except (ImportError, RuntimeError, ValueError) as e:
            print(f"{b.label}: skipped ({e})")
            continue
        lats = time_steps(policy, make_requests(policy, 1), iters, desc=f"{b.label} batch 1")
        thrs = time_steps(policy, make_requests(policy, batch, seed=1), max(3, iters // 4),
                          desc=f"{b.label} batch {batch}")
        for keep in KEEPS:
            lat, thr = lats[keep], thrs[keep]
            rows.append({"backend": b.label, "keep": keep, "layers": route_args(keep, policy.cfg.llm.layers)[1],
                         "backbone_gflops": flops[keep][0] / 1e9, "step_gflops": flops[keep][1] / 1e9,
                         "p50_ms": float(np.percentile(lat, 50)), "p99_ms": float(np.percentile(lat, 99)),
                         "batch": batch, "throughput_rps": batch / float(np.median(thr)) * 1e3})
    for r in rows:
        full = next(x for x in rows if x["backend"] == r["backend"] and x["keep"] == 1.0)
        r["ideal_speedup"] = full["step_gflops"] / r["step_gflops"]
        r["speedup"] = full["p50_ms"] / r["p50_ms"]
        r["efficiency"] = r["speedup"] / r["ideal_speedup"]
    print_table(rows, label)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "bench_backends.json").write_text(json.dumps({"label": label, "rows": rows}, indent=2))
        (out / "bench_backends.md").write_text(header("molevla bench-backends") + table(rows, label))
    return rows


def table(rows: list[dict], label: str) -> str:
    head = ("| backend | keep | layers | backbone GFLOPs | step GFLOPs | p50 ms | p99 ms | full/MoLe p50 | ideal | "
            "efficiency | batch | req/s |")
    lines = [f"{label}\n", head, "|" + "---|" * 12]
    for r in rows:
        lines.append(f"| {r['backend']} | {r['keep']:.2f} | {r['layers']} | {r['backbone_gflops']:.3f} | "
                     f"{r['step_gflops']:.3f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['speedup']:.2f} | "
                     f"{r['ideal_speedup']:.2f} | {r['efficiency']:.2f} | {r['batch']} | {r['throughput_rps']:.1f} |")
    return "\n".join(lines) + "\n"


def print_table(rows: list[dict], label: str) -> None:
    print(table(rows, label))
    ratios = {}
    for r in rows:
        ratios.setdefault(r["keep"], {})[r["backend"]] = r["p50_ms"]
    names = list(dict.fromkeys(r["backend"] for r in rows))
    if len(names) > 1:
        base = names[0]
        print(f"p50 speed-up over {base} at the same route:")
        for keep, per in ratios.items():
            print(f"  keep {keep:.2f}: " + ", ".join(f"{n} {per[base] / per[n]:.2f}x" for n in names[1:] if n in per))
