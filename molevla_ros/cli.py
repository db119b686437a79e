"""`molevla`: the package's command line (the pip-install counterpart of `ros2 launch` / `ros2 run`)."""
from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from molevla_ros.config_cli import add_options, from_options
from molevla_ros.sim.tasks import FAMILIES
from molevla_ros.train.config import TrainConfig


def _families(text: str) -> list[str]:
    out = [f.strip() for f in text.split(",") if f.strip()]
    bad = [f for f in out if f not in FAMILIES]
    if bad:
        raise argparse.ArgumentTypeError(f"unknown task families {bad}; known: {', '.join(FAMILIES)}")
    return out


def cmd_demo(a: argparse.Namespace) -> int:
    from molevla_ros.demo import run_demo

    r = run_demo(a.task, a.seed, a.backend, a.timeout, Path(a.out))
    width = max(len(k) for k in r)
    print("\n".join(f"{k:<{width}}  {v}" for k, v in r.items()))
    return 0 if r["success"] else 1


def cmd_launch(a: argparse.Namespace) -> int:
    from molevla_ros.bringup import PROFILE_DEFAULTS, PROFILES, Bringup

    overrides = {node: dict(values) for node, values in PROFILE_DEFAULTS[a.profile].items()}
    for item in a.set or []:
        key, _, value = item.partition("=")
        node, _, param = key.partition(".")
        overrides.setdefault(node, {})[param] = value
    with Bringup(PROFILES[a.profile], overrides, namespace=a.namespace) as b:
        print(f"running {', '.join(PROFILES[a.profile])}; Ctrl-C stops")
        if overrides.get("executor", {}).get("dry_run") is True:
            print("executor in DRY RUN: commands are logged, not sent (--set executor.dry_run=false to move the arm)")
        try:
            while not b.dead():
                time.sleep(0.5)
            print(f"node(s) exited: {b.dead()}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            return 0


def cmd_eval_expert(a: argparse.Namespace) -> int:
    from molevla_ros.sim.evaluate import evaluate_expert

    evaluate_expert(a.tasks, a.episodes, a.seed)
    return 0


def cmd_collect(a: argparse.Namespace) -> int:
    from molevla_ros.record.collect import collect

    collect(Path(a.out), a.tasks, a.episodes, a.seed, a.goals, a.driver, a.route, a.beta)
    return 0


def cmd_bench_loop(a: argparse.Namespace) -> int:
    from molevla_ros.bench.loop_latency import run

    run(a.seconds, a.fps, a.width, a.height, a.control_hz, a.executor_hz)
    return 0


def cmd_train(a: argparse.Namespace) -> int:
    from molevla_ros.train.grounding import pretrain_grounding
    from molevla_ros.train.trainer import train

    tc = from_options(TrainConfig, a)
    (pretrain_grounding if a.stage == "grounding" else train)(tc)
    return 0


def cmd_route_agreement(a: argparse.Namespace) -> int:
    from molevla_ros.bench.route_agreement import run

    run(a.models, a.data)
    return 0


def cmd_eval_policies(a: argparse.Namespace) -> int:
    from molevla_ros.bench.eval_policies import run

    run(Path(a.runs), a.episodes, a.seed, a.tasks, a.workers, Path(a.out))
    return 0


def cmd_import_cogact(a: argparse.Namespace) -> int:
    from molevla_ros.model.import_cogact import import_cogact

    vision_heads = tuple(int(h) for h in a.vision_heads.split(",")) if a.vision_heads else None
    report = import_cogact(Path(a.checkpoint), Path(a.tokenizer), Path(a.out), a.unnorm_key, a.action_dt, a.use_ema,
                           a.llm_heads, vision_heads, a.max_text)
    cfg = report["config"]
    print(f"mapped {len(report['mapped'])} tensors, dropped {len(report['dropped'])}, new (MoLe parts, to train): "
          f"{len(report['initialised'])}; Llama {cfg.llm.layers} x {cfg.llm.hidden}, DiT {cfg.action_head.depth} x "
          f"{cfg.action_head.width}, statistics '{report['unnorm_key']}', action_dt {cfg.action_dt:.4g} s -> {a.out}")
    return 0


def cmd_bench_backends(a: argparse.Namespace) -> int:
    from molevla_ros.bench.backends import random_model_dir, run
    from molevla_ros.bringup import resolve_model

    if a.config == "cogact":
        model_dir, label = random_model_dir(a.layers), f"CogACT-scale, random weights, {a.layers} Llama-2-7B layers"
    else:
        model_dir, label = resolve_model(a.model), f"model {a.model}"
    try:
        run(model_dir, a.backends.split(","), a.iters, a.batch, Path(a.out), label)
    finally:
        if a.config == "cogact":
            shutil.rmtree(model_dir, ignore_errors=True)  # GBs of random weights
    return 0


def cmd_bench_smoothness(a: argparse.Namespace) -> int:
    from molevla_ros.bench.smoothness import run

    run(Path(a.episodes), a.limit, a.latency, Path(a.out))
    return 0


def cmd_bench_faults(a: argparse.Namespace) -> int:
    from molevla_ros.bench.faults import run

    rows = run(Path(a.out), a.only, load=a.load)
    runs = rows + [r["under_load"] for r in rows if "under_load" in r]
    return 0 if all(not r["crashed"] and r["speed_violations"] + r["accel_violations"] == 0 for r in runs) else 1


def cmd_bench_false_halts(a: argparse.Namespace) -> int:
    from molevla_ros.bench.false_halts import run

    run([float(x) for x in a.leases.split(",")], a.minutes, a.load, a.kills, Path(a.out), a.backend)
    return 0


def cmd_export_onnx(a: argparse.Namespace) -> int:
    from molevla_ros.backends.onnx_graphs import ensure_onnx, export_onnx
    from molevla_ros.bringup import resolve_model

    folder = export_onnx(resolve_model(a.model), Path(a.out), a.precision) if a.out else \
        ensure_onnx(resolve_model(a.model), a.precision)
    print(f"ONNX graph set: {folder}")
    return 0


def cmd_build_engines(a: argparse.Namespace) -> int:
    from molevla_ros.backends.onnx_graphs import ensure_onnx
    from molevla_ros.backends.tensorrt_graphs import TensorRTGraphs
    from molevla_ros.bringup import resolve_model

    try:
        graphs = TensorRTGraphs(ensure_onnx(resolve_model(a.model), a.precision), a.device, a.max_batch)
    except (ImportError, RuntimeError) as e:
        print(f"cannot build TensorRT engines: {e}", file=sys.stderr)
        return 2
    print(f"engines ready ({len(graphs.engines)}; built now: {len(graphs.built)}, the rest loaded from the cache)")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="molevla", description=__doc__)
    sub = ap.add_subparsers(dest="command", required=True)

    d = sub.add_parser("demo", help="simulated Franka + all nodes, one language goal, printed result")
    d.add_argument("--task", default="pick_place", choices=FAMILIES)
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--backend", default="scripted_expert",
                   help="scripted_expert, mole_torch, mole_onnx or mole_tensorrt")
    d.add_argument("--timeout", type=float, default=60.0)
    d.add_argument("--out", default="results/demo")
    d.set_defaults(fn=cmd_demo)

    la = sub.add_parser("launch", help="bring up a profile's nodes (like ros2 launch)")
    la.add_argument("--profile", default="sim", choices=["sim", "robot"])
    la.add_argument("--namespace", default="")
    la.add_argument("--set", action="append", metavar="NODE.PARAM=VALUE", help="override a parameter")
    la.set_defaults(fn=cmd_launch)

    e = sub.add_parser("eval-expert", help="scripted-expert success rate per task family (in-process, sim time)")
    e.add_argument("--tasks", type=_families, default=list(FAMILIES))
    e.add_argument("--episodes", type=int, default=50)
    e.add_argument("--seed", type=int, default=1000)
    e.set_defaults(fn=cmd_eval_expert)

    c = sub.add_parser("collect", help="record scripted-expert episodes to MCAP (ROS 2 schemas)")
    c.add_argument("--tasks", type=_families, default=list(FAMILIES))
    c.add_argument("--episodes", type=int, default=20, help="per task family")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--goals", type=int, default=1, help="goals per layout (1-3): same scene, different cube")
    c.add_argument("--out", default="data/episodes")
    c.add_argument("--driver", help="DAgger: a model folder that drives the arm while the expert labels")
    c.add_argument("--route", default="full", help="the driver's layer routing (full, mole, ...)")
    c.add_argument("--beta", type=float, default=0.3, help="DAgger: share of control steps the expert drives")
    c.set_defaults(fn=cmd_collect)

    b = sub.add_parser("bench-loop", help="node/transport latency: image in -> chunk out, executor rate/jitter")
    b.add_argument("--seconds", type=float, default=20.0)
    b.add_argument("--fps", type=float, default=30.0)
    b.add_argument("--width", type=int, default=640)
    b.add_argument("--height", type=int, default=480)
    b.add_argument("--control-hz", type=float, default=30.0)
    b.add_argument("--executor-hz", type=float, default=50.0)
    b.set_defaults(fn=cmd_bench_loop)

    t = sub.add_parser("train", help="train a MoLe-VLA stage on recorded episodes (resumable)")
    add_options(t, TrainConfig, required=("out",),
                choices={"stage": ["grounding", "teacher", "mole", "mole_nokd", "random", "first_k"]})
    t.set_defaults(fn=cmd_train)

    ra = sub.add_parser("bench-route-agreement", help="how stable trained STAR routes are under training noise")
    ra.add_argument("models", nargs="+", help="model folders")
    ra.add_argument("--data", default="data/heldout", help="held-out episode folder")
    ra.set_defaults(fn=cmd_route_agreement)

    ev = sub.add_parser("eval-policies", help="closed-loop success/FLOPs/latency of trained MoLe-VLA variants")
    ev.add_argument("--runs", default="runs", help="folder with teacher/ mole/ mole_nokd/ random/ first_k/")
    ev.add_argument("--episodes", type=int, default=50, help="per task family")
    ev.add_argument("--seed", type=int, default=1000)
    ev.add_argument("--tasks", type=_families, default=list(FAMILIES))
    ev.add_argument("--workers", type=int, default=2)
    ev.add_argument("--out", default="results/eval_policies")
    ev.set_defaults(fn=cmd_eval_policies)

    im = sub.add_parser("import-cogact", help="convert a released CogACT checkpoint into a model folder the policy "
                        "node runs (backend:=mole_torch model_dir:=OUT)")
    im.add_argument("checkpoint", help="CogACT run folder (config.json, dataset_statistics.json, checkpoints/*.pt) "
                    "or the .pt inside it")
    im.add_argument("--tokenizer", required=True, help="local Llama-2 tokenizer folder (transformers format, e.g. a "
                    "copy of meta-llama/Llama-2-7b-hf's tokenizer files)")
    im.add_argument("--out", required=True)
    im.add_argument("--unnorm-key", help="dataset whose action statistics unnormalise (needed when there are several)")
    im.add_argument("--action-dt", type=float, help="seconds between actions (default: the dataset's known rate)")
    im.add_argument("--use-ema", action="store_true", help="use the EMA action-model weights when present")
    im.add_argument("--llm-heads", type=int, help="Llama attention heads (default: hidden / 128, as Llama-2)")
    im.add_argument("--vision-heads", help="DINOv2,SigLIP heads (default: width / 64, width / 72, as released)")
    im.add_argument("--max-text", type=int, default=64, help="prompt tokens the model accepts (after BOS)")
    im.set_defaults(fn=cmd_import_cogact)

    bb = sub.add_parser("bench-backends", help="policy step latency/throughput per backend, full vs MoLe keep ratios")
    bb.add_argument("--model", default="mole_small")
    bb.add_argument("--config", choices=["model", "cogact"], default="model",
                    help="cogact: random-weight CogACT-scale model (Llama-2-7B-sized layers) instead of --model")
    bb.add_argument("--layers", type=int, default=32, help="decoder layers of the cogact configuration")
    bb.add_argument("--backends", default="torch,onnx",
                    help="comma list of: torch, onnx, torch-cuda, torch-cuda-fp16, torch-cuda-graphs, tensorrt")
    bb.add_argument("--iters", type=int, default=30)
    bb.add_argument("--batch", type=int, default=8, help="robots per batch for the throughput column")
    bb.add_argument("--out", default="results/bench_backends")
    bb.set_defaults(fn=cmd_bench_backends)

    sm = sub.add_parser("bench-smoothness", help="velocity jumps and jerk at chunk boundaries, recorded episodes")
    sm.add_argument("--episodes", default="data/episodes")
    sm.add_argument("--limit", type=int, default=60, help="episodes to replay")
    sm.add_argument("--latency", type=float, default=0.1, help="seconds from observation to chunk arrival")
    sm.add_argument("--out", default="results/smoothness")
    sm.set_defaults(fn=cmd_bench_smoothness)

    fa = sub.add_parser("bench-faults", help="fault suite on the simulated loop: time to halt, limit violations, "
                        "crashes")
    fa.add_argument("--only", nargs="*", help="run only faults whose name contains one of these words")
    fa.add_argument("--out", default="results/faults")
    fa.add_argument("--load", action="store_true", help="run each fault again with both cores saturated")
    fa.set_defaults(fn=cmd_bench_faults)

    fh = sub.add_parser("bench-false-halts", help="false halts per minute under CPU load vs time to halt after "
                        "SIGKILL, per liveliness lease")
    fh.add_argument("--leases", default="0.1,0.2,0.5", help="comma list of DDS liveliness leases (s)")
    fh.add_argument("--minutes", type=float, default=3.0, help="loaded run per lease")
    fh.add_argument("--load", type=int, default=2, help="busy processes during the loaded run")
    fh.add_argument("--kills", type=int, default=5, help="SIGKILLs of the policy per lease (no load)")
    fh.add_argument("--backend", default="mole_torch")
    fh.add_argument("--out", default="results/halts")
    fh.set_defaults(fn=cmd_bench_false_halts)

    ex = sub.add_parser("export-onnx", help="export a model's per-layer ONNX graph set (cached by model hash)")
    ex.add_argument("--model", default="mole_small")
    ex.add_argument("--precision", choices=["fp32", "fp16"], default="fp32")
    ex.add_argument("--out", help="folder (default: the cache used by the backends)")
    ex.set_defaults(fn=cmd_export_onnx)

    be = sub.add_parser("build-engines", help="build (or verify cached) TensorRT engines ahead of time")
    be.add_argument("--model", default="mole_small")
    be.add_argument("--precision", choices=["fp32", "fp16"], default="fp16")
    be.add_argument("--device", default="cuda")
    be.add_argument("--max-batch", type=int, default=8)
    be.set_defaults(fn=cmd_build_engines)

    a = ap.parse_args(argv)
    return a.fn(a)


if __name__ == "__main__":
    sys.exit(main())
