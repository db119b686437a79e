"""Typing errors in a goal, corrected against the words a model was trained on.

An operator who types "tuch the red cueb" means "touch the red cube". Each word that is not in the vocabulary is
replaced by the closest vocabulary word within that word's edit budget (insertions, deletions, substitutions and
swaps of neighbouring letters: the optimal-string-alignment distance), or split when it is two or three vocabulary
words run together, each within its budget ("thered" -> "the red", "itinthe" -> "it in the"); fewest edits wins.
Budget: none for words of one or two letters, one edit for three or four letters, two from five on. A word with
no candidate is left as typed: the goal familiarity check then decides, so "boop" is never forced onto a known
word. A word with two equally close readings ("puh": "push" or "put") takes the one that makes the goal one the
model was trained on (the caller's `similarity` to the training goals), or stays as typed.

A correctly spelt English word (english_words: pyspellchecker's list, words seen at least MIN_COUNT times in its
corpus) is replaced only when that makes the goal one the model was trained on: "touch
the bred cube" is read as "touch the red cube", but "pat the red cuboid" is not read as "put the red cuboid".
When half or more of a goal's words stay unknown even after correcting, it is another language or another request
("coge el cubo rojo"), not a typed goal with errors: it is left as typed.
"""
from __future__ import annotations

import itertools
import re
from functools import lru_cache
from typing import Callable

WORD = re.compile(r"[A-Za-z]+")
MIN_COUNT = 100  # rarer entries of the word list are mostly typing errors themselves ("gree": 50)


@lru_cache(maxsize=1)
def english_words() -> frozenset[str]:
    """Correctly spelt English words (lower case): pyspellchecker's English frequency list (extra `language`)."""
    try:
        from spellchecker import SpellChecker
    except ImportError:
        raise ImportError("goal spell correction needs the PyPI package 'pyspellchecker': "
                          "pip install 'molevla_ros[language]'") from None
    counts = SpellChecker(language="en").word_frequency
    return frozenset(w for w, n in counts.items() if n >= MIN_COUNT)


def edit_budget(word: str) -> int:
    return 0 if len(word) <= 2 else 1 if len(word) <= 4 else 2


def osa_distance(a: str, b: str, limit: int) -> int:
    """Optimal-string-alignment distance of a and b (edits: insert, delete, substitute, swap two neighbours);
    any value above `limit` is returned as limit + 1."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        row = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            row[j] = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                row[j] = min(row[j], prev2[j - 2] + 1)
        if min(row) > limit:
            return limit + 1
        prev2, prev = prev, row
    return min(prev[-1], limit + 1)


def nearest(word: str, vocabulary: frozenset[str]) -> tuple[list[str], int]:
    """(the vocabulary words closest to `word` within each one's budget, their distance); ([], 0) when there is
    none. Words under three letters are taken only as typed."""
    if word in vocabulary:
        return [word], 0
    if len(word) < 3:
        return [], 0
    best: list[str] = []
    best_d = 3
    for v in sorted(vocabulary):
        budget = edit_budget(v)
        d = osa_distance(word, v, budget)
        if d > budget:
            continue
        if d < best_d:
            best, best_d = [v], d
        elif d == best_d:
            best.append(v)
    return best, best_d


def _spans(w: str, vocabulary: frozenset[str], words: int) -> dict[str, tuple[int, int]]:
    """Readings of `w` as 1 to `words` vocabulary words run together -> (edits, number of words), each part two
    letters or more and within its word's budget."""
    out: dict[str, tuple[int, int]] = {}

    def add(text: str, edits: int, n: int) -> None:
        out[text] = min(out.get(text, (edits, n)), (edits, n))

    one, d = nearest(w, vocabulary)
    for v in one:
        add(v, d, 1)
    if words > 1:  # a part longer than every vocabulary word plus its budget cannot match
        for i in range(2, min(len(w) - 1, max(map(len, vocabulary)) + 3)):
            left, dl = nearest(w[:i], vocabulary)
            if left:
                for rest, (dr, n) in _spans(w[i:], vocabulary, words - 1).items():
                    for a in left:
                        add(f"{a} {rest}", dl + dr, n + 1)
    return out


def readings(word: str, vocabulary: frozenset[str]) -> list[str]:
    """What `word` may have been meant as (lower case), equally likely: the closest vocabulary words, or up to three
    run together ("itinthe"); fewest edits first, fewer words first on a tie. Empty when it is known or nothing
    fits."""
    w = word.lower()
    if w in vocabulary:
        return []
    options = _spans(w, vocabulary, 3)
    if not options:
        return []
    top = min(options.values())
    return [t for t, v in options.items() if v == top]


def correct(goal: str, vocabulary: frozenset[str], dictionary: frozenset[str] = frozenset(),
            similarity: Callable[[str], float] | None = None, known: float = 0.98, max_tries: int = 16
            ) -> tuple[str, list[tuple[str, str]]]:
    """(the goal with each mistyped word replaced, [(as typed, read as), ...]); the goal unchanged when no word
    needed it or the vocabulary is empty. A word is replaced when it has one reading; words with several, and
    correct English words (`dictionary`), are replaced only when that makes the goal one the model knows: of at
    most `max_tries` combinations, the one most similar to the training goals (`similarity`), if at least
    `known`; with more than four such words none is tried."""
    if not vocabulary:
        return goal, []
    spans = [(m.span(), m.group(0)) for m in WORD.finditer(goal)]
    options = []  # per word: the readings to try, the first being the plain correction (or the word as typed)
    for _, word in spans:
        r = readings(word, vocabulary)
        sure = len(r) == 1 and word.lower() not in dictionary
        options.append(r if sure else [word] + r)

    def build(choice: tuple[str, ...]) -> tuple[str, list[tuple[str, str]]]:
        out, fixes, at = [], [], 0
        for ((a, b), word), new in zip(spans, choice):
            out.append(goal[at:a] + new)
            at = b
            if new != word:
                fixes.append((word, new))
        return "".join(out) + goal[at:], fixes

    text, fixes = build(tuple(o[0] for o in options))
    uncertain = sum(len(o) > 1 for o in options)
    if similarity is not None and 0 < uncertain <= 4:  # more: not a mistyped goal (and too many to try)
        scored = [(similarity(c[0]), i, c) for i, c in enumerate(map(build, itertools.islice(
            itertools.product(*options), max_tries)))]  # i = 0: the plain correction, kept on a tie
        best, _, candidate = max(scored, key=lambda sc: (sc[0], -sc[1]))
        if best >= known:
            text, fixes = candidate
    words = WORD.findall(text)
    if fixes and 2 * sum(w.lower() in vocabulary for w in words) <= len(words):
        return goal, []  # mostly unknown words even so: another language or another request, not typing errors
    return text, fixes
