"""How close a goal sentence is to the goals a model was trained on, in MiniLM sentence-embedding space.

Training writes the unit sentence embeddings of its goals (the recorded instructions and, with varied
wording, rewordings of each) into the model folder as FILE. At run time a goal's familiarity is its highest
cosine similarity to any of them: near 1 for a trained wording, lower for a paraphrase, low for another
language or an unrelated request. The policy node refuses goals below its `min_goal_similarity`, so an
operator learns that "coge el cubo rojo" is not understood instead of watching the arm guess.

Similarity alone cannot see that "touch the purple cube" names a colour the model never saw (0.86): the file also
lists the colour words of the training goals, and a goal that names none of them is refused too.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from molevla_ros.model.language import colours_named
from molevla_ros.model.wordings import reword

FILE = "familiar_goals.safetensors"


def training_goals(instructions: list[str], wording: str, per_goal: int = 32, seed: int = 0) -> list[str]:
    """The distinct recorded goals, plus `per_goal` rewordings of each when training varied the wording."""
    distinct = sorted(set(instructions))
    if wording != "varied":
        return distinct
    rng = np.random.default_rng(seed)
    return distinct + [reword(g, rng) for g in distinct for _ in range(per_goal)]


def write_reference(folder: Path, goals: list[str]) -> None:
    """Sentence embeddings of `goals` (float16, 768 bytes per goal) and their colour words -> folder/FILE."""
    from molevla_ros.model.minilm import shared

    emb = torch.cat([shared().sentence(goals[i:i + 256]) for i in range(0, len(goals), 256)])
    colours = sorted(set().union(*map(colours_named, goals)))
    save_file({"sentences": emb.half().contiguous()}, str(Path(folder) / FILE), {"colours": json.dumps(colours)})


class GoalFamiliarity:
    """Highest cosine similarity of a goal to the model's training goals, and whether it names one of their colours
    (None without a reference file)."""

    def __init__(self, folder: Path) -> None:
        from molevla_ros.model.minilm import shared

        with safe_open(str(Path(folder) / FILE), "pt") as f:
            self.reference = f.get_tensor("sentences").float()
            self.colours = set(json.loads((f.metadata() or {}).get("colours", "[]")))
        self.encoder = shared()

    @classmethod
    def of(cls, folder: Path | None) -> "GoalFamiliarity | None":
        return cls(folder) if folder is not None and (Path(folder) / FILE).is_file() else None

    def similarity(self, goal: str) -> float:
        return float((self.reference @ self.encoder.sentence([goal])[0]).max())

    def refusal(self, goal: str, min_similarity: float) -> tuple[float, str]:
        """(similarity, why the goal is refused: "" when it is not)."""
        similarity = self.similarity(goal)
        if similarity < min_similarity:
            return similarity, (f"is unlike any goal the model was trained on (similarity {similarity:.2f} < "
                                f"min_goal_similarity {min_similarity:g})")
        if self.colours and not self.colours.intersection(colours_named(goal)):
            return similarity, f"names none of the colours the model knows ({', '.join(sorted(self.colours))})"
        return similarity, ""
