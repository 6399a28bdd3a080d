"""Scoring a wide row group column by column, each column decoded once.

A Parquet row group is stored column by column, and a column chunk can only be decoded
whole. When a row group is too wide to hold decoded (200,000 rows × 1,000 float32 classes
are 800 MB), reading it in row slices decodes every column once per slice. This stage
instead walks the prediction columns in blocks of a few columns and keeps, per row, only
what the metrics need: p(true class), the row sum, the running maximum and its column, the
Brier sum and the top-5 classes seen so far; and per class the sums of q, w²q and w²q² (per
split and slice value too) and the one-vs-rest calibration bins. The result is an ordinary
:class:`~losslens.batch.ScoredBatch` without its ``probs`` matrix, carrying those sums, and
the accumulate stage adds it up like any other batch.

Pure: numpy blocks in, a scored batch out. Only hard labels with probability columns take
this path (logits need a log-sum-exp over the row before any column can be scored, soft
targets and ``--renormalize`` need the row sum first); anything else, and any value that is
not a probability, is left to the row-slice path, which names the first bad value exactly as
it does for every other file.

Notes
-----
Every per-row and per-class quantity is the same arithmetic as :func:`~losslens.batch.score_batch`
and :meth:`~losslens.accumulate.Accumulator.of` on the full matrix, summed in another order,
so results agree with the row-slice path within a few ulps (the per-example losses are
bit-identical: each is :func:`~losslens.batch.clipped_loss` of the same value). ``top_5_accuracy`` keeps
scikit-learn's tie rule: classes are ranked by probability, ties by the higher column first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np

# The label, weight and text checks are the row-wise stage's own, so that a wide row group
# is refused with the same words as any batch.
from .batch import ScoredBatch, _strings, _weights, clipped_loss, scope_values, unnormalized_rows
# The sums this stage makes are defined one level below it (batch.py carries them too).
from .class_sums import TOP_K, ClassSums, ColumnSums
from .label_indices import label_indices
from .errors import InputError, where
from .schema import PROBS


@dataclass
class RowState:
    """What :func:`score_blocks` returns per row, besides the per-class sums."""

    true_prob: np.ndarray
    row_sum: np.ndarray
    predicted: np.ndarray
    confidence: np.ndarray
    brier: np.ndarray
    top_k_hit: np.ndarray | None


class NotProbabilities(Exception):
    """A block holds a value outside [0, 1] (or NaN): the caller re-reads it row-wise to name it."""


def score_blocks(
    blocks: Iterable[tuple[int, np.ndarray]],
    label: np.ndarray,
    weight: np.ndarray,
    n_classes: int,
    n_bins: int,
    groupings: dict[str | None, tuple[list[str], np.ndarray]] | None = None,
) -> tuple[RowState, ColumnSums]:
    """Score the prediction columns of ``n`` rows given as blocks of columns, in column order.

    Parameters
    ----------
    blocks : iterable of (int, ndarray)
        ``(first_column, block)``: float64 arrays of shape ``(n, m)`` (Fortran order is
        fastest), covering columns ``0 .. n_classes - 1`` once, in order.
    label : ndarray of int, shape (n,)
        True class index of each row.
    weight : ndarray of float, shape (n,)
        Example weights (all 1 for an unweighted file).
    n_classes, n_bins : int
        Number of classes and of calibration bins.
    groupings : dict, optional
        For the split (key None) and each slice column: ``(values, codes)``, the distinct
        values as strings and each row's index into them.

    Returns
    -------
    RowState, ColumnSums

    Raises
    ------
    NotProbabilities
        A value is outside [0, 1] or NaN; nothing is returned for a partly scored group.
    """
    running = _Running(label, weight, n_classes, n_bins, groupings or {})
    for first, block in blocks:
        running.add(first, block)
    return running.finish()


class _Running:
    """The per-row and per-class state of :func:`score_blocks`, one block of columns at a time."""

    def __init__(self, label, weight, k: int, b: int, groupings) -> None:
        n = len(label)
        self.label, self.weight, self.k, self.b = label, weight, k, b
        self.unit = bool(np.all(weight == 1.0))
        self.w2 = None if self.unit else weight * weight
        self.true_prob = np.zeros(n)
        self.row_sum = np.zeros(n)
        self.best = np.full(n, -np.inf)
        self.predicted = np.zeros(n, dtype=np.int64)
        self.brier = np.zeros(n)
        self.prob_sum, self.prob_w2_sum, self.prob_sq_w2_sum = np.zeros(k), np.zeros(k), np.zeros(k)
        self.bin_weight, self.bin_prob_sum = np.zeros(k * b), np.zeros(k * b)
        self.track_top = k > TOP_K
        self.top_value = np.full((n, TOP_K), -np.inf) if self.track_top else None
        self.top_column = np.full((n, TOP_K), -1, dtype=np.int32) if self.track_top else None
        self.fifth = np.full(n, -np.inf)
        # Rows sorted by label, so that the rows whose true class lies in a block are one slice.
        self.by_label = np.argsort(label, kind="stable")
        self.label_starts = np.searchsorted(label[self.by_label], np.arange(k + 1))
        self.group_state = _GroupSums(groupings, weight, self.unit, k)

    def add(self, first: int, block: np.ndarray) -> None:
        """Take the columns ``first ..`` of ``block`` into the running state."""
        label, weight = self.label, self.weight
        last = first + block.shape[1]
        block_max = block.max(axis=1)
        if not (block.min() >= 0.0 and block_max.max() <= 1.0):  # NaN fails both comparisons
            raise NotProbabilities(first)
        self.row_sum += block.sum(axis=1)

        # Running argmax, first column on ties as np.argmax: replace only on a strictly larger
        # value, and look for its column only in those rows (argmax over a whole block is slow).
        larger = np.flatnonzero(block_max > self.best)
        self.best[larger] = block_max[larger]
        self.predicted[larger] = block[larger].argmax(axis=1) + first

        # p(true class) of the rows whose label is one of this block's columns.
        mine = self.by_label[self.label_starts[first]:self.label_starts[last]]
        own = label[mine] - first
        self.true_prob[mine] = block[mine, own]

        if self.unit:
            sums = block.sum(axis=0)
            self.prob_sum[first:last] = sums
            self.prob_w2_sum[first:last] = sums
            self.prob_sq_w2_sum[first:last] = np.einsum("ij,ij->j", block, block)
        else:
            self.prob_sum[first:last] = weight @ block
            self.prob_w2_sum[first:last] = self.w2 @ block
            self.prob_sq_w2_sum[first:last] = np.einsum("i,ij,ij->j", self.w2, block, block)
        self.group_state.add(first, block)
        # Brier: Σ_j (q_j − 1[y = j])². The rows whose true class is in this block square
        # (1 − q_y) itself: Σq² − 2q_y + 1 cancels catastrophically when q_y is close to 1.
        block_brier = np.einsum("ij,ij->i", block, block)
        if mine.size:
            own_rows = block[mine]
            own_rows[np.arange(mine.size), own] -= 1.0
            block_brier[mine] = np.einsum("ij,ij->i", own_rows, own_rows)
        self.brier += block_brier

        _add_calibration(block, first, weight, self.unit, self.b, self.bin_weight, self.bin_prob_sum)
        if self.track_top:
            _merge_top(self.top_value, self.top_column, self.fifth, block, block_max, first)

    def finish(self) -> tuple[RowState, ColumnSums]:
        """The per-row state and per-class sums, once every column has been added."""
        k, b = self.k, self.b
        # Bin 0 of each class is what its totals leave (see _add_calibration).
        starts = np.arange(k) * b
        total_weight = float(len(self.label)) if self.unit else float(self.weight.sum())
        self.bin_weight[starts] = total_weight - self.bin_weight.reshape(k, b)[:, 1:].sum(axis=1)
        self.bin_prob_sum[starts] = self.prob_sum - self.bin_prob_sum.reshape(k, b)[:, 1:].sum(axis=1)
        top_k_hit = (self.top_column == self.label[:, None]).any(axis=1) if self.track_top else None
        state = RowState(self.true_prob, self.row_sum, self.predicted, self.best, self.brier, top_k_hit)
        overall = ClassSums(self.prob_sum, self.prob_w2_sum, self.prob_sq_w2_sum, self.bin_weight, self.bin_prob_sum)
        return state, ColumnSums(overall=overall, groups=self.group_state.result())


def _add_calibration(block, first, weight, unit, b, bin_weight, bin_prob_sum) -> None:
    """Add the block's cells outside calibration bin 0 to the per-class bins.

    With many classes nearly every cell has q < 1/b; bin 0 of each class is filled from the
    class totals at the end, as :func:`losslens.accumulate._sparse_class_calibration` does.
    """
    n, m = block.shape
    flat = block.ravel(order="F")  # column by column: index = column · n + row
    selected = np.flatnonzero(flat * b >= 1.0)
    if selected.size == 0:
        return
    q = flat[selected]
    column, row = np.divmod(selected, n)
    cells = np.minimum((q * b).astype(np.int64), b - 1)
    cells += column * b
    # Counted over the block's own classes, then added to their stretch of the bins.
    span = slice(first * b, (first + m) * b)
    if unit:
        bin_weight[span] += np.bincount(cells, minlength=m * b)
        bin_prob_sum[span] += np.bincount(cells, weights=q, minlength=m * b)
    else:
        row_weight = weight[row]
        bin_weight[span] += np.bincount(cells, weights=row_weight, minlength=m * b)
        bin_prob_sum[span] += np.bincount(cells, weights=row_weight * q, minlength=m * b)


def _merge_top(top_value, top_column, fifth, block, block_max, first) -> None:
    """Merge a block into each row's five most probable classes (kept unordered).

    Classes are ranked as ``sklearn.metrics.top_k_accuracy_score`` ranks them: by
    probability, and among equal probabilities the higher column first. ``fifth`` holds each
    row's fifth largest kept value; rows whose block maximum is below it keep their five.
    For the others the fifth largest of the kept and the block's values is found by
    partition: values above it stay, and so do those equal to it when exactly enough are;
    rows with more ties than places (rare, constant rows) are ranked in full.
    """
    rows = np.flatnonzero(block_max >= fifth)
    every = rows.size == len(fifth)  # the first blocks: then slices, which are views, not copies
    # In runs of rows, so that the temporaries (a few copies of rows × (5 + m)) stay small.
    for start in range(0, rows.size, MERGE_ROWS):
        stop = min(start + MERGE_ROWS, rows.size)
        _merge_rows(top_value, top_column, fifth, block, first, slice(start, stop) if every else rows[start:stop])


#: Rows merged at a time by :func:`_merge_top`.
MERGE_ROWS = 1 << 16


def _merge_rows(top_value, top_column, fifth, block, first, rows) -> None:
    """:func:`_merge_top` for the rows at ``rows`` (a slice or row numbers)."""
    m = block.shape[1]
    values = np.concatenate([top_value[rows], block[rows]], axis=1)
    count = len(values)
    columns = np.concatenate(
        [top_column[rows], np.broadcast_to(np.arange(first, first + m, dtype=top_column.dtype), (count, m))],
        axis=1,
    )
    threshold = np.partition(values, -TOP_K, axis=1)[:, -TOP_K]
    keep = values >= threshold[:, None]
    exact = keep.sum(axis=1) == TOP_K
    if exact.all():
        kept_value = values[keep].reshape(-1, TOP_K)
        kept_column = columns[keep].reshape(-1, TOP_K)
    else:
        # More than five values reach the fifth (ties, as in constant rows): rank those rows
        # in full, ties by the higher column, and the others as above.
        kept_value = np.empty((count, TOP_K))
        kept_column = np.empty((count, TOP_K), dtype=top_column.dtype)
        plain, tied = np.flatnonzero(exact), np.flatnonzero(~exact)
        kept_value[plain] = values[plain][keep[plain]].reshape(-1, TOP_K)
        kept_column[plain] = columns[plain][keep[plain]].reshape(-1, TOP_K)
        # Ascending by (value, column): the last five are the top five.
        order = np.lexsort((columns[tied], values[tied]), axis=-1)[:, -TOP_K:]
        kept_value[tied] = np.take_along_axis(values[tied], order, axis=1)
        kept_column[tied] = np.take_along_axis(columns[tied], order, axis=1)
    top_value[rows] = kept_value
    top_column[rows] = kept_column
    fifth[rows] = threshold


class _GroupSums:
    """Per-class sums of q, w²q and w²q² for every split and slice value, a block at a time.

    Rows are sorted by group once; each block is then gathered in that order and summed over
    each group's run of rows with ``np.add.reduceat``.
    """

    def __init__(self, groupings, weight, unit, k):
        self.k, self.unit = k, unit
        self.parts = []
        for column, (values, codes) in groupings.items():
            order = np.argsort(codes, kind="stable")
            counts = np.bincount(codes, minlength=len(values))
            present = np.flatnonzero(counts)
            starts = np.concatenate([[0], np.cumsum(counts)[:-1]])[present]
            w = None if unit else weight[order][:, None]
            sums = np.zeros((3, len(present), k))
            self.parts.append((column, [values[g] for g in present], order, starts, w, sums))

    def add(self, first, block) -> None:
        last = first + block.shape[1]
        squares = block * block if self.parts else None
        for _, _, order, starts, w, sums in self.parts:
            if self.unit:
                q = np.add.reduceat(block[order], starts, axis=0)
                sums[0, :, first:last] = q
                sums[1, :, first:last] = q
                sums[2, :, first:last] = np.add.reduceat(squares[order], starts, axis=0)
            else:
                ordered = block[order]
                w2 = w * w
                sums[0, :, first:last] = np.add.reduceat(ordered * w, starts, axis=0)
                sums[1, :, first:last] = np.add.reduceat(ordered * w2, starts, axis=0)
                sums[2, :, first:last] = np.add.reduceat(squares[order] * w2, starts, axis=0)

    def result(self) -> dict[tuple[str | None, str], ClassSums]:
        out = {}
        for column, values, _, _, _, sums in self.parts:
            for g, value in enumerate(values):
                out[(column, value)] = ClassSums(sums[0, g].copy(), sums[1, g].copy(), sums[2, g].copy())
        return out


def score_row_group(group, layout, source: str, row_offset: int, n_bins: int) -> ScoredBatch:
    """Validate and score one wide row group column by column into a batch without ``probs``.

    Parameters
    ----------
    group : losslens.reading.RowGroupColumns
        The row group: its small columns (label, weight, id, split, slices) as a record
        batch, and its prediction columns as float64 blocks.
    layout : Layout
        Hard labels with probability columns (see :func:`can_score`).
    source : str
        File name for error messages.
    row_offset : int
        Data rows before this row group in its file.
    n_bins : int
        Calibration bins.

    Returns
    -------
    ScoredBatch

    Raises
    ------
    InputError
        A label without a class, or a bad weight, naming file, column and row.
    NotProbabilities
        A prediction value outside [0, 1]: the caller re-reads the group row-wise to name it.
    """
    n = group.num_rows
    first_row = row_offset + 1

    def fail(column, index, message):
        raise InputError(f"{where(source, column, first_row + int(index))}: {message}")

    predictions = set(layout.prediction_columns)
    small = group.read_columns([c for c in layout.columns() if c not in predictions])
    label = label_indices(small.column(layout.label), layout, fail)
    weight = _weights(small, layout, n, fail)
    split = scope_values(small.column(layout.split)) if layout.split else None
    slices = {c: scope_values(small.column(c)) for c in layout.by} or None
    groupings = {}
    if split is not None:
        groupings[None] = _codes(split)
    for column, values in (slices or {}).items():
        groupings[column] = _codes(values)
    state, sums = score_blocks(
        group.float_blocks(layout.prediction_columns), label, weight, layout.n_classes, n_bins, groupings
    )
    loss, clipped = clipped_loss(state.true_prob, layout.eps)
    return ScoredBatch(
        source=source,
        rows=np.arange(first_row, first_row + n),
        label=label,
        probs=None,
        loss=loss,
        true_prob=state.true_prob,
        predicted=state.predicted,
        confidence=state.confidence,
        weight=weight,
        clipped=clipped,
        unnormalized=unnormalized_rows(state.row_sum, layout.row_sum_tolerance),
        ids=_strings(small.column(layout.id)) if layout.id else None,
        split=split,
        slices=slices,
        cluster=_strings(small.column(layout.cluster)) if layout.cluster else None,
        brier=state.brier,
        top_k_hit=state.top_k_hit,
        class_sums=sums,
    )


def can_score(layout, renormalize: bool) -> bool:
    """Whether a run's row groups can be scored column by column (see the module notes)."""
    return (layout.kind == PROBS and layout.target_columns is None and layout.label is not None
            and not renormalize and not layout.from_list and not layout.labels_are_indices)


def _codes(values: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Distinct values (spelt as :func:`losslens.accumulate._groups` spells them) and each row's code."""
    uniques, codes = np.unique(values.astype(str), return_inverse=True)
    return [str(u) for u in uniques], codes.reshape(-1)
