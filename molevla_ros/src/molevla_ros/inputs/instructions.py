"""Validation of operator goals (language instructions). No ROS types here."""
from __future__ import annotations

import unicodedata

STOP_WORDS = frozenset({"stop", "halt", "cancel", "abort", "e-stop", "estop"})


class InstructionError(ValueError):
    """A goal that cannot be accepted; the message says why."""


def validate(raw: bytes | str, max_chars: int = 256) -> str:
    """The cleaned goal text, or InstructionError. Accepts raw bytes so bad UTF-8 is caught here."""
    if isinstance(raw, (bytes, bytearray, memoryview)):
        if len(raw) > 4 * max_chars:
            raise InstructionError(f"instruction too long ({len(raw)} bytes > {4 * max_chars})")
        try:
            raw = bytes(raw).decode("utf-8")
        except UnicodeDecodeError as e:
            raise InstructionError(f"instruction is not valid UTF-8 ({e.reason} at byte {e.start})") from None
    text = "".join(ch if unicodedata.category(ch)[0] != "C" else " " for ch in raw)
    text = " ".join(text.split())
    if not text:
        raise InstructionError("instruction is empty")
    if len(text) > max_chars:
        raise InstructionError(f"instruction too long ({len(text)} characters > {max_chars})")
    return text


def is_stop(text: str) -> bool:
    """True for an operator's stop word ("stop", "halt", "cancel", ...)."""
    return text.lower().strip(" .!") in STOP_WORDS
