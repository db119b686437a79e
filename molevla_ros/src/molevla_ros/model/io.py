"""Model directories: config.json (the model's spec: MoLeConfig, including its action layout and action_dt) +
model.safetensors (weights and normalisation buffers) + stats.json; imported CogACT models add tokenizer/.

Loading builds the modules with their parameters on the meta device (no memory, no random init) and assigns the
file's tensors, cast one at a time to the serving dtype: peak memory is about the weights in that dtype. The action
head and the normalisation buffers stay float32 under a half-precision backbone, as CogACT serves them.
"""
from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import torch
from torch import nn

from molevla_ros.model import safetensors_io

from molevla_ros.model.config import MoLeConfig
from molevla_ros.model.mole_vla import MoLeVLA
from molevla_ros.model.text import text_encoder

FP32_PARTS = ("head.", "action_low", "action_high")  # kept float32 whatever the serving dtype
NORMALISATION = ("action_low", "action_high", "proprio_mean", "proprio_std", "ee_mean", "ee_std")  # also stats.json


def save_model(model: MoLeVLA, out: Path, info: dict | None = None, dtype: torch.dtype | None = None) -> None:
    """Write the model folder; `dtype`: store the floating weights in it (the FP32_PARTS stay float32)."""
    out.mkdir(parents=True, exist_ok=True)
    model.cfg.save(out / "config.json")
    safetensors_io.write(out / "model.safetensors", model.state_dict().items(),
                         dtype_for=lambda k, d: serving_dtype(k, d, dtype))
    stats = {k: v.float().tolist() for k, v in model.state_dict().items() if k.rsplit(".", 1)[-1] in NORMALISATION}
    (out / "stats.json").write_text(json.dumps({**stats, **(info or {})}, indent=2))


def serving_dtype(name: str, current: torch.dtype, dtype: torch.dtype | None) -> torch.dtype:
    """`dtype` for a floating tensor outside FP32_PARTS, float32 in them; `current` otherwise or without a dtype."""
    if dtype is None or not current.is_floating_point:
        return current
    return torch.float32 if name.startswith(FP32_PARTS) else dtype



def check_normalisation(path: Path, state: dict[str, torch.Tensor]) -> None:
    """ValueError for normalisation buffers that would load and make every step wrong: not floating point (raw
    integers read as scales), NaN/Inf, a standard deviation <= 0, an action high below its low (mirrored actions,
    a gripper that opens when asked to close)."""
    for name, t in state.items():
        leaf = name.rsplit(".", 1)[-1]
        if leaf not in NORMALISATION:
            continue
        if not t.is_floating_point():
            raise ValueError(f"{path}: {name} is {t.dtype}, not floating point")
        if not torch.isfinite(t).all():
            raise ValueError(f"{path}: {name} has NaN/Inf entries")
        if leaf.endswith("_std") and (t <= 0).any():
            raise ValueError(f"{path}: {name} has entries <= 0 ({t.tolist()})")
    low, high = state.get("action_low"), state.get("action_high")
    if low is not None and high is not None and (high < low).any():
        dims = torch.nonzero(high < low).flatten().tolist()
        raise ValueError(f"{path}: action_high is below action_low in dimensions {dims}")


@torch.no_grad()
def to_serving(model: MoLeVLA, device: str | torch.device, dtype: torch.dtype) -> MoLeVLA:
    """`model` on `device`, its floating tensors in `dtype` outside FP32_PARTS and float32 in them (each cast once
    from what it is now: the action head never passes through half precision)."""
    for name, t in [*model.named_parameters(), *model.named_buffers()]:
        want = serving_dtype(name, t.dtype, dtype)
        if t.dtype != want or t.device != torch.device(device):
            t.data = t.data.to(device, want)
    return model


@contextmanager
def parameters_on_meta() -> Iterator[None]:
    """Modules built inside get their parameters on the meta device (no memory; their init does nothing); buffers
    stay real, so the ones that are not saved (rotary tables, the diffusion schedule) are computed as usual."""
    register = nn.Module.register_parameter

    def on_meta(module: nn.Module, name: str, param: nn.Parameter | None) -> None:
        if param is not None and param.device.type != "meta":
            param = nn.Parameter(param.to("meta"), requires_grad=param.requires_grad)
        register(module, name, param)

    nn.Module.register_parameter = on_meta
    try:
        yield
    finally:
        nn.Module.register_parameter = register


def load_model(path: Path, device: str = "cpu", dtype: torch.dtype = torch.float32) -> MoLeVLA:
    """The model folder's model in `dtype` (the FP32_PARTS in float32) on `device`, in eval mode."""
    path = Path(path)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"no MoLe-VLA model at {path} (expected config.json + model.safetensors)")
    cfg = MoLeConfig.load(path / "config.json")
    text = text_encoder(cfg.llm, path)  # first and for real: a tokenizer's own weights (MiniLM) are not the model's
    with parameters_on_meta():
        model = MoLeVLA(cfg)
    model.text = text
    state = {}
    for key, t in safetensors_io.read(path / "model.safetensors", lambda k, d: serving_dtype(k, d, dtype)):
        name = key if key not in ("proprio_mean", "proprio_std") else f"proprio.{key}"  # saved before ProprioFeatures
        state[name] = t.to(device)
    check_normalisation(path, state)
    model.load_state_dict(state, assign=True)
    return to_serving(model, device, dtype).eval()  # the buffers that are not saved, too
