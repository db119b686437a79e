"""A colcon workspace with this repository's two packages, built and run as a ROS install would (colcon from
PyPI, ament_cmake and the rosidl generators from the Jazzy wheels that scripts/build_interfaces.sh installs)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import rclpy

from molevla_ros.bringup import use_local_domain

ROOT = Path(__file__).resolve().parents[2]  # the repository: molevla_ros/ and molevla_interfaces/
VENV_BIN = Path(sys.executable).parent


@pytest.mark.timeout(900)
def test_colcon_workspace_builds_both_packages_and_serves_the_goal_action(tmp_path, domain):
    if not (VENV_BIN / "colcon").exists():
        pytest.skip("colcon not installed (the test extra installs colcon-common-extensions)")
    ws = tmp_path / "ws"
    for pkg in ("molevla_ros", "molevla_interfaces"):
        shutil.copytree(ROOT / pkg, ws / "src" / pkg, ignore=shutil.ignore_patterns(
            "__pycache__", ".pytest_cache", "*.egg-info", "build", "install", "log"))
    env = {**os.environ, "PATH": f"{VENV_BIN}:{os.environ['PATH']}", "AMENT_PREFIX_PATH": sys.prefix,
           "CMAKE_PREFIX_PATH": sys.prefix}
    found = subprocess.run(["colcon", "list", "--names-only"], cwd=ws, env=env, capture_output=True, text=True,
                           check=True).stdout.split()
    assert sorted(found) == ["molevla_interfaces", "molevla_ros"]
    build = subprocess.run(["colcon", "build", "--cmake-args", "-G", "Ninja", "-DBUILD_TESTING=OFF",
                            f"-DPython3_EXECUTABLE={sys.executable}"], cwd=ws, env=env, capture_output=True,
                           text=True)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]

    # The environment `source install/setup.bash` gives, without the checkout on PYTHONPATH.
    shutil.rmtree(ws / "src")
    clean = {k: v for k, v in env.items() if k not in ("PYTHONPATH", "AMENT_PREFIX_PATH", "CMAKE_PREFIX_PATH")}
    dump = subprocess.run(["bash", "-c", "source install/setup.bash && env -0"], cwd=ws, env=clean,
                          capture_output=True, text=True, check=True).stdout
    installed = dict(line.split("=", 1) for line in dump.split("\0") if "=" in line)
    probe = ("import molevla_ros, molevla_interfaces.action as a, molevla_ros.paths as b; "
             "print(molevla_ros.__file__, a.__file__, b.config_dir(), b.resolve_model('mole_locator'))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=installed, capture_output=True, text=True,
                         check=True).stdout.split()
    install = ws / "install"
    assert all(path.startswith(str(install)) for path in out), out
    assert Path(out[2], "policy.yaml").is_file() and Path(out[3], "config.json").is_file(), out

    # The installed instruction node serves the action to a client in this (checkout) process.
    use_local_domain(domain)
    installed.update({k: os.environ[k] for k in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE")})
    log = (tmp_path / "instruction.log").open("w")
    node = subprocess.Popen([str(install / "molevla_ros" / "lib" / "molevla_ros" / "instruction_node")],
                            cwd=tmp_path, env=installed, stdout=log, stderr=subprocess.STDOUT)
    rclpy.init()
    try:
        from ros_harness import GoalClient, Probe

        probe = Probe()
        client = GoalClient(probe)
        handle = client.send("touch the red cube")
        assert handle.accepted
        cancel = handle.cancel_goal_async()
        probe.wait_for(cancel.done, what="the cancel answer")
        _, result = client.result(handle)
        assert (result.outcome, result.reason) == ("stopped", "action goal canceled")
        probe.destroy_node()
    finally:
        rclpy.try_shutdown()
        node.terminate()
        node.wait(10)
        log.close()
    assert "not built" not in (tmp_path / "instruction.log").read_text()
