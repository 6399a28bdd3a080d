"""Telling class-probability columns from other columns that share their prefix.

A statistics column such as ``p_value`` (or ``prob_score``) beside ``p_<class>`` columns
matches the probability prefix, but it is no class: taken as one, it becomes a class
"value" that wins the argmax of some rows and breaks every row sum. Pure: decides from the
label values of the run and a sample of the first rows, both given as callables so that
they are computed only when the column names alone leave a doubt.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from .errors import InputError
from .class_names import FLOAT32_EPS, class_key, is_number as _is_number, listing as _listing

#: From this many prediction columns on, the first rows are read only when the labels leave
#: a doubt: in Parquet they cost a decoded page per column (2 s and 300 MB at 1,000 columns).
SAMPLE_MAX_COLUMNS = 64
#: Sampled rows "sum to 1" within float32's row-sum tolerance (and 1e-8): lenient, since a
#: feature column moves a row's sum far more than any rounding.
ROW_SUM_TOLERANCE = math.sqrt(FLOAT32_EPS)


@dataclass
class Evidence:
    """What the data says about the columns, computed on first use.

    Attributes
    ----------
    label : str or None
        The label column (None with soft targets: the labels are then unknown).
    scan_labels : callable or None
        ``scan_labels(label)`` gives ``(value, file, row)`` per distinct label of the run.
    sample : callable or None
        ``sample(columns)`` gives the first rows of those columns as an n×k float64 array,
        or None when they cannot be read as numbers.
    """

    label: str | None
    scan_labels: Callable | None
    sample: Callable[[Sequence[str]], np.ndarray | None] | None
    _keys: set | None = field(default=None, repr=False)

    def label_keys(self) -> set | None:
        """The class keys of every label value of the run, or None when unknown."""
        if self.label is None or self.scan_labels is None:
            return None
        if self._keys is None:
            self._keys = {class_key(value) for value, _, _ in self.scan_labels(self.label)}
        return self._keys


def is_class_name(suffix: str, keys: set) -> bool:
    """Whether a column suffix names a class: a label, or a number among numeric labels.

    A number is a class even when no row has it as label (``columns=clf.classes_`` with a
    class absent from the evaluation data).
    """
    key = class_key(suffix)
    return key in keys or (_is_number(key) and bool(keys) and all(_is_number(k) for k in keys))


def rows_sum_to_one(sample: np.ndarray) -> np.ndarray:
    """Per sampled row: does it sum to 1 within :data:`ROW_SUM_TOLERANCE`?"""
    return np.abs(sample.sum(axis=1) - 1.0) <= 1e-8 + ROW_SUM_TOLERANCE


def choose_class_columns(found: dict, evidence: Evidence, source: str, notes: list) -> tuple[str, dict]:
    """Pick the class columns among prefix-matched columns, leaving feature columns out.

    Parameters
    ----------
    found : dict
        ``{prefix: {suffix: column}}``, each prefix's matched columns.
    evidence : Evidence
        Labels and a sample of rows, read only when the names leave a doubt.
    source : str
        The file named in messages.
    notes : list of str
        Layout notes; a column left out is named here.

    Returns
    -------
    (prefix, {class: column})

    Raises
    ------
    InputError
        Several prefixes name classes, or a column named after no label leaves the rows
        summing to 1 neither with it nor without it.
    """
    if len(found) > 1:
        keys = evidence.label_keys()
        if keys is not None:
            kept = {p: m for p, m in found.items() if any(is_class_name(s, keys) for s in m)}
            if len(kept) == 1:
                for prefix, matched in found.items():
                    if prefix not in kept:
                        notes.append(
                            f"{_plural_columns(matched.values())} left out: {prefix}<suffix> names no label "
                            f"of column {evidence.label!r} (name the columns with --probs to score them)"
                        )
                found = kept
        if len(found) > 1:
            raise InputError(
                f"{source}: probability columns with several prefixes ({', '.join(found)}); "
                "say which to use with --probs PREFIX"
            )
    prefix, matched = next(iter(found.items()))
    if len(matched) >= 2:
        matched = _without_features(prefix, matched, evidence, source, notes)
    return prefix, matched


def _without_features(prefix: str, matched: dict, evidence: Evidence, source: str, notes: list) -> dict:
    """``matched`` less the columns that are named after no label and are not probabilities.

    Text columns are kept: numbers stored as text are probabilities all the same, and text
    that is no number is refused with its row when scored.
    """
    if len(matched) < 2 or evidence.sample is None or all(_is_number(class_key(s)) for s in matched):
        # Number suffixes are classes beside number labels and fail to match name labels
        # either way: the data cannot change the outcome, so it is not read.
        return matched
    if len(matched) >= SAMPLE_MAX_COLUMNS and not _suspects(matched, evidence):
        return matched
    sample = evidence.sample(list(matched.values()))
    if sample is None or not len(sample):
        return matched
    if rows_sum_to_one(sample).all() and not _fits_better_without(sample, matched):
        return matched
    suspects = _suspects(matched, evidence)
    if suspects is None:
        return matched
    keys = evidence.label_keys()
    kept = [s for s in matched if s not in suspects]
    if not suspects or not keys <= {class_key(s) for s in kept}:
        # Every column names a class, or a label has no column: scoring says which.
        return matched
    columns = list(matched)
    without = sample[:, [columns.index(s) for s in kept]]
    dropped = [matched[s] for s in suspects]
    ok = rows_sum_to_one(without)
    if len(kept) >= 2 and ok.all():
        notes.append(
            f"{_plural_columns(dropped)} left out: {prefix}<suffix> names no label of column "
            f"{evidence.label!r}, and the other {prefix} columns sum to 1 without "
            f"{'it' if len(dropped) == 1 else 'them'} (name the columns with --probs to choose otherwise)"
        )
        return {s: matched[s] for s in kept}
    row = int(np.flatnonzero(~ok)[0]) if not ok.all() else 0
    raise InputError(
        f"{source}, column {dropped[0]!r}, row {row + 1}: {suspects[0]!r} is no label of column "
        f"{evidence.label!r}, and the rows sum to 1 neither with {'it' if len(dropped) == 1 else 'them'} "
        f"(sum {float(sample[row].sum()):.6g}) nor without (sum {float(without[row].sum()):.6g}); "
        f"name the probability columns with --probs {','.join(matched[s] for s in kept)} "
        f"(or --probs {prefix} to score {dropped[0]!r} as a class)"
    )


def _fits_better_without(sample: np.ndarray, matched: dict) -> bool:
    """Whether leaving out a column named by no number brings the row sums ten times closer to 1.

    Tiny p-values keep the rows within tolerance of 1, but not as close as the classes alone;
    a class no row has (``p_bird``) brings them closer with it than without.
    """
    sums = sample.sum(axis=1)
    error = np.abs(sums - 1.0).mean()
    return any(
        10 * np.abs(sums - sample[:, j] - 1.0).mean() < error
        for j, suffix in enumerate(matched) if not _is_number(class_key(suffix))
    )


def _suspects(matched: dict, evidence: Evidence) -> list | None:
    """The suffixes that name no class, or None when the labels are unknown."""
    keys = evidence.label_keys()
    return None if keys is None else [s for s in matched if not is_class_name(s, keys)]


def explaining_column(sample: np.ndarray | None, columns: Sequence[str]) -> str | None:
    """The one column without which every sampled row that does not sum to 1 does.

    None when the rows sum to 1, when no column or several columns explain the sums.
    """
    if sample is None or not len(sample):
        return None
    off = ~rows_sum_to_one(sample)
    if not off.any():
        return None
    with np.errstate(invalid="ignore"):  # inf - inf in a row with infinite values
        rest = sample[off].sum(axis=1)[:, None] - sample[off]
    explains = np.flatnonzero((np.abs(rest - 1.0) <= 1e-8 + ROW_SUM_TOLERANCE).all(axis=0))
    return columns[int(explains[0])] if len(explains) == 1 else None


def _plural_columns(columns) -> str:
    columns = list(columns)
    return f"column{'s' if len(columns) != 1 else ''} {_listing(columns, 10)}"
