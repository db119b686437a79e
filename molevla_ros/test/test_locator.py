"""The goal locator (model/goal_locator.py): it learns where the cube the goal names and its goal are, by colour and
by role, and the teacher trains on top of it."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from molevla_ros.model.goal_locator import CENTRE, SCALE
from molevla_ros.model.io import load_model
from molevla_ros.train.config import TrainConfig
from molevla_ros.train.episodes import Samples
from molevla_ros.train.geometry import with_push_start
from molevla_ros.train.locator import held_out_cm, locate, pretrain_locator
from molevla_ros.train.trainer import train

GOALS = ("push the red cube to the blue target", "push the blue cube to the red target")


def _two_squares(n: int, seed: int) -> Samples:
    """A red and a blue 4 px square at random places; the goal names one as the cube and the other as the target."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, 32, 32, 3), np.uint8)
    geometry = np.zeros((n, 2, 2), np.float32)
    instructions = []
    for i in range(n):
        corners = rng.integers(1, 27, (2, 2))
        while np.abs(corners[0] - corners[1]).max() < 6:
            corners[1] = rng.integers(1, 27, 2)
        centres = [CENTRE + SCALE * ((corner + 1.5) / 14.5 - 1)[::-1] for corner in corners]  # (col, row) -> x, y
        for (r, c), channel in zip(corners, (0, 2)):
            images[i, r:r + 4, c:c + 4, channel] = 255
        red_is_cube = bool(rng.integers(2))
        instructions.append(GOALS[0] if red_is_cube else GOALS[1])
        geometry[i] = centres if red_is_cube else centres[::-1]
    geometry = with_push_start(geometry[:, :2])
    chunks = np.zeros((n, 4, 7), np.float32)
    chunks[:, :, 0] = 0.01 * (geometry[:, 0, 0] - CENTRE[0])[:, None] / SCALE
    return Samples(images, rng.normal(size=(n, 9)).astype(np.float32), chunks, instructions, ["push"] * n,
                   np.arange(n), geometry)


@pytest.mark.parametrize("roles", [False, True])
def test_locator_finds_the_named_cube_and_its_target_and_the_teacher_trains_on_it(tmp_path, tiny, monkeypatch, roles):
    """roles: with one instruction summary per point the two squares are found to a small fraction of their spread
    (the mean summary alone, 3 cm: the two sentences differ little in their token mean)."""
    monkeypatch.setenv("MOLEVLA_CACHE", str(tmp_path / "cache"))
    data, held_out = _two_squares(256, 0), _two_squares(64, 1)
    torch.manual_seed(0)
    hist = pretrain_locator(TrainConfig(out=str(tmp_path / "loc"), stage="locator", steps=600, batch=32, lr=3e-3,
                                        shift=0, wording="canonical", val_every=600, locator_roles=roles),
                            tiny(0.5, "minilm"), data, held_out)
    spread = np.linalg.norm(held_out.geometry[:, :2] - np.nanmean(data.geometry[:, :2], 0), axis=-1).mean(0) * 100
    model = load_model(tmp_path / "loc")
    assert model.locator is not None and model.cfg.sequence_length == tiny(0.5, "minilm").sequence_length + 1
    cm = held_out_cm(model, held_out)
    assert cm == {k[4:-3]: v for k, v in hist[-1].items() if k.startswith("val_")}
    bound = 0.05 if roles else 0.35
    assert cm["cube"] < bound * spread[0] and cm["goal"] < bound * spread[1], (cm, spread)
    # the colours' roles come from the sentence: the other sentence swaps cube and target
    swapped = [GOALS[1] if t == GOALS[0] else GOALS[0] for t in held_out.instructions]
    with torch.no_grad():
        own = locate(model, torch.from_numpy(held_out.images), model.tokenize(held_out.instructions))
        other = locate(model, torch.from_numpy(held_out.images), model.tokenize(swapped))
    assert (own[:, 0] - other[:, 1]).norm(dim=-1).mean() < 0.5 * (own[:, 0] - own[:, 1]).norm(dim=-1).mean()
    hist = train(TrainConfig(out=str(tmp_path / "t"), stage="teacher", init=str(tmp_path / "loc"), steps=20, batch=8,
                             shift=0, wording="canonical", geometry_weight=1.0), data=data)
    assert np.isfinite([h["geometry"] for h in hist if "geometry" in h]).all()
    assert load_model(tmp_path / "t").locator is not None


def test_context_blocks_grow_a_trained_locator_without_changing_it_and_then_learn(tiny, monkeypatch, tmp_path):
    """with_locator(model, n) adds n context blocks that start as the identity (the points do not move) and get
    gradients through their zero-initialised output layer, so training goes on from the locator's current fit."""
    from molevla_ros.model.mole_vla import MoLeVLA
    from molevla_ros.train.geometry import geometry_loss
    from molevla_ros.train.locator import with_locator

    monkeypatch.setenv("MOLEVLA_CACHE", str(tmp_path / "cache"))
    torch.manual_seed(0)
    model = with_locator(MoLeVLA(tiny(0.5, "minilm")).eval())
    data = _two_squares(8, 0)
    images, text = torch.from_numpy(data.images), model.tokenize(data.instructions)
    before = locate(model, images, text)
    with_locator(model, 2)
    assert model.cfg.vision.locator_blocks == 2 and len(model.locator.blocks) == 2
    after = locate(model, images, text)
    torch.testing.assert_close(after, before)
    geometry_loss(after, torch.from_numpy(data.geometry[:, :2])).backward()
    assert all(block.out.weight.grad.abs().sum() > 0 for block in model.locator.blocks)


def test_per_point_summaries_join_a_trained_locator_without_changing_it_and_ignore_padding(tiny, monkeypatch, tmp_path):
    """with_locator(model, roles=True) adds one attention-pooled instruction summary per point whose FiLM layer starts
    at zero (the points do not move) and gets gradients; padding tokens do not reach them."""
    from molevla_ros.model.mole_vla import MoLeVLA, instruction_summary
    from molevla_ros.train.geometry import geometry_loss
    from molevla_ros.train.locator import with_locator

    monkeypatch.setenv("MOLEVLA_CACHE", str(tmp_path / "cache"))
    torch.manual_seed(0)
    model = with_locator(MoLeVLA(tiny(0.5, "minilm")).eval(), 1)
    data = _two_squares(8, 0)
    images, text = torch.from_numpy(data.images), model.tokenize(data.instructions)
    before = locate(model, images, text)
    with_locator(model, 1, roles=True)
    assert model.cfg.vision.locator_roles and model.locator.role_queries is not None
    after = locate(model, images, text)
    torch.testing.assert_close(after, before)
    geometry_loss(after, torch.from_numpy(data.geometry[:, :2])).backward()
    assert model.locator.role_film.weight.grad.abs().sum() > 0
    with torch.no_grad():  # padding does not reach the per-point summaries
        torch.nn.init.normal_(model.locator.role_film.weight, std=0.1)
        ids, valid = model.tokenize(list(GOALS))
        tokens = model.text_tokens(ids)
        padded = torch.cat([tokens, 100 * torch.randn(2, 3, tokens.shape[-1])], 1)
        padded_valid = torch.cat([valid, torch.zeros(2, 3, dtype=valid.dtype)], 1)
        summary = instruction_summary(tokens, valid)
        film = model.locator.film_input(summary, tokens, valid)
        torch.testing.assert_close(model.locator.film_input(summary, padded, padded_valid), film)
        assert (film - model.locator.film(summary)).abs().max() > 0.01  # the summaries count once trained


@pytest.mark.parametrize("locator_input, blocks, roles", [("token", 0, False), ("state", 0, False), ("token", 2, False),
                                                          ("token", 2, True)])
def test_a_model_with_a_locator_serves_the_same_on_torch_and_onnx(tmp_path, tiny, monkeypatch, locator_input, blocks,
                                                                  roles):
    """roles: with per-point instruction summaries."""
    from molevla_ros.backends.base import Observation
    from molevla_ros.backends.mole import make_mole_backend
    from molevla_ros.model.io import save_model
    from molevla_ros.model.mole_vla import MoLeVLA

    monkeypatch.setenv("MOLEVLA_CACHE", str(tmp_path / "cache"))
    cfg = tiny(0.5, "minilm")
    cfg.vision.locator, cfg.vision.locator_input, cfg.vision.locator_blocks = True, locator_input, blocks
    cfg.vision.locator_roles = roles
    torch.manual_seed(0)
    model = MoLeVLA(cfg).eval()
    trained = [block.out.weight for block in model.locator.blocks] + ([model.locator.role_film.weight] if roles else [])
    for weight in trained:  # trained blocks and role summaries are not the identity they start as
        torch.nn.init.normal_(weight, std=0.1)
    save_model(model, tmp_path / "m")
    joints = {f"panda_joint{i}": 0.1 for i in range(1, 8)} | {"panda_finger_joint1": 0.04, "panda_finger_joint2": 0.04}
    image = np.random.default_rng(0).integers(0, 255, (40, 40, 3), dtype=np.uint8)

    def chunk(kind):
        obs = Observation(GOALS[0], joints, {"main": image}, 0.0)
        return make_mole_backend(kind, tmp_path / "m").act(obs).chunk

    np.testing.assert_allclose(chunk("torch"), chunk("onnx"), atol=1e-3)
