"""Import a released CogACT checkpoint into a molevla model folder that the policy node runs.

Input, as CogACT publishes it (github.com/microsoft/CogACT, `vla/load.py`): a run folder with
`config.json`, `dataset_statistics.json` and `checkpoints/<name>.pt` (or the .pt itself inside such a
folder; of a fine-tuning run's several checkpoints the latest), where `torch.load(pt)["model"]` holds one state
dict per part (a whole model's flat state dict is read too). The Llama-2 tokenizer is not in
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
from molevla_ros.model.config import (ActionHeadConfig, ActionSpec, DeployHints, LLMConfig, MoLeConfig,
                                      RouterConfig, VisionConfig)
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
# CogACT's own deployment (sim_cogact/cogact_policy.py, lines 42-57): one prediction per executed action, blended by
# the adaptive ensemble (alpha 0.1) over the last 7 predictions on WidowX / Bridge, 2 on the Google robot / fractal.
ENSEMBLE_WINDOW = {"bridge_orig": 7, "bridge_dataset": 7, "fractal20220817_data": 2}
REAL_TOWERS = {"vit_large_patch14_reg4_dinov2": (1024, 24, 16, 4.0), "vit_so400m_patch14_siglip_224": (1152, 27, 16,
                                                                                                        3.7362)}
HEAD_DIMS = {"dino": 64, "siglip": 72, "llm": 128}  # of the released architectures
# DiT widths -> attention heads of CogACT's released action models (action_model.py: DiT-S 384 / 4, DiT-B 768 / 12,
# DiT-L 1024 / 16). The head size is not constant (96 for DiT-S, 64 for the others): never derive it from width.
DIT_HEADS = {384: 4, 768: 12, 1024: 16}


def find_checkpoint(source: Path) -> tuple[Path, Path]:
    """(run folder, .pt) from either of them, as CogACT's load_vla expects the layout. A run folder of a training run
    holds one checkpoint per save (CogACT's training/strategies/fsdp.py, save_checkpoint:
    `checkpoints/step-{step:06d}-epoch-{epoch:02d}-loss={loss:.4f}.pt`): `latest-checkpoint.pt` if there is one (the
    name vla/load.py's load() reads), else the highest step; pass the .pt itself for another."""
    source = Path(source)
    if source.is_file():
        return source.parents[1] if source.parent.name == "checkpoints" else source.parent, source
    pts = sorted((source / "checkpoints").glob("*.pt"))
    if len(pts) > 1 and (latest := source / "checkpoints" / "latest-checkpoint.pt") in pts:
        return source, latest
    steps = {p: re.match(r"step-(\d+)", p.name) for p in pts}
    if len(pts) > 1 and all(steps.values()):
        return source, max(pts, key=lambda p: int(steps[p].group(1)))
    if len(pts) != 1:
        names = ", ".join(p.name for p in pts[:4]) + (" ..." if len(pts) > 4 else "")
        raise FileNotFoundError(f"expected one checkpoints/*.pt in {source}, found {len(pts)} ({names}): pass the "
                                ".pt to import")
    return source, pts[0]


def flatten(model_dict: dict) -> dict[str, torch.Tensor]:
    """{"projector": {"projector.0.weight": t}} -> {"projector.projector.0.weight": t}."""
    return {f"{group}.{k}": v for group, sub in model_dict.items() for k, v in sub.items()}


def as_parts(state: dict) -> dict[str, dict[str, torch.Tensor]]:
    """A checkpoint's weights as CogACT saves them, one state dict per part ({"model": {part: {...}}}), also from a
    whole model's flat state dict (`torch.save(vla.state_dict())`), with the prefixes that wrappers add
    ("module." of DistributedDataParallel, "_orig_mod." of torch.compile, "vlm." as CogACT's trainer strips it)."""
    state = state.get("model", state)
    if all(isinstance(v, dict) for v in state.values()):
        return {k: dict(v) for k, v in state.items()}
    parts: dict[str, dict[str, torch.Tensor]] = {}
    for key, t in state.items():
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"checkpoint entry {key!r} is a {type(t).__name__}, not a tensor or a part's state dict")
        key = re.sub(r"^(?:module\.|_orig_mod\.|vlm\.)+", "", key)
        group, _, rest = key.partition(".")
        parts.setdefault(group, {})[rest] = t
    return parts


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
                           max_text: int = 64, dit_heads: int | None = None) -> MoLeConfig:
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
    dit_heads = dit_heads or DIT_HEADS.get(width)
    if not dit_heads or width % dit_heads:
        raise ValueError(f"DiT width {width} is not a released CogACT size ({sorted(DIT_HEADS)}): pass dit_heads "
                         "(the attention heads are not visible in shapes)")
    head = ActionHeadConfig(width=width, depth=_count(flat, "action_model.net.blocks."), heads=dit_heads,
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
    dit_heads: int | None = option(None, "DiT action-model attention heads (default: 4, 12, 16 for the released "
                                   "widths 384, 768, 1024)")
    max_text: int = option(64, "prompt tokens the model accepts (after BOS); longer instructions lose their last "
                           "words")
    dtype: str = option("source", "weights in the written folder: as in the checkpoint, or cast (the action head "
                        "stays float32)", choices=("source", "fp32", "bf16", "fp16"))
    vision_weights: str | None = option(None, "where the DINOv2 + SigLIP towers come from when the checkpoint has no "
                                        "vision_backbone (saved with a frozen backbone): a .pt / .safetensors state "
                                        "dict of {dino,siglip}_featurizer.* (e.g. another CogACT release), or 'timm' "
                                        "for timm's pretrained towers (downloads; as CogACT does)")


OUT_DTYPES = {"source": None, "fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def vision_tower_weights(source: str | None, vision: VisionConfig | None = None) -> dict[str, torch.Tensor]:
    """{vision_backbone.{dino,siglip}_featurizer.*: tensor} from a state-dict file or timm's pretrained towers."""
    if source is None:
        raise ValueError("the checkpoint has no vision_backbone weights (saved with a frozen backbone): pass "
                         "vision_weights (a file with the towers, or 'timm' for timm's pretrained ones)")
    if source == "timm":
        import timm

        v = vision or VisionConfig()
        towers = {"dino_featurizer": v.dino_model, "siglip_featurizer": v.siglip_model}
        state = {f"{name}.{k}": t for name, model in towers.items() for k, t in
                 timm.create_model(model, pretrained=True, num_classes=0, img_size=224).state_dict().items()}
    elif str(source).endswith(".safetensors"):
        from molevla_ros.model import safetensors_io

        state = dict(safetensors_io.read(Path(source)))
    else:
        state = flatten(as_parts(torch.load(source, map_location="cpu", weights_only=True, mmap=True)))
    out = {}
    for k, t in state.items():
        k = k.removeprefix("vision_backbone.")
        if k.startswith(("dino_featurizer.", "siglip_featurizer.")):
            out[f"vision_backbone.{k}"] = t
    if not out:
        raise ValueError(f"vision_weights {source}: no dino_featurizer.* / siglip_featurizer.* tensors")
    return out


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
    parts = as_parts(torch.load(pt, map_location="cpu", weights_only=True, mmap=True))
    ema = parts.pop("ema_diffusion", None)
    if use_ema:  # the EMA weights take the action model's place
        if ema is None:
            raise ValueError("use_ema: the checkpoint has no ema_diffusion weights")
        parts["action_model"] = ema
    flat = flatten(parts)
    if not any(k.startswith("vision_backbone.") for k in flat):
        flat.update(vision_tower_weights(o.vision_weights))
    try:
        cfg = config_from_checkpoint(flat, llm_heads, vision_heads, max_text, o.dit_heads)
    except KeyError as e:  # a layout this importer does not know (another projector, a renamed part)
        raise ValueError(f"{pt}: no weight {e} (not a CogACT checkpoint layout this importer reads)") from None
    key, low, high = action_range(json.loads(stats_file.read_text()), unnorm_key)
    dt = action_dt if action_dt is not None else KNOWN_ACTION_DT.get(key)
    if dt is None:
        raise ValueError(f"the control period of dataset {key!r} is not known here: pass action_dt (seconds)")
    cfg = replace(cfg, action_dt=dt, deploy=DeployHints(control_hz=round(1 / dt, 6), blend="adaptive",
                                                        ensemble_window=ENSEMBLE_WINDOW.get(key, 0)))
    tok = CogACTTokenizer(Path(tokenizer), cfg.llm)  # refuses a folder that is not a Llama tokenizer
    if len(tok.tok) > cfg.llm.vocab:  # its ids past the embedding would fail at the first step
        raise ValueError(f"tokenizer {tokenizer} has {len(tok.tok)} tokens, the checkpoint's embedding "
                         f"{cfg.llm.vocab}: not this checkpoint's tokenizer")
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
        mapped[new] = v
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
    if low.shape != model.action_low.shape:  # copy_ would broadcast a 1-entry range to every dimension
        raise ValueError(f"dataset_statistics.json [{key}]: {len(low)} action dimensions, the action head has "
                         f"{len(model.action_low)}")
    model.action_low.copy_(low)
    model.action_high.copy_(high)
    save_model(model, out, {"imported_from": str(pt), "unnorm_key": key, "use_ema": use_ema}, OUT_DTYPES[o.dtype])
    shutil.copytree(tokenizer, out / TOKENIZER_DIR, dirs_exist_ok=True)
    fresh = [k for k in target if k not in mapped]
    return {"mapped": sorted(mapped), "initialised": fresh, "dropped": dropped, "config": cfg, "unnorm_key": key}
