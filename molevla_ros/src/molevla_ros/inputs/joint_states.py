"""Validation of joint states (sensor_msgs/JointState fields). No ROS types here.

A joint state is read by name, never by position: the message must name every expected joint once, carry a
finite position for each (within the joints' range, where given), and be stamped within `max_age` of the reader's
clock (either direction: a stamp from the future is a clock problem, not a fresh reading). Extra joints (fingers,
other arms) are ignored.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np


class JointStateError(ValueError):
    """A joint state that must not be acted on; the message says why."""


# A reading further than this beyond a joint's position limit is broken or mis-scaled (encoder counts, degrees),
# not the arm: a real joint stops at its limit, a simulated one overshoots it by millimetres of a radian under contact.
RANGE_TOLERANCE = 0.1  # rad


def read_joint_state(names: Sequence[str], positions: Sequence[float], stamp: float, now: float,
                     expected: Sequence[str], max_age: float,
                     limits: tuple[Sequence[float], Sequence[float]] | None = None) -> np.ndarray:
    """Positions of the `expected` joints in that order, or JointStateError.

    `stamp` and `now` are seconds on the same clock; `max_age` <= 0 skips the stamp check. `limits`: (lower, upper)
    position limits of the first len(lower) expected joints (the arm's); a position more than RANGE_TOLERANCE
    beyond them is refused.
    """
    names, positions = list(names), list(positions)
    if len(names) != len(positions):
        raise JointStateError(f"joint state has {len(names)} names but {len(positions)} positions")
    if len(set(names)) != len(names):
        dup = sorted(n for n, count in Counter(names).items() if count > 1)
        raise JointStateError(f"joint state names a joint twice: {', '.join(dup)}")
    missing = [n for n in expected if n not in names]
    if missing:
        raise JointStateError(f"joint state lacks {', '.join(missing)} (has {', '.join(names[:12]) or 'no names'})")
    q = np.array([positions[names.index(n)] for n in expected], dtype=float)
    if not np.all(np.isfinite(q)):
        bad = [n for n, v in zip(expected, q) if not np.isfinite(v)]
        raise JointStateError(f"joint state has NaN/Inf positions for {', '.join(bad)}")
    if limits is not None:
        for name, v, lo, hi in zip(expected, q, *limits):
            if not lo - RANGE_TOLERANCE <= v <= hi + RANGE_TOLERANCE:
                raise JointStateError(f"joint state puts {name} at {v:.4g} rad, outside its range [{lo:g}, {hi:g}] "
                                      "(a broken or mis-scaled reading)")
    if max_age > 0:
        if stamp <= 0:
            raise JointStateError("joint state is unstamped (header.stamp is zero)")
        age = now - stamp
        if age > max_age:
            raise JointStateError(f"joint state stamped {age:.3f} s ago (> {max_age} s)")
        if age < -max_age:
            raise JointStateError(f"joint state stamped {-age:.3f} s in the future (clock problem?)")
    return q
