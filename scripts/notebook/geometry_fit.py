"""How precisely can the patch encoder locate the goal geometry, when that is all it is trained for?
(docs/notebook.md, "Why push fails".)

Trains only the vision path that feeds the decoder (instruction embedding for FiLM, patch encoder, projector) and a
geometry head on the keypoint token (train/geometry.py: the named cube, its goal, the push start point), on episodes
recorded with the simulator's ground truth, and prints the held-out error (mean distance, cm) as it goes. Starting
from a model (default) or from scratch at another input resolution separates "not trained for it" from "cannot see
it at this resolution".

Usage: .venv/bin/python scripts/notebook/geometry_fit.py [--init MODEL] [--scratch [--image-size PX]]
    --train DIR --test DIR
"""
from __future__ import annotations

import argparse
import copy

import numpy as np
import torch
from tqdm import tqdm

from molevla_ros.model.io import load_model
from molevla_ros.model.mole_vla import MoLeVLA, preprocess_images
from molevla_ros.train.episodes import Samples, load_samples
from molevla_ros.train.geometry import POINTS, SCALE, GeometryHead, geometry_loss, keypoint_token, normalise
from molevla_ros.train.trainer import augment_images


def predict(model: MoLeVLA, head: GeometryHead, data: Samples, idx: torch.Tensor, images: torch.Tensor,
            text: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    """Normalised geometry of samples idx seeing `images` [B, 3, 2]."""
    ids, valid = (torch.cat(t) for t in zip(*(text[data.instructions[i]] for i in idx.tolist())))
    x = model.embed(preprocess_images(images, model.cfg.vision), ids, valid, torch.from_numpy(data.proprio[idx]))[0]
    return head(keypoint_token(x, model.cfg.vision.n_tokens))


def held_out_cm(model: MoLeVLA, head: GeometryHead, data: Samples, text: dict) -> list[float]:
    """Mean distance (cm) per point over the samples where it is defined."""
    with torch.no_grad():
        idx = torch.arange(len(data))
        pred = torch.cat([predict(model, head, data, i, torch.from_numpy(data.images[i]), text)
                          for i in idx.split(256)])
    d = ((pred - normalise(torch.from_numpy(data.geometry))) * SCALE).norm(dim=-1) * 100
    return [d[:, j][~torch.isnan(d[:, j])].mean().item() for j in range(len(POINTS))]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--init", default="molevla_ros/models/teacher_minilm", help="start from this model's weights")
    p.add_argument("--scratch", action="store_true", help="fresh weights with the --init model's configuration")
    p.add_argument("--image-size", type=int, default=None, help="input resolution (with --scratch)")
    p.add_argument("--train", default="data/expert_gt")
    p.add_argument("--test", default="data/heldout_gt")
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--every", type=int, default=500, help="steps between held-out evaluations")
    p.add_argument("--shift", type=int, default=0, help="random image translation (px) in training, as `molevla "
                   "train --shift`; it moves what the labels point at")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    torch.manual_seed(a.seed)
    model = load_model(a.init)
    if a.scratch:
        cfg = copy.deepcopy(model.cfg)
        if a.image_size:
            cfg.vision.image_size = a.image_size
        model = MoLeVLA(cfg)
    elif a.image_size:
        raise SystemExit("--image-size changes the encoder's token count: use it with --scratch")
    train, test = (load_samples(d, model.cfg.vision, only_successful=s) for d, s in ((a.train, True), (a.test, False)))
    if train.geometry is None or test.geometry is None:
        raise SystemExit("both folders need the simulator's ground truth (record them with `molevla collect`)")
    text = {t: model.tokenize([t]) for t in set(train.instructions) | set(test.instructions)}
    head = GeometryHead(model.cfg.llm.hidden)
    text_in = model.llm.embed_tokens if model.text_in is None else model.text_in
    params = [*model.vision.parameters(), *text_in.parameters(), *model.projector.parameters(), *head.parameters()]
    opt = torch.optim.AdamW(params, lr=a.lr)
    gen = torch.Generator().manual_seed(a.seed)
    target = normalise(torch.from_numpy(train.geometry))
    images = torch.from_numpy(train.images)
    size = model.cfg.vision.image_size
    print("| step | input px | " + " | ".join(f"{n} (cm)" for n in POINTS) + " |")
    print("|---|---|" + "---|" * len(POINTS))
    spread = np.linalg.norm(test.geometry - np.nanmean(train.geometry, 0), axis=-1) * 100
    print(f"| training mean | {size} | " + " | ".join(f"{np.nanmean(spread[:, j]):.1f}" for j in range(len(POINTS)))
          + " |")
    for step in tqdm(range(a.steps), desc=f"geometry fit ({size} px)", unit="step"):
        idx = torch.randint(0, len(train), (32,), generator=gen)
        seen = augment_images(images[idx], gen, a.shift)
        loss = geometry_loss(predict(model, head, train, idx, seen, text), target[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if (step + 1) % a.every == 0 or step + 1 == a.steps:
            cm = held_out_cm(model, head, test, text)
            tqdm.write(f"| {step + 1} | {size} | " + " | ".join(f"{v:.1f}" for v in cm) + " |")


if __name__ == "__main__":
    main()
