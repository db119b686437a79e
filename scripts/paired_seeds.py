"""Paired per-seed comparison of layer-skipping variants (scripts/compare_seeds.sh).

Reads FOLDER/s*/results.json (one `molevla eval-policies` run per training seed, all variants on the same
evaluation episodes) and prints, per seed, each variant's closed-loop success and the differences MoLe minus each
other variant, then their mean and standard deviation over seeds, and the same differences paired per evaluation
episode (same layout and goal) with a normal 95% interval over all seeds' episodes (taken as independent; each
training seed meets the same layouts), and per training seed with a t interval over seeds (which also counts how
much the training seed moves each variant). A variant a seed did not train shows as "-".
Usage: python scripts/paired_seeds.py results/seeds
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from molevla_ros.bench.evaluate import default_variants

# The variants' names as eval-policies writes them, keyed by their run folder (compare_seeds.sh's stages).
NAMES = {Path(v.model_dir).name: v.name for v in default_variants(Path())}
MOLE = NAMES["mole"]
OTHERS = (NAMES["teacher"], NAMES["first_k"], NAMES["random"])
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}  # t, df -> 97.5%


def load(folder: Path) -> dict[str, dict[str, dict]]:
    """{seed folder name: {variant name: results row}} for every seed with a finished evaluation."""
    return {p.parent.name: {r["name"]: r for r in json.loads(p.read_text())}
            for p in sorted(folder.glob("s*/results.json"))}


def main(folder: Path) -> None:
    seeds = {s: rows for s, rows in load(folder).items() if MOLE in rows}
    if not seeds:
        sys.exit(f"no evaluated seeds with a MoLe row under {folder}")
    families = list(next(iter(seeds.values()))[MOLE]["success"])
    names = [MOLE] + [n for n in OTHERS if any(n in rows for rows in seeds.values())]  # "-" where a seed lacks one
    print("Closed-loop success (%), mean over " + ", ".join(families) + "; per family in brackets\n")
    print("| seed | " + " | ".join(names) + " | " + " | ".join(f"MoLe - {n}" for n in names[1:]) + " |")
    print("|" + "---|" * (2 * len(names)))
    diffs: dict[str, list[float]] = {n: [] for n in names[1:]}
    means: dict[str, list[float]] = {n: [] for n in names}
    for seed, rows in seeds.items():
        cells, gaps = [], []
        for n in names:
            r = rows.get(n)
            if r is None:
                cells.append("-")
                continue
            means[n].append(100 * r["mean_success"])
            fam = "/".join(f"{100 * r['success'][f]:.0f}" for f in families)
            cells.append(f"{100 * r['mean_success']:.1f} ({fam})")
        for n in names[1:]:
            if n in rows:
                diffs[n].append(100 * (rows[MOLE]["mean_success"] - rows[n]["mean_success"]))
            gaps.append(f"{diffs[n][-1]:+.1f}" if n in rows else "-")
        print(f"| {seed} | " + " | ".join(cells) + " | " + " | ".join(gaps) + " |")

    def ms(v: list[float]) -> str:  # with the number of seeds where a variant lacks some
        n = "" if len(v) == len(seeds) else f" ({len(v)} seeds)"
        return (f"{np.mean(v):.1f} ± {np.std(v, ddof=1):.1f}" if len(v) > 1 else f"{np.mean(v):.1f}") + n

    print(f"| mean ± sd ({len(seeds)} seeds) | " + " | ".join(ms(means[n]) for n in names) + " | "
          + " | ".join(f"{ms(diffs[n])}" for n in names[1:]) + " |")
    print("\nPer training seed (MoLe's mean minus the other's, one number per seed; t interval over seeds):\n")
    print("| MoLe minus | seeds | mean difference (points) | 95% interval |")
    print("|---|---|---|---|")
    for n in names[1:]:
        if len(diffs[n]) > 1:
            mean = np.mean(diffs[n])
            half = T975.get(len(diffs[n]) - 1, 2.228) * np.std(diffs[n], ddof=1) / np.sqrt(len(diffs[n]))
            print(f"| {n} | {len(diffs[n])} | {mean:+.1f} | {mean - half:+.1f} to {mean + half:+.1f} |")
    print("\nPer evaluation episode (MoLe's outcome minus the other's on the same layout and goal, all seeds):\n")
    print("| MoLe minus | episodes | mean difference (points) | 95% interval | MoLe only / other only succeeded |")
    print("|---|---|---|---|---|")
    for n in names[1:]:
        d = np.array([m - o for rows in seeds.values() if n in rows
                      for m, o in zip(outcomes(rows[MOLE]), outcomes(rows[n]))])
        if not d.size:
            continue
        mean, half = 100 * d.mean(), 1.96 * 100 * d.std(ddof=1) / np.sqrt(d.size)
        print(f"| {n} | {d.size} | {mean:+.1f} | {mean - half:+.1f} to {mean + half:+.1f} "
              f"| {(d > 0).sum()} / {(d < 0).sum()} |")


def outcomes(row: dict) -> list[int]:
    """A variant's episode outcomes (1 = success) in the first wording, family by family; [] if not recorded."""
    eps = row.get("episodes", {})
    wording = next((w for w in eps if w != "first_seed"), None)
    return [int(x) for f in sorted(eps[wording]) for x in eps[wording][f]] if wording else []


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "results/seeds"))
