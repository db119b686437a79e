"""The goal language the shipped models are trained on: the three task families, the colour words that ground a goal,
the canonical sentences and how a sentence maps back to (family, cube colour, target colour). No simulator here: the
model (its goal familiarity check), training and the simulator all read it.

- ``touch``: "touch the red cube"
- ``push``: "push the red cube to the blue target"
- ``pick_place``: "pick up the red cube and put it in the tray"
"""
from __future__ import annotations

import re
import unicodedata

COLOUR_NAMES = ("red", "green", "blue", "yellow")
FAMILIES = ("touch", "push", "pick_place")
# Colour words an operator may use beyond the simulator's four: a goal that asks for a thing of a colour its model never
# saw is refused (model/goal_familiarity.py), not read as the nearest colour it knows.
OTHER_COLOURS = frozenset("purple violet orange pink black white grey gray brown cyan magenta crimson scarlet maroon "
                          "navy teal turquoise gold golden silver beige indigo lime olive amber tan rose cream ivory "
                          "khaki aqua mint coral".split())
# What a goal's colour words name, in everyday English (wider than the training wordings, so that other wordings are
# read as well). Only nouns that name one kind: "box", "square", "piece" or "object" may be a cube or a place.
OBJECT_KINDS = {
    "cube": frozenset("cube cubes block blocks brick bricks cuboid cuboids".split()),
    "target": frozenset("target targets disc discs disk disks circle circles spot spots mark marks marker markers dot "
                        "dots pad pads zone zones area patch goal".split()),
    "tray": frozenset("tray trays bin bins basket bowl crate bucket container holder".split()),
}
# Parts of the scene that are not things a goal acts on: a colour naming one of these ("on the white table") is allowed.
SCENERY = frozenset("table tabletop wall walls floor background gripper hand hands arm robot mat cloth surface light "
                    "shirt".split())
# Words after which a noun phrase ends ("the red in the tray": "red" names no kind).
_PHRASE_END = frozenset("in to on into onto at by and or then of with from for over next near beside behind under "
                        "until so that it is but".split())
# Words after which a coloured thing is what not to act on, or is to be moved the other way ("off the blue target")
NEGATIONS = frozenset("not never dont cant cannot wont doesnt didnt isnt shouldnt avoid without except ignore refrain "
                      "away off".split())
# Words after a negation that make it a request to act ("why don't you ...", "don't forget to ...", "never mind")
_POLITE = frozenset("you forget mind hesitate worry".split())
_COLOUR_WORDS = frozenset(COLOUR_NAMES) | OTHER_COLOURS
_APOSTROPHES = str.maketrans({c: "'" for c in "\u2018\u2019\u02bc\u00b4`\uff07"})
_WORD = re.compile(r"[a-z]+(?:'(?!s\b)[a-z]+)?")  # "don't" is one word, "red's" two (red, s)
_ARROWS = re.compile(r"->|=>|\u2192|\u21d2|>")
_CLAUSE = re.compile(r"[,;:.!?()]|\b(?:and|but|then|or)\b")


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
    return [w for w in words(text) if w in COLOUR_NAMES]


def _normal(text: str) -> str:
    """`text` with any apostrophe read as one (before NFKC, which splits the acute accent), NFKC-normalised, lower
    case, arrows read as "to" ("red cube -> tray")."""
    return _ARROWS.sub(" to ", unicodedata.normalize("NFKC", text.translate(_APOSTROPHES)).lower())


def words(text: str) -> list[str]:
    """The words of `_normal(text)`, "don't" kept whole."""
    return _WORD.findall(_normal(text))


def _kind(word: str) -> str | None:
    return next((k for k, nouns in OBJECT_KINDS.items() if word in nouns), None)


def colour_kinds(text: str) -> list[tuple[str, str | None]]:
    """Each of COLOUR_NAMES in `text`, in order, with the kind of thing it names (OBJECT_KINDS): that of the last
    kind noun among the next three words, before the phrase ends or another colour comes ("the red wooden block":
    cube, "the blue square target": target); None where there is none ("the red one", "red in the tray")."""
    w, out = words(text), []
    for i, word in enumerate(w):
        if word in COLOUR_NAMES:
            kind = None
            for nxt in w[i + 1:i + 4]:
                if nxt in _PHRASE_END or nxt in _COLOUR_WORDS:
                    break
                kind = _kind(nxt) or kind
            out.append((word, kind))
    return out


def kinds_named(text: str) -> set[str]:
    """Every kind of thing (OBJECT_KINDS) `text` names, with or without a colour."""
    return {k for k in map(_kind, words(text)) if k}


def negated_clause(text: str) -> str:
    """The first clause of `text` that says not to act on a coloured thing: a negation with a colour after it
    ("don't touch the red cube", "touch anything except the red cube", "stop pushing the blue block", "push the red
    cube off the blue target"); "" when there is none. Negations elsewhere ("push the red cube to the blue target
    and don't knock anything over", "why don't you touch the red cube", "never mind, touch the red cube") are
    requests to act."""
    for clause in _CLAUSE.split(_normal(text)):
        w = _WORD.findall(clause)  # already normalised
        for i, x in enumerate(w):
            if not _COLOUR_WORDS.intersection(w[i + 1:]):
                break
            after = w[i + 1]
            if ((x in NEGATIONS or x.endswith("n't")) and after not in _POLITE and not (i and w[i - 1] == "why")
                    or x == "stop" and after.endswith("ing")):
                return clause.strip()
    return ""


def unknown_colours(text: str, known: set[str]) -> list[str]:
    """Colour words of `text` outside `known` that name something other than scenery ("the purple target", "the
    purple one"; not "the white table")."""
    w, out = words(text), []
    for i, word in enumerate(w):
        if word in _COLOUR_WORDS and word not in known and word not in out:
            if not SCENERY.intersection(w[i + 1:i + 3]):
                out.append(word)
    return out


def colours_named(text: str) -> list[str]:
    """The colour words a sentence names, each once, in order of first mention."""
    return list(dict.fromkeys(colour_mentions(text)))
