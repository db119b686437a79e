"""Open-loop validation on held-out episodes: how close the sampled action chunks come to the expert's,
and whether the policy reads the colour word (the same frames with the colours of the goal swapped should
send the arm elsewhere).

Cheaper than closed-loop evaluation and printed during training, so a run that is not learning shows it
early. All numbers use a fixed DDIM noise seed.
"""
from __future__ import annotations

import re

import numpy as np
import torch

from molevla_ros.backends.routed import Request, RoutedPolicy, TorchGraphs
from molevla_ros.model.mole_vla import MoLeVLA
from molevla_ros.model.language import COLOUR_NAMES as COLOURS
from molevla_ros.model.wordings import reword_held_out
from molevla_ros.train.episodes import Samples, step_in_episode

MIN_TRAVEL = 0.005  # m: expert moves shorter than this have no meaningful direction
_COLOUR_WORD = re.compile(r"\b(" + "|".join(COLOURS) + r")\b")


def swap_colours(text: str) -> str:
    """Every colour word replaced by the next colour (red -> green -> blue -> yellow -> red)."""
    names = list(COLOURS)
    return _COLOUR_WORD.sub(lambda m: names[(names.index(m.group(1)) + 1) % len(names)], text)


@torch.no_grad()
def predict_chunks(model: MoLeVLA, data: Samples, idx: np.ndarray, instructions: list[str], mode: str, batch: int,
             seed: int) -> np.ndarray:
    """Chunks from the serving pipeline the policy node runs (RoutedPolicy on the model's own modules)."""
    was_training = model.training
    policy = RoutedPolicy.from_model(model, TorchGraphs(model))  # puts the model in eval mode
    gen = torch.Generator().manual_seed(seed)
    preds = []
    for s in range(0, len(idx), batch):
        i = idx[s:s + batch]
        noise = torch.randn(len(i), model.cfg.action_head.horizon, model.cfg.action_head.action_dim, generator=gen)
        requests = [Request(instructions[j], data.proprio[j], data.images[j]) for j in i]
        preds.append(policy.step(requests, noise, mode, generator=gen).chunks)
    model.train(was_training)
    return np.concatenate(preds)


def horizontal_travel(chunks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """xy travel over the first 4 action steps [N, 2], and whether it is >= MIN_TRAVEL [N]: the part of a
    motion that depends on which object is the goal."""
    travel = chunks[:, :4, :2].sum(1)
    return travel, np.linalg.norm(travel, axis=1) >= MIN_TRAVEL


def _direction_cosine(pred: np.ndarray, true: np.ndarray) -> float:
    """Mean cosine between predicted and expert horizontal travel (horizontal_travel), where the expert moves."""
    travel_p = pred[:, :4, :2].sum(1)
    travel_t, moving = horizontal_travel(true)
    cos = (travel_p * travel_t).sum(1) / (np.linalg.norm(travel_p, axis=1) * np.linalg.norm(travel_t, axis=1) + 1e-9)
    return float(cos[moving].mean()) if moving.any() else float("nan")


def open_loop_metrics(model: MoLeVLA, data: Samples, mode: str = "full", max_samples: int = 512,
                      batch: int = 64, seed: int = 0) -> dict[str, float]:
    """mse: normalised chunk error (xyz, rpy); dir_cos: horizontal direction agreement with the expert (1 = same);
    dir_cos_swapped: the same with the goal's colour words swapped, so low = the colour word is obeyed;
    dir_cos_start: direction agreement at each episode's first step only, where the arm is in its start pose
    and nothing but the instruction says which cube to go for (later steps also show where the arm is
    already heading, which a policy can extrapolate without reading the goal); dir_cos_start_held_out: the same
    with the goals in held-out wordings (model/wordings.py); grip_acc: first-step gripper agreement."""
    was_training = model.training
    model.eval()
    idx = np.sort(np.random.default_rng(seed).choice(len(data), min(max_samples, len(data)), replace=False))
    pred = predict_chunks(model, data, idx, data.instructions, mode, batch, seed)
    swapped = predict_chunks(model, data, idx, [swap_colours(t) for t in data.instructions], mode, batch, seed)
    starts = np.flatnonzero(step_in_episode(data.episode) == 0)
    start_pred = predict_chunks(model, data, starts, data.instructions, mode, batch, seed)
    held_out = [reword_held_out(t, i) for i, t in enumerate(data.instructions)]
    start_held_out = predict_chunks(model, data, starts, held_out, mode, batch, seed)
    model.train(was_training)
    true = data.chunks[idx]
    def norm(a):
        return model.normalize_actions(torch.as_tensor(a, dtype=torch.float32)).numpy()

    return {"mse": float(((norm(pred) - norm(true))[..., :6] ** 2).mean()),
            "dir_cos": _direction_cosine(pred, true), "dir_cos_swapped": _direction_cosine(swapped, true),
            "dir_cos_start": _direction_cosine(start_pred, data.chunks[starts]),
            "dir_cos_start_held_out": _direction_cosine(start_held_out, data.chunks[starts]),
            "grip_acc": float((pred[:, 0, 6] == (true[:, 0, 6] >= 0.5)).mean())}
