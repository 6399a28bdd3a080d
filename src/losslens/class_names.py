"""Class names and label values: how they are compared and listed. The bottom of the layout rooms.

``schema`` decides what each column means; the modules it consults (``binary_classes``,
``feature_columns``, ``list_columns``, ``not_predictions``, ``tolerances``) need these
primitives too, so they live here, below all of them, and the imports point one way.
"""

from __future__ import annotations

import math
from typing import Iterable

#: Layout kinds: several probability columns, several logit columns, or one column for
#: the positive class of a binary problem (a probability or a logit).
PROBS, LOGITS, POSITIVE_PROB, POSITIVE_LOGIT = "probabilities", "logits", "positive_prob", "positive_logit"
#: Machine epsilon of float64, the clipping eps of every input that is not float32/float16.
FLOAT64_EPS = 2.0**-52
#: Machine epsilon of float32 (PyTorch's softmax), whose square root is its row-sum tolerance.
FLOAT32_EPS = 2.0**-23


def class_key(value) -> str:
    """Return the identity of a class name or label value.

    Numbers compare as numbers (``1``, ``1.0`` and ``"1"`` are one class) and booleans as
    0 and 1, because a label column read from CSV and a probability column name rarely agree
    on how a number is spelled.
    """
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        number = float(value)  # np.float64 is a float whose repr is "np.float64(0.5)"
    else:
        text = str(value).strip()
        if text.lower() in ("true", "false"):
            return "1" if text.lower() == "true" else "0"
        try:
            number = float(text)
        except ValueError:
            return text
    if not math.isfinite(number):
        return str(value).strip()
    return str(int(number)) if number.is_integer() else repr(number)


def is_number(key: str) -> bool:
    """Whether ``key`` (a class key) reads as a number."""
    try:
        float(key)
    except ValueError:
        return False
    return True


def listing(items: Iterable, limit: int = 30) -> str:
    """Items quoted and comma-separated for a message, at most ``limit`` of them."""
    items = list(items)
    shown = ", ".join(repr(str(i)) for i in items[:limit])
    return shown + (f", … ({len(items) - limit} more)" if len(items) > limit else "")


def label_value(name: str):
    """A class name as the plain Python label it most likely was: ``"3"`` → 3, ``"True"`` → True.

    Class names are text everywhere (the JSON, the tables); this gives notebooks their
    labels' type back. Only canonical spellings convert (``"03"`` and ``"1e3"`` stay text).
    """
    if name in ("True", "False"):
        return name == "True"
    try:
        number = int(name)
    except ValueError:
        pass
    else:
        if str(number) == name:
            return number
    try:
        real = float(name)
    except ValueError:
        return name
    return real if repr(real) == name else name
