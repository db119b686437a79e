"""The action range of a CogACT release: its dataset_statistics.json (per dataset: action q01 / q99 and a mask of the
dimensions CogACT rescales) -> the (low, high) bounds the model unnormalises with (inverse of mole_vla's
normalize_actions). Pure data handling, kept apart from the importer so that it is tested (and mutation-tested) alone.
"""
from __future__ import annotations

import torch


def action_range(stats: dict, unnorm_key: str | None) -> tuple[str, torch.Tensor, torch.Tensor]:
    """(key, low, high) from dataset_statistics.json; dimensions whose mask is False stay unscaled ([-1, 1]).
    ValueError for a missing or ambiguous dataset, missing q01 / q99, and for bounds that are not finite, of unequal
    lengths or reversed (q01 > q99 would mirror every action)."""
    if unnorm_key is None:
        if len(stats) != 1:
            raise ValueError(f"the checkpoint has statistics for {len(stats)} datasets: pick one with unnorm_key "
                             f"({', '.join(sorted(stats))})")
        unnorm_key = next(iter(stats))
    if unnorm_key not in stats:
        raise ValueError(f"unnorm_key {unnorm_key!r} not in dataset_statistics.json ({', '.join(sorted(stats))})")
    try:
        a = stats[unnorm_key]["action"]
        low, high = torch.tensor(a["q01"], dtype=torch.float64), torch.tensor(a["q99"], dtype=torch.float64)
    except (KeyError, TypeError) as e:
        raise ValueError(f"dataset_statistics.json: no action statistics where CogACT writes them ({unnorm_key}."
                         f"action: {type(e).__name__}: {e})") from None
    mask = torch.tensor(a.get("mask", [True] * len(low)), dtype=torch.bool)
    if not len(low) == len(high) == len(mask):
        raise ValueError(f"{unnorm_key}: action q01, q99 and mask have {len(low)}, {len(high)} and {len(mask)} entries")
    if not (torch.isfinite(low).all() and torch.isfinite(high).all()):
        raise ValueError(f"{unnorm_key}: action q01 / q99 are not all finite")
    reversed_ = (mask & (low > high)).nonzero().flatten().tolist()
    if reversed_:
        raise ValueError(f"{unnorm_key}: action q01 > q99 in dimensions {reversed_}")
    return unnorm_key, torch.where(mask, low, -1.0).float(), torch.where(mask, high, 1.0).float()
