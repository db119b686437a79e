"""The goal language the shipped models are trained on: the three task families, the colour words that ground a goal,
the canonical sentences and how a sentence maps back to (family, cube colour, target colour). No simulator here: the
model (its goal familiarity check), training and the simulator all read it.

- ``touch``: "touch the red cube"
- ``push``: "push the red cube to the blue target"
- ``pick_place``: "pick up the red cube and put it in the tray"
"""
from __future__ import annotations

import re

COLOUR_NAMES = ("red", "green", "blue", "yellow")
FAMILIES = ("touch", "push", "pick_place")
# Colour words an operator may use beyond the simulator's four: a goal naming one that its model never saw is refused
# (model/goal_familiarity.py), not read as the nearest colour it knows.
OTHER_COLOURS = frozenset("purple violet orange pink black white grey gray brown cyan magenta crimson scarlet maroon "
                          "navy teal turquoise gold golden silver beige indigo lime olive".split())
# The kinds of thing a colour word can name in a goal, in everyday English (wider than the training wordings, so that
# other wordings are read as well): a goal whose colours name other kinds than the goal it is read as is refused.
OBJECT_KINDS = {
    "cube": frozenset("cube cubes block blocks box brick bricks cuboid square piece object thing item".split()),
    "target": frozenset("target targets disc disk circle spot mark marker dot pad zone area patch goal".split()),
    "tray": frozenset("tray bin container basket bowl crate holder bucket".split()),
}
NEGATIONS = frozenset("not never dont avoid".split())  # and every word ending in "n't"
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")


def instruction_for(family: str, cube: str, target: str | None = None) -> str:
    if family == "touch":
        return f"touch the {cube} cube"
    if family == "push":
        return f"push the {cube} cube to the {target} target"
    if family == "pick_place":
        return f"pick up the {cube} cube and put it in the tray"
    raise ValueError(f"unknown task family {family!r}; known: {', '.join(FAMILIES)}")


_PATTERNS = {
    "push": re.compile(r"push the (\w+) (?:cube|block) (?:on)?to the (\w+) (?:target|disc|circle)"),
    "pick_place": re.compile(r"pick up the (\w+) (?:cube|block).*(?:tray|bin|bowl)"),
    "touch": re.compile(r"touch the (\w+) (?:cube|block)"),
}


def parse_instruction(text: str) -> tuple[str, str, str | None] | None:
    """Map a goal sentence to (family, cube colour, target colour); None if it is not a known task."""
    t = " ".join(text.lower().strip().rstrip(".!").split())
    for family, pattern in _PATTERNS.items():
        m = pattern.search(t)
        if m and m.group(1) in COLOUR_NAMES:
            target = m.group(2) if family == "push" else None
            if family == "push" and target not in COLOUR_NAMES:
                continue
            return family, m.group(1), target
    return None


def colour_mentions(text: str) -> list[str]:
    """The colour words of a sentence in order, repeats kept ("push the red cube to the red target": red, red)."""
    return [w for w in re.findall(r"[a-z]+", text.lower()) if w in COLOUR_NAMES]


def words(text: str) -> list[str]:
    """Lower-case words, apostrophes inside a word kept ("don't"; a typographic apostrophe read as one)."""
    return _WORD.findall(text.lower().replace("\u2019", "'"))


def colour_kinds(text: str) -> list[tuple[str, str | None]]:
    """Each of COLOUR_NAMES in `text`, in order, with the kind of thing it names (OBJECT_KINDS): that of the first
    of the next two words that names one, before any other colour ("the red cube", "the red wooden block"); None
    when neither does ("the red one", "the red and the blue cube": red)."""
    w, out = words(text), []
    for i, word in enumerate(w):
        if word not in COLOUR_NAMES:
            continue
        kind = None
        for nxt in w[i + 1:i + 3]:
            if nxt in COLOUR_NAMES or nxt in OTHER_COLOURS:
                break
            kind = next((k for k, nouns in OBJECT_KINDS.items() if nxt in nouns), None)
            if kind:
                break
        out.append((word, kind))
    return out


def negation(text: str) -> str:
    """The first word of `text` that says what not to do ("not", "don't", "never", "avoid"); "" when none does."""
    return next((w for w in words(text) if w in NEGATIONS or w.endswith("n't")), "")


def colour_words(text: str) -> list[str]:
    """Every colour word of `text` (COLOUR_NAMES and OTHER_COLOURS), each once, in order of first mention."""
    return list(dict.fromkeys(w for w in words(text) if w in COLOUR_NAMES or w in OTHER_COLOURS))


def colours_named(text: str) -> list[str]:
    """The colour words a sentence names, each once, in order of first mention."""
    return list(dict.fromkeys(colour_mentions(text)))
