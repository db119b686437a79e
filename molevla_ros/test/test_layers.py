"""The product's layers: the robot-facing nodes, the model, the backends, control and input checks run without the
simulator (a robot has no PyBullet), and the core never imports the simulator's modules."""
import re
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "molevla_ros"
ROBOT_FACING = ["nodes/camera_node.py", "nodes/instruction_node.py", "nodes/goal_action.py", "nodes/policy_node.py",
                "nodes/executor_node.py", "nodes/robot_interfaces.py", "nodes/franka.py"]
BLOCK = """
import sys
class Blocked:
    def find_module(self, name, path=None):
        return self if name.split('.')[0] in ('pybullet', 'pybullet_data', 'matplotlib', 'mcap') else None
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('pybullet', 'pybullet_data', 'matplotlib', 'mcap'):
            raise ImportError(f'{name} is blocked: the product must run without it')
        return None
sys.meta_path.insert(0, Blocked())
"""


def test_robot_facing_nodes_and_the_model_import_without_the_simulator():
    """With pybullet, matplotlib and mcap blocked: the camera, instruction, policy and executor nodes, the MoLe
    backends and the model load, and the policy node builds its default backend."""
    code = BLOCK + """
import importlib
for m in ['molevla_ros.nodes.camera_node', 'molevla_ros.nodes.instruction_node', 'molevla_ros.nodes.policy_node',
          'molevla_ros.nodes.executor_node', 'molevla_ros.backends.mole', 'molevla_ros.model.mole_vla',
          'molevla_ros.model.io', 'molevla_ros.control.chunk_executor', 'molevla_ros.inputs.images']:
    importlib.import_module(m)
from molevla_ros.backends.registry import make_backend
from molevla_ros.paths import DEFAULT_MODEL
backend = make_backend('mole_torch', model_dir=DEFAULT_MODEL)
assert 'pybullet' not in sys.modules and 'molevla_ros.sim' not in sys.modules, sorted(sys.modules)
print('ok', backend.name)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok mole_torch"), out.stderr[-3000:]


def test_the_core_and_the_robot_facing_nodes_never_import_the_simulator():
    """No import statement of the simulator in them (the backend registry names the simulator's scripted expert by
    module, loaded only when that backend is chosen: the test above shows nothing else loads it)."""
    files = [p for d in ("model", "backends", "control", "inputs") for p in (SRC / d).rglob("*.py")]
    files += [SRC / f for f in ROBOT_FACING]
    hits = [f"{p.relative_to(SRC)}:{i}" for p in files for i, line in enumerate(p.read_text().splitlines(), 1)
            if re.search(r"^\s*(from|import) molevla_ros\.sim\b", line)]
    assert not hits, hits
