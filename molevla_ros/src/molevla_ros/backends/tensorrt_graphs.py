"""TensorRT execution of the per-graph ONNX set: one engine per graph (encode, each decoder layer, finish,
eps), chained by the serving loop in the order the router selects, on torch-owned CUDA buffers.

Layer skipping therefore needs no rebuild and no TensorRT conditionals: a skipped layer's engine is simply
not enqueued. Engines are built once from ONNX (TensorRT 10/11 Python API: ONNX parser -> serialized
engine), cached on disk under a key of (ONNX hash, TensorRT version, GPU, precision, max batch), and
rebuilt only when that key changes. `molevla build-engines` builds them ahead of time with progress.

The cache and the build plan are plain Python (tested everywhere); building and running need the
`tensorrt` package and a CUDA GPU.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Callable

import torch
from tqdm import tqdm

from molevla_ros.backends.onnx_graphs import head_dtype, load_manifest
from molevla_ros.backends.routed import sha256_files

MAX_BATCH = 8  # robots per batch the engines are built for (the eps graph sees 2x: CFG)


def engine_key(onnx_sha: str, trt_version: str, gpu: str, precision: str, max_batch: int) -> str:
    fields = {"onnx": onnx_sha, "tensorrt": trt_version, "gpu": gpu, "precision": precision, "max_batch": max_batch}
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


class EngineCache:
    """Serialized engines on disk, each with the key it was built for; stale or missing ones are rebuilt."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.built: list[str] = []  # graphs built (not loaded) by this instance

    def get(self, name: str, key: str, build: Callable[[], bytes]) -> bytes:
        engine, meta = self.folder / f"{name}.engine", self.folder / f"{name}.json"
        if engine.is_file() and meta.is_file() and json.loads(meta.read_text()).get("key") == key:
            return engine.read_bytes()
        data = build()
        tmp = engine.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(engine)
        meta.write_text(json.dumps({"key": key}))
        self.built.append(name)
        return data


def graph_names(onnx_dir: Path) -> list[str]:
    man, _ = load_manifest(onnx_dir)
    return ["encode", *man["layers"], "finish", "eps"]


def profile_shapes(name: str, shape: tuple[int, ...], max_batch: int) -> tuple[tuple, tuple, tuple]:
    """(min, opt, max) of one input with a dynamic batch axis (-1): the eps graph runs at 2 x batch (CFG)."""
    top = 2 * max_batch if name == "eps" else max_batch
    lo = tuple(1 if d < 0 else d for d in shape)
    opt = tuple((2 if name == "eps" else 1) if d < 0 else d for d in shape)
    hi = tuple(top if d < 0 else d for d in shape)
    return lo, opt, hi


class TensorRTGraphs:
    """Implements the `Graphs` protocol of :mod:`molevla_ros.backends.routed` with TensorRT engines."""

    def __init__(self, onnx_dir: Path, device: str = "cuda", max_batch: int = MAX_BATCH,
                 cache: Path | None = None, progress: bool = True) -> None:
        try:
            import tensorrt as trt
        except ImportError as e:
            raise ImportError("the tensorrt package is not installed (pip install tensorrt on a machine with "
                              "NVIDIA's index reachable); use mole_torch or mole_onnx") from e
        if not torch.cuda.is_available():
            raise RuntimeError("TensorRT needs a CUDA GPU; none is visible to torch")
        self.trt = trt
        self.device = torch.device(device if device.startswith("cuda") else "cuda")
        man, _ = load_manifest(onnx_dir)
        self.precision = man["dtype"]
        self.dtype = {"fp32": torch.float32, "fp16": torch.float16}[self.precision]
        self.head_dtype = head_dtype(man)  # the eps engine's inputs (float32: the action head is not cast)
        self.logger = trt.Logger(trt.Logger.WARNING)
        self.runtime = trt.Runtime(self.logger)
        major, minor = torch.cuda.get_device_capability(self.device)
        gpu = f"{torch.cuda.get_device_name(self.device)} sm{major}{minor}"
        cache = EngineCache(cache or Path(onnx_dir) / "engines")
        self.engines, self.contexts = {}, {}
        for name in tqdm(graph_names(onnx_dir), desc="TensorRT engines", unit="engine", disable=not progress):
            onnx = Path(onnx_dir) / f"{name}.onnx"
            key = engine_key(sha256_files(onnx), trt.__version__, gpu, self.precision, max_batch)
            data = cache.get(name, key, lambda n=name, f=onnx: self._build(n, f, max_batch))
            engine = self.runtime.deserialize_cuda_engine(data)
            self.engines[name] = engine
            self.contexts[name] = engine.create_execution_context()
        self.layer_names = man["layers"]
        self.built = cache.built

    def _build(self, name: str, onnx: Path, max_batch: int) -> bytes:
        trt = self.trt
        builder = trt.Builder(self.logger)
        strongly_typed = hasattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED")
        flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED) if strongly_typed else 0
        network = builder.create_network(flags)  # precision comes from the ONNX graph's own types
        parser = trt.OnnxParser(network, self.logger)
        if not parser.parse_from_file(str(onnx)):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise RuntimeError(f"TensorRT cannot parse {onnx.name}: {errors}")
        config = builder.create_builder_config()
        if not strongly_typed and self.precision == "fp16":
            config.set_flag(trt.BuilderFlag.FP16)
        profile = builder.create_optimization_profile()
        for i in range(network.num_inputs):
            inp = network.get_input(i)
            profile.set_shape(inp.name, *profile_shapes(name, tuple(inp.shape), max_batch))
        config.add_optimization_profile(profile)
        data = builder.build_serialized_network(network, config)
        if data is None:
            raise RuntimeError(f"TensorRT failed to build an engine for {onnx.name}")
        return bytes(data)

    def _run(self, name: str, **inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        trt, engine, ctx = self.trt, self.engines[name], self.contexts[name]
        keep = []
        names = {engine.get_tensor_name(i) for i in range(engine.num_io_tensors)}
        for n, t in inputs.items():  # engine I/O types can differ from the previous graph's output (fp16 vs fp32)
            if n not in names:  # an input the graph does not use (the exporter drops it), e.g. CogACT's proprio
                continue
            t = t.to(self.device, _torch_dtype(trt, engine.get_tensor_dtype(n))).contiguous()
            keep.append(t)
            ctx.set_input_shape(n, tuple(t.shape))
            ctx.set_tensor_address(n, t.data_ptr())
        outs = {}
        for i in range(engine.num_io_tensors):
            n = engine.get_tensor_name(i)
            if engine.get_tensor_mode(n) != trt.TensorIOMode.OUTPUT:
                continue
            o = torch.empty(tuple(ctx.get_tensor_shape(n)), dtype=_torch_dtype(trt, engine.get_tensor_dtype(n)),
                            device=self.device)
            ctx.set_tensor_address(n, o.data_ptr())
            outs[n] = o
        if not ctx.execute_async_v3(torch.cuda.current_stream(self.device).cuda_stream):
            raise RuntimeError(f"TensorRT execution of {name} failed")
        return outs

    def encode(self, vision_in, text_ids, text_valid, proprio):
        o = self._run("encode", vision_in=vision_in, text_ids=text_ids, text_valid=text_valid, proprio=proprio)
        return o["embeddings"], o["key_valid"], o["router_scores"]

    def layer(self, k, hidden, key_valid):
        return self._run(self.layer_names[k], hidden=hidden, key_valid=key_valid)["hidden_out"]

    def finish(self, hidden, key_valid):
        return self._run("finish", hidden=hidden, key_valid=key_valid)["cognition"]

    def eps(self, noisy, t, cond):
        return self._run("eps", noisy=noisy, t=t, cond=cond)["eps"]


def _torch_dtype(trt, dtype) -> torch.dtype:
    return {trt.float32: torch.float32, trt.float16: torch.float16, trt.bool: torch.bool, trt.int64: torch.int64,
            trt.int32: torch.int32}[dtype]
