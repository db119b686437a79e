"""Config and launch files agree with the code: declared parameters, defaults, executables."""
import ast
import importlib
import importlib.util
from pathlib import Path

import pytest
import yaml

from molevla_ros.bringup import NODES, PROFILES, config_dir

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
    setup = (ROOT / "setup.py").read_text()
    assert 'NODES = ["camera", "instruction", "policy", "executor", "sim"]' in setup
    assert set(PROFILES["sim"]) == set(NODES)


@pytest.mark.parametrize("launch_file", ["sim.launch.py", "molevla.launch.py"])
def test_launch_files(launch_file):
    src = (ROOT / "launch" / launch_file).read_text()
    tree = ast.parse(src)
    assert any(isinstance(f, ast.FunctionDef) and f.name == "generate_launch_description" for f in tree.body)
    if importlib.util.find_spec("launch_ros") is None:
        pytest.skip("launch_ros is not installable from PyPI; the launch description is built on ROS installs only")
    spec = importlib.util.spec_from_file_location("lf", ROOT / "launch" / launch_file)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.generate_launch_description().entities
