"""What every harness reader checks the same way: a log-probability read from a log."""

from __future__ import annotations

import math

from ..errors import InputError


def checked_logprob(place: str, name: str, value) -> float:
    """A log-probability from a log: a finite number ≤ 0, or one line naming ``place`` and the field."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"{place}, field '{name}': {value!r} is not a number")
    if not math.isfinite(value):
        raise InputError(f"{place}, field '{name}': {value} is not a finite number; every "
                         "log-probability must be finite")
    if value > 0:
        raise InputError(f"{place}, field '{name}': log-probability {value} is positive; "
                         "log-probabilities are ≤ 0 (was a probability or a loss written?)")
    return float(value)
