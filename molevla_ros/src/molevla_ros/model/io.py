"""Model directories: config.json (the model's spec: MoLeConfig, including its action layout and action_dt) +
model.safetensors (weights and normalisation buffers) + stats.json; imported CogACT models add tokenizer/."""
from __future__ import annotations

import json
from pathlib import Path

from safetensors.torch import load_file, save_file

from molevla_ros.model.config import MoLeConfig
from molevla_ros.model.mole_vla import MoLeVLA
from molevla_ros.model.text import text_encoder


def save_model(model: MoLeVLA, out: Path, info: dict | None = None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    model.cfg.save(out / "config.json")
    save_file({k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}, str(out / "model.safetensors"))
    names = ("action_low", "action_high", "proprio_mean", "proprio_std", "ee_mean", "ee_std")
    stats = {k: v.tolist() for k, v in model.state_dict().items() if k.rsplit(".", 1)[-1] in names}
    (out / "stats.json").write_text(json.dumps({**stats, **(info or {})}, indent=2))


def load_model(path: Path, device: str = "cpu") -> MoLeVLA:
    path = Path(path)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"no MoLe-VLA model at {path} (expected config.json + model.safetensors)")
    model = MoLeVLA(MoLeConfig.load(path / "config.json"))
    state = load_file(str(path / "model.safetensors"), device=device)
    for old in ("proprio_mean", "proprio_std"):  # checkpoints saved before ProprioFeatures
        if old in state:
            state[f"proprio.{old}"] = state.pop(old)
    model.load_state_dict(state)
    if model.cfg.llm.tokenizer == "cogact":
        model.text = text_encoder(model.cfg.llm, path)
    return model.to(device).eval()

