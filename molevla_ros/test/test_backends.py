"""Backends of the same MoLe-VLA model: torch / ONNX Runtime parity, batched serving with per-sample routes,
the TensorRT engine cache, and (where the hardware and packages exist) TensorRT and CUDA parity."""
from __future__ import annotations

import importlib.util
import shutil

import numpy as np
import pytest
import torch

from molevla_ros.backends.base import Observation
from molevla_ros.backends.mole import MoLeBackend, make_mole_backend
from molevla_ros.backends.onnx_graphs import OrtGraphs, ensure_onnx
from molevla_ros.backends.registry import BackendUnavailable, make_backend
from molevla_ros.backends.routed import Request, RoutedPolicy, TorchGraphs
from molevla_ros.backends.tensorrt_graphs import EngineCache, engine_key, profile_shapes
from molevla_ros.paths import DEFAULT_MODEL, resolve_model
from molevla_ros.model.io import load_model, save_model

SHIPPED = resolve_model(DEFAULT_MODEL)  # the policy the node runs by default
ORT_TOL = 1e-4  # fp32 ONNX Runtime vs torch: max abs difference of the cognition features
# ... and of the normalised action chunks: DDIM's first step divides the noise estimate by sqrt(alpha_bar_99)
# = 4.9e-4, so 1e-6 rounding differences in the head grow to ~1e-4 (1.2e-4 measured on a previous mole_small)
CHUNK_TOL = 1e-3
HAS_CUDA = torch.cuda.is_available()
HAS_TRT = importlib.util.find_spec("tensorrt") is not None


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("MOLEVLA_CACHE", str(tmp_path_factory.getbasetemp() / "molevla_cache"))


def requests(n: int, seed: int = 0) -> list[Request]:
    rng = np.random.default_rng(seed)
    texts = ["touch the red cube", "push the blue cube to the green target", "pick up the yellow cube and put it "
             "in the tray", "touch the green cube"]
    return [Request(texts[i % len(texts)], rng.normal(0, 0.3, 9).astype(np.float32),
                    rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)) for i in range(n)]


def noise(n: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 16, 7, generator=torch.Generator().manual_seed(seed))


def normalised(chunks: np.ndarray, policy: RoutedPolicy) -> np.ndarray:
    low, high = policy.low.numpy(), policy.high.numpy()
    return 2 * (chunks - low) / (high - low) - 1


def torch_policy() -> RoutedPolicy:
    model = load_model(SHIPPED)
    return RoutedPolicy.from_model(model, TorchGraphs(model))


def ort_policy() -> RoutedPolicy:
    return make_mole_backend("onnx", SHIPPED).policy


def test_torch_pipeline_equals_the_reference_model():
    """The serving pipeline computes exactly what the training-time model computes: MoLeVLA.forward (routed
    backbone) and the action head's DDIM sampler, with the same route and noise."""
    model = load_model(SHIPPED)
    reqs, z = requests(3), noise(3)
    ids, valid = model.tokenize([r.instruction for r in reqs])
    with torch.no_grad():
        fwd = model(torch.from_numpy(np.stack([r.image for r in reqs])), ids, valid,
                    torch.from_numpy(np.stack([r.proprio for r in reqs])), mode="mole")
        ref = model.to_robot_units(model.head.sample(fwd.cognition, noise=z))
    out = torch_policy().step(reqs, z)
    np.testing.assert_allclose(out.chunks, ref, atol=1e-5)
    np.testing.assert_array_equal(out.masks, fwd.gate.numpy().astype(np.uint8))


@pytest.mark.parametrize("mode", ["mole", "full"])
def test_onnx_runtime_matches_torch(mode):
    reqs, z = requests(4), noise(4)
    a, b = torch_policy().step(reqs, z, mode), ort_policy().step(reqs, z, mode)
    np.testing.assert_array_equal(a.masks, b.masks)
    assert np.abs(a.cognition - b.cognition).max() < ORT_TOL
    pol = torch_policy()
    gripper_free = slice(0, 6)  # the gripper is thresholded; compare the continuous dimensions
    assert np.abs(normalised(a.chunks, pol)[..., gripper_free] - normalised(b.chunks, pol)[..., gripper_free]).max() \
        < CHUNK_TOL


class CountingGraphs:
    """Wraps a Graphs and records which samples each layer ran on."""

    def __init__(self, inner) -> None:
        self.inner, self.device, self.dtype, self.head_dtype = inner, inner.device, inner.dtype, inner.head_dtype
        self.calls: list[tuple[int, int]] = []  # (layer, batch rows)

    def encode(self, *a):
        return self.inner.encode(*a)

    def layer(self, k, hidden, key_valid):
        self.calls.append((k, hidden.shape[0]))
        return self.inner.layer(k, hidden, key_valid)

    def finish(self, h, key_valid):
        return self.inner.finish(h, key_valid)

    def eps(self, *a):
        return self.inner.eps(*a)


@pytest.mark.parametrize("make", [torch_policy, ort_policy], ids=["torch", "onnxruntime"])
def test_batched_serving_matches_one_at_a_time(make):
    """Several robots in one batch, each with its own route: same results as alone, and each layer ran only
    on the rows that kept it."""
    pol = make()
    counting = CountingGraphs(pol.graphs)
    pol.graphs = counting
    reqs, z = requests(4, seed=1), noise(4, seed=1)
    together = pol.step(reqs, z)
    rows = dict(counting.calls)  # layer -> rows it ran on, in the batched step
    alone = [pol.step([r], z[i:i + 1]) for i, r in enumerate(reqs)]
    np.testing.assert_array_equal(together.masks, np.concatenate([a.masks for a in alone]))
    np.testing.assert_allclose(together.chunks, np.concatenate([a.chunks for a in alone]), atol=1e-5)
    np.testing.assert_allclose(together.cognition, np.concatenate([a.cognition for a in alone]), atol=1e-5)
    kept = together.masks.sum(0)
    assert all(rows.get(k, 0) == kept[k] for k in range(len(kept))), (rows, kept)
    assert len({tuple(m) for m in together.masks}) > 1, "the test needs requests with different routes"


def test_backend_batch_equals_sequential_calls():
    a, b = MoLeBackend("t", torch_policy(), seed=3), MoLeBackend("t", torch_policy(), seed=3)
    names = load_model(SHIPPED).cfg.state_joints
    obs = [Observation(r.instruction, dict(zip(names, r.proprio)), {"main": r.image}) for r in requests(3, seed=2)]
    batched = a.act_batch(obs)
    single = [b.act(o) for o in obs]
    for x, y in zip(batched, single):
        np.testing.assert_allclose(x.chunk, y.chunk, atol=1e-5)
        np.testing.assert_array_equal(x.layer_mask, y.layer_mask)


def test_observation_is_read_by_joint_and_camera_name():
    """The state is taken by the names in the model's spec, never by position; a missing joint or camera is
    an ObservationError naming it."""
    from molevla_ros.backends.base import ObservationError

    names = list(load_model(SHIPPED).cfg.state_joints)
    r = requests(1, seed=4)[0]
    state = dict(zip(names, r.proprio))
    shuffled = dict(reversed(list({**state, "other_arm_joint1": 9.0}.items())))
    a = MoLeBackend("t", torch_policy(), seed=1).act(Observation(r.instruction, state, {"main": r.image}))
    b = MoLeBackend("t", torch_policy(), seed=1).act(Observation(r.instruction, shuffled, {"main": r.image}))
    np.testing.assert_array_equal(a.chunk, b.chunk)
    with pytest.raises(ObservationError, match="panda_joint4"):
        MoLeBackend("t", torch_policy()).act(Observation(r.instruction, {k: v for k, v in state.items()
                                                                          if k != "panda_joint4"}, {"main": r.image}))
    with pytest.raises(ObservationError, match="camera 'main'"):
        MoLeBackend("t", torch_policy()).act(Observation(r.instruction, state, {"wrist": r.image}))


def test_onnx_export_is_cached_by_model_hash(tmp_path):
    model_dir = tmp_path / "m"
    shutil.copytree(SHIPPED, model_dir)
    first = ensure_onnx(model_dir, cache=tmp_path / "cache")
    stamp = (first / "layer_00.onnx").stat().st_mtime_ns
    assert ensure_onnx(model_dir, cache=tmp_path / "cache") == first
    assert (first / "layer_00.onnx").stat().st_mtime_ns == stamp, "second call must reuse the export"
    m = load_model(model_dir)
    with torch.no_grad():
        m.llm.layers[0].mlp.down_proj.weight.mul_(0.5)
    save_model(m, model_dir)
    assert ensure_onnx(model_dir, cache=tmp_path / "cache") != first, "new weights, new export"


def test_engine_cache_rebuilds_only_when_the_key_changes(tmp_path):
    cache, builds = EngineCache(tmp_path), []

    def build(tag):
        def f():
            builds.append(tag)
            return tag.encode()
        return f

    k1 = engine_key("onnx-a", "10.9", "H100 sm90", "fp16", 8)
    assert cache.get("layer_00", k1, build("a")) == b"a"
    assert EngineCache(tmp_path).get("layer_00", k1, build("never")) == b"a", "same key: loaded from disk"
    for changed in (engine_key("onnx-b", "10.9", "H100 sm90", "fp16", 8), engine_key("onnx-a", "11.0", "H100 sm90",
                    "fp16", 8), engine_key("onnx-a", "10.9", "L4 sm89", "fp16", 8),
                    engine_key("onnx-a", "10.9", "H100 sm90", "fp32", 8)):
        cache.get("layer_00", changed, build("b"))
    assert builds == ["a", "b", "b", "b", "b"]


def test_engine_profiles_cover_cfg_doubling():
    assert profile_shapes("layer_00", (-1, 84, 128), 8) == ((1, 84, 128), (1, 84, 128), (8, 84, 128))
    assert profile_shapes("eps", (-1, 16, 7), 8) == ((1, 16, 7), (2, 16, 7), (16, 16, 7))


@pytest.mark.skipif(HAS_CUDA, reason="a CUDA GPU is usable here")
def test_cuda_device_without_gpu_is_a_clear_message():
    with pytest.raises(BackendUnavailable, match="sees no CUDA GPU"):
        make_backend("mole_torch", model_dir=DEFAULT_MODEL, device="cuda")


def test_model_folders_made_elsewhere_are_reported_never_raised(tmp_path):
    """A clone without Git LFS, a config from a newer version, a damaged goal file: the policy node catches only
    BackendUnavailable (its status names the problem), so every such folder must come out as one."""
    import json

    def folder(name: str):
        out = tmp_path / name
        shutil.copytree(SHIPPED, out)
        return out

    lfs = folder("lfs")
    (lfs / "model.safetensors").write_text("version https://git-lfs.github.com/spec/v1\noid sha256:0\nsize 1\n")
    newer = folder("newer_config")
    cfg = json.loads((newer / "config.json").read_text())
    cfg["llm"]["rope_scaling"] = {"type": "linear"}
    (newer / "config.json").write_text(json.dumps(cfg))
    typo = folder("typo_config")
    cfg = json.loads((typo / "config.json").read_text())
    cfg["vision"]["locator_input"] = "State"  # would silently move the locator's features into the proprio token
    (typo / "config.json").write_text(json.dumps(cfg))
    goals = folder("damaged_goals")
    (goals / "familiar_goals.safetensors").write_bytes((goals / "familiar_goals.safetensors").read_bytes()[:100])
    for bad, message in [(lfs, "Git LFS pointer"), (newer, "config.json: not a model config .*rope_scaling"),
                         (typo, "vision.locator_input is 'State'; one of 'token', 'state'"),
                         (goals, "familiar_goals.safetensors: cannot be read")]:
        with pytest.raises(BackendUnavailable, match=message):
            make_backend("mole_torch", model_dir=bad)


@pytest.mark.skipif(HAS_TRT and HAS_CUDA, reason="TensorRT is usable here")
def test_tensorrt_unavailable_is_a_clear_message():
    with pytest.raises(BackendUnavailable) as e:
        make_backend("mole_tensorrt", model_dir=DEFAULT_MODEL, device="cuda", precision="fp16")
    msg = str(e.value)
    assert "mole_tensorrt" in msg and "available:" in msg and "mole_onnx" in msg


@pytest.mark.gpu
@pytest.mark.skipif(not (HAS_TRT and HAS_CUDA), reason="needs the tensorrt package and a CUDA GPU")
def test_tensorrt_matches_torch():
    reqs, z = requests(4), noise(4)
    ref = torch_policy().step(reqs, z)
    trt = make_mole_backend("tensorrt", SHIPPED, device="cuda", precision="fp16").policy.step(reqs, z)
    np.testing.assert_array_equal(ref.masks, trt.masks)
    assert np.abs(ref.cognition - trt.cognition).max() < 5e-2  # fp16 engines vs fp32 torch


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU")
# fp16 chunks: 5.3% of the xyz range (2.4 mm) was measured on an H100: DDIM's first step divides the noise
# estimate's error by sqrt(alpha_bar_99) = 4.9e-4, so fp16 rounding in the head shows up in the chunk.
@pytest.mark.parametrize("precision,graphs,tol,chunk_tol", [("fp32", False, 1e-3, 1e-2), ("fp32", True, 1e-3, 1e-2),
                                                            ("fp16", True, 5e-2, 1e-1)])
def test_torch_cuda_matches_cpu(precision, graphs, tol, chunk_tol):
    """Cognition features and action chunks (arm columns, as a fraction of each action's range) on the GPU
    match the CPU; a second batch of new inputs checks that captured graphs read their fresh inputs."""
    cpu = torch_policy()
    gpu = make_mole_backend("torch", SHIPPED, device="cuda", precision=precision, cuda_graphs=graphs).policy
    span = (cpu.high - cpu.low).numpy()[:6]
    for seed in (0, 1):
        reqs, z = requests(4, seed), noise(4, seed)
        for mode in ("full", "mole"):
            ref, out = cpu.step(reqs, z, mode), gpu.step(reqs, z, mode)
            np.testing.assert_array_equal(ref.masks, out.masks)
            assert np.abs(ref.cognition - out.cognition).max() < tol
            assert (np.abs(ref.chunks - out.chunks)[..., :6] / span).max() < chunk_tol


def test_imported_cogact_runs_the_same_on_torch_and_onnx(cogact):
    """An imported CogACT (DINOv2 + SigLIP towers, its own tokenizer, EOS cognition) through torch and ONNX
    Runtime: same routes, same cognition features and chunks; a batch equals its requests one at a time."""
    reqs, z = requests(3), noise(3)
    a = make_mole_backend("torch", cogact.model).policy.step(reqs, z, "full")
    b = make_mole_backend("onnx", cogact.model).policy.step(reqs, z, "full")
    assert np.abs(a.cognition - b.cognition).max() < ORT_TOL
    assert np.abs(a.chunks - b.chunks).max() < CHUNK_TOL
    one = make_mole_backend("torch", cogact.model).policy
    alone = [one.step([r], z[i:i + 1], "full") for i, r in enumerate(reqs)]
    np.testing.assert_allclose(a.cognition, np.concatenate([x.cognition for x in alone]), atol=1e-5)


def test_fp16_graph_set_for_tensorrt_runs_and_matches():
    """The fp16 ONNX graphs TensorRT builds its engines from, checked here with ONNX Runtime."""
    from molevla_ros.backends.mole import _from_manifest

    folder = ensure_onnx(SHIPPED, "fp16")
    reqs, z = requests(3), noise(3)
    ref = torch_policy().step(reqs, z, "full")
    half = _from_manifest(folder, OrtGraphs(folder), SHIPPED).step(reqs, z, "full")
    assert np.abs(ref.cognition - half.cognition).max() < 5e-2 * max(1.0, np.abs(ref.cognition).max())
