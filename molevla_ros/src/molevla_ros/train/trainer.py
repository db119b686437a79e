"""Training: a full-depth teacher, then routed students (MoLe with/without CogKD, or the random-skip and
early-exit baselines) fine-tuned from it. Seeded, resumable (checkpoint/), with a progress bar; one process or
many under torchrun (train/parallel.py).

Losses (METHOD.md): L = L_diffusion + 0.5 * L_cog + 0.1 * L_balance, where L_cog distils the last-layer
hidden states of an EMA full-depth teacher (0.5 * MSE + 0.5 * reverse KL over the hidden dimension),
weighted per token by the token-of-interest weights M. Added here: aux_weight * MSE of a training-only
regression of the chunk from the cognition feature (see `aux` below), and geometry_weight * MSE of a training-only
regression of the goal geometry from the keypoint token (train/geometry.py). With route_search > 0 the router
trains by route search (route_search.py) instead of through the straight-through gate.
"""
from __future__ import annotations

import copy
import json
import math
import random
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from molevla_ros.model.config import MoLeConfig, small
from molevla_ros.model.goal_familiarity import write_reference
from molevla_ros.model.io import load_model, save_model
from molevla_ros.model.llama import LlamaStack
from molevla_ros.model.mole_vla import MoLeVLA
from molevla_ros.model.text import TOKENIZER_DIR
from molevla_ros.model.wordings import reword
from molevla_ros.paths import resolve_model
from molevla_ros.train.cogkd import cogkd_loss
from molevla_ros.train.config import TrainConfig
from molevla_ros.train.episodes import Samples, load_samples
from molevla_ros.train.parallel import Parallel
from molevla_ros.train.geometry import GeometryHead, geometry_loss, keypoint_token, normalise
from molevla_ros.train.route_search import route_loss, searched_forward
from molevla_ros.train.validate import open_loop_metrics

STAGES = {"teacher": "full", "mole": "mole", "mole_nokd": "mole", "random": "random", "first_k": "first_k"}


def set_statistics(model: MoLeVLA, data: Samples) -> None:
    rows = data.chunks.reshape(-1, data.chunks.shape[-1])
    low, high = np.quantile(rows, 0.01, axis=0), np.quantile(rows, 0.99, axis=0)
    low[6], high[6] = 0.0, 1.0  # gripper: closed 0 .. open 1
    flat = high - low < 1e-6  # dimensions the data never uses (e.g. rotations): keep a unit range
    low[flat], high[flat] = low[flat] - 1, high[flat] + 1
    model.action_low.copy_(torch.as_tensor(low, dtype=torch.float32))
    model.action_high.copy_(torch.as_tensor(high, dtype=torch.float32))
    model.proprio.set_statistics(torch.as_tensor(data.proprio))


def augment_images(images: torch.Tensor, gen: torch.Generator, shift: int) -> torch.Tensor:
    """Random translation by up to `shift` pixels (edge padding), the same for the whole batch."""
    if shift <= 0:
        return images
    dx, dy = (int(v) for v in torch.randint(-shift, shift + 1, (2,), generator=gen))
    x = images.permute(0, 3, 1, 2).float()
    x = F.pad(x, (shift, shift, shift, shift), mode="replicate")
    s = images.shape[1]
    x = x[:, :, shift + dy: shift + dy + s, shift + dx: shift + dx + s]
    return x.permute(0, 2, 3, 1).round().to(torch.uint8)


def _jitter_joints(proprio: torch.Tensor, gen: torch.Generator, std: float) -> torch.Tensor:
    """Gaussian noise of `std` rad on the 7 arm joint angles (the fingers stay exact); `std` 0 = unchanged."""
    if std <= 0:
        return proprio
    out = proprio.clone()
    out[:, :7] += std * torch.randn(len(out), 7, generator=gen)
    return out


def samples_for(tc: TrainConfig, model: MoLeVLA, folders: str) -> Samples:
    """The training samples of `folders` in the model's input size, horizon and action period."""
    return load_samples(folders, model.cfg.vision, horizon=model.cfg.action_head.horizon,
                        action_dt=model.cfg.action_dt, keys=(tc.image_key, tc.state_key, tc.action_key))


class GoalInputs:
    """The text inputs of the samples' goals, encoded once: each distinct recorded goal as it is ("canonical"), or
    `per_goal` random rewordings of it ("varied", model/wordings.py), one of which a sample draws at every use. Training
    then runs the text encoder (MiniLM: about 3 ms a sentence here) once per wording instead of at every step."""

    def __init__(self, model: MoLeVLA, instructions: list[str], wording: str, seed: int = 0,
                 per_goal: int = 256, max_texts: int = 8192) -> None:
        distinct = sorted(set(instructions))
        index = {g: i for i, g in enumerate(distinct)}
        self.goal = torch.tensor([index[t] for t in instructions])
        self.n = max(1, min(per_goal, max_texts // len(distinct))) if wording == "varied" else 1
        rng = np.random.default_rng(seed)
        texts = [reword(g, rng) if wording == "varied" else g for g in distinct for _ in range(self.n)]
        parts = [model.tokenize(texts[i:i + 256]) for i in range(0, len(texts), 256)]
        self.inputs, self.valid = torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])

    def sample(self, idx: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(text inputs, validity) for samples idx, a random wording of each sample's goal."""
        rows = self.goal[idx] * self.n + torch.randint(0, self.n, (len(idx),), generator=gen)
        return self.inputs[rows], self.valid[rows]


def held_out_at_end(history: list[dict]) -> dict[str, float]:
    """The held-out metrics of a run's last history entry, without their "val_" prefix (saved with the model)."""
    return {k[4:]: v for k, v in history[-1].items() if k.startswith("val_")}


def lr_factor(step: int, total: int, warmup: int = 100) -> float:
    """Learning-rate multiplier: linear warm-up, then cosine from 1 to 0.1."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))


def mixed_keep(spec: str | None, n_layers: int) -> Callable[[torch.Generator], int] | None:
    """'LO,HI' -> a function drawing the layers kept, k uniform in LO..HI; None -> None."""
    if not spec:
        return None
    lo, hi = (int(v) for v in spec.split(","))
    if not 1 <= lo <= hi <= n_layers:
        raise ValueError(f"mixed_keep {spec!r}: need 1 <= LO <= HI <= {n_layers} (the decoder's layers)")
    return lambda gen: int(torch.randint(lo, hi + 1, (1,), generator=gen))


def ema_update(teacher: LlamaStack, student: LlamaStack, decay: float) -> None:
    with torch.no_grad():
        for pt, ps in zip(teacher.layers.parameters(), student.layers.parameters()):
            pt.lerp_(ps, 1 - decay)
        teacher.norm.weight.copy_(student.norm.weight)  # embeddings and final norm are not averaged


def geometry_head(tc: TrainConfig, model: MoLeVLA, data: Samples) -> nn.Module:
    """The training-only goal-geometry read-out (an empty module when tc.geometry_weight is 0 or the model has a
    goal locator, whose own points are the prediction)."""
    if tc.geometry_weight <= 0:
        return nn.Identity()
    if data.geometry is None:
        raise ValueError("--geometry-weight needs episodes recorded with the simulator's ground truth "
                         "(sim/privileged_state; `molevla collect` records it)")
    if model.locator is not None:
        return nn.Identity()
    if not model.cfg.vision.keypoints:
        raise ValueError("--geometry-weight reads the keypoint token: the model's vision needs keypoints > 0")
    return GeometryHead(model.cfg.llm.hidden)


class TrainStep(nn.Module):
    """One micro-batch's losses. Every trained parameter (the model, the training-only heads) and the CogKD teacher
    sit under this module, and all of their use happens in its forward: the unit FSDP shards (train/parallel.py)."""

    def __init__(self, model: MoLeVLA, aux: nn.Module, geometry: nn.Module, teacher: LlamaStack | None,
                 tc: TrainConfig, mode: str) -> None:
        super().__init__()
        self.model, self.aux, self.geometry, self.teacher, self.tc, self.mode = model, aux, geometry, teacher, tc, mode

    def forward(self, images: torch.Tensor, ids: torch.Tensor, valid: torch.Tensor, proprio: torch.Tensor,
                actions: torch.Tensor, points: torch.Tensor | None, gen: torch.Generator, keep: int | None,
                hide_proprio: torch.Tensor | None, hide_patches: torch.Tensor | None) -> dict[str, torch.Tensor]:
        tc, model, mode, teacher = self.tc, self.model, self.mode, self.teacher
        h_t = None
        if mode == "mole" and tc.route_search > 0:
            fwd, h_t = searched_forward(model, images, ids, valid, proprio, actions, tc.route_search, gen, self.aux,
                                        tc.aux_weight, teacher, tc.cog_weight, keep)
        else:
            fwd = model(images, ids, valid, proprio, mode=mode, soft=mode == "mole", generator=gen, keep=keep,
                        hide_proprio=hide_proprio, hide_patches=hide_patches)
        losses = {"diffusion": model.head.loss(actions, fwd.cognition)}
        if tc.aux_weight > 0:
            losses["aux"] = tc.aux_weight * F.mse_loss(self.aux(fwd.cognition), actions.flatten(1))
        if points is not None and fwd.points is not None:  # the goal locator's cube and goal
            losses["geometry"] = tc.geometry_weight * geometry_loss(fwd.points, points[:, :2])
        elif points is not None:
            token = keypoint_token(fwd.embeddings, model.cfg.vision.n_tokens)
            losses["geometry"] = tc.geometry_weight * geometry_loss(self.geometry(token), points)
        if fwd.route is not None and model.cfg.router.balance_weight > 0:
            losses["balance"] = model.cfg.router.balance_weight * fwd.route.balance_loss()
        if fwd.route is not None and tc.route_search > 0:
            losses["route"] = route_loss(fwd.route)
        if teacher is not None:
            if h_t is None:
                with torch.no_grad():
                    h_t = teacher(fwd.embeddings.detach(), fwd.key_valid)
            losses["cogkd"] = tc.cog_weight * cogkd_loss(fwd.hidden, h_t, fwd.key_valid)
        return losses


def micro_seed(seed: int, step: int, micro: int) -> int:
    """The seed of micro-batch `micro` of `step`: the same whichever process runs it."""
    return (seed * 1_000_003 + step) * 1009 + micro


REINIT_PARTS = {"decoder": ("llm", "cognition_token"), "head": ("head",), "router": ("router",),
                "proprio": ("proprio_in",)}


def reinitialise(model: MoLeVLA, parts: str) -> None:
    """Replace the named parts (REINIT_PARTS, comma-separated) of a loaded model by freshly initialised ones."""
    names = [p for p in parts.split(",") if p]
    if unknown := set(names) - set(REINIT_PARTS):
        raise ValueError(f"--reinit: unknown part(s) {sorted(unknown)}; known: {', '.join(REINIT_PARTS)}")
    if names:
        fresh = MoLeVLA(model.cfg)
        for attr in (a for n in names for a in REINIT_PARTS[n]):
            setattr(model, attr, getattr(fresh, attr))


def _check_parallel(tc: TrainConfig, par: Parallel) -> int:
    """Samples per micro-batch; refuses what cannot run as asked."""
    micro_batches = par.world * tc.accumulate
    if tc.batch % micro_batches:
        raise ValueError(f"--batch {tc.batch} does not split into {par.world} processes x --accumulate "
                         f"{tc.accumulate} micro-batches")
    if par.world > 1 and (tc.stage == "random" or tc.route_search > 0):
        # FSDP reduce-scatters the gradients a process has: routes drawn per sample leave layers without one on
        # some processes, and the collectives would not match.
        raise ValueError(f"stage {tc.stage}{' with --route-search' if tc.route_search else ''} trains in one "
                         "process only (its per-sample routes skip layers differently on each process)")
    return tc.batch // micro_batches


def train(tc: TrainConfig, model_cfg: MoLeConfig | None = None, data: Samples | None = None,
          val: Samples | None = None) -> list[dict]:
    """Train one stage; data / val default to the episodes in tc.data / tc.val. Returns the loss history. Under
    torchrun, every process runs this (train/parallel.py); the main one writes the model."""
    if tc.stage not in STAGES:
        raise ValueError(f"stage must be one of {list(STAGES)}")
    par = Parallel.start()
    try:
        return _train(tc, par, model_cfg, data, val)
    finally:
        par.finish()  # after _train's modules and optimiser are gone (train/parallel.py: Parallel.finish)


def _train(tc: TrainConfig, par: Parallel, model_cfg: MoLeConfig | None, data: Samples | None,
           val: Samples | None) -> list[dict]:
    micro = _check_parallel(tc, par)
    random.seed(tc.seed)
    np.random.seed(tc.seed)
    torch.manual_seed(tc.seed)
    if tc.threads:
        torch.set_num_threads(tc.threads)
    out = Path(tc.out)
    out.mkdir(parents=True, exist_ok=True)
    model = load_model(resolve_model(tc.init)) if tc.init else MoLeVLA(model_cfg or small())
    reinitialise(model, tc.reinit)
    if tc.keep_ratio is not None:
        model.cfg.router.keep_ratio = tc.keep_ratio
    if tc.depth_prior is not None:
        model.router.set_depth_prior(tc.depth_prior)
    if tc.gumbel_scale is not None:
        model.cfg.router.gumbel_scale = tc.gumbel_scale
    if tc.balance_weight is not None:
        model.cfg.router.balance_weight = tc.balance_weight
    if tc.freeze_vision:
        model.vision.requires_grad_(False)
    data = data or samples_for(tc, model, tc.data)
    if val is None and tc.val:
        val = samples_for(tc, model, tc.val)
    if not tc.init:
        set_statistics(model, data)
    model.train()
    mode = STAGES[tc.stage]
    distil = tc.stage == "mole"
    teacher = copy.deepcopy(model.llm).eval().requires_grad_(False) if distil else None
    # Training-only head: regresses the (normalised) chunk from the cognition feature. Its direct, low-variance
    # gradient makes the backbone put the goal into the cognition feature much sooner than the diffusion
    # loss alone (which, on these data, learns "go to some cube" long before "go to the blue cube").
    h, a = model.cfg.llm.hidden, model.cfg.action_head
    aux = nn.Sequential(nn.Linear(h, h), nn.GELU(), nn.Linear(h, a.horizon * a.action_dim))
    geometry = geometry_head(tc, model, data)
    text = GoalInputs(model, data.instructions, tc.wording, tc.seed)  # (the text encoder runs here, unsharded)
    images_all = torch.from_numpy(data.images)
    proprio_all = torch.from_numpy(data.proprio)
    actions_all = model.normalize_actions(torch.from_numpy(data.chunks)).detach()
    points_all = normalise(torch.from_numpy(data.geometry)) if tc.geometry_weight > 0 else None
    # The model the main process validates and saves: the trained one, or with several processes an unsharded copy
    # that receives the gathered weights.
    plain = model if par.world == 1 else (copy.deepcopy(model) if par.main else None)
    step_module = TrainStep(model, aux, geometry, teacher, tc, mode).to(par.device)
    layers = [*model.llm.layers, *(teacher.layers if teacher is not None else [])]
    par.shard(step_module, layers, tc.activation_checkpointing)
    router = {id(p) for p in model.router.parameters()}  # (after sharding: the sharded parameters)
    trained = [p for p in step_module.parameters() if p.requires_grad]
    opt = torch.optim.AdamW([{"params": [p for p in trained if id(p) not in router]},
                             {"params": [p for p in trained if id(p) in router], "lr": tc.router_lr or tc.lr}],
                            lr=tc.lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, tc.steps))
    gen = torch.Generator().manual_seed(tc.seed)
    history: list[dict] = []
    start = 0
    ckpt = out / "checkpoint"
    if (ckpt / "trainer.pt").exists():  # resume
        extra = par.load(ckpt, step_module, opt)
        sched.load_state_dict(extra["sched"])
        gen.set_state(extra["gen"])
        start, history = extra["step"], extra["history"]
    keep_draw = mixed_keep(tc.mixed_keep, model.cfg.llm.layers)
    autocast = torch.autocast(par.device.type, torch.bfloat16, enabled=tc.precision == "bf16")
    bar = tqdm(range(start, tc.steps), initial=start, total=tc.steps, desc=f"train {tc.stage}", unit="step",
               disable=not par.main)
    running: dict[str, float] = {}
    for step in bar:
        idx = torch.randint(0, len(data), (tc.batch,), generator=gen)  # the global batch, the same in every process
        keep = keep_draw(gen) if keep_draw is not None else None  # None: the model's own keep ratio
        opt.zero_grad(set_to_none=True)
        summed: dict[str, torch.Tensor] = {}
        for n, j in enumerate(par.micro_batches(tc.accumulate)):
            sub = idx[j * micro:(j + 1) * micro]
            mgen = torch.Generator().manual_seed(micro_seed(tc.seed, step, j))
            torch.manual_seed(micro_seed(tc.seed, step, j))  # the diffusion noise and timesteps (head.loss)
            inputs = (augment_images(images_all[sub], mgen, tc.shift), *text.sample(sub, mgen),
                      _jitter_joints(proprio_all[sub], mgen, tc.proprio_noise), actions_all[sub],
                      points_all[sub] if points_all is not None else None)
            hide_proprio = torch.rand(micro, generator=mgen) < tc.proprio_dropout if tc.proprio_dropout > 0 else None
            hide_patches = torch.rand(micro, generator=mgen) < tc.patch_dropout if tc.patch_dropout > 0 else None
            inputs, masks = ([x.to(par.device) if x is not None else None for x in v]
                             for v in (inputs, (hide_proprio, hide_patches)))
            par.sync_gradients(step_module, n == tc.accumulate - 1)
            with autocast:
                losses = step_module(*inputs, mgen if par.device.type == "cpu" else None, keep, *masks)
            (sum(losses.values()) / tc.accumulate).backward()
            for k, v in losses.items():
                summed[k] = summed.get(k, 0.0) + v.detach() / tc.accumulate
        torch.nn.utils.clip_grad_norm_([p for p in trained if p.grad is not None], 1.0)
        opt.step()
        sched.step()
        if teacher is not None:
            ema_update(teacher, model.llm, tc.ema)
        losses = par.mean(summed)
        for k, v in losses.items():
            running[k] = 0.98 * running.get(k, v) + 0.02 * v
        if step % 50 == 0 or step == tc.steps - 1:
            kept = {"layers_kept": keep} if keep is not None else {}
            history.append({"step": step, **kept, **losses})
            bar.set_postfix({k: f"{v:.4f}" for k, v in running.items()})
        if val is not None and ((step + 1) % tc.val_every == 0 or step == tc.steps - 1):
            state = par.full_state(step_module, "model.")
            if par.main:
                if plain is not model:
                    plain.load_state_dict(state)
                metrics = open_loop_metrics(plain, val, mode)
                history.append({"step": step, **{f"val_{k}": v for k, v in metrics.items()}})
                bar.write(f"step {step + 1}: held-out " + ", ".join(f"{k} {v:.3f}" for k, v in metrics.items()))
            par.barrier()
        stopping = tc.stop_at > 0 and step + 1 == tc.stop_at < tc.steps
        if ((step + 1) % tc.save_every == 0 and step + 1 < tc.steps) or stopping:
            par.save(ckpt, step_module, opt, {"sched": sched.state_dict(), "step": step + 1, "history": history,
                                              "gen": gen.get_state()})
        if stopping:
            return history
    state = par.full_state(step_module, "model.")
    if par.main:
        if plain is not model:
            plain.load_state_dict(state)
        save_trained(plain, tc, mode, data, history, out, val is not None)
        shutil.rmtree(ckpt, ignore_errors=True)
    return history


def save_trained(model: MoLeVLA, tc: TrainConfig, mode: str, data: Samples, history: list[dict], out: Path,
                 validated: bool) -> None:
    """The trained model's folder: weights and config, tokenizer, the goal reference, the loss history."""
    model.eval()
    if mode == "mole":
        model.cfg.router_trained = True  # e.g. an imported CogACT after MoLe fine-tuning: its backends now route
    final_val = held_out_at_end(history) if validated else None
    save_model(model, out, {"stage": tc.stage, "route_mode": mode, "train": asdict(tc), "samples": len(data),
                            "episodes": int(len(set(data.episode.tolist()))), "held_out": final_val})
    if tc.init and (resolve_model(tc.init) / TOKENIZER_DIR).is_dir():  # a model with its own tokenizer keeps it
        shutil.copytree(resolve_model(tc.init) / TOKENIZER_DIR, out / TOKENIZER_DIR, dirs_exist_ok=True)
    if model.cfg.llm.tokenizer == "minilm":  # what the policy node's min_goal_similarity compares goals with
        write_reference(out, data.instructions, tc.wording, seed=tc.seed)
    (out / "history.json").write_text(json.dumps(history))
