"""How close a goal sentence is to the goals a model was trained on, in MiniLM sentence-embedding space, and
what the operator meant when a word was mistyped.

Training writes the unit sentence embeddings of its goals (the recorded instructions and, with varied
wording, rewordings of each) into the model folder as FILE, with the recorded goals and every word its goals
can contain as metadata. At run time (`GoalFamiliarity.read`), mistyped words are first corrected against those
words (model/spelling.py: "tuch the red cueb" is read as "touch the red cube"); the goal's familiarity is then its
highest cosine similarity to any training goal: near 1 for a trained wording, lower for a paraphrase, low for
another language or an unrelated request. The policy node refuses goals below its `min_goal_similarity`, so an
operator learns that "coge el cubo rojo" is not understood instead of watching the arm guess; the refusal names
the nearest goal the model knows.

Similarity alone cannot see that "touch the purple cube" names a colour the model never saw (0.86): the file also
lists the colour words of the training goals, and a goal that names none of them is refused too.

A goal that is not refused is also read as the training goal it means (`GoalReading.known`): of the recorded goals
naming the same colours in the same order, the one whose training wordings' mean embedding (its prototype) is
nearest ("Drive the red cuboid across to the green marker" -> "push the red cube to the green target"; a prototype
averages out the filler words single wordings share, "robot, ... thank you"). The colours come from the words, never
from the embedding, which hardly tells "red ... to the blue" from "blue ... to the red"; the embedding only picks
the task. The policy acts on that goal (its `read_as_known_goal` parameter), so an operator's own words get the
behaviour of the words the model was trained on, and the status says how the goal was read.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from molevla_ros.model.language import (COLOUR_NAMES, OTHER_COLOURS, colour_kinds, colour_mentions, colours_named,
                                        kinds_named, negated_clause, unknown_colours)
from molevla_ros.model.spelling import WORD, correct, english_words
from molevla_ros.model.wordings import reword, training_words

FILE = "familiar_goals.safetensors"
DEFAULT_MIN_SIMILARITY = 0.5  # the policy node's min_goal_similarity default
KNOWN_SIMILARITY = 0.98  # a goal this close to a training goal is that goal (same words, case or punctuation aside)


def sentence_owners(goals: int, per_goal: int) -> list[int]:
    """The recorded goal of each training sentence in training_goals' layout: the goals themselves, then
    `per_goal` rewordings of each in turn."""
    return list(range(goals)) + [i for i in range(goals) for _ in range(per_goal)]


def training_goals(instructions: list[str], wording: str, per_goal: int = 32, seed: int = 0
                   ) -> tuple[list[str], list[int]]:
    """The distinct recorded goals (sorted), plus `per_goal` rewordings of each when training varied the wording;
    and for each sentence the index of its recorded goal."""
    distinct = sorted(set(instructions))
    owners = sentence_owners(len(distinct), per_goal if wording == "varied" else 0)
    rng = np.random.default_rng(seed)
    return distinct + [reword(distinct[i], rng) for i in owners[len(distinct):]], owners


def goal_words(instructions: list[str], wording: str) -> list[str]:
    """Every word a model's training goals can contain: its recorded goals' words, and with varied wording every
    word the rewording generator uses."""
    words = {w.lower() for g in instructions for w in WORD.findall(g)}
    return sorted(words | training_words() if wording == "varied" else words)


def write_reference(folder: Path, instructions: list[str], wording: str, seed: int = 0) -> None:
    """Sentence embeddings of the training goals (float16, 768 bytes per goal), their colour words, the recorded
    goals, which recorded goal each sentence words, and the goal vocabulary -> folder/FILE."""
    import torch
    from safetensors.torch import save_file

    from molevla_ros.model.minilm import shared

    goals, owners = training_goals(instructions, wording, seed=seed)
    emb = torch.cat([shared().sentence(goals[i:i + 256]) for i in range(0, len(goals), 256)])
    meta = {"colours": sorted(set().union(*map(colours_named, goals))), "goals": sorted(set(instructions)),
            "owners": owners, "words": goal_words(instructions, wording)}
    save_file({"sentences": emb.half().contiguous()}, str(Path(folder) / FILE),
              {k: json.dumps(v) for k, v in meta.items()})


@dataclass
class GoalReading:
    """A goal as the model will read it: `text` (typing corrected), the corrections [(as typed, read as)], its
    similarity to the training goals, why it is refused ("" when it is not) and the training goal it means ("" when
    refused or when no training goal names its colours in its order)."""

    text: str
    fixes: list[tuple[str, str]]
    similarity: float
    refusal: str
    known: str = ""

    def acted_on(self, as_known: bool) -> str:
        """The goal the policy acts on: the training goal it means where there is one and `as_known`, else `text`."""
        return self.known if as_known and self.known else self.text

    def correction_note(self) -> str:
        return ", ".join(f"{a} -> {b}" for a, b in self.fixes)


class GoalFamiliarity:
    """Reads goals against a model's training goals (None without a reference file): typing corrected against
    their words, highest cosine similarity to them, whether the goal names one of their colours, and the nearest
    recorded goal."""

    def __init__(self, folder: Path) -> None:
        from safetensors import safe_open

        from molevla_ros.model.minilm import shared

        try:
            with safe_open(str(Path(folder) / FILE), "pt") as f:
                self.reference = f.get_tensor("sentences").float()
                meta = f.metadata() or {}
        except Exception as e:  # the safetensors library's own error types (SafetensorError, ...)
            raise ValueError(f"{Path(folder) / FILE}: cannot be read ({type(e).__name__}: {e})") from None
        self.colours = set(json.loads(meta.get("colours", "[]")))
        self.goals: list[str] = json.loads(meta.get("goals", "[]"))  # files written before 2026-12-06 have none
        self.words = frozenset(json.loads(meta.get("words", "[]")))  # nor these: no typing correction then
        self.prototypes = self._prototypes(json.loads(meta["owners"]) if "owners" in meta else None)
        self.encoder = shared()
        self._goal_embeddings = self.encoder.sentence(self.goals) if self.goals else None

    def _prototypes(self, owners: list[int] | None):
        """Per recorded goal, the unit mean embedding of its training sentences; None when the file cannot say
        which sentence words which goal (goals are then not read as known). Files written before 2026-12-07 have
        no "owners": taken from training_goals' layout when the row count fits it."""
        import torch

        n, rows = len(self.goals), len(self.reference)
        if owners is None and n and rows % n == 0:
            owners = sentence_owners(n, rows // n - 1)
        if not n or owners is None or len(owners) != rows:
            return None
        sums = torch.zeros(n, self.reference.shape[1]).index_add_(0, torch.tensor(owners), self.reference)
        return torch.nn.functional.normalize(sums, dim=1)

    @classmethod
    def of(cls, folder: Path | None) -> "GoalFamiliarity | None":
        return cls(folder) if folder is not None and (Path(folder) / FILE).is_file() else None

    def similarity(self, goal: str) -> float:
        return self._similarity(self.encoder.sentence([goal])[0])

    def _similarity(self, embedding) -> float:
        """Highest cosine similarity of a sentence embedding to the training goals."""
        return float((self.reference @ embedding).max())

    def nearest_goal(self, embedding) -> str | None:
        """The recorded goal nearest to a sentence embedding (of MiniLM, as the reference)."""
        if self._goal_embeddings is None:
            return None
        return self.goals[int((self._goal_embeddings @ embedding).argmax())]

    def known_goal(self, goal: str, embedding) -> str:
        """Of the recorded goals naming the same colours as `goal` (its sentence embedding: `embedding`) in the same
        order, the one with the nearest prototype; "" when there is none."""
        if self.prototypes is None:
            return ""
        mentions = colour_mentions(goal)
        same = [i for i, g in enumerate(self.goals) if colour_mentions(g) == mentions]
        if not same:
            return ""
        return self.goals[same[int((self.prototypes[same] @ embedding).argmax())]]

    def read(self, goal: str, min_similarity: float) -> GoalReading:
        """The goal with its typing corrected, its similarity, why it is refused ("" when it is not; never when
        min_similarity is 0) and the training goal it means."""
        text, fixes = correct(goal, self.words, english_words() if self.words else frozenset(),
                              self.similarity, KNOWN_SIMILARITY)
        embedding = self.encoder.sentence([text])[0]  # once, for the three comparisons below
        similarity, known = self._similarity(embedding), self.known_goal(text, embedding)
        why = ""
        if 0 < min_similarity:
            why = self.why_refused(text, fixes, similarity, min_similarity, known)
        nearest = self.nearest_goal(embedding) if why else None
        if nearest:
            why += f"; the nearest goal it knows: '{nearest}'"
        return GoalReading(text, fixes, similarity, why, "" if why else known)

    def why_refused(self, text: str, fixes: list[tuple[str, str]], similarity: float, min_similarity: float,
                    known: str) -> str:
        """Why the policy must not act on a goal (`text`: typing corrected, `fixes`: the corrections; `known`: the
        training goal it would be read as); "" when it may. A goal that asks for something else than the goals the
        model knows is refused, not guessed: too unlike them, no colour they name, a negated request, a thing of a
        colour the model never saw, colours in an order none of its goals has, a colour naming another kind of
        thing than in the goal it would be read as ("the blue cube" where that goal has "the blue target"), or a
        kind of thing that goal does not have."""
        if similarity < min_similarity:
            return (f"is unlike any goal the model was trained on (similarity {similarity:.2f} < "
                    f"min_goal_similarity {min_similarity:g})")
        if self.colours and not self.colours.intersection(colours_named(text)):
            return f"names none of the colours the model knows ({', '.join(sorted(self.colours))})"
        if clause := negated_clause(text):
            return (f"asks not to act on a thing it names, or to move it away ('{clause[:60]}'); the model only acts "
                    "on goals that say what to do")
        # and colours the typing correction read as known ones ("grey" as "green"; not "pink" read as "pick")
        swapped = [typed.lower() for typed, read in fixes if typed.lower() in OTHER_COLOURS and read in COLOUR_NAMES]
        if self.colours and (unknown := list(dict.fromkeys(swapped + unknown_colours(text, self.colours)))):
            return (f"names a colour the model does not know ({', '.join(unknown)}; it knows "
                    f"{', '.join(sorted(self.colours))})")
        if self.prototypes is None:  # a reference file without its goals: nothing to read the goal against
            return ""
        if not known:
            return f"names colours in an order none of the model's goals has ({', '.join(colour_mentions(text))})"
        for (colour, kind), (_, expected) in zip(colour_kinds(text), colour_kinds(known)):
            if kind and expected and kind != expected:
                return (f"names the {colour} {kind} where the goal it is closest to has the {colour} {expected} "
                        f"('{known}')")
        if extra := sorted(kinds_named(text) - kinds_named(known)):
            return f"names a {extra[0]}, which the goal it is closest to does not have ('{known}')"
        return ""
