"""Import a released CogACT checkpoint into a molevla model folder that the policy node runs.

Input, as CogACT publishes it (github.com/microsoft/CogACT, `vla/load.py`): a run folder with
`config.json`, `dataset_statistics.json` and `checkpoints/<name>.pt` (or the .pt itself inside such a
folder), where `torch.load(pt)["model"]` holds one state dict per part. The Llama-2 tokenizer is not in
the release (CogACT fetches meta-llama/Llama-2-7b-hf): pass a local transformers tokenizer folder.

Mapping (by name; every size is read from the tensors, so CogACT-Small/Base/Large all import):
  vision_backbone.{dino,siglip}_featurizer.*  -> vision.{dino,siglip}_featurizer.*   (timm ViTs, frozen)
  projector.projector.{0,2,4}.*               -> projector.{0,2,4}.*                 (fused GELU MLP)
  llm_backbone.llm.model.embed_tokens / layers.N / norm -> llm.*                       (Llama-2; lm_head dropped)
  action_model.net.{x,t,z}_embedder / positional_embedding / blocks.N / final_layer.linear -> head.*  (DiT)
  ema_diffusion.net.*                         -> head.* instead of action_model, with use_ema
  dataset_statistics[unnorm_key].action q01 / q99 / mask -> action range (mask False: left unscaled)
New in MoLe-VLA and freshly initialised (trained by MoLe fine-tuning): router.*, proprio_in.*,
cognition_token. Until then the folder says router_trained=false and its backends run full depth.
"""
from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from molevla_ros.config_cli import REQUIRED, option
from molevla_ros.model.config import (ActionHeadConfig, ActionSpec, LLMConfig, MoLeConfig, RouterConfig,
                                      VisionConfig)
from molevla_ros.model.cogact_stats import action_range
from molevla_ros.model.io import save_model
from molevla_ros.model.mole_vla import MoLeVLA
from molevla_ros.model.text import TOKENIZER_DIR, CogACTTokenizer

RULES = [
    (r"^vision_backbone\.((?:dino|siglip)_featurizer\..*)$", r"vision.\1"),
    (r"^projector\.projector\.(\d+\..*)$", r"projector.\1"),
    (r"^llm_backbone\.llm\.model\.((?:embed_tokens|norm|layers)\..*)$", r"llm.\1"),
    (r"^action_model\.net\.((?:x|t|z)_embedder\..*|positional_embedding|blocks\..*|final_layer\.linear\..*)$",
     r"head.\1"),
]
DROPPED = (r"^llm_backbone\.llm\.lm_head\.", r"\.rotary_emb\.inv_freq$", r"^action_model\.net\.history_embedder\.")
# Control periods of Open X-Embodiment datasets CogACT was trained on (their published control rates).
KNOWN_ACTION_DT = {"bridge_orig": 0.2, "bridge_dataset": 0.2, "fractal20220817_data": 1 / 3, "droid": 1 / 15}
REAL_TOWERS = {"vit_large_patch14_reg4_dinov2": (1024, 24, 16, 4.0), "vit_so400m_patch14_siglip_224": (1152, 27, 16,
                                                                                                        3.7362)}
HEAD_DIMS = {"dino": 64, "siglip": 72, "llm": 128, "dit": 64}  # of the released architectures


def find_checkpoint(source: Path) -> tuple[Path, Path]:
    """(run folder, .pt) from either of them, as CogACT's load_vla expects the layout."""
    source = Path(source)
    if source.is_file():
        return source.parents[1] if source.parent.name == "checkpoints" else source.parent, source
    pts = sorted((source / "checkpoints").glob("*.pt"))
    if len(pts) != 1:
        raise FileNotFoundError(f"expected one checkpoints/*.pt in {source}, found {len(pts)}")
    return source, pts[0]


def flatten(model_dict: dict) -> dict[str, torch.Tensor]:
    """{"projector": {"projector.0.weight": t}} -> {"projector.projector.0.weight": t}."""
    return {f"{group}.{k}": v for group, sub in model_dict.items() for k, v in sub.items()}


def map_key(key: str) -> str | None:
    for pattern, target in RULES:
        if re.match(pattern, key):
            return re.sub(pattern, target, key)
    return None


def _count(flat: dict, prefix: str) -> int:
    return len({k[len(prefix):].split(".")[0] for k in flat if k.startswith(prefix)})


def _tower(flat: dict, name: str, model: str, heads: int | None, kind: str) -> dict:
    """timm overrides for a tower whose sizes differ from the released one ({} when they match)."""
    p = f"vision_backbone.{name}_featurizer."
    if p + "patch_embed.proj.weight" not in flat:
        raise ValueError(f"checkpoint has no {p}* weights: not a DINOv2 + SigLIP CogACT checkpoint")
    width = flat[p + "patch_embed.proj.weight"].shape[0]
    depth = _count(flat, p + "blocks.")
    ratio = (flat[p + "blocks.0.mlp.fc1.weight"].shape[0] + 0.5) / width  # timm: int(width * ratio)
    heads = heads or max(1, width // HEAD_DIMS[kind])
    real = REAL_TOWERS[model]
    if (width, depth, heads) == real[:3] and abs(ratio - real[3]) < 1e-3:
        return {}
    return {"embed_dim": width, "depth": depth, "num_heads": heads, "mlp_ratio": ratio}


def config_from_checkpoint(flat: dict, llm_heads: int | None = None, vision_heads: tuple[int, int] | None = None,
                           max_text: int = 64) -> MoLeConfig:
    """Every size read from the tensors; head counts (not visible in shapes) from the released head sizes."""
    base = MoLeConfig()
    dino_kw = _tower(flat, "dino", base.vision.dino_model, vision_heads and vision_heads[0], "dino")
    siglip_kw = _tower(flat, "siglip", base.vision.siglip_model, vision_heads and vision_heads[1], "siglip")
    dino_w = flat["vision_backbone.dino_featurizer.patch_embed.proj.weight"].shape[0]
    siglip_w = flat["vision_backbone.siglip_featurizer.patch_embed.proj.weight"].shape[0]
    vision = VisionConfig(kind="dinov2_siglip", image_size=224, patch_size=14, feature_dim=dino_w + siglip_w,
                          resize="bicubic", dino_kwargs=dino_kw, siglip_kwargs=siglip_kw)
    vocab, hidden = flat["llm_backbone.llm.model.embed_tokens.weight"].shape
    heads = llm_heads or hidden // HEAD_DIMS["llm"]
    if not heads or hidden % heads:
        raise ValueError(f"Llama hidden size {hidden}: pass llm_heads (the attention heads are not visible in shapes)")
    kv = flat["llm_backbone.llm.model.layers.0.self_attn.k_proj.weight"].shape[0] // (hidden // heads)
    llm = LLMConfig(hidden=hidden, layers=_count(flat, "llm_backbone.llm.model.layers."), heads=heads, kv_heads=kv,
                    intermediate=flat["llm_backbone.llm.model.layers.0.mlp.gate_proj.weight"].shape[0], vocab=vocab,
                    tokenizer="cogact", max_text=max_text)
    proj = tuple(flat[f"projector.projector.{i}.weight"].shape[0] for i in (0, 2, 4))
    x_w = flat["action_model.net.x_embedder.linear.weight"]
    width, action_dim = x_w.shape
    head = ActionHeadConfig(width=width, depth=_count(flat, "action_model.net.blocks."),
                            heads=max(1, width // HEAD_DIMS["dit"]),
                            horizon=flat["action_model.net.positional_embedding"].shape[0] - 1, action_dim=action_dim,
                            train_steps=100, infer_steps=10, cfg_scale=1.5, repeats=8, ddim_schedule="stride",
                            clip_denoised=False)
    proj_dim = min(1024, hidden)
    router = RouterConfig(proj_dim=proj_dim, spatial_hidden=min(512, hidden), temporal_heads=8 if proj_dim % 8 == 0
                          else 1, temporal_ff=2 * proj_dim, use_proprio=False)
    return MoLeConfig(vision=vision, llm=llm, router=router, action_head=head, projector_dims=proj,
                      actions=ActionSpec(gripper_threshold_on="normalized"), router_trained=False, state_joints=())


@dataclass
class ImportOptions:
    checkpoint: str = option(REQUIRED, "CogACT run folder (config.json, dataset_statistics.json, checkpoints/*.pt) "
                             "or the .pt inside it", positional=True)
    tokenizer: str = option(REQUIRED, "local Llama-2 tokenizer folder (transformers format, e.g. a copy of "
                            "meta-llama/Llama-2-7b-hf's tokenizer files)")
    out: str = option(REQUIRED, "model folder to write")
    unnorm_key: str | None = option(None, "dataset whose action statistics unnormalise (needed when there are "
                                    "several)")
    action_dt: float | None = option(None, "seconds between actions (default: the dataset's known rate)")
    use_ema: bool = option(False, "use the EMA action-model weights when present")
    llm_heads: int | None = option(None, "Llama attention heads (default: hidden / 128, as Llama-2)")
    vision_heads: tuple[int, ...] | None = option(None, "DINOv2,SigLIP heads (default: width / 64, width / 72, as "
                                                  "released)")
    max_text: int = option(64, "prompt tokens the model accepts (after BOS)")


def import_cogact(o: ImportOptions) -> dict:
    """Write `o.out` (config.json, model.safetensors, stats.json, tokenizer/); return what was mapped."""
    source, tokenizer, out = Path(o.checkpoint), Path(o.tokenizer), Path(o.out)
    unnorm_key, action_dt, use_ema, llm_heads, max_text = o.unnorm_key, o.action_dt, o.use_ema, o.llm_heads, o.max_text
    vision_heads = o.vision_heads
    if vision_heads is not None and len(vision_heads) != 2:
        raise ValueError(f"vision_heads: two numbers (DINOv2, SigLIP), got {vision_heads}")
    run_dir, pt = find_checkpoint(source)
    stats_file = run_dir / "dataset_statistics.json"
    if not stats_file.is_file():
        raise FileNotFoundError(f"no dataset_statistics.json in {run_dir} (the release ships it next to "
                                "checkpoints/)")
    state = torch.load(pt, map_location="cpu", weights_only=True, mmap=True)
    parts = dict(state["model"] if "model" in state else state)
    ema = parts.pop("ema_diffusion", None)
    if use_ema:  # the EMA weights take the action model's place
        if ema is None:
            raise ValueError("use_ema: the checkpoint has no ema_diffusion weights")
        parts["action_model"] = ema
    flat = flatten(parts)
    cfg = config_from_checkpoint(flat, llm_heads, vision_heads, max_text)
    key, low, high = action_range(json.loads(stats_file.read_text()), unnorm_key)
    dt = action_dt if action_dt is not None else KNOWN_ACTION_DT.get(key)
    if dt is None:
        raise ValueError(f"the control period of dataset {key!r} is not known here: pass action_dt (seconds)")
    cfg = replace(cfg, action_dt=dt)
    tok = CogACTTokenizer(Path(tokenizer), cfg.llm)  # refuses a folder that is not a Llama tokenizer
    cfg = replace(cfg, llm=replace(cfg.llm, bos_id=tok.tok.bos_token_id))

    with torch.device("meta"):  # no memory for weights that the checkpoint provides
        model = MoLeVLA(cfg)
    target = model.state_dict()
    mapped, dropped, unknown = {}, [], []
    for k, v in flat.items():
        if any(re.search(p, k) for p in DROPPED):
            dropped.append(k)
            continue
        new = map_key(k)
        if new is None or new not in target:
            unknown.append(k)
            continue
        if new == "head.z_embedder.uncondition":
            v = v.reshape(target[new].shape)
        if v.shape != target[new].shape:
            raise ValueError(f"{k} {tuple(v.shape)} does not fit {new} {tuple(target[new].shape)}")
        mapped[new] = v.to(torch.float32)
    if unknown:
        more = " ..." if len(unknown) > 8 else ""
        raise ValueError(f"checkpoint keys with no place in the model: {unknown[:8]}{more}")
    missing = [k for k in target if k not in mapped and not k.startswith(("router.", "proprio", "cognition_token",
                                                                          "action_"))]
    if missing:
        raise ValueError(f"the checkpoint lacks {len(missing)} weights the model needs: {missing[:8]}")
    model.load_state_dict(mapped, strict=False, assign=True)
    with torch.device("cpu"):
        model.init_mole_parts()
    model.action_low.copy_(low)
    model.action_high.copy_(high)
    save_model(model, out, {"imported_from": str(pt), "unnorm_key": key, "use_ema": use_ema})
    shutil.copytree(tokenizer, out / TOKENIZER_DIR, dirs_exist_ok=True)
    fresh = [k for k in target if k not in mapped]
    return {"mapped": sorted(mapped), "initialised": fresh, "dropped": dropped, "config": cfg, "unnorm_key": key}
