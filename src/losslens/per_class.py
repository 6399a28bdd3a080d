"""One row per class, every per-class number: the table behind ``--per-class FILE.csv``.

Pure: reads a finished :class:`~losslens.evaluation.RunEvaluation` and returns rows; the
writer (atomic, like every output) and the command-line option live elsewhere. With 1,000 or
10,000 classes the report shows the worst and largest classes only; this table is the full
detail, in the run's class order, for a spreadsheet or a notebook.
"""

from __future__ import annotations

import csv
import io
import math
from typing import Any

import numpy as np

from .evaluation import RunEvaluation
from .catalog import CROSS_ENTROPY_BITS, ECE, LOG_LOSS, N_EXAMPLES

#: Columns of the per-class table, in order. ``class`` is the class name; the rest are the
#: ``by_class`` fields of the JSON (see README, "What the numbers mean").
PER_CLASS_COLUMNS = (
    "class", N_EXAMPLES, "weight_sum", LOG_LOSS, CROSS_ENTROPY_BITS, "excess_loss",
    "recall", "precision", "actual_share", "predicted_share", "mean_predicted_prob", ECE,
    "most_confused_with", "most_confused_count",
)


def per_class_rows(run: RunEvaluation) -> list[dict[str, Any]]:
    """Every class of a run as one row of :data:`PER_CLASS_COLUMNS`.

    Parameters
    ----------
    run : RunEvaluation
        A finished run.

    Returns
    -------
    list of dict
        One dict per class, in the run's class order (classes without examples included,
        their undefined numbers as None). ``most_confused_count`` is the number of the
        class's examples predicted as ``most_confused_with`` (0 when never wrong).

    Examples
    --------
    >>> import pandas as pd, losslens
    >>> frame = pd.DataFrame({"label": ["a", "b", "b"], "p_a": [0.9, 0.6, 0.2], "p_b": [0.1, 0.4, 0.8]})
    >>> rows = per_class_rows(losslens.evaluate(frame).run)
    >>> [(r["class"], r["n_examples"], r["recall"], r["most_confused_with"]) for r in rows]
    [('a', 1, 1.0, None), ('b', 2, 0.5, 'a')]
    """
    confusion = run.confusion
    pair_count = {}
    if confusion is not None and confusion.codes.size:
        k = confusion.n_classes
        pair_count = {(int(c) // k, int(c) % k): int(n) for c, n in zip(confusion.codes, confusion.counts)}
    index = {name: i for i, name in enumerate(run.classes)}
    rows = []
    for name, metrics in run.by_class.items():
        data = metrics.to_dict()
        confused = data["most_confused_with"]
        count = pair_count.get((index[name], index[confused]), 0) if confused is not None else 0
        row = {"class": name, **{c: data.get(c) for c in PER_CLASS_COLUMNS[1:-1]}, "most_confused_count": count}
        rows.append({k: _plain(v) for k, v in row.items()})
    return rows


def _plain(value):
    """Numpy scalars as Python numbers, NaN and infinities as None."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def per_class_csv(run: RunEvaluation) -> str:
    """The per-class table as CSV text (header, then one line per class; empty for undefined).

    Floats are written with ``repr`` (shortest round-trip form), so that the file reads back
    to the same numbers; names are quoted by the csv module where needed.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(PER_CLASS_COLUMNS)
    for row in per_class_rows(run):
        writer.writerow(_cells(row))
    return buffer.getvalue()


def _cells(row: dict[str, Any]) -> list:
    """A row's CSV cells: empty for undefined, floats in their shortest round-trip form."""
    return ["" if row[c] is None else (repr(row[c]) if isinstance(row[c], float) else row[c])
            for c in PER_CLASS_COLUMNS]


def per_class_text(runs) -> str:
    """The ``--per-class`` file of a job: :func:`per_class_csv` of one run, or of several runs
    with a leading ``run`` column (one header, then every run's classes in input order).

    Parameters
    ----------
    runs : sequence of RunEvaluation
        The job's runs, in input order.
    """
    runs = list(runs)
    if len(runs) == 1:
        return per_class_csv(runs[0])
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(("run", *PER_CLASS_COLUMNS))
    for run in runs:
        for row in per_class_rows(run):
            writer.writerow([run.name, *_cells(row)])
    return buffer.getvalue()
