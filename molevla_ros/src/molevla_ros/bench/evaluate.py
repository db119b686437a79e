"""Closed-loop evaluation in the simulator, in-process on simulated time: the scripted expert's success per task family
(`molevla eval-expert`), and MoLe-VLA variants compared side by side in one run (`molevla eval-policies`).

Variants (each a trained model folder + a routing mode): full depth, MoLe (STAR + CogKD), MoLe without
CogKD, random layer skipping and early exit at the same keep ratio. Columns: success rate per task
family, backbone FLOPs per step (kept layers x analytic per-layer FLOPs) and measured policy latency
(one policy step on the node's serving path, batch 1, this machine). Routing telemetry (which layers are
kept, per family and over an episode) is saved as a plot.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from molevla_ros.bench.report import header
from molevla_ros.config_cli import option
from molevla_ros.backends.base import Observation
from molevla_ros.backends.mole import MoLeBackend
from molevla_ros.backends.routed import RoutedPolicy, TorchGraphs
from molevla_ros.inputs.images import resize
from molevla_ros.model.config import MoLeConfig
from molevla_ros.model.io import load_model
from molevla_ros.model.mole_vla import layer_flops
from molevla_ros.sim.expert import ScriptedExpert
from molevla_ros.sim.rollout import run_episode, sim_executor
from molevla_ros.sim.scene import CAMERA, FrankaTableSim
from molevla_ros.model.language import FAMILIES
from molevla_ros.sim.tasks import Task, sample_task
from molevla_ros.model.goal_familiarity import DEFAULT_MIN_SIMILARITY, GoalFamiliarity
from molevla_ros.model.wordings import held_out_wording, with_typos
from molevla_ros.paths import resolve_model

WORDINGS = ("canonical", "held-out", "typos")
MAX_SECONDS = {"touch": 8.0, "push": 15.0, "pick_place": 15.0}  # about 2.5x the expert's mean time
CAMERA_SIZE = 224  # the camera node's output size: the model sees what it sees in the ROS loop


@dataclass
class Variant:
    name: str
    model_dir: str
    route: str
    keep: int | None = None  # decoder layers per step; None: the model's keep ratio


def default_variants(runs: Path) -> list[Variant]:
    return [Variant("full depth", str(runs / "teacher"), "full"),
            Variant("MoLe (STAR + CogKD)", str(runs / "mole"), "mole"),
            Variant("MoLe without CogKD", str(runs / "mole_nokd"), "mole"),
            Variant("random skip", str(runs / "random"), "random"),
            Variant("early exit (first k)", str(runs / "first_k"), "first_k")]


def named_variants(pairs: tuple[str, ...]) -> list[Variant]:
    """Variants from LABEL=FOLDER pairs, each on its trained route."""
    out = []
    for pair in pairs:
        label, _, folder = pair.partition("=")
        path = resolve_model(folder or label)
        routed = (path / "config.json").exists() and MoLeConfig.load(path / "config.json").router_trained
        out.append(Variant(label, str(path), "mole" if routed else "full"))
    return out


def torch_backend(model, route: str, seed: int) -> MoLeBackend:
    """The policy node's own inference path (RoutedPolicy on the model's modules), seeded."""
    return MoLeBackend(f"mole_torch ({route})", RoutedPolicy.from_model(model, TorchGraphs(model)), route, seed)


def node_view(obs: Observation, camera: str) -> Observation:
    """A simulator observation as the policy node gets it: the camera node's frame size, under the model's camera
    name (the real-time chunking prefix kept)."""
    img = resize(obs.images[CAMERA], CAMERA_SIZE, CAMERA_SIZE)
    return Observation(obs.instruction, obs.state, {camera: img}, obs.stamp, prefix=obs.prefix,
                       prefix_frozen=obs.prefix_frozen)


def episode_task(family: str, seed: int, wording: str) -> Task:
    """The evaluation task of a seed, its goal in the canonical wording, a held-out wording or the canonical one
    typed with errors (model/wordings.py; seeded by the episode's seed)."""
    task = sample_task(family, seed)
    if wording == "held-out":
        return replace(task, instruction=held_out_wording(family, task.cube, task.target, seed))
    if wording == "typos":
        return replace(task, instruction=with_typos(task.instruction, np.random.default_rng(seed)))
    if wording != "canonical":
        raise ValueError(f"wording must be one of {WORDINGS}")
    return task


def evaluate_variant(v: Variant, families: list[str], episodes: int, seed: int, threads: int = 1,
                     wordings: tuple[str, ...] = ("canonical",), read_as_known_goal: bool = True,
                     control_hz: float = 5.0, blend: str = "average") -> dict:
    """Closed-loop success per family (`success`: the first of `wordings`; `success_by_wording`: each; `episodes`:
    every episode's outcome, seeds from `first_seed` on), latency, layers kept and routing statistics of one
    variant. An episode's diffusion noise is seeded by its layout seed: its outcome does not depend on the episodes
    run before it, so wordings read as the same goal give the same episode. `control_hz` and `blend`: the policy
    node's and the executor's parameters of the same names (their defaults here are the nodes' defaults)."""
    torch.set_num_threads(threads)
    model = load_model(Path(v.model_dir))
    backend = torch_backend(model, v.route, seed)
    backend.keep = v.keep
    sim = FrankaTableSim()
    per_layer = layer_flops(model.cfg.llm, model.sequence_length())
    latencies, kept, masks = [], [], {f: [] for f in families}
    success: dict[str, dict[str, list[bool]]] = {w: {} for w in wordings}
    familiarity = GoalFamiliarity.of(Path(v.model_dir))
    refused: dict[str, int] = {}  # goals the policy node would refuse, per wording (counted as failures)
    episode_masks: dict[str, list[np.ndarray]] = {}

    def policy(obs: Observation, family: str, record: list) -> np.ndarray:
        view = node_view(obs, model.cfg.camera)
        t0 = time.perf_counter()
        out = backend.act(view)
        latencies.append(time.perf_counter() - t0)
        m = np.asarray(out.layer_mask, np.uint8)
        kept.append(int(m.sum()))
        masks[family].append(m)
        record.append(m)
        return out.chunk

    backbone_ms = _backbone_latency(model, v.route)
    try:
        for wording in wordings:
            for family in families:
                results = []
                for s in tqdm(range(seed, seed + episodes), desc=f"{v.name}: {family}, {wording}", unit="ep",
                              leave=False):
                    record: list[np.ndarray] = []
                    backend.reset(s)  # the diffusion noise of an episode: its seed's, whatever ran before
                    task = episode_task(family, s, wording)
                    if familiarity is not None:  # the policy node's reading
                        reading = familiarity.read(task.instruction, DEFAULT_MIN_SIMILARITY)
                        if reading.refusal:
                            refused[wording] = refused.get(wording, 0) + 1
                            results.append(False)  # a refused goal never moves the arm
                            continue
                        task = replace(task, instruction=reading.acted_on(read_as_known_goal))
                    r = run_episode(sim, task,
                                    lambda o, f=family, rec=record: policy(o, f, rec),
                                    sim_executor(model.cfg.action_dt, blend=blend), control_hz=control_hz,
                                    max_seconds=MAX_SECONDS[family], with_images=True)
                    results.append(r.success)
                    if s == seed and wording == wordings[0]:
                        episode_masks[family] = record
                success[wording][family] = results
    finally:
        sim.close()
    lat = np.array(latencies) * 1e3
    return {"name": v.name, "route": v.route, "model_dir": v.model_dir,
            "success": {f: float(np.mean(r)) for f, r in success[wordings[0]].items()},
            "mean_success": float(np.mean([np.mean(r) for r in success[wordings[0]].values()])),
            "success_by_wording": {w: {f: float(np.mean(r)) for f, r in s.items()} for w, s in success.items()},
            "goals_refused_by_wording": {w: refused.get(w, 0) for w in wordings},
            "episodes": {"first_seed": seed, **{w: {f: [bool(x) for x in r] for f, r in s.items()}
                                                for w, s in success.items()}},
            "layers_kept_mean": float(np.mean(kept)), "layers": model.cfg.llm.layers,
            "backbone_mflops_per_step": float(np.mean(kept)) * per_layer / 1e6,
            "latency_ms_p50": float(np.percentile(lat, 50)), "latency_ms_p99": float(np.percentile(lat, 99)),
            "backbone_ms_p50": backbone_ms,
            "layer_keep_rate": {f: np.mean(m, 0).tolist() for f, m in masks.items() if m},
            "episode_masks": {f: np.array(m).tolist() for f, m in episode_masks.items()}}


def _backbone_latency(model, route: str, repeats: int = 60) -> float:
    """p50 ms of the backbone alone (embeddings + routed LLM layers), batch 1, on a fixed input."""
    ids, valid = model.tokenize(["pick up the red cube and put it in the tray"])
    img = torch.zeros(1, CAMERA_SIZE, CAMERA_SIZE, 3, dtype=torch.uint8)
    q = torch.zeros(1, model.cfg.proprio_dim)
    times = []
    with torch.no_grad():
        for _ in range(repeats):
            t0 = time.perf_counter()
            model(img, ids, valid, q, mode=route)
            times.append(time.perf_counter() - t0)
    return float(np.percentile(np.array(times[10:]) * 1e3, 50))


def _cell(r: dict, family: str | None) -> str:
    """Success of a row in one family (None: mean over families, one decimal), per wording ("canonical /
    held-out / typos")."""
    by = r.get("success_by_wording") or {"canonical": r["success"]}
    if family:
        return " / ".join(f"{100 * s[family]:.0f}%" for s in by.values())
    return " / ".join(f"{100 * np.mean(list(s.values())):.1f}%" for s in by.values())


def print_table(rows: list[dict], families: list[str], episodes: int) -> str:
    head = (f"| variant | {' | '.join(families)} | mean | layers kept | backbone MFLOPs/step | backbone ms p50 | "
            "policy step ms p50 / p99 |")
    wordings = list(rows[0].get("success_by_wording", {"canonical": 0}))
    lines = [f"Closed-loop success over {episodes} seeded episodes per family (goal wording: "
             f"{' / '.join(wordings)})", "", head, "|" + "---|" * (len(families) + 6)]
    for r in rows:
        fam = " | ".join(_cell(r, f) for f in families)
        lines.append(f"| {r['name']} | {fam} | {_cell(r, None)} | {r['layers_kept_mean']:.1f}/"
                     f"{r['layers']} | {r['backbone_mflops_per_step']:.0f} | {r['backbone_ms_p50']:.2f} | "
                     f"{r['latency_ms_p50']:.1f} / {r['latency_ms_p99']:.1f} |")
    for r in rows:
        refused = r.get("goals_refused_by_wording", {})
        if any(refused.values()):
            lines.append(f"\n{r['name']}: goals the policy node refuses (counted as failures), per wording: "
                         + ", ".join(f"{w} {n}/{episodes * len(families)}" for w, n in refused.items()))
    text = "\n".join(lines)
    print(text)
    return text


def plot_routing(row: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fams = list(row["layer_keep_rate"])
    fig, axes = plt.subplots(1, 1 + len(fams), figsize=(4 + 3.2 * len(fams), 3.2))
    rate = np.array([row["layer_keep_rate"][f] for f in fams])
    axes[0].imshow(rate, vmin=0, vmax=1, cmap="viridis", aspect="auto")
    axes[0].set(yticks=range(len(fams)), yticklabels=fams, xlabel="LLM layer", title="keep rate per family")
    for ax, f in zip(axes[1:], fams):
        m = np.array(row["episode_masks"].get(f, [[0]]))
        ax.imshow(m.T, vmin=0, vmax=1, cmap="gray_r", aspect="auto", interpolation="nearest")
        ax.set(xlabel="control step", ylabel="layer", title=f"one {f} episode")
    fig.suptitle(f"STAR routing: {row['name']}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _steps(row: dict | None) -> str:
    """Training steps of a model, summed over the chain of runs it was initialised from (not counting the
    grounding pre-training, which trains the vision encoder only)."""
    if row is None:
        return "?"
    total, folder, seen = 0, Path(row["model_dir"]), set()
    while folder and (folder / "stats.json").exists() and folder.resolve() not in seen:
        seen.add(folder.resolve())
        stats = json.loads((folder / "stats.json").read_text())
        train = stats.get("train")
        if not train or str(stats.get("stage", "")).startswith("grounding"):
            break
        total += train["steps"]
        folder = Path(train["init"]) if train.get("init") else None
    return str(total)


def _stats(row: dict) -> dict:
    """stats.json of a row's model folder ({} if missing)."""
    path = Path(row["model_dir"]) / "stats.json"
    return json.loads(path.read_text()) if path.exists() else {}


def speed_summary(full: dict, mole: dict) -> str:
    """What the measured numbers say about MoLe's compute and latency savings against full depth."""
    flops = full["backbone_mflops_per_step"] / mole["backbone_mflops_per_step"]
    backbone = full["backbone_ms_p50"] / mole["backbone_ms_p50"]
    step = full["latency_ms_p50"] / mole["latency_ms_p50"]
    share = full["backbone_ms_p50"] / full["latency_ms_p50"]
    text = (f"Backbone compute per step: MoLe {mole['backbone_mflops_per_step']:.0f} MFLOPs vs full depth "
            f"{full['backbone_mflops_per_step']:.0f} MFLOPs ({flops:.2f}x less); backbone latency p50 "
            f"{mole['backbone_ms_p50']:.2f} ms vs {full['backbone_ms_p50']:.2f} ms ({backbone:.2f}x); whole policy "
            f"step p50 {mole['latency_ms_p50']:.1f} ms vs {full['latency_ms_p50']:.1f} ms ({step:.2f}x). The backbone "
            f"is {share:.0%} of a full-depth step here, ")
    if step < 1.05:
        return text + "so skipping layers barely changes the step time; the rest of the step dominates."
    return text + f"so the layer skip shortens the whole step by {1 - 1 / step:.0%}."


def write_model_card(rows: list[dict], table: str, path: Path) -> None:
    """README.md for the shipped MoLe model: data, config, and the measured comparison."""
    mole = next(r for r in rows if r["name"].startswith("MoLe (STAR"))
    full = next((r for r in rows if r["route"] == "full" and "untrained" not in r["name"]), None)
    cfg = json.loads((Path(mole["model_dir"]) / "config.json").read_text())
    stats = _stats(mole)
    llm, router = cfg["llm"], cfg["router"]
    teacher_init = _stats(full).get("train", {}).get("init") if full else None
    grounding = "grounding pre-training (`--stage grounding`), then " if teacher_init else ""
    n_search = stats["train"].get("route_search", 0)
    search = f" and route search (its route + {n_search} one-swap variants per sample)" if n_search else ""
    lines = [
        f"# {Path(mole['model_dir']).name}: MoLe-VLA trained in the simulator", "",
        "A small MoLe-VLA (trained from scratch here, CPU) for the simulated Franka's three task families.",
        "It is a demonstration-scale model: it has never seen a real camera and must not drive a real robot.", "",
        "## Data", "",
        f"{stats.get('episodes', '?')} scripted-expert episodes ({stats.get('samples', '?')} control steps; "
        "driven with DART noise where `policy` says so) "
        "recorded with `molevla collect` (layouts, seeds and goal variants: `scripts/train_all.sh`; one layout "
        "is recorded with several goal cubes so that only the instruction tells them apart), 224x224 camera "
        "frames downsampled to "
        f"{cfg['vision']['image_size']}x{cfg['vision']['image_size']}, joint states, 16x7 action chunks.", "",
        "## Model", "",
        f"- vision: {cfg['vision']['kind']} ({cfg['vision']['image_size']} px, patch "
        f"{cfg['vision']['patch_size']}{', instruction FiLM' if cfg['vision'].get('film') else ''}) -> projector "
        f"{cfg['projector_dims']}",
        f"- proprio: {cfg['proprio_dim']} joint positions"
        f"{' + fingertip position from Panda forward kinematics' if cfg.get('proprio_fk') else ''}",
        f"- LLM: Llama layout, {llm['layers']} layers, hidden {llm['hidden']}, {llm['heads']} heads, MLP "
        f"{llm['intermediate']}, '{llm['tokenizer']}' tokenizer"
        + (" (frozen all-MiniLM-L6-v2 token features, sha256-pinned, projected to the hidden size; goals reworded "
           "at every training step by model/wordings.py)" if llm["tokenizer"] == "minilm" else ""),
        f"- STAR router: keep ratio {router['keep_ratio']} ({round(router['keep_ratio'] * llm['layers'])} of "
        f"{llm['layers']} layers per step), proprio in the temporal branch: {router['use_proprio']}",
        f"- action head: DiT {cfg['action_head']['depth']} blocks x {cfg['action_head']['width']}, "
        f"{cfg['action_head']['horizon']}x{cfg['action_head']['action_dim']} chunk, DDIM "
        f"{cfg['action_head']['infer_steps']} steps, CFG {cfg['action_head']['cfg_scale']}",
        f"- training: {grounding}full-depth teacher ({_steps(full)} steps), then MoLe student with CogKD"
        f"{search} ({stats['train']['steps']} steps), batch {stats['train']['batch']}, lr {stats['train']['lr']}; "
        "`scripts/train_all.sh` reproduces everything", "",
        "## Measured (`molevla eval-policies`, closed loop in the simulator, this repository's CPU machine)", "",
        table, "",
    ]
    held = [(name, _stats(r).get("held_out")) for name, r in (("full depth", full), ("MoLe", mole)) if r is not None]
    if any(h for _, h in held):
        lines += ["Open-loop on held-out episodes (`molevla train --val`): direction cosine with the expert's "
                  "motion, and the same with the goal's colour words swapped (lower = the colour word steers "
                  "the arm):", ""]
        lines += [f"- {name}: {h['dir_cos']:.3f}, swapped {h['dir_cos_swapped']:.3f}"
                  + (f"; first step of each episode {h['dir_cos_start']:.3f}" if "dir_cos_start" in h else "")
                  + f"; chunk MSE {h['mse']:.4f}" for name, h in held if h]
        lines.append("")
    if full:
        lines += [speed_summary(full, mole), ""]
    lines += ["FLOPs are 2 x multiply-accumulates of the decoder layers (attention and MLP) at the model's "
              "sequence length; the MoLe-VLA paper's GFLOPs figures count multiply-accumulates."]
    path.write_text("\n".join(lines) + "\n")


@dataclass
class EvalOptions:
    runs: str = option("runs", "folder with teacher/ mole/ mole_nokd/ random/ first_k/")
    models: tuple[str, ...] = option((), "instead of --runs' variants: LABEL=FOLDER pairs (a folder or a shipped "
                                     "model's name), each run on its trained route (MoLe where its router is "
                                     "trained, else full depth)")
    episodes: int = option(50, "episodes per task family")
    seed: int = option(1000, "first layout seed")
    tasks: tuple[str, ...] = option(FAMILIES, "task families", choices=FAMILIES)
    workers: int = option(2, "parallel evaluation processes")
    wordings: tuple[str, ...] = option(WORDINGS, "goal wordings: canonical (the task templates), held-out "
                                       "(model/wordings.py HELD_OUT, never used in training) and typos (the canonical "
                                       "goal typed with errors, model/wordings.with_typos)", choices=WORDINGS)
    read_as_known_goal: bool = option(True, "as the policy node's parameter: act on the training goal an accepted "
                                      "goal means; false: the model reads the goal's own words (typing corrected)")
    out: str = option("docs/results/eval_policies", "folder for the table, plots and model card")


def run(o: EvalOptions) -> list[dict]:
    import multiprocessing

    runs, episodes, seed, families, workers, out = Path(o.runs), o.episodes, o.seed, list(o.tasks), o.workers, \
        Path(o.out)
    variants = [v for v in (named_variants(o.models) if o.models else default_variants(runs))
                if (Path(v.model_dir) / "config.json").exists()]
    if not variants:
        raise FileNotFoundError(f"no trained variants under {runs}")
    out.mkdir(parents=True, exist_ok=True)
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        jobs = [pool.apply_async(evaluate_variant, (v, families, episodes, seed, 1, o.wordings,
                                                        o.read_as_known_goal)) for v in variants]
        rows = [j.get() for j in tqdm(jobs, desc="variants", unit="variant")]
    table = print_table(rows, families, episodes)
    (out / "table.md").write_text(header("molevla eval-policies", o) + table + "\n")
    (out / "results.json").write_text(json.dumps(rows, indent=2))
    if any(r["name"].startswith("MoLe (STAR") for r in rows):
        write_model_card(rows, table, out / "model_card.md")
    for r in rows:
        if r["route"] == "mole":
            plot_routing(r, out / f"routing_{Path(r['model_dir']).name}.png")
    return rows


@dataclass
class ExpertEvalOptions:
    tasks: tuple[str, ...] = option(FAMILIES, "task families", choices=FAMILIES)
    episodes: int = option(50, "episodes per family")
    seed: int = option(1000, "first layout seed (seeds seed .. seed + episodes - 1)")
    out: str = option("docs/results/expert_eval.json", "JSON file for the table")


def evaluate_expert(o: ExpertEvalOptions) -> dict[str, dict]:
    """Run the scripted expert; print a table and save it as JSON. Seeds: seed .. seed + episodes - 1."""
    families, episodes, seed, out = o.tasks, o.episodes, o.seed, Path(o.out)
    sim, expert = FrankaTableSim(), ScriptedExpert()
    rows: dict[str, dict] = {}
    try:
        for family in families:
            results = [run_episode(sim, sample_task(family, s), lambda o: expert.act(o.instruction, o.privileged),
                                   sim_executor(expert.action_dt))
                       for s in tqdm(range(seed, seed + episodes), desc=family, unit="ep")]
            ok = [r for r in results if r.success]
            rows[family] = {"episodes": episodes, "success_rate": len(ok) / episodes,
                            "mean_seconds_success": float(np.mean([r.seconds for r in ok])) if ok else None,
                            "failed_seeds": [seed + i for i, r in enumerate(results) if not r.success]}
    finally:
        sim.close()
    print(f"\nscripted expert (privileged sim state), seeds {seed}..{seed + episodes - 1}")
    print(f"{'family':<12} {'episodes':>8} {'success':>8} {'mean s':>7}  failed seeds")
    for fam, r in rows.items():
        mean = f"{r['mean_seconds_success']:.1f}" if r["mean_seconds_success"] else "-"
        print(f"{fam:<12} {r['episodes']:>8} {100 * r['success_rate']:>7.1f}% {mean:>7}  {r['failed_seeds']}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=2))
    return rows
