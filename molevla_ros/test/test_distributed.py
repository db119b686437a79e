"""Training in several processes (torchrun, FSDP2 over gloo on CPU) on a dataset converted from rosbag2 recordings:
the same result as one process with the same global batch, and an exact resume from a sharded checkpoint."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from bag_recordings import Recording, write_bag
from molevla_ros.dataset.from_bags import DatasetOptions, convert


def _train(out: Path, data: Path, processes: int, *args: str) -> list[dict]:
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}"]
    cmd = [*(launcher if processes > 1 else [sys.executable]), "-m", "molevla_ros.cli", "train", "--data", str(data),
           "--out", str(out), "--batch", "8", "--threads", "1", "--wording", "canonical", "--save-every", "1000",
           *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    history = out / "history.json"
    return json.loads(history.read_text()) if history.exists() else []


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(folder / "model.safetensors")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("dist")
    bags = [write_bag(root / f"bag{i}", Recording(goals=[(0.0, goal)]))
            for i, goal in enumerate(("touch the red cube", "push the blue cube to the green target"))]
    convert(DatasetOptions(action="from-bags", bags=tuple(map(str, bags)), out=str(root / "ds"), image_size=96))
    return root / "ds"


@pytest.mark.integration
def test_two_processes_equal_one_with_the_same_global_batch_and_resume_exactly(dataset, tmp_path):
    two = _train(tmp_path / "two", dataset, 2, "--steps", "4", "--activation-checkpointing")
    one = _train(tmp_path / "one", dataset, 1, "--steps", "4", "--accumulate", "2", "--activation-checkpointing")
    assert [h["step"] for h in two] == [0, 3]
    for a, b in zip(one, two):  # fp32 sums in another order: 1e-5 relative
        for k in ("diffusion", "aux"):
            assert b[k] == pytest.approx(a[k], rel=1e-5), (k, a, b)
    w1, w2 = _weights(tmp_path / "one"), _weights(tmp_path / "two")
    assert max((w1[k].float() - w2[k].float()).abs().max().item() for k in w1) < 1e-5

    # The MoLe stage (router + CogKD from the EMA full-depth teacher) from that model, straight and interrupted.
    mole = ("--stage", "mole", "--init", str(tmp_path / "two"), "--steps", "4")
    _train(tmp_path / "mole", dataset, 2, *mole)
    assert _train(tmp_path / "cut", dataset, 2, *mole, "--stop-at", "2") == []
    assert (tmp_path / "cut" / "checkpoint" / "trainer.pt").exists()
    assert len(list((tmp_path / "cut" / "checkpoint").glob("*.distcp"))) == 2  # one shard file per process
    resumed = _train(tmp_path / "cut", dataset, 2, *mole)
    assert [h["step"] for h in resumed] == [0, 3] and not (tmp_path / "cut" / "checkpoint").exists()
    full, cut = _weights(tmp_path / "mole"), _weights(tmp_path / "cut")
    assert all(torch.equal(full[k], cut[k]) for k in full), "the resumed run continues exactly"
    assert any(not torch.equal(full[k], _weights(tmp_path / "two")[k]) for k in full)  # (it did train)


def test_what_cannot_be_split_is_refused():
    from molevla_ros.train.config import TrainConfig
    from molevla_ros.train.parallel import Parallel
    from molevla_ros.train.trainer import _check_parallel

    two = Parallel(rank=0, world=2)
    assert _check_parallel(TrainConfig(out="x", batch=8, accumulate=2), two) == 2
    with pytest.raises(ValueError, match="does not split into 2 processes x --accumulate 3"):
        _check_parallel(TrainConfig(out="x", batch=8, accumulate=3), two)
    with pytest.raises(ValueError, match="trains in one process only"):
        _check_parallel(TrainConfig(out="x", stage="random"), two)
    assert _check_parallel(TrainConfig(out="x", stage="random", batch=8), Parallel()) == 8


def test_bf16_autocast_trains_in_one_process(dataset, tmp_path):
    from molevla_ros.train.config import TrainConfig
    from molevla_ros.train.trainer import train

    history = train(TrainConfig(out=str(tmp_path / "bf16"), data=str(dataset), steps=2, batch=4, precision="bf16",
                                wording="canonical", freeze_vision=True))
    assert all(torch.isfinite(torch.tensor(h["diffusion"])) for h in history)
    from molevla_ros.model.config import small
    from molevla_ros.model.mole_vla import MoLeVLA

    torch.manual_seed(0)  # train() seeds the same way before it builds the model
    fresh = MoLeVLA(small()).state_dict()
    saved = _weights(tmp_path / "bf16")
    vision = [k for k in saved if k.startswith("vision.") and saved[k].is_floating_point()]
    assert vision and all(torch.equal(saved[k], fresh[k]) for k in vision), "--freeze-vision keeps the encoder"
    assert not all(torch.equal(saved[k], fresh[k]) for k in saved if k.startswith("llm."))
