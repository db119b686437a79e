import itertools
import os
import sys
from pathlib import Path

import pytest
from hypothesis import settings

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent / "standins"))  # the upstream stand-ins' pure rules (jtc.py)

# Property tests draw the same examples on every run (a failure reproduces; mutation scores do not vary by luck).
settings.register_profile("deterministic", derandomize=True, database=None)
settings.load_profile("deterministic")

from ros_harness import RosTestSession  # noqa: E402

# A private ROS domain per test (and per pytest process) so parallel runs never hear each other.
_domains = itertools.count(100 + (os.getpid() % 50) * 2)


PACKAGING = ("test_colcon_install.py", "test_installed_layout_finds_config_and_models")


def pytest_collection_modifyitems(items):
    """Tiers: `integration` for every test that starts node processes (it takes the `ros` or `domain` fixture),
    `packaging` for the install tests (colcon, pip --prefix). The fast tier is -m "not integration and not
    packaging"."""
    for item in items:
        if any(p in item.nodeid for p in PACKAGING):
            item.add_marker(pytest.mark.packaging)
        elif {"ros", "domain"} & set(item.fixturenames):
            item.add_marker(pytest.mark.integration)


@pytest.fixture
def domain():
    """A private ROS domain id for a test that starts its own processes."""
    return next(_domains) % 200 + 1


@pytest.fixture
def ros(tmp_path):
    """ros(nodes, overrides) -> a RosTestSession context manager; node logs land in tmp_path."""

    def make(nodes, overrides=None):
        return RosTestSession(nodes, next(_domains) % 200 + 1, overrides, log_dir=tmp_path)

    return make


def tiny_config(keep: float = 0.5, tokenizer: str = "words"):
    """A MoLe-VLA small enough to build and run in milliseconds (6 decoder layers of width 32); tokenizer
    "minilm" reads the frozen MiniLM's features (the encoder itself is full size)."""
    from molevla_ros.model.config import ActionHeadConfig, LLMConfig, MoLeConfig, RouterConfig, VisionConfig

    return MoLeConfig(vision=VisionConfig(image_size=32, patch_size=8, feature_dim=32, film=True, keypoints=4),
                      llm=LLMConfig(hidden=32, layers=6, heads=4, kv_heads=2, intermediate=64, vocab=64, max_text=8,
                                    tokenizer=tokenizer),
                      router=RouterConfig(keep_ratio=keep, proj_dim=16, spatial_hidden=16, temporal_heads=2,
                                          temporal_ff=32),
                      action_head=ActionHeadConfig(width=32, depth=1, heads=2, horizon=4, repeats=2),
                      projector_dims=(64, 32), proprio_fk=True)


@pytest.fixture
def tiny():
    """tiny(keep=0.5, tokenizer="words") -> the config of a tiny MoLe-VLA (see tiny_config)."""
    return tiny_config


@pytest.fixture
def tiny_batch():
    """tiny_batch(b=4, seed=0) -> (images, token ids, valid mask, proprio): random inputs for a tiny model."""
    import torch

    from molevla_ros.model.text import words

    texts = ["touch the red cube", "push the blue cube to the green target", "pick up the yellow cube", "stop"]

    def make(b: int = 4, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        imgs = torch.randint(0, 255, (b, 32, 32, 3), dtype=torch.uint8, generator=g)
        ids, valid = words((texts * b)[:b], tiny_config().llm)
        return imgs, ids, valid, torch.randn(b, 9, generator=g)

    return make


@pytest.fixture(scope="session")
def cogact(tmp_path_factory):
    """A synthetic CogACT release at reduced size (public key layout), its tokenizer, and the imported model
    folder: a namespace with release, tokenizer, model (paths) and report (the importer's)."""
    from types import SimpleNamespace

    from molevla_ros.testing.synthetic_cogact import write_release, write_tokenizer
    from molevla_ros.model.import_cogact import ImportOptions, import_cogact

    root = tmp_path_factory.mktemp("cogact")
    tokenizer = write_tokenizer(root / "tokenizer_src")
    from transformers import AutoTokenizer

    release = write_release(root / "release", vocab=len(AutoTokenizer.from_pretrained(str(tokenizer))))
    report = import_cogact(ImportOptions(str(release), str(tokenizer), str(root / "model"), **COGACT_HEADS))
    return SimpleNamespace(release=release, tokenizer=tokenizer, model=root / "model", report=report)


COGACT_HEADS = {"llm_heads": 4, "vision_heads": (4, 4)}  # of the synthetic release (not visible in shapes)
