"""One training process or many: torchrun's environment, PyTorch FSDP2 sharding, sharded checkpoints.

`molevla train ...` is one process. `torchrun --nproc-per-node N [--nnodes M ...] -m molevla_ros.cli train ...`
starts N x M: each shards the parameters, gradients and optimiser state with `fully_shard` (every decoder layer
its own unit, then the rest), draws the same global batch and works on its share of its micro-batches. A
micro-batch's randomness is seeded by (seed, step, micro-batch index), so a run's result depends on the global
batch and the number of micro-batches (processes x accumulation), not on which process ran which: 2 processes
equal 1 process with `--accumulate 2`. Checkpoints are `torch.distributed.checkpoint` folders (one file per
process) that resume exactly.
"""
from __future__ import annotations

import gc
import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn


@dataclass
class Parallel:
    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @classmethod
    def start(cls) -> "Parallel":
        """From torchrun's RANK / WORLD_SIZE / LOCAL_RANK (one process without them): NCCL on GPUs, else gloo."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        local = int(os.environ.get("LOCAL_RANK", "0"))
        cuda = torch.cuda.is_available()
        device = torch.device("cuda", local) if cuda else torch.device("cpu")
        if cuda:
            torch.cuda.set_device(device)
        if world > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if cuda else "gloo")
        return cls(dist.get_rank() if world > 1 else 0, world, device)

    @property
    def main(self) -> bool:
        return self.rank == 0

    def micro_batches(self, accumulate: int) -> range:
        """Global indices of this process's micro-batches at every step."""
        return range(self.rank * accumulate, (self.rank + 1) * accumulate)

    def shard(self, module: nn.Module, layers: list[nn.Module], activation_checkpointing: bool) -> None:
        """Activation checkpointing of `layers` (recomputed in the backward pass), then FSDP2: each of `layers` one
        unit, `module` the root (with one process nothing is sharded; the checkpointing still applies)."""
        if activation_checkpointing:
            from torch.distributed._composable import checkpoint

            for layer in layers:
                checkpoint(layer)
        if self.world == 1:
            return
        from torch.distributed.fsdp import fully_shard

        for layer in layers:
            fully_shard(layer)
        fully_shard(module)

    def sync_gradients(self, module: nn.Module, sync: bool) -> None:
        """Gradient accumulation: reduce-scatter only after the last micro-batch of a step."""
        if self.world > 1:
            module.set_requires_gradient_sync(sync)

    def mean(self, values: dict[str, torch.Tensor]) -> dict[str, float]:
        """The mean over processes of each (already micro-batch-averaged) loss."""
        if self.world == 1 or not values:
            return {k: float(v) for k, v in values.items()}
        stacked = torch.stack([values[k].detach().float().to(self.device) for k in sorted(values)])
        dist.all_reduce(stacked)
        return {k: float(v) / self.world for k, v in zip(sorted(values), stacked)}

    def full_state(self, module: nn.Module, prefix: str) -> dict[str, torch.Tensor]:
        """The full (unsharded) state of `module`'s entries under `prefix` (the prefix removed), on CPU in the main
        process (collective: every process calls it; the others get an empty dict)."""
        if self.world == 1:
            state = module.state_dict()
        else:
            from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

            state = get_model_state_dict(module, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
        return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}

    def save(self, folder: Path, module: nn.Module, opt: torch.optim.Optimizer, extra: dict) -> None:
        """A sharded checkpoint: parameters and optimiser state with torch.distributed.checkpoint, `extra` (the
        main process's) beside it. Written to a new folder, then swapped in: a crash keeps the previous one."""
        import shutil

        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint.state_dict import get_state_dict

        tmp = folder.with_name(folder.name + ".tmp")
        if self.main:
            shutil.rmtree(tmp, ignore_errors=True)
        self.barrier()
        model_state, optim_state = get_state_dict(module, opt)
        dcp.save({"model": model_state, "optim": optim_state}, checkpoint_id=str(tmp))
        if self.main:
            torch.save(extra, tmp / "trainer.pt")
            shutil.rmtree(folder, ignore_errors=True)
            tmp.rename(folder)
        self.barrier()

    def load(self, folder: Path, module: nn.Module, opt: torch.optim.Optimizer) -> dict:
        """Resume from `save`'s folder; returns its `extra`."""
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

        model_state, optim_state = get_state_dict(module, opt)
        state = {"model": model_state, "optim": optim_state}
        dcp.load(state, checkpoint_id=str(folder))
        set_state_dict(module, opt, model_state_dict=state["model"], optim_state_dict=state["optim"])
        return torch.load(folder / "trainer.pt", weights_only=False)

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def finish(self) -> None:
        """Leave the process group. Call it once the sharded modules and optimiser are no longer referenced: with
        them still alive, a torchrun process (torch 2.13, gloo) aborted at interpreter exit in about 1 run in 12
        ("terminate called without an active exception" after all work was done); collecting them first, 0 in 66."""
        if self.world > 1 and dist.is_initialized():
            gc.collect()
            dist.destroy_process_group()
