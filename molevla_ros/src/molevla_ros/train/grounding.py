"""Grounding pre-training (stage "grounding", ours, before the teacher).

Trained end to end from scratch, the teacher never learns to read the goal's colour word: at an episode's
first step (arm at rest, only the instruction says which cube) its chunks do not change with the colour.
The same vision modules learn it within a few hundred steps when asked directly. This stage trains the
patch encoder (instruction FiLM + keypoint token), the token embeddings and the proprio features to
regress the expert's unit horizontal travel direction (first 4 steps of the chunk) through a small head
that is thrown away, then saves a complete model (with the data's normalisation statistics) that the
teacher starts from (`molevla train --stage teacher --init <this run>`).
"""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from molevla_ros.model.config import MoLeConfig, small
from molevla_ros.model.io import save_model
from molevla_ros.model.mole_vla import MoLeVLA, instruction_summary, preprocess_images
from molevla_ros.train.episodes import Samples, load_samples, step_in_episode
from molevla_ros.train.trainer import GoalInputs, TrainConfig, augment_images, held_out_at_end, set_statistics
from molevla_ros.train.validate import horizontal_travel, swap_colours


def travel_direction(data: Samples) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit xy travel of each sample's first 4 expert steps [N, 2], and whether it travels >= MIN_TRAVEL [N]."""
    travel, moving = horizontal_travel(data.chunks)
    unit = travel / np.maximum(np.linalg.norm(travel, axis=1, keepdims=True), 1e-9)
    return torch.tensor(unit, dtype=torch.float32), torch.from_numpy(moving)


class DirectionProbe(nn.Module):
    """Keypoint token of the model's patch encoder + instruction summary + proprio -> xy direction (training only)."""

    def __init__(self, model: MoLeVLA) -> None:
        super().__init__()
        self.model = model
        inp = model.cfg.vision.feature_dim + model.cfg.llm.hidden + model.proprio.dim
        self.head = nn.Sequential(nn.Linear(inp, 256), nn.GELU(), nn.Linear(256, 2))

    def forward(self, images: torch.Tensor, text: tuple[torch.Tensor, torch.Tensor], proprio: torch.Tensor
                ) -> torch.Tensor:
        """text: the model's tokenizer output for the goals (ids or features, validity)."""
        m = self.model
        ids, valid = text
        summary = instruction_summary(m.text_tokens(ids), valid)
        tokens = m.vision(preprocess_images(images, m.cfg.vision), summary)
        return self.head(torch.cat([tokens[:, -1], summary, m.proprio(proprio)], -1))

    def parameters_to_train(self) -> list[nn.Parameter]:
        m = self.model
        text = m.llm.embed_tokens if m.text_in is None else m.text_in
        return [*m.vision.parameters(), *text.parameters(), *self.head.parameters()]


@torch.no_grad()
def direction_metrics(probe: DirectionProbe, data: Samples) -> dict[str, float]:
    """Cosine with the expert's direction: all moving samples, episode starts, and starts with colours swapped."""
    target, moving = travel_direction(data)
    start = torch.from_numpy(step_in_episode(data.episode) == 0) & moving
    images, proprio = torch.from_numpy(data.images), torch.from_numpy(data.proprio)
    def cos(texts):
        return (F.normalize(probe(images, probe.model.tokenize(texts), proprio), dim=-1) * target).sum(-1)

    own, swapped = cos(data.instructions), cos([swap_colours(t) for t in data.instructions])
    return {"dir_cos": own[moving].mean().item(), "dir_cos_start": own[start].mean().item(),
            "dir_cos_start_swapped": swapped[start].mean().item()}


def pretrain_grounding(tc: TrainConfig, model_cfg: MoLeConfig | None = None, data: Samples | None = None,
                       val: Samples | None = None) -> list[dict]:
    """Train the grounding stage and save the model to tc.out; returns the history (loss, held-out metrics)."""
    torch.manual_seed(tc.seed)
    if tc.threads:
        torch.set_num_threads(tc.threads)
    model = MoLeVLA(model_cfg or small())
    data = data or load_samples(tc.data, model.cfg.vision)
    if val is None and tc.val:
        val = load_samples(tc.val, model.cfg.vision)
    set_statistics(model, data)
    probe = DirectionProbe(model).train()
    opt = torch.optim.AdamW(probe.parameters_to_train(), lr=tc.lr)
    target, moving = travel_direction(data)
    pool = torch.nonzero(moving)[:, 0]
    images, proprio = torch.from_numpy(data.images), torch.from_numpy(data.proprio)
    gen = torch.Generator().manual_seed(tc.seed)
    text = GoalInputs(model, data.instructions, tc.wording, tc.seed)
    history: list[dict] = []
    bar = tqdm(range(tc.steps), desc="train grounding", unit="step")
    for step in bar:
        idx = pool[torch.randint(0, len(pool), (tc.batch,), generator=gen)]
        pred = probe(augment_images(images[idx], gen, tc.shift), text.sample(idx, gen), proprio[idx])
        loss = F.mse_loss(pred, target[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 50 == 0 or step == tc.steps - 1:
            history.append({"step": step, "direction": loss.item()})
            bar.set_postfix(direction=f"{loss.item():.4f}")
        if val is not None and ((step + 1) % tc.val_every == 0 or step == tc.steps - 1):
            probe.eval()
            metrics = direction_metrics(probe, val)
            probe.train()
            history.append({"step": step, **{f"val_{k}": v for k, v in metrics.items()}})
            bar.write(f"step {step + 1}: held-out " + ", ".join(f"{k} {v:.3f}" for k, v in metrics.items()))
    model.eval()
    save_model(model, Path(tc.out), {"stage": "grounding", "train": asdict(tc), "samples": len(data),
                                     "held_out": held_out_at_end(history) if val is not None else None})
    return history
