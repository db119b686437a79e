"""MoLe-VLA policy backends: the same model and serving pipeline on PyTorch, ONNX Runtime or TensorRT."""
from __future__ import annotations

import numpy as np
import torch

from molevla_ros.backends.base import Observation, PolicyOutput, camera_image, state_vector
from molevla_ros.backends.routed import Request, RoutedPolicy
from molevla_ros.model.goal_familiarity import GoalFamiliarity
from molevla_ros.model.mole_vla import layer_flops


class MoLeBackend:
    needs_privileged_state = False
    privileged_feed = None

    def __init__(self, name: str, policy: RoutedPolicy, route: str = "mole", seed: int = 0) -> None:
        self.name, self.policy, self.route, self.seed = name, policy, route, seed
        self.layers = policy.cfg.llm.layers
        self.keep: int | None = None  # decoder layers per step (routes mole/random/first_k); None: the model's own
        self.note = ""  # shown on the policy's status (e.g. why it runs another route than asked)
        self.familiarity: GoalFamiliarity | None = None  # set by make_mole_backend from the model folder
        self.action_dt = policy.cfg.action_dt
        self.image_size = policy.cfg.vision.image_size
        self.resize = policy.cfg.vision.resize
        # what it reads: the joint state as the named joints (none for CogACT, which reads no state) and one camera
        self.state_joints = policy.cfg.state_joints if policy.cfg.proprio_token else ()
        self.camera = policy.cfg.camera
        self.gen = torch.Generator().manual_seed(seed)  # CPU generator: identical noise on every backend
        cfg = policy.cfg
        self._layer_gflops = layer_flops(cfg.llm, cfg.sequence_length) / 1e9

    def reset(self, seed: int | None = None) -> None:
        """Restart the diffusion noise: from `seed` (e.g. an evaluation episode's layout seed), else the backend's."""
        self.gen.manual_seed(self.seed if seed is None else seed)

    def act(self, obs: Observation) -> PolicyOutput:
        return self.act_batch([obs])[0]

    def act_batch(self, observations: list[Observation]) -> list[PolicyOutput]:
        """One batched step for several robots; each keeps its own route. Noise is drawn per request in
        order, so a batch gives what the same requests give one at a time."""
        ah = self.policy.cfg.action_head
        cfg = self.policy.cfg
        requests = [Request(o.instruction, state_vector(o, cfg.state_joints), camera_image(o, cfg.camera), o.prefix,
                            o.prefix_frozen) for o in observations]
        noise = torch.stack([torch.randn(ah.horizon, ah.action_dim, generator=self.gen) for _ in requests])
        res = self.policy.step(requests, noise, self.route, keep=self.keep, generator=self.gen)
        outs = []
        for chunk, mask in zip(res.chunks, res.masks):
            kept = int(mask.sum())
            outs.append(PolicyOutput(chunk, mask, {"layers_kept": kept, "backbone_gflops": kept * self._layer_gflops,
                                                   "model_ms": res.ms, "layers_ms": res.layers_ms}))
        return outs


def make_mole_backend(kind: str, model_dir, route: str = "mole", device: str = "cpu", precision: str = "fp32",
                      cuda_graphs: bool = False, threads: int = 0) -> MoLeBackend:
    """kind: torch | onnx | tensorrt; threads: CPU intra-op threads (0: the library default). Raises ImportError /
    RuntimeError with a reason when unusable."""
    if kind == "torch":
        if threads:
            torch.set_num_threads(threads)
        from molevla_ros.backends.routed import TorchGraphs
        from molevla_ros.model.io import load_model

        dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]
        model = load_model(model_dir, dtype=dtype)  # straight into the serving dtype (the head stays float32)
        policy = RoutedPolicy.from_model(model, TorchGraphs(model, device, dtype, cuda_graphs))
    elif kind == "onnx":
        from molevla_ros.backends.onnx_graphs import OrtGraphs, ensure_onnx

        folder = ensure_onnx(model_dir, "fp32")
        policy = _from_manifest(folder, OrtGraphs(folder, threads), model_dir)
    elif kind == "tensorrt":
        from molevla_ros.backends.onnx_graphs import ensure_onnx
        from molevla_ros.backends.tensorrt_graphs import TensorRTGraphs

        folder = ensure_onnx(model_dir, precision)
        policy = _from_manifest(folder, TensorRTGraphs(folder, device=device), model_dir)
    else:
        raise ValueError(f"unknown MoLe backend kind {kind!r}")
    backend = MoLeBackend(f"mole_{kind}", policy, route)
    backend.familiarity = GoalFamiliarity.of(model_dir)
    if route == "mole" and not policy.cfg.router_trained:  # e.g. a freshly imported CogACT: no router yet
        backend.route = "full"
        backend.note = "router not trained yet (imported checkpoint): running full depth"
    return backend


def _from_manifest(folder, graphs, model_dir) -> RoutedPolicy:
    from molevla_ros.backends.onnx_graphs import load_manifest
    from molevla_ros.model.text import text_encoder

    man, cfg = load_manifest(folder)
    return RoutedPolicy(cfg, np.asarray(man["action_low"]), np.asarray(man["action_high"]), np.asarray(man["uncond"]),
                        graphs, text_encoder(cfg.llm, model_dir, static=True))
