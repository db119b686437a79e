"""How stable is a trained STAR router's route? (docs/model.md 'The MoLe-VLA model': the router-training diagnosis)

For held-out samples: the mean gap between the k-th and (k+1)-th layer score (how far the route is from
flipping), and, for Gumbel noise of a given scale added to the scores (as in straight-through training),
how often the noisy top-k equals the noise-free (inference) route and how many kept layers they share.

    molevla bench-route-agreement MODEL_DIR [MODEL_DIR ...] [--data data/heldout]  (--help: all options)
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from molevla_ros.config_cli import REQUIRED, option
from molevla_ros.model.io import load_model
from molevla_ros.model.mole_vla import preprocess_images
from molevla_ros.model.router import gumbel_noise, top_k_mask
from molevla_ros.train.episodes import load_samples

NOISE = (1.0, 0.5, 0.25, 0.1)


def route_agreement(model_dir: str, data: str, samples: int, draws: int, seed: int) -> dict:
    gen = torch.Generator().manual_seed(seed)
    m = load_model(Path(model_dir)).eval()
    val = load_samples(data, m.cfg.vision)
    idx = torch.randperm(len(val), generator=gen)[:samples]
    ids, valid = m.tokenize([val.instructions[i] for i in idx])
    with torch.no_grad():
        _, _, scores = m.encode(preprocess_images(torch.from_numpy(val.images[idx]), m.cfg.vision),
                                ids, valid, torch.from_numpy(val.proprio[idx]))
    k = m.cfg.router.keep(m.cfg.llm.layers)
    route = top_k_mask(scores, k)
    ranked = scores.sort(-1, descending=True).values
    row = {"model": model_dir, "gap": float((ranked[:, k - 1] - ranked[:, k]).mean()),
           "layer_use": route.mean(0).numpy()}
    gumbel = gumbel_noise((draws, *scores.shape), gen)
    for s in NOISE:
        noisy = top_k_mask(scores[None] + s * gumbel, k)
        row[s] = (float((noisy == route).all(-1).float().mean()), float((noisy * route).sum(-1).mean()))
    return row


@dataclass
class RouteAgreementOptions:
    models: tuple[str, ...] = option(REQUIRED, "model folders", positional=True)
    data: str = option("data/heldout", "held-out episode folder")
    samples: int = option(256, "held-out samples per model")
    draws: int = option(20, "noise draws per sample")
    seed: int = option(0, "seed for the sample choice and the noise")


def run(o: RouteAgreementOptions) -> str:
    """The table for each model folder (printed and returned)."""
    rows = [route_agreement(d, o.data, o.samples, o.draws, o.seed) for d in o.models]
    lines = ["| model | k-th minus (k+1)-th score | "
             + " | ".join(f"noise {s}: same route, shared kept layers" for s in NOISE) + " | layer use |",
             "|---" * (3 + len(NOISE)) + "|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['gap']:.3f} | " + " | ".join(f"{r[s][0]:.2f}, {r[s][1]:.2f}" for s in NOISE)
                     + " | " + " ".join(f"{x:.2f}" for x in r["layer_use"]) + " |")
    table = "\n".join(lines)
    print(table)
    return table
