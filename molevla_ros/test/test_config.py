"""Config and launch files agree with the code: declared parameters, defaults, executables."""
import ast
import importlib
import importlib.util
import os
from pathlib import Path

import pytest
import yaml

from molevla_ros.bringup import BRINGUPS, NODES
from molevla_ros.paths import config_dir

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name", list(NODES))
def test_yaml_matches_declared_parameters(name):
    params = importlib.import_module(NODES[name]).PARAMS
    doc = yaml.safe_load((config_dir() / f"{name}.yaml").read_text())
    assert list(doc) == [f"/**/{name}"]
    values = doc[f"/**/{name}"]["ros__parameters"]
    assert values == {p.name: p.default for p in params}
    assert all(p.description for p in params)


def test_every_node_has_a_console_script():
    """The installed entry points (what `ros2 run molevla_ros <node>_node` and the CLI execute) load each node's
    main, and the sim profile brings up exactly these nodes."""
    from importlib.metadata import entry_points

    scripts = {e.name: e for e in entry_points(group="console_scripts") if e.value.startswith("molevla_ros.")}
    for name, module in NODES.items():
        entry = scripts.get(f"{name}_node")
        assert entry is not None, f"no console script {name}_node installed"
        assert entry.module == module and entry.load() is importlib.import_module(module).main
    assert scripts["molevla"].load() is importlib.import_module("molevla_ros.cli").main
    assert set(BRINGUPS["sim"]) == set(NODES)


@pytest.mark.parametrize("launch_file", ["sim.launch.py", "molevla.launch.py", "fr3.launch.py"])
def test_launch_files(launch_file):
    src = (ROOT / "launch" / launch_file).read_text()
    tree = ast.parse(src)
    assert any(isinstance(f, ast.FunctionDef) and f.name == "generate_launch_description" for f in tree.body)
    if importlib.util.find_spec("launch_ros") is None:
        pytest.skip("launch_ros is not installable from PyPI; the launch description is built on ROS installs only")
    if launch_file == "fr3.launch.py":
        from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

        try:
            get_package_share_directory("franka_fr3_moveit_config")
        except PackageNotFoundError:
            pytest.skip("franka_ros2 (franka_fr3_moveit_config) is not installed")
    spec = importlib.util.spec_from_file_location("lf", ROOT / "launch" / launch_file)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.generate_launch_description().entities


def test_every_training_option_is_on_the_command_line_with_its_default(capsys, monkeypatch):
    """`molevla train` options come from TrainConfig: each field settable, defaults from the dataclass only."""
    import dataclasses

    from molevla_ros import cli
    from molevla_ros.train.config import TrainConfig

    captured = {}
    spec, _, text = cli.COMMANDS["train"]
    monkeypatch.setitem(cli.COMMANDS, "train", (spec, lambda tc: captured.setdefault("tc", tc) and 0, text))
    cli.main(["train", "--out", "runs/x", "--ema", "0.9", "--save-every", "7", "--keep-ratio", "0.25"])
    tc = captured["tc"]
    default_steps = next(f.default for f in dataclasses.fields(TrainConfig) if f.name == "steps")
    assert (tc.out, tc.ema, tc.save_every, tc.keep_ratio, tc.steps) == ("runs/x", 0.9, 7, 0.25, default_steps)
    with pytest.raises(SystemExit):
        cli.main(["train", "--stage", "teacherr", "--out", "x"])  # not one of the stages
    assert "invalid choice" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["demo", "eval-expert", "collect", "train", "eval-policies", "import-cogact",
                                     "bench-loop", "bench-backends", "bench-smoothness", "bench-faults",
                                     "bench-false-halts", "bench-route-agreement", "export-onnx", "build-engines"])
def test_every_command_option_comes_from_its_dataclass(command, capsys, monkeypatch):
    """Each command's --help lists every field of its options dataclass with the dataclass default, and parsing
    nothing but the required values gives exactly the dataclass built with those values."""
    import dataclasses

    from molevla_ros import cli
    from molevla_ros.config_cli import REQUIRED

    spec, _, text = cli.COMMANDS[command]
    cls = cli.options_class(spec)
    with pytest.raises(SystemExit):
        cli.main([command, "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    required: dict[str, object] = {}
    argv = [command]
    for f in dataclasses.fields(cls):
        if f.default is REQUIRED:
            required[f.name] = ("a", "b") if f.metadata.get("positional") and "tuple" in str(f.type) else "x"
            argv += list(required[f.name]) if f.metadata.get("positional") else ["--" + f.name.replace("_", "-"), "x"]
            if f.metadata.get("positional"):
                assert f.name in shown
            else:
                assert f"--{f.name.replace('_', '-')}" in shown and "(required)" in shown
            continue
        option = "--" + f.name.replace("_", "-")
        default = ",".join(map(str, f.default)) if isinstance(f.default, tuple) else str(f.default)
        assert option in shown and f"(default: {default})" in shown, (command, f.name)
    got = {}
    monkeypatch.setitem(cli.COMMANDS, command, (spec, lambda o: got.setdefault("o", o) and 0, text))
    assert cli.main(argv) == 0
    assert got["o"] == cls(**required)


def test_launch_arguments_override_the_yaml_only_when_given():
    """What launch/*.launch.py passes to each node on top of config/*.yaml (the logic is a plain function, so
    it is tested here although launch_ros cannot be installed from PyPI)."""
    from molevla_ros.bringup import BRINGUP_DEFAULTS, BRINGUPS, LAUNCH_ARGUMENTS, bringup_nodes, launch_overrides
    from molevla_ros.nodes import executor_node, policy_node, sim_node

    declared = {"executor": executor_node.PARAMS, "policy": policy_node.PARAMS, "sim": sim_node.PARAMS}
    for arg, (nodes, param, _) in LAUNCH_ARGUMENTS.items():
        for node in nodes:
            assert param in {p.name for p in declared[node]}, f"launch argument {arg} sets an undeclared {node}.{param}"
    # nothing given: the YAML decides (only the bring-up's own defaults: the robot's dry run)
    assert launch_overrides("robot", {}) == {n: BRINGUP_DEFAULTS["robot"].get(n, {}) for n in BRINGUPS["robot"]}
    assert launch_overrides("sim", {k: "" for k in LAUNCH_ARGUMENTS}) == {n: {} for n in BRINGUPS["sim"]}
    got = launch_overrides("robot", {"backend": "mole_onnx", "dry_run": "false", "seed": "7", "use_sim_time": "true",
                                     "robot": "fr3"})
    assert got["policy"]["backend"] == "mole_onnx" and got["executor"]["dry_run"] is False
    assert got["policy"]["robot"] == got["executor"]["robot"] == "fr3" and "robot" not in got["camera"]
    assert "sim" not in got and all(p["use_sim_time"] is True for p in got.values())
    assert launch_overrides("sim", {"seed": "7"})["sim"] == {"seed": 7}
    # image_source raw: no camera node; the policy reads image_raw and the executor watches it
    raw = launch_overrides("robot", {"image_source": "raw"})
    assert bringup_nodes("robot", raw) == ["instruction", "policy", "executor"]
    assert raw["policy"]["image_source"] == raw["executor"]["image_source"] == "raw"
    assert bringup_nodes("sim", launch_overrides("sim", {})) == BRINGUPS["sim"]


def test_installed_layout_finds_config_and_models(tmp_path):
    """A non-editable install (as colcon or pip installs it, here `pip install --prefix` into a temporary tree): the
    installed package finds its config and shipped models under PREFIX/share/molevla_ros, through the ament index
    and, without one, from its own location; the console scripts are installed."""
    import shutil
    import subprocess
    import sys

    root = ROOT
    src, prefix = tmp_path / "src", tmp_path / "prefix"
    src.mkdir()
    for name in ("setup.py", "setup.cfg", "package.xml"):
        shutil.copy(root / name, src / name)
    for name in ("src", "resource", "launch", "config", "models"):
        shutil.copytree(root / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    # --ignore-installed: pip would otherwise uninstall the editable install of this environment first.
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--ignore-installed", "--prefix", str(prefix), str(src)], check=True, capture_output=True)
    shutil.rmtree(src)  # nothing may come from the source tree
    site = prefix / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    probe = ("import molevla_ros, molevla_ros.paths as b; "
             "print(molevla_ros.__file__); print(b.config_dir()); print(b.resolve_model('mole_locator'))")
    share = prefix / "share" / "molevla_ros"
    for ament in (str(prefix), None):
        env = {k: v for k, v in os.environ.items() if k != "AMENT_PREFIX_PATH"}
        env.update(PYTHONPATH=str(site), **({"AMENT_PREFIX_PATH": ament} if ament else {}))
        out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True,
                             check=True).stdout.split()
        assert out[0].startswith(str(site)), out  # the installed copy, not the checkout
        assert out[1] == str(share / "config") and out[2] == str(share / "models" / "mole_locator"), out
        assert (Path(out[2]) / "config.json").is_file() and (Path(out[1]) / "policy.yaml").is_file()
    assert (prefix / "share" / "ament_index" / "resource_index" / "packages" / "molevla_ros").is_file()
    assert all((prefix / "bin" / f"{n}_node").is_file() for n in ("camera", "instruction", "policy", "executor"))


def test_fr3_servo_config_fits_the_fr3_profile():
    """config/fr3_servo.yaml agrees with the fr3 robot profile (the executor's side) and with what Jazzy's
    joint_trajectory_controller accepts by default. Every key is one Jazzy's Servo declares (test_fr3 starts the
    Servo stand-in with this file: it refuses unknown keys)."""
    from molevla_ros.nodes.executor_node import PARAMS
    from molevla_ros.robot_profile import load

    fr3 = load("fr3")
    servo = yaml.safe_load((ROOT / "config" / "fr3_servo.yaml").read_text())["servo_node"]["ros__parameters"]
    s = servo["moveit_servo"]
    executor = {p.name: p.default for p in PARAMS}
    assert s["move_group_name"] == fr3.planning_group
    assert s["command_in_type"] == "speed_units"  # the executor's twists are m/s and rad/s
    assert (s["scale"]["linear"], s["scale"]["rotational"]) == (fr3.servo.scale_linear, fr3.servo.scale_rotational)
    assert fr3.limits.max_linear_speed <= s["scale"]["linear"]
    assert fr3.limits.max_angular_speed <= s["scale"]["rotational"]
    assert "servo_node/" + s["cartesian_command_in_topic"].removeprefix("~/") == fr3.twist_topic
    assert s["command_out_topic"] == fr3.joint_trajectory_topic and s["joint_topic"] == fr3.joint_states
    assert s["command_out_type"] == "trajectory_msgs/JointTrajectory"
    # Jazzy's JTC refuses a trajectory ending with non-zero velocity (allow_nonzero_velocity_at_trajectory_end)
    assert s["publish_joint_positions"] and not s["publish_joint_velocities"] and not s["publish_joint_accelerations"]
    # Servo outpaces the executor and keeps moving through one late command, not through a dead executor
    period = 1.0 / executor["rate_hz"]
    assert s["publish_period"] <= period < s["incoming_command_timeout"] <= 0.2


def test_realtime_priority_puts_every_thread_on_sched_fifo_or_says_why_not():
    """In a child process (the test process keeps its scheduler): every thread, also one started before the call,
    ends on SCHED_FIFO at the priority, or the function returns why it could not; 0 changes nothing."""
    import subprocess
    import sys

    code = """
import os, threading, time
from molevla_ros.nodes.process import set_realtime_priority
threading.Thread(target=time.sleep, args=(2,), daemon=True).start()
assert set_realtime_priority(0) is None and os.sched_getscheduler(0) == os.SCHED_OTHER
problem = set_realtime_priority(7)
tids = [int(t) for t in os.listdir('/proc/self/task')]
print(problem or [(os.sched_getscheduler(t), os.sched_getparam(t).sched_priority) for t in tids])
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    line = out.stdout.strip().splitlines()[-1]
    if "not applied" in line:  # no rtprio limit here: said, not raised
        assert line.startswith("realtime_priority 7 not applied")
    else:
        import ast
        import os

        threads = ast.literal_eval(line)
        assert len(threads) >= 2 and all(t == (os.SCHED_FIFO, 7) for t in threads), threads
