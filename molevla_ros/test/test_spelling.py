"""Typing errors in goals: corrected against the model's training words, never at the expense of correct English,
other languages or goals the model does not know."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rapidfuzz.distance import OSA

from molevla_ros.model.goal_familiarity import GoalFamiliarity, write_reference
from molevla_ros.model.language import COLOUR_NAMES, FAMILIES, instruction_for
from molevla_ros.model.spelling import correct, english_words, osa_distance
from molevla_ros.model.wordings import HELD_OUT, held_out_wording, training_words, with_typos

VOCABULARY = frozenset(training_words())
CANONICAL = ([instruction_for("touch", c) for c in COLOUR_NAMES] + [instruction_for("pick_place", c) for c in
             COLOUR_NAMES] + [instruction_for("push", c, t) for c in COLOUR_NAMES for t in COLOUR_NAMES])


@settings(max_examples=300, deadline=None)
@given(st.text("abcdez", max_size=9), st.text("abcdez", max_size=9), st.integers(0, 3))
def test_distance_is_rapidfuzz_optimal_string_alignment(a, b, limit):
    assert osa_distance(a, b, limit) == min(OSA.distance(a, b), limit + 1)


@pytest.mark.parametrize("typed, meant", [
    ("tuch the red cueb", "touch the red cube"),  # a letter left out, two swapped
    ("push teh bleu cube to the gren target", "push the blue cube to the green target"),
    ("pick up the yelow cube and put it in the tary", "pick up the yellow cube and put it in the tray"),
    ("ttouch the reed cuube", "touch the red cube"),  # doubled letters, one making a real word ("reed")
    ("touchthe red cube", "touch the red cube"),  # a missing space
    ("touch thered cbue", "touch the red cube"),
    ("Tocuh the GREEN cube, please.", "touch the green cube, please."),
])
def test_typing_errors_are_read_as_the_goal_meant(typed, meant):
    text, fixes = correct(typed, VOCABULARY, english_words(),
                          lambda t: float(t.lower().rstrip(".") in set(CANONICAL) | {meant.lower().rstrip(".")}))
    assert text.lower() == meant.lower() and fixes


@pytest.mark.parametrize("goal", ["pat the red cuboid", "boop the red cube", "coge el cubo rojo",
                                  "touche le cube rouge", "open the drawer", "touch the red tube",
                                  "stack the red cube on the blue cube"])
def test_english_words_other_languages_and_unknown_verbs_are_left_as_typed(goal):
    assert correct(goal, VOCABULARY, english_words(), lambda t: 0.0) == (goal, [])


def test_held_out_wordings_are_never_changed():
    """Correctly spelt paraphrases use words the model never saw: none of them may be 'corrected' into training
    words."""
    for family in FAMILIES:
        for i in range(len(HELD_OUT[family])):
            for c in COLOUR_NAMES:
                goal = held_out_wording(family, c, "blue" if c != "blue" else "red", i)
                assert correct(goal, VOCABULARY, english_words(), lambda t: 0.0) == (goal, []), goal


def test_nothing_is_corrected_without_a_vocabulary():
    assert correct("tuch the red cueb", frozenset()) == ("tuch the red cueb", [])


def test_familiarity_reads_typed_goals_as_their_training_goal_and_names_the_nearest_on_refusal(tmp_path):
    write_reference(tmp_path, CANONICAL, "varied")
    fam = GoalFamiliarity.of(tmp_path)
    reading = fam.read("pikc up the yelow cueb and put it in the tary", 0.5)
    assert reading.text == "pick up the yellow cube and put it in the tray" and not reading.refusal
    assert reading.correction_note() == "pikc -> pick, yelow -> yellow, cueb -> cube, tary -> tray"
    assert fam.read("touch the bred cube", 0.5).text == "touch the red cube"  # a real word, but the goal is known
    refused = fam.read("wave hello", 0.5)
    assert refused.refusal and "; the nearest goal it knows: '" in refused.refusal and not refused.fixes
    rng = np.random.default_rng(7)
    typed = [with_typos(g, rng, space_drop=0.0) for g in CANONICAL for _ in range(3)]
    read = [fam.read(t, 0.5) for t in typed]
    assert sum(not r.refusal for r in read) >= 0.9 * len(read)  # measured: 97% (most of the rest: 2 edits in 4 letters)
    assert sum(r.text in CANONICAL for r in read) >= 0.8 * len(read)


def test_typo_generator_leaves_function_words_and_keeps_the_words_apart_by_default():
    rng = np.random.default_rng(0)
    for goal in CANONICAL:
        typed = with_typos(goal, rng, space_drop=0.0)
        assert typed != goal and len(typed.split()) == len(goal.split())
        assert [w for w in typed.split() if w in ("the", "to", "it", "in", "up", "and")] == \
            [w for w in goal.split() if w in ("the", "to", "it", "in", "up", "and")]


def test_the_search_over_uncertain_words_is_bounded():
    """Words with several readings (or real English words) are tried in at most 16 combinations, and not at all
    when more than four words are uncertain: a long string of them is no mistyped goal, and the node reads goals
    in its callback."""
    calls = []

    def similarity(text: str) -> float:
        calls.append(text)
        return 0.0

    assert correct("puh " * 10, VOCABULARY, english_words(), similarity) == ("puh " * 10, []) and not calls
    correct("puh the bred cube and puh it", VOCABULARY, english_words(), similarity)
    assert 1 < len(calls) <= 16
