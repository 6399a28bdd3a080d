"""Saying what a file looks like when it holds no class predictions.

A regression file (continuous labels beside a prediction column) or a multilabel file
(several 0/1 targets per row, probabilities that sum to more than 1) is not a classifier's
output; the refusal says what it looks like and what to run instead, rather than that a
label "has no prediction column". Pure: label values and sampled rows in, words out.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from .errors import where
from .options import DEFAULT_LOGIT_PREFIXES, DEFAULT_PROB_PREFIXES
from .class_names import class_key, listing as _listing

#: Separators of labels that name several classes ("cat|dog", "a;b", "[1, 0, 1]").
_MULTI_SEPARATORS = ("|", ";", ",")
_PREDICTION_PREFIXES = (*DEFAULT_PROB_PREFIXES, *DEFAULT_LOGIT_PREFIXES)


def continuous_labels(values: Sequence) -> list[str]:
    """Up to three label values that are numbers with a fractional part (3.7, 12.1), else [].

    Class labels are names or whole numbers; a fractional number is a regression target.
    """
    found = []
    for value in values:
        key = class_key(value)
        try:
            number = float(key)
        except ValueError:
            return []  # a name among the labels: classes, whatever the numbers
        if np.isfinite(number) and not number.is_integer():
            found.append(key)
    return found[:3]


def regression_message(label: str, scanned: Sequence[tuple]) -> str | None:
    """The refusal for continuous labels, or None when the labels look like classes.

    ``scanned`` holds ``(value, file, row)`` for the first occurrence of each label value.
    """
    examples = continuous_labels([value for value, _, _ in scanned])
    if not examples:
        return None
    file, row = next((f, r) for v, f, r in scanned if class_key(v) == examples[0])
    return (f"{where(file, label, row)}: label {examples[0]} is not a class: the file looks like "
            f"regression (continuous labels such as {', '.join(examples)}); losslens scores class "
            "probabilities")


def multi_hot_label(value) -> str | None:
    """The hint for a label that names several classes ("cat|dog", "[1, 0, 1]"), or None."""
    if not isinstance(value, str):
        return None
    text = value.strip().strip("[]()")
    parts = [p.strip().strip("'\"") for p in text.replace("|", ",").replace(";", ",").split(",")]
    if len(parts) < 2 or not all(parts) or not any(s in value for s in _MULTI_SEPARATORS):
        return None
    return ("; the label names several classes (multilabel): losslens scores one class per row, "
            "so score one run per label, each with a 0/1 column for it, e.g. "
            "--label is_<class> --positive-prob p_<class>")


def multi_hot_targets(row: np.ndarray, columns: Sequence[str | None]) -> str:
    """The hint for a row of 0/1 soft targets with several 1s, or "" if the row is otherwise."""
    given = [j for j, c in enumerate(columns) if c is not None]
    values = row[given]
    if not (np.isin(values, (0.0, 1.0)).all() and values.sum() >= 2):
        return ""
    first = columns[given[0]]
    return (f"; the targets are 0/1 with several 1s (multilabel): one run per label, e.g. "
            f"--label {first} --positive-prob <its probability column>")


def multilabel_message(source: str, columns: Sequence[str],
                       sample: Callable[[Sequence[str]], np.ndarray | None] | None) -> str | None:
    """The refusal for a file of 0/1 target columns beside ``p_<class>`` columns, or None.

    Multilabel: each row has several targets of 1 (``y_a``, ``y_b`` ...) and probabilities
    (``p_a``, ``p_b`` ...) that are each a yes/no probability, so they sum to more than 1.
    """
    pairs = _target_columns(columns)
    if len(pairs) < 2 or sample is None:
        return None
    targets = sample([t for t, _ in pairs])
    probs = sample([p for _, p in pairs])
    if targets is None or probs is None or not len(targets):
        return None
    if not np.isin(targets, (0.0, 1.0)).all():
        return None
    several = np.flatnonzero((targets.sum(axis=1) >= 2) | (probs.sum(axis=1) > 1.0 + 1e-6))
    if not several.size:
        return None
    target, prob = pairs[0]
    import shlex  # here: only this message quotes

    command = f"losslens metrics {shlex.quote(source)} --label {shlex.quote(target)} --positive-prob {shlex.quote(prob)}"
    return (
        f"{source}, row {int(several[0]) + 1}: looks multilabel: columns {_listing([t for t, _ in pairs], 5)} "
        f"hold 0/1 targets and columns {_listing([p for _, p in pairs], 5)} probabilities that sum to more "
        f"than 1 in a row, but losslens scores one class per row; multilabel: one run per label, "
        f"e.g. {command}"
    )


def _target_columns(columns: Sequence[str]) -> list[tuple[str, str]]:
    """``(target column, probability column)`` per class that has both (``y_a`` and ``p_a``)."""
    present = list(columns)
    pairs = []
    claimed: set[str] = set()
    for prefix in DEFAULT_PROB_PREFIXES:
        for column in present:
            if column in claimed or not column.startswith(prefix) or len(column) == len(prefix):
                continue
            suffix = column[len(prefix):]
            target = next((c for c in present if not c.startswith(_PREDICTION_PREFIXES)
                           and (c == suffix or c.endswith("_" + suffix))), None)
            if target is not None:
                claimed.add(column)
                pairs.append((target, column))
    return pairs
