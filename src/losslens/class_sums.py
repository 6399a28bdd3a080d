"""The per-class sums a column-wise scored batch carries to the accumulate stage.

Shared by :mod:`losslens.batch` (a :class:`~losslens.batch.ScoredBatch` may carry them),
:mod:`losslens.columnwise` (which makes them) and :mod:`losslens.accumulate` (which adds them
up): a module below all three, so that none of them imports another only for these types.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: ``top_5_accuracy``: the true class among this many most probable classes. Kept only when
#: there are more classes than this (with k <= 5 it is 1 by definition). Defined here, below
#: both the column-wise and the row-wise stage.
TOP_K = 5


@dataclass
class ClassSums:
    """Per-class sums over one scope's rows, as :class:`~losslens.accumulate.Accumulator` keeps them.

    ``class_bin_weight`` and ``class_bin_prob_sum`` (flattened classes × bins) are kept for
    the whole batch only, as the accumulators keep one-vs-rest calibration for the run only.
    """

    prob_sum: np.ndarray
    prob_w2_sum: np.ndarray
    prob_sq_w2_sum: np.ndarray
    class_bin_weight: np.ndarray | None = None
    class_bin_prob_sum: np.ndarray | None = None


@dataclass
class ColumnSums:
    """The per-class sums of a column-wise scored batch: for all its rows and per group.

    ``groups`` is keyed ``(None, split value)`` for splits and ``(column, value)`` for
    slices, the values spelt as :func:`losslens.accumulate._groups` spells them.
    """

    overall: ClassSums
    groups: dict[tuple[str | None, str], ClassSums] = field(default_factory=dict)
