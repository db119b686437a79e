"""Goal-locator pre-training (stage "locator", ours): teach the goal locator (model/goal_locator.py) where the named
cube and its goal are, from the simulator's ground truth (train/geometry.py), before the policy learns to read it.

Only the locator trains; the instruction tokens it reads come from the model's own (frozen) text input. Starting
from a trained model (`--init`) adds a locator to it if it has none and grows it to `--locator-blocks`; the saved
model is complete, and a teacher fine-tuned from it (`molevla train --stage teacher --init <this run>
--geometry-weight W`) keeps the locator anchored with the same loss while the decoder learns to use its token.
"""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from molevla_ros.model.config import MoLeConfig, small
from molevla_ros.model.goal_locator import GoalLocator
from molevla_ros.model.io import load_model, save_model
from molevla_ros.paths import resolve_model
from molevla_ros.model.mole_vla import MoLeVLA, instruction_summary, preprocess_images
from molevla_ros.train.config import TrainConfig
from molevla_ros.train.episodes import Samples, load_samples
from molevla_ros.train.geometry import POINTS, denormalise, geometry_loss, normalise, with_push_start
from molevla_ros.train.trainer import GoalInputs, augment_images, held_out_at_end, lr_factor, set_statistics


def with_locator(model: MoLeVLA, blocks: int = 0, roles: bool = False) -> MoLeVLA:
    """The model with a (fresh) goal locator if it has none, grown to at least `blocks` context blocks and given
    per-point instruction summaries if `roles` (both leave its output unchanged); patch-encoder models only."""
    vision = model.cfg.vision
    if model.locator is None:
        if vision.kind != "patch_cnn":
            raise ValueError("the goal locator is for the small patch-encoder model")
        vision.locator = True
        model.locator = GoalLocator(vision.image_size, model.cfg.llm.hidden)
    model.locator.grow(blocks)
    vision.locator_blocks = len(model.locator.blocks)
    if roles:
        model.locator.add_roles()
    vision.locator_roles = model.locator.role_queries is not None
    return model


def locate(model: MoLeVLA, images: torch.Tensor, text: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Normalised table points [B, 2, 2] for uint8 frames [B, H, W, 3] and tokenizer output (inputs, validity)."""
    ids, valid = text
    with torch.no_grad():
        tokens = model.text_tokens(ids)
    pixels = preprocess_images(images, model.cfg.vision)
    return model.locator.points(pixels, instruction_summary(tokens, valid), tokens, valid)


@torch.no_grad()
def locate_all(model: MoLeVLA, data: Samples, batch: int = 256) -> np.ndarray:
    """Table-plane cube and goal xy in metres [N, 2, 2] that the locator finds in every sample's frame."""
    pred = torch.cat([locate(model, torch.from_numpy(data.images[i:i + batch]),
                             model.tokenize(data.instructions[i:i + batch])) for i in range(0, len(data), batch)])
    return denormalise(pred.numpy())


def held_out_cm(model: MoLeVLA, data: Samples) -> dict[str, float]:
    """Mean distance (cm) of each of POINTS (the push start derived from the located cube and goal), over the
    samples where it is defined."""
    pred = with_push_start(locate_all(model, data))
    d = np.linalg.norm(pred - data.geometry, axis=-1) * 100
    return {name: float(np.nanmean(d[:, j])) for j, name in enumerate(POINTS)}


def pretrain_locator(tc: TrainConfig, model_cfg: MoLeConfig | None = None, data: Samples | None = None,
                     val: Samples | None = None) -> list[dict]:
    """Train the goal locator and save the model to tc.out; returns the history (loss, held-out cm)."""
    torch.manual_seed(tc.seed)
    if tc.threads:
        torch.set_num_threads(tc.threads)
    start = load_model(resolve_model(tc.init)) if tc.init else MoLeVLA(model_cfg or small())
    model = with_locator(start, tc.locator_blocks, tc.locator_roles)
    data = data or load_samples(tc.data, model.cfg.vision)
    if val is None and tc.val:
        val = load_samples(tc.val, model.cfg.vision, only_successful=False)
    if data.geometry is None or (val is not None and val.geometry is None):
        raise ValueError("the locator trains on episodes recorded with the simulator's ground truth "
                         "(sim/privileged_state; `molevla collect` records it)")
    if not tc.init:
        set_statistics(model, data)
    model.eval()
    model.locator.train()
    opt = torch.optim.AdamW(model.locator.parameters(), lr=tc.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, tc.steps))
    target = normalise(torch.from_numpy(data.geometry[:, :2]))
    images = torch.from_numpy(data.images)
    gen = torch.Generator().manual_seed(tc.seed)
    text = GoalInputs(model, data.instructions, tc.wording, tc.seed)
    history: list[dict] = []
    bar = tqdm(range(tc.steps), desc="train locator", unit="step")
    for step in bar:
        idx = torch.randint(0, len(data), (tc.batch,), generator=gen)
        seen = augment_images(images[idx], gen, tc.shift)
        loss = geometry_loss(locate(model, seen, text.sample(idx, gen)), target[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % 50 == 0 or step == tc.steps - 1:
            history.append({"step": step, "geometry": loss.item()})
            bar.set_postfix(geometry=f"{loss.item():.4f}")
        if val is not None and ((step + 1) % tc.val_every == 0 or step == tc.steps - 1):
            model.locator.eval()
            cm = held_out_cm(model, val)
            model.locator.train()
            history.append({"step": step, **{f"val_{k}_cm": v for k, v in cm.items()}})
            bar.write(f"step {step + 1}: held-out cm " + ", ".join(f"{k} {v:.2f}" for k, v in cm.items()))
    model.eval()
    save_model(model, Path(tc.out), {"stage": "locator", "train": asdict(tc), "samples": len(data),
                                     "held_out": held_out_at_end(history) if val is not None else None})
    return history
