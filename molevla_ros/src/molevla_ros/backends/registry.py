"""Backend choice by name, with a clear message (never a traceback) when one cannot be used."""
from __future__ import annotations

import importlib
from typing import Any, Callable

from molevla_ros.backends.base import PolicyBackend


class BackendUnavailable(RuntimeError):
    pass


def _scripted(**kw: Any) -> PolicyBackend:
    """The simulator's scripted expert (molevla_ros.sim.expert_backend), loaded only when asked for: the policy runs
    without the simulator installed otherwise."""
    module = importlib.import_module("molevla_ros.sim.expert_backend")
    return module.ScriptedExpertBackend(horizon=kw.get("horizon", 16))


def _mole(kind: str) -> Callable[..., PolicyBackend]:
    def factory(**kw: Any) -> PolicyBackend:
        from molevla_ros.backends.mole import make_mole_backend
        from molevla_ros.paths import resolve_model

        return make_mole_backend(kind, resolve_model(kw["model_dir"]), kw.get("route", "mole"), kw.get("device", "cpu"),
                                 kw.get("precision", "fp32"), kw.get("cuda_graphs", False),
                                 kw.get("threads", 0))
    return factory


FACTORIES: dict[str, Callable[..., PolicyBackend]] = {
    "scripted_expert": _scripted,
    "mole_torch": _mole("torch"),  # PyTorch eager (CPU/CUDA), optional CUDA graphs and fp16/bf16
    "mole_onnx": _mole("onnx"),  # ONNX Runtime, CPU
    "mole_tensorrt": _mole("tensorrt"),  # TensorRT engines per graph (GPU, needs the tensorrt package)
}


def make_backend(name: str, **kw: Any) -> PolicyBackend:
    if name not in FACTORIES:
        raise BackendUnavailable(f"unknown policy backend {name!r}; available: {', '.join(FACTORIES)}")
    try:
        return FACTORIES[name](**kw)
    except Exception as e:  # whatever a missing dependency or a model folder written elsewhere raises: reported
        raise BackendUnavailable(f"policy backend {name!r} cannot load ({type(e).__name__}: {e}); available: "
                                 f"{', '.join(FACTORIES)}") from e
