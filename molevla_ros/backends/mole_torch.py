"""The MoLe-VLA model as a policy backend (PyTorch eager, CPU or CUDA)."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from molevla_ros.backends.base import Observation, PolicyOutput
from molevla_ros.model.io import load_model
from molevla_ros.model.mole_vla import layer_flops


class MoLeTorchBackend:
    name = "mole_torch"
    needs_privileged_state = False

    def __init__(self, model_dir: Path, route: str = "mole", device: str = "cpu", seed: int = 0) -> None:
        self.model = load_model(Path(model_dir), device)
        self.route = route
        self.gen = torch.Generator(device=device).manual_seed(seed)
        self.seed = seed
        self._layer_flops = layer_flops(self.model.cfg.llm, self.model.sequence_length())

    def reset(self) -> None:
        self.gen.manual_seed(self.seed)

    def act(self, obs: Observation) -> PolicyOutput:
        if obs.image is None:
            raise ValueError("MoLe-VLA needs a camera image")
        q = np.zeros(self.model.cfg.proprio_dim, np.float32)
        n = min(len(obs.joint_positions), len(q))
        q[:n] = obs.joint_positions[:n]
        t0 = time.perf_counter()
        chunk, mask = self.model.act(obs.image[None], [obs.instruction], q[None], self.route, self.gen)
        kept = int(mask[0].sum()) if mask is not None else self.model.cfg.llm.layers
        return PolicyOutput(chunk[0], None if mask is None else mask[0],
                            {"layers_kept": kept, "backbone_gflops": kept * self._layer_flops / 1e9,
                             "model_ms": (time.perf_counter() - t0) * 1e3})
