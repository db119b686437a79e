"""Success and step latency against the number of decoder layers kept (the policy node's `keep_layers` /
`latency_budget_ms` knob), for one trained model: the router keeps its top k layers at every k, on the node's
inference path, on the same layouts for every k (eval-policies' closed loop)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


from molevla_ros.bench.evaluate import Variant, evaluate_variant
from molevla_ros.paths import DEFAULT_MODEL, resolve_model
from molevla_ros.bench.report import header
from molevla_ros.config_cli import option
from molevla_ros.control.chunk_executor import BLENDS
from molevla_ros.model.language import FAMILIES


@dataclass
class KeepSweepOptions:
    model: str = option(DEFAULT_MODEL, "model folder (a name under the package's models/ or a path)")
    keeps: tuple[int, ...] = option((1, 2, 3, 4, 5, 6, 7, 8), "decoder layers kept per step")
    tasks: tuple[str, ...] = option(FAMILIES, "task families", choices=FAMILIES)
    episodes: int = option(10, "episodes per family and k (seeds seed.., the same for every k)")
    seed: int = option(1000, "first layout seed")
    control_hz: float = option(5.0, "policy steps per second (the policy node's control_hz)")
    blend: str = option("average", "how overlapping chunks combine (the executor's blend)", choices=BLENDS)
    out: str = option("docs/results/keep_sweep", "folder for the table and JSON")


def run(o: KeepSweepOptions) -> list[dict]:
    model = str(resolve_model(o.model))
    rows = []
    for k in o.keeps:
        r = evaluate_variant(Variant(f"keep {k}", model, "mole", k), list(o.tasks), o.episodes, o.seed,
                             control_hz=o.control_hz, blend=o.blend)
        rows.append({"keep": k, "success": r["success"], "mean_success": r["mean_success"],
                     "layers": r["layers"], "latency_ms_p50": r["latency_ms_p50"],
                     "backbone_mflops_per_step": r["backbone_mflops_per_step"]})
        print(_row(rows[-1], o.tasks), flush=True)
    head = ["layers kept", *o.tasks, "mean", "backbone MFLOPs/step", "step p50 ms"]
    table = "\n".join([f"{o.model}, {o.episodes} episodes per family and k (seeds {o.seed}..), router top-k, "
                       f"{o.control_hz:g} policy steps/s, blend {o.blend}.\n",
                       "| " + " | ".join(head) + " |", "|" + "---|" * len(head), *(_row(r, o.tasks) for r in rows)])
    print("\n" + table)
    out = Path(o.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "table.md").write_text(header("molevla bench-keep", o) + table + "\n")
    (out / "keep_sweep.json").write_text(json.dumps(rows, indent=1))
    return rows


def _row(r: dict, tasks) -> str:
    cells = [f"{r['keep']}/{r['layers']}", *(f"{100 * r['success'][f]:.0f}%" for f in tasks),
             f"{100 * r['mean_success']:.0f}%", f"{r['backbone_mflops_per_step']:.1f}", f"{r['latency_ms_p50']:.1f}"]
    return "| " + " | ".join(cells) + " |"


