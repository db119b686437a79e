"""How close a goal sentence is to the goals a model was trained on, in MiniLM sentence-embedding space.

Training writes the unit sentence embeddings of its goals (the recorded instructions and, with varied
wording, rewordings of each) into the model folder as FILE. At run time a goal's familiarity is its highest
cosine similarity to any of them: near 1 for a trained wording, lower for a paraphrase, low for another
language or an unrelated request. The policy node refuses goals below its `min_goal_similarity`, so an
operator learns that "coge el cubo rojo" is not understood instead of watching the arm guess.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from molevla_ros.sim.wordings import reword

FILE = "familiar_goals.safetensors"


def training_goals(instructions: list[str], wording: str, per_goal: int = 32, seed: int = 0) -> list[str]:
    """The distinct recorded goals, plus `per_goal` rewordings of each when training varied the wording."""
    distinct = sorted(set(instructions))
    if wording != "varied":
        return distinct
    rng = np.random.default_rng(seed)
    return distinct + [reword(g, rng) for g in distinct for _ in range(per_goal)]


def write_reference(folder: Path, goals: list[str]) -> None:
    """Sentence embeddings of `goals` -> folder/FILE (float16, 768 bytes per goal)."""
    from molevla_ros.model.minilm import shared

    emb = torch.cat([shared().sentence(goals[i:i + 256]) for i in range(0, len(goals), 256)])
    save_file({"sentences": emb.half().contiguous()}, str(Path(folder) / FILE))


class GoalFamiliarity:
    """Highest cosine similarity of a goal to the model's training goals (None without a reference file)."""

    def __init__(self, folder: Path) -> None:
        from molevla_ros.model.minilm import shared

        self.reference = load_file(str(Path(folder) / FILE))["sentences"].float()
        self.encoder = shared()

    @classmethod
    def of(cls, folder: Path | None) -> "GoalFamiliarity | None":
        return cls(folder) if folder is not None and (Path(folder) / FILE).is_file() else None

    def similarity(self, goal: str) -> float:
        return float((self.reference @ self.encoder.sentence([goal])[0]).max())
