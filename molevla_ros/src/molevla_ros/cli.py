"""`molevla`: the package's command line (the pip-install counterpart of `ros2 launch` / `ros2 run`).

Every command but `launch` takes the options of one dataclass (`COMMANDS`): its fields, defaults and help are the
command's `--help`, so each default lives in one place.
"""
from __future__ import annotations

import argparse
import importlib
import sys
import textwrap
import time
from dataclasses import dataclass
from typing import Callable

from molevla_ros.paths import DEFAULT_MODEL
from molevla_ros.config_cli import add_options, from_options, option

@dataclass
class ExportOptions:
    model: str = option(DEFAULT_MODEL, "model folder or shipped model name")
    precision: str = option("fp32", "weights in the graphs", choices=("fp32", "fp16"))
    out: str | None = option(None, "folder (default: the cache the backends use)")


@dataclass
class EngineOptions:
    model: str = option(DEFAULT_MODEL, "model folder or shipped model name")
    precision: str = option("fp16", "engine precision", choices=("fp32", "fp16"))
    device: str = option("cuda", "CUDA device")
    max_batch: int = option(8, "largest batch the engines accept")


def demo(o) -> int:
    from molevla_ros.demo import run_demo

    r = run_demo(o)
    width = max(len(k) for k in r)
    print("\n".join(f"{k:<{width}}  {v}" for k, v in r.items()))
    return 0 if r["success"] else 1


def train(o) -> int:
    from molevla_ros.train.grounding import pretrain_grounding
    from molevla_ros.train.locator import pretrain_locator
    from molevla_ros.train.trainer import train

    {"grounding": pretrain_grounding, "locator": pretrain_locator}.get(o.stage, train)(o)
    return 0


def import_cogact(o) -> int:
    from molevla_ros.model.import_cogact import import_cogact

    report = import_cogact(o)
    cfg = report["config"]
    print(f"mapped {len(report['mapped'])} tensors, dropped {len(report['dropped'])}, new (MoLe parts, to train): "
          f"{len(report['initialised'])}; Llama {cfg.llm.layers} x {cfg.llm.hidden}, DiT {cfg.action_head.depth} x "
          f"{cfg.action_head.width}, statistics '{report['unnorm_key']}', action_dt {cfg.action_dt:.4g} s -> {o.out}")
    return 0


def bench_faults(o) -> int:
    from molevla_ros.bench.faults import run

    rows = run(o)
    runs = rows + [r["under_load"] for r in rows if "under_load" in r]
    return 0 if all(not r["crashed"] and r["speed_violations"] + r["accel_violations"] == 0 for r in runs) else 1


def export_onnx(o: ExportOptions) -> int:
    from pathlib import Path

    from molevla_ros.backends.onnx_graphs import ensure_onnx, export_onnx
    from molevla_ros.paths import resolve_model

    folder = export_onnx(resolve_model(o.model), Path(o.out), o.precision) if o.out else \
        ensure_onnx(resolve_model(o.model), o.precision)
    print(f"ONNX graph set: {folder}")
    return 0


def build_engines(o: EngineOptions) -> int:
    from molevla_ros.backends.onnx_graphs import ensure_onnx
    from molevla_ros.backends.tensorrt_graphs import TensorRTGraphs
    from molevla_ros.paths import resolve_model

    try:
        graphs = TensorRTGraphs(ensure_onnx(resolve_model(o.model), o.precision), o.device, o.max_batch)
    except (ImportError, RuntimeError) as e:
        print(f"cannot build TensorRT engines: {e}", file=sys.stderr)
        return 2
    print(f"engines ready ({len(graphs.engines)}; built now: {len(graphs.built)}, the rest loaded from the cache)")
    return 0


def launch(a: argparse.Namespace) -> int:
    from molevla_ros.bringup import BRINGUPS, ROBOT_NODES, Bringup, apply_model_hints, bringup_nodes, launch_overrides

    robot = a.robot or ("panda_sim" if a.bringup == "sim" else "fr3")
    overrides = launch_overrides(a.bringup, {"robot": robot})
    for item in a.set or []:
        key, _, value = item.partition("=")
        node, _, param = key.partition(".")
        if node not in BRINGUPS[a.bringup]:
            print(f"--set {item}: no node {node!r} in the {a.bringup} bring-up ({', '.join(BRINGUPS[a.bringup])})",
                  file=sys.stderr)
            return 2
        overrides[node][param] = value
    for node, params in apply_model_hints(a.bringup, overrides).items():  # the model's own settings, below --set
        print(f"model settings for {node}: {', '.join(f'{k}={v}' for k, v in params.items())}")
    nodes = bringup_nodes(a.bringup, overrides)
    print(f"robot profile {robot} for {', '.join(n for n in nodes if n in ROBOT_NODES)}")
    with Bringup(nodes, overrides, namespace=a.namespace) as b:
        print(f"running {', '.join(nodes)}; Ctrl-C stops")
        if overrides.get("executor", {}).get("dry_run") is True:
            print("executor in DRY RUN: commands are logged, not sent (--set executor.dry_run=false to move the arm)")
        try:
            while not b.dead():
                time.sleep(0.5)
            print(f"node(s) exited: {b.dead()}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            return 0


def _lazy(module: str, name: str = "run") -> Callable[[object], int]:
    """`module.name(options)`, imported only when its command runs (torch, rclpy and pybullet are slow to import);
    exit status 0 when it returns."""
    def run(o: object) -> int:
        getattr(importlib.import_module(module), name)(o)
        return 0
    return run


# command: (options dataclass "module:Class", what runs it, help)
COMMANDS: dict[str, tuple[str, Callable[[object], int], str]] = {
    "demo": ("molevla_ros.demo:DemoOptions", demo, "simulated Franka + all nodes, one language goal, printed result"),
    "eval-expert": ("molevla_ros.bench.evaluate:ExpertEvalOptions",
                    _lazy("molevla_ros.bench.evaluate", "evaluate_expert"),
                    "scripted-expert success rate per task family (in-process, sim time)"),
    "collect": ("molevla_ros.record.collect:CollectOptions", _lazy("molevla_ros.record.collect", "collect"),
                "record scripted-expert episodes to MCAP (ROS 2 schemas)"),
    "dataset": ("molevla_ros.dataset.from_bags:DatasetOptions", _lazy("molevla_ros.dataset.from_bags"),
                "from-bags: rosbag2 recordings of a robot (camera, joint states, goals) -> a LeRobot dataset that "
                "`molevla train --data` reads"),
    "train": ("molevla_ros.train.config:TrainConfig", train,
              "train a MoLe-VLA stage on recorded episodes (resumable)"),
    "eval-policies": ("molevla_ros.bench.evaluate:EvalOptions", _lazy("molevla_ros.bench.evaluate"),
                      "closed-loop success/FLOPs/latency of trained MoLe-VLA variants"),
    "import-cogact": ("molevla_ros.model.import_cogact:ImportOptions", import_cogact,
                      "convert a released CogACT checkpoint into a model folder the policy node runs "
                      "(backend:=mole_torch model_dir:=OUT)"),
    "bench-loop": ("molevla_ros.bench.loop_latency:LoopBenchOptions", _lazy("molevla_ros.bench.loop_latency"),
                   "node/transport latency: image in -> chunk out, executor rate/jitter"),
    "bench-backends": ("molevla_ros.bench.backends:BackendBenchOptions", _lazy("molevla_ros.bench.backends"),
                       "policy step latency/throughput per backend, full vs MoLe keep ratios"),
    "bench-smoothness": ("molevla_ros.bench.smoothness:SmoothnessOptions", _lazy("molevla_ros.bench.smoothness"),
                         "velocity jumps and jerk at chunk boundaries, recorded episodes"),
    "bench-delay": ("molevla_ros.bench.delay:DelayOptions", _lazy("molevla_ros.bench.delay"),
                    "closed-loop success and chunk-boundary jumps under inference delay, per executor mode "
                    "(incl. real-time chunking)"),
    "bench-keep": ("molevla_ros.bench.keep_sweep:KeepSweepOptions", _lazy("molevla_ros.bench.keep_sweep"),
                   "closed-loop success and step latency per number of decoder layers kept (the compute knob)"),
    "bench-push": ("molevla_ros.bench.push_outcomes:PushOutcomeOptions", _lazy("molevla_ros.bench.push_outcomes"),
                   "how push episodes end (ok, never moved, sideways, ...) for models and the noisy expert"),
    "bench-faults": ("molevla_ros.bench.faults:FaultOptions", bench_faults,
                     "fault suite on the simulated loop: time to halt, limit violations, crashes"),
    "bench-false-halts": ("molevla_ros.bench.false_halts:FalseHaltOptions", _lazy("molevla_ros.bench.false_halts"),
                          "false halts per minute under CPU load vs time to halt after SIGKILL, per liveliness "
                          "lease"),
    "bench-model-memory": ("molevla_ros.bench.model_memory:MemoryOptions", _lazy("molevla_ros.bench.model_memory"),
                           "peak host memory of importing a CogACT checkpoint and of loading it for serving"),
    "bench-route-agreement": ("molevla_ros.bench.route_agreement:RouteAgreementOptions",
                              _lazy("molevla_ros.bench.route_agreement"),
                              "how stable trained STAR routes are under training noise"),
    "export-onnx": ("molevla_ros.cli:ExportOptions", export_onnx,
                    "export a model's per-layer ONNX graph set (cached by model hash)"),
    "build-engines": ("molevla_ros.cli:EngineOptions", build_engines,
                      "build (or verify cached) TensorRT engines ahead of time"),
}


def options_class(spec: str) -> type:
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


class _KeepHyphenatedWords(argparse.HelpFormatter):
    """Help lines wrap at spaces only: "held-out" and "--flag" values stay whole."""

    def _split_lines(self, text: str, width: int) -> list[str]:
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="molevla", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    la = sub.add_parser("launch", help="bring up the nodes of the sim or robot bring-up (like ros2 launch)")
    la.add_argument("bringup", nargs="?", default="sim", choices=["sim", "robot"],
                    help="sim: simulator + all nodes; robot: the nodes for your robot's own stack (default sim)")
    la.add_argument("--robot", default="", help="robot profile: a name (panda_sim, fr3) or a YAML path (default: "
                    "panda_sim for sim, fr3 for robot)")
    la.add_argument("--namespace", default="")
    la.add_argument("--set", action="append", metavar="NODE.PARAM=VALUE", help="override a parameter")
    argv = sys.argv[1:] if argv is None else argv
    chosen = next((a for a in argv if not a.startswith("-")), None)
    for name, (spec, _, text) in COMMANDS.items():
        p = sub.add_parser(name, help=text, description=text, formatter_class=_KeepHyphenatedWords)
        if name == chosen:  # only the chosen command's options module is imported
            add_options(p, options_class(spec))
    a = ap.parse_args(argv)
    if a.command == "launch":
        return launch(a)
    spec, fn, _ = COMMANDS[a.command]
    return fn(from_options(options_class(spec), a))


if __name__ == "__main__":
    sys.exit(main())
