"""Import a CogACT-style checkpoint (`torch.load(f)["model"]` with sub-dicts projector, llm_backbone,
vision_backbone, action_model) into a molevla model folder.

Mapping (by name, shapes checked):
  projector.fc{1,2,3}.*                 -> projector.{0,2,4}.*            (fused GELU MLP)
  llm_backbone.llm.model.embed_tokens   -> llm.embed_tokens               (Llama-2, 1:1)
  llm_backbone.llm.model.layers.N.*     -> llm.layers.N.*
  llm_backbone.llm.model.norm           -> llm.norm                       (lm_head is dropped: unused)
  action_model.net.{x,t,z}_embedder.*   -> head.{x,t,z}_embedder.*        (DiT, 1:1)
  action_model.net.positional_embedding -> head.positional_embedding
  action_model.net.blocks.N.*           -> head.blocks.N.*
  action_model.net.final_layer.linear.* -> head.final_layer.linear.*
  vision_backbone.*                     -> vision_backbone.safetensors (DINOv2 + SigLIP: kept as is for the
                                           external encoder that produces vision_features)
New in MoLe-VLA and left at initialisation, to be trained by MoLe fine-tuning: router.*, cognition_token,
proprio_in.*. No real CogACT weights can be downloaded here; tests use a synthetic checkpoint with the
same key layout.
"""
from __future__ import annotations

import re
from pathlib import Path

import torch
from safetensors.torch import save_file

from molevla_ros.model.config import MoLeConfig
from molevla_ros.model.io import save_model
from molevla_ros.model.mole_vla import MoLeVLA

RULES = [
    (r"^projector\.fc(\d+)\.(.*)$", lambda m: f"projector.{2 * (int(m[1]) - 1)}.{m[2]}"),
    (r"^llm_backbone\.llm\.model\.(embed_tokens|norm)\.(.*)$", lambda m: f"llm.{m[1]}.{m[2]}"),
    (r"^llm_backbone\.llm\.model\.layers\.(.*)$", lambda m: f"llm.layers.{m[1]}"),
    (r"^action_model\.net\.((?:x|t|z)_embedder\..*|positional_embedding|blocks\..*|final_layer\.linear\..*)$",
     lambda m: f"head.{m[1]}"),
]
DROPPED = (r"^llm_backbone\.llm\.lm_head\.", r"^action_model\.net\.history_embedder\.")


def flatten(model_dict: dict) -> dict[str, torch.Tensor]:
    """{"projector": {"fc1.weight": t}} -> {"projector.fc1.weight": t}."""
    return {f"{group}.{k}": v for group, sub in model_dict.items() for k, v in sub.items()}


def map_key(key: str) -> str | None:
    for pattern, target in RULES:
        m = re.match(pattern, key)
        if m:
            return target(m)
    return None


def import_cogact(checkpoint: Path, cfg: MoLeConfig, out: Path) -> dict[str, list[str]]:
    """Write `out` (config.json, model.safetensors, vision_backbone.safetensors); return what was mapped."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    flat = flatten(state["model"] if "model" in state else state)
    model = MoLeVLA(cfg)
    target = model.state_dict()
    mapped, vision, dropped, unknown = {}, {}, [], []
    for key, value in flat.items():
        if key.startswith("vision_backbone."):
            vision[key.removeprefix("vision_backbone.")] = value
            continue
        if any(re.match(p, key) for p in DROPPED):
            dropped.append(key)
            continue
        new = map_key(key)
        if new is None or new not in target:
            unknown.append(key)
            continue
        if new == "head.z_embedder.uncondition":
            value = value.reshape(target[new].shape)
        if value.shape != target[new].shape:
            raise ValueError(f"{key} {tuple(value.shape)} does not fit {new} {tuple(target[new].shape)}: "
                             "the config does not match the checkpoint")
        mapped[new] = value.to(target[new].dtype)
    if unknown:
        more = " ..." if len(unknown) > 8 else ""
        raise ValueError(f"checkpoint keys with no place in the model: {unknown[:8]}{more}")
    model.load_state_dict(mapped, strict=False)
    save_model(model, out, {"imported_from": str(checkpoint)})
    if vision:
        save_file({k: v.contiguous() for k, v in vision.items()}, str(out / "vision_backbone.safetensors"))
    fresh = [k for k in target if k not in mapped and not k.startswith(("action_", "proprio."))]
    return {"mapped": sorted(mapped), "initialised": fresh, "vision": sorted(vision), "dropped": dropped}
