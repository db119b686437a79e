"""MoLe-VLA model: routing, real layer skipping, losses, save/load."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from molevla_ros.backends.routed import Request, RoutedPolicy, TorchGraphs
from molevla_ros.model.io import load_model, save_model
from molevla_ros.model.mole_vla import MoLeVLA, preprocess_images
from molevla_ros.model.router import top_k_mask
from molevla_ros.train.episodes import Samples, step_in_episode
from molevla_ros.train.grounding import pretrain_grounding
from molevla_ros.train.route_search import best_routes, swapped_routes
from molevla_ros.train.trainer import TrainConfig, _jitter_joints, train
from molevla_ros.train.validate import _direction_cosine, swap_colours


TEXTS = ["touch the red cube", "push the blue cube to the green target", "pick up the yellow cube", "stop"]


@pytest.mark.parametrize("keep", [0.25, 0.5, 0.75, 1.0])
@pytest.mark.parametrize("stochastic", [False, True])
def test_router_keeps_exactly_k(keep, stochastic, tiny, tiny_batch):
    torch.manual_seed(0)
    m = MoLeVLA(tiny(keep))
    out = m(*tiny_batch(8), mode="mole", soft=stochastic)
    k = m.cfg.router.keep(6)
    assert out.gate.shape == (8, 6) and torch.all(out.gate.sum(1) == k)
    assert set(out.gate.unique().tolist()) <= {0.0, 1.0}


def test_gumbel_scale_zero_trains_on_the_inference_route(tiny, tiny_batch):
    torch.manual_seed(0)
    m = MoLeVLA(tiny(0.5))
    with torch.no_grad():
        infer = m(*tiny_batch(16), mode="mole").gate
        noisy = m(*tiny_batch(16), mode="mole", soft=True).gate
        m.cfg.router.gumbel_scale = 0.0
        clean = m(*tiny_batch(16), mode="mole", soft=True).gate
    assert not torch.equal(noisy, infer) and torch.equal(clean, infer)


def test_skipped_layers_are_not_executed(tiny, tiny_batch):
    torch.manual_seed(0)
    m = MoLeVLA(tiny(0.5)).eval()
    seen = [0] * 6
    for i, layer in enumerate(m.llm.layers):
        layer.register_forward_hook(lambda mod, inp, out, i=i: seen.__setitem__(i, seen[i] + inp[0].shape[0]))
    with torch.no_grad():
        out = m(*tiny_batch(4), mode="mole")
    per_layer = out.gate.sum(0).int().tolist()
    assert seen == per_layer, "each layer ran on exactly the samples that kept it"
    assert sum(seen) == 4 * 3, "k = 3 of 6 layers per sample"
    with torch.no_grad():
        m(*tiny_batch(4), mode="first_k")
    assert seen[3:] == per_layer[3:], "early exit never touches layers k.."


def test_batched_routes_match_one_at_a_time(tiny, tiny_batch):
    """Mixed routes in one batch give the same cognition features as running each sample alone."""
    torch.manual_seed(0)
    m = MoLeVLA(tiny(0.5)).eval()
    imgs, ids, valid, prop = tiny_batch(4)
    with torch.no_grad():
        together = m(imgs, ids, valid, prop, mode="mole")
        assert len({tuple(r) for r in together.gate.tolist()}) > 1, "the test needs differing routes"
        alone = torch.cat([m(imgs[i:i + 1], ids[i:i + 1], valid[i:i + 1], prop[i:i + 1], mode="mole").cognition
                           for i in range(4)])
    torch.testing.assert_close(together.cognition, alone, atol=1e-5, rtol=1e-5)


def test_soft_gate_forward_equals_real_skipping(tiny, tiny_batch):
    """The training path (all layers, straight-through gate) computes what inference computes by skipping."""
    torch.manual_seed(0)
    m = MoLeVLA(tiny(0.5)).eval()
    imgs, ids, valid, proprio = tiny_batch(4)
    x, valid, *_ = m.embed(preprocess_images(imgs, m.cfg.vision), ids, valid, proprio)
    gate = torch.tensor([[1, 0, 1, 0, 1, 0], [0, 1, 1, 0, 0, 1], [1, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1]]).float()
    with torch.no_grad():
        torch.testing.assert_close(m.llm(x, valid, gate, soft=True), m.llm(x, valid, gate, soft=False),
                                   atol=1e-5, rtol=1e-5)


def _synthetic_samples(n: int = 64) -> Samples:
    """Actions that depend on the image (its mean colour) and the instruction, so there is something to learn."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (n, 32, 32, 3), dtype=np.uint8)
    instr = [TEXTS[i % 3] for i in range(n)]
    chunks = np.zeros((n, 4, 7), np.float32)
    chunks[:, :, 0] = (images.mean((1, 2, 3)) / 255.0 - 0.5)[:, None] * 0.04
    chunks[:, :, 1] = np.array([i % 3 - 1 for i in range(n)])[:, None] * 0.01
    chunks[:, :, 6] = (np.arange(n) % 2)[:, None]
    return Samples(images, rng.normal(size=(n, 9)).astype(np.float32), chunks, instr, ["touch"] * n, np.arange(n))


def test_teacher_and_student_losses_decrease(tmp_path, tiny):
    data = _synthetic_samples()
    hist = train(TrainConfig(out=str(tmp_path / "t"), stage="teacher", steps=120, batch=16, lr=2e-3), tiny(), data)
    d = [h["diffusion"] for h in hist if "diffusion" in h]
    assert np.mean(d[-2:]) < 0.8 * d[0], d
    hist = train(TrainConfig(out=str(tmp_path / "s"), stage="mole", init=str(tmp_path / "t"), steps=120, batch=16,
                             lr=2e-3, ema=0.9), data=data, val=data)
    c = [h["cogkd"] for h in hist if "cogkd" in h]
    assert np.mean(c[-2:]) < 0.8 * c[0], c
    assert {"diffusion", "balance", "cogkd"} <= set(hist[-2])
    assert {"val_dir_cos", "val_dir_cos_swapped", "val_dir_cos_start"} <= set(hist[-1])  # held-out metrics at the end


def test_mixed_keep_trains_a_range_of_k_and_saves_the_model_keep_ratio(tmp_path, tiny):
    data = _synthetic_samples()
    train(TrainConfig(out=str(tmp_path / "t"), stage="teacher", steps=5, batch=8), tiny(0.5), data)
    hist = train(TrainConfig(out=str(tmp_path / "s"), stage="mole", init=str(tmp_path / "t"), steps=160, batch=8,
                             route_search=1, mixed_keep="2,5"), data=data)
    kept = [h["layers_kept"] for h in hist if "layers_kept" in h]
    assert len(set(kept)) > 1 and set(kept) <= {2, 3, 4, 5}, kept
    assert load_model(tmp_path / "s").cfg.router.keep_ratio == 0.5
    with pytest.raises(ValueError, match="mixed_keep"):
        train(TrainConfig(out=str(tmp_path / "x"), stage="mole", init=str(tmp_path / "t"), steps=1, mixed_keep="0,9"),
              data=data)


def test_proprio_noise_jitters_only_the_arm_joints_and_trains(tmp_path, tiny):
    proprio = torch.zeros(2000, 9)
    assert _jitter_joints(proprio, torch.Generator().manual_seed(0), 0.0) is proprio
    out = _jitter_joints(proprio, torch.Generator().manual_seed(0), 0.05)
    assert torch.equal(out[:, 7:], proprio[:, 7:]) and torch.count_nonzero(proprio) == 0
    assert abs(out[:, :7].std().item() - 0.05) < 0.005
    hist = train(TrainConfig(out=str(tmp_path / "t"), stage="teacher", steps=3, batch=8, proprio_noise=0.05), tiny(),
                 _synthetic_samples())
    assert np.isfinite([h["diffusion"] for h in hist if "diffusion" in h]).all()


def test_geometry_weight_teaches_the_keypoint_token_where_the_goal_is(tmp_path, tiny):
    """A bright square at a random place is "the cube": its position (goal and push start unknown, NaN) must become
    readable from the keypoint token; without ground truth in the data the option refuses to train."""
    from dataclasses import replace

    rng = np.random.default_rng(1)
    data = _synthetic_samples(128)
    data.images[:] = 0
    geometry = np.full((len(data), 3, 2), np.nan, np.float32)
    for i, (r, c) in enumerate(rng.integers(2, 26, (len(data), 2))):
        data.images[i, r:r + 5, c:c + 5] = 255
        geometry[i, 0] = 0.5 + 0.2 * (c / 14 - 1), 0.2 * (r / 14 - 1)  # metres whose normalised value is in [-1, 1]
    hist = train(TrainConfig(out=str(tmp_path / "t"), stage="teacher", steps=200, batch=16, lr=2e-3, shift=0,
                             geometry_weight=1.0), tiny(), replace(data, geometry=geometry))
    g = [h["geometry"] for h in hist if "geometry" in h]
    assert np.isfinite(g).all() and np.mean(g[-2:]) < 0.3 * g[0], g
    with pytest.raises(ValueError, match="ground truth"):
        train(TrainConfig(out=str(tmp_path / "x"), stage="teacher", steps=1, geometry_weight=1.0), tiny(), data)


def test_router_lr_trains_the_router_at_its_own_rate(tmp_path, tiny):
    data = _synthetic_samples()
    train(TrainConfig(out=str(tmp_path / "t"), stage="teacher", steps=5, batch=8), tiny(), data)
    train(TrainConfig(out=str(tmp_path / "s"), stage="mole", init=str(tmp_path / "t"), steps=20, batch=8, lr=1e-12,
                      router_lr=1e-2, route_search=1, aux_weight=0), data=data)
    before, after = load_model(tmp_path / "t").state_dict(), load_model(tmp_path / "s").state_dict()
    moved = {k: (after[k] - before[k]).abs().max().item() for k in before if before[k].is_floating_point()}
    assert max(v for k, v in moved.items() if k.startswith("router.")) > 1e-3
    assert max(v for k, v in moved.items() if k.startswith("llm.layers.")) < 1e-6


def test_grounding_pretraining_learns_direction_and_saves_a_model_the_teacher_starts_from(tmp_path, tiny):
    data = _synthetic_samples()
    torch.manual_seed(0)  # the stage seeds with TrainConfig.seed (0) before building the model
    before = MoLeVLA(tiny()).state_dict()
    hist = pretrain_grounding(TrainConfig(out=str(tmp_path / "g"), stage="grounding", steps=150, batch=16, lr=2e-3),
                              tiny(), data, val=data)
    d = [h["direction"] for h in hist if "direction" in h]
    assert np.mean(d[-2:]) < 0.6 * d[0], d
    assert {"val_dir_cos", "val_dir_cos_start", "val_dir_cos_start_swapped"} <= set(hist[-1])
    loaded = load_model(tmp_path / "g").state_dict()
    assert not torch.equal(loaded["vision.stem.weight"], before["vision.stem.weight"])  # trained
    assert torch.equal(loaded["llm.layers.0.mlp.up_proj.weight"], before["llm.layers.0.mlp.up_proj.weight"])  # not
    assert loaded["action_high"][0] > 0 and loaded["action_high"][0] < 1  # statistics set from the data
    hist = train(TrainConfig(out=str(tmp_path / "t"), stage="teacher", init=str(tmp_path / "g"), steps=5, batch=8),
                 data=data)
    assert hist


def test_reinit_starts_the_named_parts_afresh_and_keeps_the_rest(tiny):
    from molevla_ros.train.trainer import reinitialise

    cfg = tiny(0.5, "minilm")
    cfg.vision.locator = True
    torch.manual_seed(0)
    model = MoLeVLA(cfg)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(1)
    reinitialise(model, "decoder,head,router,proprio")
    after = model.state_dict()
    assert after.keys() == before.keys()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    for prefix in ("llm.", "head.", "router.", "proprio_in.", "cognition_token"):
        assert any(k.startswith(prefix) for k in changed), prefix
    kept = ("vision.", "projector.", "proprio.", "text_in.", "locator.")
    assert not any(k.startswith(kept) for k in changed), changed
    with pytest.raises(ValueError, match="unknown part"):
        reinitialise(model, "decoder,vision")


def test_open_loop_direction_metric_and_colour_swap():
    true = np.zeros((3, 16, 7))
    true[0, :, 0], true[1, :, 1], true[2, :, 2] = 0.01, 0.01, 0.0001  # the third barely moves: not counted
    assert _direction_cosine(true, true) == pytest.approx(1.0)
    assert _direction_cosine(-true, true) == pytest.approx(-1.0)
    assert swap_colours("push the red cube to the yellow target") == "push the green cube to the red target"
    assert step_in_episode(np.array([0, 0, 3, 3, 3, 7])).tolist() == [0, 1, 0, 1, 2, 0]


def test_depth_prior_starts_the_router_at_early_exit_and_is_saved_in_the_config(tmp_path, tiny, tiny_batch):
    torch.manual_seed(0)
    m = MoLeVLA(tiny(0.5)).eval()
    with torch.no_grad():
        free = m(*tiny_batch(8), mode="mole").gate
    assert not torch.all(free[:, :3] == 1), "without a prior a fresh router does not pick layers 0..k-1"
    m.router.set_depth_prior(5.0)
    with torch.no_grad():
        gate = m(*tiny_batch(8), mode="mole").gate
    assert torch.all(gate[:, :3] == 1) and torch.all(gate[:, 3:] == 0)
    save_model(m, tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    assert loaded.cfg.router.depth_prior == 5.0
    torch.testing.assert_close(loaded.router.prior, m.router.prior)


def test_save_load_round_trip_gives_identical_actions(tmp_path, tiny):
    torch.manual_seed(0)
    m = MoLeVLA(tiny()).eval()
    m.action_low.fill_(-0.03)
    m.action_high.fill_(0.03)
    save_model(m, tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    imgs = np.random.default_rng(1).integers(0, 255, (2, 48, 48, 3), dtype=np.uint8)
    reqs = [Request(t, np.zeros(9, np.float32), im) for t, im in zip(TEXTS[:2], imgs)]
    z = torch.randn(2, 4, 7, generator=torch.Generator().manual_seed(3))
    r1, r2 = (RoutedPolicy.from_model(x, TorchGraphs(x)).step(reqs, z, "mole") for x in (m, loaded))
    np.testing.assert_array_equal(r1.chunks, r2.chunks)
    np.testing.assert_array_equal(r1.masks, r2.masks)
    assert r1.chunks.shape == (2, 4, 7) and np.all(np.isin(r1.chunks[..., 6], [0.0, 1.0]))


@pytest.mark.skipif(importlib.util.find_spec("transformers") is None, reason="transformers not installed")
def test_llama_layer_matches_transformers(tiny):
    """Same weight names and the same numbers as transformers' LlamaDecoderLayer: Llama-2 weights map 1:1."""
    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import LlamaDecoderLayer as HFLayer, LlamaRotaryEmbedding

    from molevla_ros.model.llama import LlamaDecoderLayer, rotary

    cfg = tiny().llm
    hf_cfg = LlamaConfig(hidden_size=cfg.hidden, intermediate_size=cfg.intermediate, num_attention_heads=cfg.heads,
                         num_key_value_heads=cfg.kv_heads, rms_norm_eps=cfg.rms_eps, rope_theta=cfg.rope_theta,
                         attn_implementation="eager")
    torch.manual_seed(0)
    hf, ours = HFLayer(hf_cfg, layer_idx=0).eval(), LlamaDecoderLayer(cfg).eval()
    assert set(hf.state_dict()) == set(ours.state_dict())
    ours.load_state_dict(hf.state_dict())
    x = torch.randn(2, 7, cfg.hidden)
    pos = torch.arange(7)[None].expand(2, -1)
    cos, sin = LlamaRotaryEmbedding(hf_cfg)(x, pos)
    causal = torch.full((7, 7), float("-inf")).triu(1)[None, None].expand(2, 1, 7, 7)
    with torch.no_grad():
        ref = hf(x, attention_mask=causal, position_ids=pos, position_embeddings=(cos, sin))
        ref = ref[0] if isinstance(ref, tuple) else ref
        c, s = rotary(cfg, 7, x.device, x.dtype)
        got = ours(x, c, s, torch.ones(7, 7, dtype=torch.bool).tril()[None, None].expand(2, 1, 7, 7))
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-4)


def test_cogact_scale_config_builds_and_runs_on_meta():
    """The CogACT-Base sizes (Llama-2-7B layers, DiT-B, 2176->4096 projector) wire up end to end (no memory)."""
    from molevla_ros.model.config import cogact_base

    cfg = cogact_base()
    with torch.device("meta"):
        m = MoLeVLA(cfg)
        # Llama-2-7B + DiT-B + projector ~6.8e9; DINOv2 ViT-L ~0.3e9 and SigLIP SO400M ~0.4e9 more
        assert 7.3e9 < sum(p.numel() for p in m.parameters()) < 7.8e9
        ids = torch.zeros(2, cfg.llm.max_text, dtype=torch.long)
        out = m(torch.empty(2, 224, 224, 3, dtype=torch.uint8), ids, torch.ones_like(ids, dtype=torch.bool),
                torch.zeros(2, 9), mode="mole", soft=True)
        assert out.hidden.shape == (2, 1 + 256 + cfg.llm.max_text, 4096) and out.gate.shape == (2, 32)
        assert m.head.eps(torch.empty(2, 16, 7), torch.zeros(2, dtype=torch.long), out.cognition).shape == (2, 16, 7)


def test_swapped_routes_differ_from_the_route_by_one_swap():
    route = top_k_mask(torch.randn(5, 6), 3)
    cands = swapped_routes(route, 4, torch.Generator().manual_seed(0))
    assert cands.shape == (5, 5, 6) and torch.equal(cands[:, 0], route)
    assert torch.all(cands.sum(-1) == 3)
    assert torch.all((cands[:, 1:] != route[:, None]).sum(-1) == 2)  # one layer out, one in


def test_best_routes_picks_the_lowest_loss_candidate_and_training_uses_route_search(tmp_path, tiny, tiny_batch):
    torch.manual_seed(0)
    m = MoLeVLA(tiny(0.5)).eval()
    imgs, ids, valid, q = tiny_batch(6)
    x, key_valid, *_ = m.embed(preprocess_images(imgs, m.cfg.vision), ids, valid, q)
    cands = swapped_routes(top_k_mask(torch.randn(6, 6), 3), 5, torch.Generator().manual_seed(1))
    planted = torch.tensor([0, 3, 5, 1, 2, 4])  # per sample, the candidate whose hidden states win
    with torch.no_grad():
        target = m.llm(x, key_valid, cands[torch.arange(6), planted])

    def extra(hidden, rep):  # dominates the diffusion term: distance to the planted route's hidden states
        return 1e3 * (hidden - target[rep]).pow(2).mean((1, 2))

    best = best_routes(m, x, key_valid, cands, torch.zeros(6, 4, 7), extra, torch.Generator().manual_seed(2))
    assert torch.equal(best, cands[torch.arange(6), planted])
    hist = train(TrainConfig(out=str(tmp_path / "s"), stage="mole", steps=30, batch=8, route_search=2), tiny(),
                 _synthetic_samples())
    r = [h["route"] for h in hist if "route" in h]
    assert len(r) >= 2 and "balance" in hist[-1] and "cogkd" in hist[-1]


def test_hidden_proprio_token_takes_the_arm_state_out_of_the_decoder(tiny, tiny_batch):
    """Training-only proprio dropout: a sample whose proprio token is hidden gives the same cognition feature
    whatever its arm state; the others still read it."""
    torch.manual_seed(0)
    m = MoLeVLA(tiny()).eval()
    imgs, ids, valid, q = tiny_batch(4)
    hide = torch.tensor([True, True, False, False])
    with torch.no_grad():
        a = m(imgs, ids, valid, q, mode="full", hide_proprio=hide).cognition
        b = m(imgs, ids, valid, q + 0.5, mode="full", hide_proprio=hide).cognition
    assert torch.allclose(a[:2], b[:2], atol=1e-6)
    assert (a[2:] - b[2:]).abs().max() > 1e-3


@pytest.mark.parametrize("locator", [False, True])
def test_hidden_patches_leave_the_scene_to_the_goal_locator(tiny, tiny_batch, locator):
    """Training-only patch dropout: a sample whose encoder tokens are hidden sees the scene only through the goal
    locator's token (without a locator, not at all); the others still see the patches."""
    torch.manual_seed(0)
    cfg = tiny()
    cfg.vision.locator = locator
    m = MoLeVLA(cfg).eval()
    imgs, ids, valid, q = tiny_batch(4)
    other = tiny_batch(4, seed=1)[0]
    hide = torch.tensor([True, True, False, False])
    with torch.no_grad():
        a = m(imgs, ids, valid, q, mode="full", hide_patches=hide).cognition
        b = m(other, ids, valid, q, mode="full", hide_patches=hide).cognition
    assert (a[:2] - b[:2]).abs().max() > 1e-3 if locator else torch.allclose(a[:2], b[:2], atol=1e-6)
    assert (a[2:] - b[2:]).abs().max() > 1e-3


def test_model_files_are_the_safetensors_format_both_ways(tmp_path, monkeypatch):
    """The streaming reader and writer (model/safetensors_io.py) against the safetensors library: what one writes the
    other reads, for every dtype a model holds (0-d, empty, bool, bf16), and a conversion done piece by piece equals
    a whole-tensor cast."""
    from safetensors.torch import load_file, save_file

    from molevla_ros.model import safetensors_io

    g = torch.Generator().manual_seed(0)
    tensors = {"w": torch.randn(3, 5, generator=g), "half": torch.randn(7, generator=g).to(torch.bfloat16),
               "ids": torch.arange(4), "flag": torch.tensor(True), "empty": torch.zeros(0, 3),
               "long": torch.randn(100_003, generator=g)}
    safetensors_io.write(tmp_path / "ours.safetensors", tensors.items(), {"note": "x"})
    theirs = load_file(str(tmp_path / "ours.safetensors"))
    assert set(theirs) == set(tensors) and all(torch.equal(theirs[k], v) for k, v in tensors.items())
    save_file(tensors, str(tmp_path / "theirs.safetensors"))
    monkeypatch.setattr(safetensors_io, "CHUNK_BYTES", 1000)  # many pieces per tensor
    to_half = dict(safetensors_io.read(tmp_path / "theirs.safetensors",
                                       lambda _k, d: torch.float16 if d.is_floating_point else d))
    for k, v in tensors.items():
        assert torch.equal(to_half[k], v.to(torch.float16) if v.is_floating_point() else v), k
    as_is = dict(safetensors_io.read(tmp_path / "theirs.safetensors"))
    assert all(torch.equal(as_is[k], v) and as_is[k].dtype == v.dtype for k, v in tensors.items())


def _raw_safetensors(path, header: dict, data: bytes) -> None:
    import json
    import struct

    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)


def test_malformed_safetensors_files_are_refused_naming_the_file_and_problem(tmp_path):
    """What a model folder made elsewhere can hold instead of weights: each refused with a reason before any tensor
    is read (a Git LFS pointer's first 8 bytes read as a 2.3e18-byte header). Overlapping offsets are refused by the
    safetensors library too, so the rule is the format's, not ours."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from molevla_ros.model import safetensors_io

    f32 = {"dtype": "F32", "shape": [2]}
    cases = {
        "lfs": (b"version https://git-lfs.github.com/spec/v1\noid sha256:ab\nsize 123\n", "Git LFS pointer"),
        "empty": (b"", "not a safetensors file \\(0 bytes\\)"),
        "long_header": ((10**12).to_bytes(8, "little") + b"{}", "header of 1000000000000 bytes"),
        "not_json": (len(b"{nope").to_bytes(8, "little") + b"{nope", "header is not JSON"),
    }
    for name, (content, message) in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(ValueError, match=message):
            safetensors_io.read_header(tmp_path / name)
    headers = {
        "dtype": ({"a": {"dtype": "F8_E4M3", "shape": [2], "data_offsets": [0, 2]}}, 2, "has dtype 'F8_E4M3'"),
        "span": ({"a": {**f32, "data_offsets": [0, 4]}}, 4, r"tensor a \(F32 \[2\]\) spans 4 bytes"),
        "overlap": ({"a": {**f32, "data_offsets": [0, 8]}, "b": {**f32, "data_offsets": [0, 8]}}, 8,
                    "starts at byte 0, not 8"),
        "offsets": ({"a": {**f32}}, 8, "has data_offsets None"),
        "truncated": ({"a": {**f32, "data_offsets": [0, 8]}}, 5, "end at byte 8 of a 5-byte data section"),
    }
    for name, (header, n, message) in headers.items():
        _raw_safetensors(tmp_path / name, header, bytes(n))
        with pytest.raises(ValueError, match=message):
            safetensors_io.read_header(tmp_path / name)
    with pytest.raises(SafetensorError):
        load_file(str(tmp_path / "overlap"))


def test_normalisation_buffers_that_would_corrupt_every_action_are_refused(tmp_path):
    """Mirrored action bounds, NaN, a zero standard deviation or integer-typed bounds load without error otherwise,
    and every step is then wrong (or NaN); refused at load, naming the buffer."""
    import shutil

    from molevla_ros.model import safetensors_io
    from molevla_ros.model.io import load_model
    from molevla_ros.paths import DEFAULT_MODEL, resolve_model

    source = resolve_model(DEFAULT_MODEL)
    tensors = dict(safetensors_io.read(source / "model.safetensors"))
    changes = {
        "mirrored": ("action_high", lambda t: tensors["action_low"].clone(), None),
        "reversed": ("action_high", lambda t: -t, "action_high is below action_low in dimensions"),
        "nan": ("action_low", lambda t: torch.where(torch.arange(len(t)) == 2, torch.nan, t), "action_low has NaN"),
        "zero_std": ("proprio.proprio_std", lambda t: torch.zeros_like(t), "proprio_std has entries <= 0"),
        "int_bounds": ("action_low", lambda t: t.view(torch.int32), "action_low is torch.int32, not floating"),
    }
    for case, (key, change, message) in changes.items():
        folder = tmp_path / case
        shutil.copytree(source, folder)
        changed = {k: (change(v) if k == key else v) for k, v in tensors.items()}
        safetensors_io.write(folder / "model.safetensors", changed.items())
        if message is None:  # the control: equal bounds (a dimension that never moved) load
            load_model(folder)
            continue
        with pytest.raises(ValueError, match=message):
            load_model(folder)
