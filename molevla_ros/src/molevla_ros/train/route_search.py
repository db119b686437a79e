"""Route search: a low-variance training signal for the STAR router (ours; `molevla train --route-search N`).

The paper trains the router through a straight-through top-k gate with Gumbel noise. On the small model
the noise reorders the top-k so often that the student rarely trains on its inference route, and without
noise the estimate is biased: a skipped layer's first-order gain looks positive because the teacher trained
it to refine the stream, so the router drifts off routes with a lower loss (docs/model.md 'The MoLe-VLA model').
Route search instead
compares real routes: per sample, the router's own top-k and N variants (one kept layer swapped for a
skipped one) are run without gradients and scored by the student's training loss with the same diffusion
noise and timesteps for every candidate (common random numbers). The layers then train on the best
candidate, and the router learns to predict it (cross-entropy on its scores). Inference is unchanged.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from molevla_ros.model.mole_vla import Forward, MoLeVLA, preprocess_images
from molevla_ros.model.router import Route, top_k_mask
from molevla_ros.train.cogkd import cogkd_loss


def swapped_routes(route: torch.Tensor, n: int, gen: torch.Generator) -> torch.Tensor:
    """[B, L] 0/1 routes -> [B, 1 + n, L]: each route and n variants with one kept layer swapped for a
    skipped one (chosen uniformly per sample and variant)."""
    out = [route]
    rows = torch.arange(route.shape[0])
    for _ in range(n):
        u = torch.rand(route.shape, generator=gen)
        drop, add = (u + 2 * route).argmax(-1), (u + 2 * (1 - route)).argmax(-1)
        v = route.clone()
        v[rows, drop], v[rows, add] = 0.0, 1.0
        out.append(v)
    return torch.stack(out, 1)


@torch.no_grad()
def best_routes(model: MoLeVLA, x: torch.Tensor, valid: torch.Tensor, routes: torch.Tensor, actions: torch.Tensor,
                extra: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], gen: torch.Generator) -> torch.Tensor:
    """routes [B, C, L] -> the lowest-loss candidate per sample [B, L]. The score is the diffusion error at
    noise and timesteps shared by a sample's candidates, plus extra(hidden, repeat_index) [B * C]."""
    b, c, n_layers = routes.shape
    hcfg = model.cfg.action_head
    rep = torch.arange(b).repeat_interleave(c)  # candidate row -> sample
    hidden = model.llm(x[rep], valid[rep], routes.reshape(b * c, n_layers))
    r = hcfg.repeats
    t = torch.randint(0, hcfg.train_steps, (b, 1, r), generator=gen).expand(b, c, r).reshape(-1)
    noise = torch.randn(b, 1, r, hcfg.horizon, hcfg.action_dim, generator=gen).expand(b, c, r, -1, -1)
    err = model.head.eps_error(actions[rep].repeat_interleave(r, 0), hidden[:, -1].repeat_interleave(r, 0), t,
                               noise.reshape(-1, hcfg.horizon, hcfg.action_dim)).view(b, c, r).mean(-1)
    score = err + extra(hidden, rep).view(b, c)
    return routes[torch.arange(b), score.argmin(1)]


def searched_forward(model: MoLeVLA, images: torch.Tensor, ids: torch.Tensor, text_valid: torch.Tensor,
                     proprio: torch.Tensor, actions: torch.Tensor, n: int, gen: torch.Generator,
                     aux: nn.Module | None, aux_weight: float, teacher: nn.Module | None, cog_weight: float,
                     keep: int | None = None) -> tuple[Forward, torch.Tensor | None]:
    """Training forward on the searched route, and the teacher's hidden states (None without a teacher).
    The layers run (with gradients) on the best candidate, which is also the mask of the returned Route;
    its logits carry the router's gradient through route_loss. Candidates are scored by the student's loss:
    diffusion + aux_weight * aux regression + cog_weight * CogKD. keep: layers kept (default: the router's ratio)."""
    pixels = preprocess_images(images, model.cfg.vision)
    x, valid, vis, txt, prop, points = model.embed(pixels, ids, text_valid, proprio)
    logits = model.router.scores(x, vis, txt, text_valid, prop)
    k = model.cfg.router.keep(model.cfg.llm.layers) if keep is None else keep
    with torch.no_grad():
        h_t = None if teacher is None else teacher(x.detach(), valid)

    def extra(hidden: torch.Tensor, rep: torch.Tensor) -> torch.Tensor:
        total = hidden.new_zeros(hidden.shape[0])
        if aux is not None and aux_weight > 0:
            total += aux_weight * (aux(hidden[:, -1]) - actions[rep].flatten(1)).pow(2).mean(-1)
        if h_t is not None:
            total += cog_weight * cogkd_loss(hidden, h_t[rep], valid[rep], per_sample=True)
        return total

    candidates = swapped_routes(top_k_mask(logits.detach(), k), n, gen)
    gate = best_routes(model, x.detach(), valid, candidates, actions, extra, gen)
    hidden = model.llm(x, valid, gate)
    return Forward(hidden, hidden[:, -1], Route(gate, logits.softmax(-1), logits), gate, valid, x,
                   points), h_t


def route_loss(route: Route) -> torch.Tensor:
    """Cross-entropy of the router's layer distribution against the chosen route (uniform over its k layers)."""
    target = route.mask / route.mask.sum(-1, keepdim=True)
    return -(target * F.log_softmax(route.logits, -1)).sum(-1).mean()
