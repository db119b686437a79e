"""Other ways to say a task's goal: a random generator for training, and a fixed held-out set for evaluation.

Operators do not type the three templates of language.instruction_for. Training draws a new wording of the goal at
every use of a sample (synonyms for the verb, the object and the place, sentence shapes, politeness, filler
words, case and punctuation); evaluation can ask in wordings that training never produced: other verbs,
other nouns and other sentence shapes (HELD_OUT below; no content word of it appears in the training
vocabulary, which test_language checks).

In every wording the cube's colour comes first and the push target's colour second, and no other colour is
named: the colour words are what ground the goal, and the simulator's tasks.is_goal_of still recognises the task.
"""
from __future__ import annotations

import re

import numpy as np

from molevla_ros.model.language import COLOUR_NAMES, parse_instruction

# ---- training vocabulary --------------------------------------------------------------------------------
OBJECT = ["cube", "block", "box", "brick"]
TOUCH = ["touch {c}", "tap {c}", "poke {c}", "reach out and touch {c}", "put your fingertips on {c}",
         "make contact with {c}", "go and touch {c}", "reach for {c} and touch it", "tap on {c}",
         "touch the top of {c}", "{c}: touch it"]
PUSH_PLACE = ["target", "disc", "circle", "spot", "mark"]
PUSH = ["push {c} to {t}", "push {c} onto {t}", "slide {c} to {t}", "shove {c} over to {t}", "move {c} onto {t}",
        "nudge {c} toward {t} until it is on it", "push {c} so that it ends up on {t}", "slide {c} onto {t}",
        "{c} goes on {t}, push it there"]
TRAY = ["tray", "bin", "container", "tray next to it"]
PICK_PLACE = ["pick up {c} and put it in {p}", "put {c} in {p}", "place {c} into {p}", "move {c} into {p}",
              "grab {c} and drop it in {p}", "pick {c} up and place it in {p}", "take {c} and put it into {p}",
              "get {c} into {p}", "{c} goes in {p}, pick it up and put it there"]
BEFORE = ["", "", "", "please ", "could you ", "can you ", "i want you to ", "now ", "go ahead and ", "robot, ",
          "ok, ", "next, "]
AFTER = ["", "", "", " please", " now", " for me", ", thanks", " thank you", " carefully", " quickly"]
END = ["", "", ".", "!", "?"]

# ---- held-out vocabulary (evaluation only) ---------------------------------------------------------------
HELD_OUT = {
    "touch": ["pat the {C} cuboid", "Lightly press your gripper against the {C} square.",
              "Bring your fingers down onto the {C} piece", "Give the {C} object a gentle prod"],
    "push": ["Drive the {C} cuboid across to the {T} marker", "shift the {C} square along the table to the {T} dot",
             "the {C} piece belongs on the {T} pad: bump it over there",
             "Scoot the {C} object over so it rests on the {T} zone."],
    "pick_place": ["Lift the {C} cuboid and deposit it in the basket", "grasp the {C} square, then set it inside "
                   "the bowl", "I'd like the {C} piece stored in the crate", "Collect the {C} object and leave it "
                   "in the holder."],
}


def _noun(c: str, rng: np.random.Generator) -> str:
    return f"the {c} {OBJECT[rng.integers(len(OBJECT))]}"


def random_wording(family: str, cube: str, target: str | None, rng: np.random.Generator) -> str:
    """One training wording of a goal, drawn from the training vocabulary."""
    pick = lambda options: options[rng.integers(len(options))]  # noqa: E731
    c = _noun(cube, rng)
    if family == "touch":
        core = pick(TOUCH).format(c=c)
    elif family == "push":
        core = pick(PUSH).format(c=c, t=f"the {target} {pick(PUSH_PLACE)}")
    elif family == "pick_place":
        core = pick(PICK_PLACE).format(c=c, p=f"the {pick(TRAY)}")
    else:
        raise ValueError(f"unknown task family {family!r}")
    text = pick(BEFORE) + core + pick(AFTER) + pick(END)
    case = rng.random()
    if case < 0.4:
        text = text[:1].upper() + text[1:]
    elif case < 0.5:
        text = text.upper()
    return text


def held_out_wording(family: str, cube: str, target: str | None, index: int) -> str:
    """Held-out wording number `index` (cycled) of a goal; never produced by random_wording."""
    options = HELD_OUT[family]
    return options[index % len(options)].format(C=cube, T=target)


def reword(instruction: str, rng: np.random.Generator) -> str:
    """A random training wording of a canonical goal sentence (tasks.instruction_for); other text unchanged."""
    parsed = parse_instruction(instruction)
    return instruction if parsed is None else random_wording(*parsed, rng)


def reword_held_out(instruction: str, index: int) -> str:
    """Held-out wording `index` of a canonical goal sentence; other text unchanged."""
    parsed = parse_instruction(instruction)
    return instruction if parsed is None else held_out_wording(*parsed, index)


# Words that carry no task meaning; the held-out set may share these with training, nothing else.
FUNCTION_WORDS = frozenset("a an the to it its and on onto in into inside so that over then your you i d like is be "
                           "of up out for me now please there until with at down across along".split())


def content_words(text: str) -> set[str]:
    """Lower-case words of `text` other than FUNCTION_WORDS and {c} / {t} placeholders."""
    return set(re.findall(r"[a-z]+", text.lower())) - FUNCTION_WORDS - {"c", "t", "p"}


TRAINING_PARTS = (*OBJECT, *TOUCH, *PUSH_PLACE, *PUSH, *TRAY, *PICK_PLACE, *BEFORE, *AFTER)  # what wordings are made of


def training_vocabulary() -> set[str]:
    """Every content word random_wording can produce (colour words excluded)."""
    return set().union(*(content_words(p) for p in TRAINING_PARTS))


def training_words() -> set[str]:
    """Every lower-case word random_wording can produce, function and colour words included."""
    words = set().union(*(re.findall(r"[a-z]+", p.lower()) for p in TRAINING_PARTS))
    return words - {"c", "t", "p"} | set(COLOUR_NAMES)


def with_typos(text: str, rng: np.random.Generator, space_drop: float = 0.1) -> str:
    """`text` as a hurried operator types it (evaluation): every content word of three letters or more gets one
    typing error (two, with probability one half, from five letters on): a letter left out, doubled, swapped with
    its neighbour or an extra one pressed beside it; each space between two words is left out with probability
    `space_drop`."""
    def mistype(word: str) -> str:
        for _ in range(1 + (len(word) >= 5 and rng.random() < 0.5)):
            i = int(rng.integers(len(word)))
            kind = int(rng.integers(4))
            if kind == 0 and len(word) > 3:
                word = word[:i] + word[i + 1:]
            elif kind == 1:
                word = word[:i + 1] + word[i:]
            elif kind == 2 and i < len(word) - 1:
                word = word[:i] + word[i + 1] + word[i] + word[i + 2:]
            else:
                word = word[:i] + "abcdefghijklmnopqrstuvwxyz"[rng.integers(26)] + word[i:]
        return word

    words = [mistype(w) if len(w) >= 3 and w.lower() not in FUNCTION_WORDS else w for w in text.split(" ")]
    out = words[0]
    for w in words[1:]:
        out += ("" if rng.random() < space_drop else " ") + w
    return out
