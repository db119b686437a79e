"""Start the node processes the launch files start, without ros2 launch (for pip installs).

Each node runs as its own process with its YAML from config/ plus optional overrides, exactly as
`launch/*.launch.py` does on a ROS install.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from molevla_ros.paths import config_dir

NODES = {
    "sim": "molevla_ros.nodes.sim_node",
    "camera": "molevla_ros.nodes.camera_node",
    "instruction": "molevla_ros.nodes.instruction_node",
    "policy": "molevla_ros.nodes.policy_node",
    "executor": "molevla_ros.nodes.executor_node",
}
BRINGUPS = {
    "sim": ["sim", "camera", "instruction", "policy", "executor"],  # everything, on the simulated Franka
    "robot": ["camera", "instruction", "policy", "executor"],  # a real camera and the robot's stack supply the rest
}
# Per-bring-up parameter defaults on top of config/*.yaml: on a real robot the executor starts in dry run (commands
# are logged, nothing is sent) until the operator passes dry_run false. Robot facts come from the robot profile.
BRINGUP_DEFAULTS: dict[str, dict[str, dict[str, object]]] = {
    "sim": {},
    "robot": {"executor": {"dry_run": True}},
}
ROBOT_NODES = ("policy", "executor")  # the nodes that read the robot profile (the simulator is panda_sim)


# Launch arguments of launch/*.launch.py: argument -> (nodes, parameter, description). An argument left empty
# (its default) keeps the value of config/*.yaml or the bring-up default; only a given one overrides.
LAUNCH_ARGUMENTS = {
    "robot": (ROBOT_NODES, "robot", "Robot profile: panda_sim, fr3, or the path of your own robots/*.yaml copy "
              "(joint names and limits, frames, end-effector limits, gripper, topics)."),
    "backend": (("policy",), "backend", "Policy backend: mole_torch, mole_onnx, mole_tensorrt, or scripted_expert "
                "(simulation only)."),
    "model_dir": (("policy",), "model_dir", "Policy model folder (absolute, or a name under the package's models/), "
                  "e.g. one written by molevla import-cogact."),
    "device": (("policy",), "device", "Policy device for mole_torch / mole_tensorrt (cpu, cuda, ...)."),
    "precision": (("policy",), "precision", "Policy precision: fp32, fp16 (GPU), bf16 (mole_torch on GPU)."),
    "blend": (("executor",), "blend", "Executor chunk blending: average, latest or adaptive (CogACT's ensemble)."),
    "interface": (("executor",), "interface", "Executor robot interface: servo (MoveIt Servo twists), "
                  "joint_trajectory (the joint trajectory controller) or moveit_py."),
    "dry_run": (("executor",), "dry_run", "Executor logs commands instead of sending them (the robot bring-up "
                "starts with true)."),
    "image_source": (("policy",), "image_source", "raw: the policy reads the camera driver's image_raw itself (one "
                     "DDS hop less; no camera node); camera: the camera node's resized frames (the YAML default)."),
    "task_family": (("sim",), "task_family", "Simulated scene: touch, push or pick_place."),
    "seed": (("sim",), "seed", "Simulated layout seed."),
}


def launch_overrides(bringup: str, given: dict[str, str]) -> dict[str, dict[str, object]]:
    """Parameters per node on top of config/*.yaml (and an optional params file): the bring-up's defaults, then
    each launch argument that was given (non-empty; values parsed as YAML scalars: true, 3, 0.5, text), then
    use_sim_time for every node when given."""
    import yaml

    out = {n: dict(BRINGUP_DEFAULTS[bringup].get(n, {})) for n in BRINGUPS[bringup]}
    for arg, (nodes, param, _) in LAUNCH_ARGUMENTS.items():
        value = given.get(arg, "")
        for node in nodes:
            if value != "" and node in out:
                out[node][param] = yaml.safe_load(value)
    if given.get("use_sim_time", "") != "":
        for params in out.values():
            params["use_sim_time"] = bool(yaml.safe_load(given["use_sim_time"]))
    return out


def model_hint_params(bringup: str, overrides: dict[str, dict[str, object]]) -> dict[str, dict[str, object]]:
    """The serving model's own parameters (molevla_ros.model_hints: camera resize filter, policy rate, executor
    blending and plausible speeds) for the bring-up's nodes, minus any the overrides already set; {} when the policy
    runs no model folder (the scripted expert). They go below a params file and the launch arguments."""
    import yaml

    from molevla_ros.model_hints import hints
    from molevla_ros.paths import resolve_model

    yaml_policy = yaml.safe_load((config_dir() / "policy.yaml").read_text())["/**/policy"]["ros__parameters"]
    policy = {**yaml_policy, **overrides.get("policy", {})}
    if not str(policy["backend"]).startswith("mole_"):
        return {}
    found = hints(resolve_model(str(policy["model_dir"])))
    return {n: {k: v for k, v in found[n].items() if k not in overrides.get(n, {})}
            for n in BRINGUPS[bringup] if found.get(n)}


def apply_model_hints(bringup: str, overrides: dict[str, dict[str, object]]) -> dict[str, dict[str, object]]:
    """Add the model's own parameters (model_hint_params) to `overrides` in place, where they set nothing already;
    returns what was added."""
    hints = model_hint_params(bringup, overrides)
    for node, params in hints.items():
        overrides[node] = {**params, **overrides.get(node, {})}
    return hints


def bringup_nodes(bringup: str, overrides: dict[str, dict[str, object]]) -> list[str]:
    """The bring-up's nodes for these overrides: without the camera node when the policy reads raw frames
    (policy image_source raw), and then the executor watches the raw frames too (unless set otherwise)."""
    if overrides.get("policy", {}).get("image_source") != "raw":
        return BRINGUPS[bringup]
    overrides.setdefault("executor", {}).setdefault("image_source", "raw")
    return [n for n in BRINGUPS[bringup] if n != "camera"]


def _param_value(v: object) -> str:
    return str(v).lower() if isinstance(v, bool) else str(v)


def node_command(name: str, overrides: dict[str, object] | None = None, namespace: str = "") -> list[str]:
    cmd = [sys.executable, "-m", NODES[name], "--ros-args", "--params-file", str(config_dir() / f"{name}.yaml")]
    for k, v in (overrides or {}).items():
        cmd += ["-p", f"{k}:={_param_value(v)}"]
    if namespace:
        cmd += ["-r", f"__ns:={namespace}"]
    return cmd


def ros_environment() -> dict[str, str]:
    """Environment defaults for molevla processes: the large-frame Fast DDS profile unless one is set."""
    env = {}
    if "FASTRTPS_DEFAULT_PROFILES_FILE" not in os.environ:
        env["FASTRTPS_DEFAULT_PROFILES_FILE"] = str(config_dir() / "fastdds_shm.xml")
    return env


def use_local_domain(domain: int) -> None:
    """Point this process (and the nodes it starts) at a private ROS domain, discovery limited to this host."""
    os.environ["ROS_DOMAIN_ID"] = str(domain)
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    os.environ.update(ros_environment())


class Bringup:
    """The processes of one profile; a context manager that always stops them."""

    def __init__(self, nodes: list[str], overrides: dict[str, dict[str, object]] | None = None,
                 namespace: str = "", log_dir: Path | None = None, env: dict[str, str] | None = None) -> None:
        self.nodes, self.overrides, self.namespace = nodes, overrides or {}, namespace
        self.log_dir, self.env = log_dir, env
        if log_dir:
            log_dir.mkdir(parents=True, exist_ok=True)
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self) -> "Bringup":
        for name in self.nodes:
            self.launch(name)
        return self

    def launch(self, name: str) -> None:
        """Start (or, after it exited, start again) one node's process."""
        env = {**ros_environment(), **os.environ, **(self.env or {}), "PYTHONUNBUFFERED": "1"}
        env = {k: v for k, v in env.items() if v != ""}  # an empty override unsets a variable
        out = open(self.log_dir / f"{name}.log", "a") if self.log_dir else subprocess.DEVNULL
        self.procs[name] = subprocess.Popen(
            node_command(name, self.overrides.get(name), self.namespace), stdout=out, stderr=subprocess.STDOUT,
            env=env, start_new_session=True)

    def dead(self) -> dict[str, int]:
        """Nodes that exited, with their exit codes."""
        return {n: p.returncode for n, p in self.procs.items() if p.poll() is not None}

    def stop(self, timeout: float = 5.0) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        deadline = time.monotonic() + timeout
        for p in self.procs.values():
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def __enter__(self) -> "Bringup":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
