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


def colours_named(text: str) -> list[str]:
    """The colour words a sentence names, each once, in order of first mention."""
    return list(dict.fromkeys(colour_mentions(text)))
