"""Validation of operator goals (language instructions). No ROS types here."""
from __future__ import annotations

import re
import unicodedata
from typing import NamedTuple

STOP_WORDS = frozenset({"stop", "halt", "cancel", "abort", "e-stop", "estop"})
# Terminal escape sequences (CSI "ESC [ ... final", OSC "ESC ] ... BEL", two-character "ESC x", C1 CSI): removed whole,
# so no "[2J" is left of a clear-screen code.
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x9b[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-_]")


class InstructionError(ValueError):
    """A goal that cannot be accepted; the message says why."""


class Instruction(NamedTuple):
    text: str  # the cleaned goal
    note: str  # what cleaning changed besides whitespace ("" when nothing), for the operator's status


def validate(raw: bytes | str, max_chars: int = 256) -> Instruction:
    """The cleaned goal, or InstructionError. Accepts raw bytes so bad UTF-8 is caught here.

    Whitespace (tabs, newlines, runs of spaces) becomes single spaces silently. Escape sequences and other control
    or invisible format characters are removed (a control character between words leaves a space), and the note
    says so: the operator should see that the goal acted on is not byte for byte what was sent."""
    if isinstance(raw, (bytes, bytearray, memoryview)):
        if len(raw) > 4 * max_chars:
            raise InstructionError(f"instruction too long ({len(raw)} bytes > {4 * max_chars})")
        try:
            raw = bytes(raw).decode("utf-8")
        except UnicodeDecodeError as e:
            raise InstructionError(f"instruction is not valid UTF-8 ({e.reason} at byte {e.start})") from None
    elif len(raw) > 4 * max_chars:  # text (action goals): the same cap, before any per-character work
        raise InstructionError(f"instruction too long ({len(raw)} characters > {4 * max_chars} before cleaning)")
    text, escapes = _ESCAPES.subn(" ", raw)
    removed = escapes > 0
    kept = []
    for ch in text:
        if ch in "\t\n\r\v\f":  # whitespace controls (separators, category Z, are whitespace to split() below)
            kept.append(" ")
        elif unicodedata.category(ch)[0] == "C":  # Cc controls, Cf format (zero-width), Co/Cs/Cn
            removed = True
            kept.append(" " if unicodedata.category(ch) == "Cc" else "")
        else:
            kept.append(ch)
    text = " ".join("".join(kept).split())
    if not text:
        raise InstructionError("instruction is empty" + (" (only control characters)" if removed else ""))
    if len(text) > max_chars:
        raise InstructionError(f"instruction too long ({len(text)} characters > {max_chars})")
    return Instruction(text, "control characters removed" if removed else "")


def is_stop(text: str) -> bool:
    """True for an operator's stop word ("stop", "halt", "cancel", ...)."""
    return text.lower().strip(" .!") in STOP_WORDS
