"""Validating one record batch and scoring each of its examples.

Pure: an Arrow batch and a :class:`~losslens.schema.Layout` in, a :class:`ScoredBatch` of
numpy arrays out. This is where per-example cross-entropy is computed; the accumulate stage
only adds things up. Impossible values raise :class:`~losslens.errors.InputError` naming the
file, column, row and value; suspicious ones (rows not summing to 1, clipping) are counted.

Notes
-----
The design card sketches this stage as producing an n×k matrix of log-probabilities. We
take the log of the true-class probability only (a gather, then one ``np.log`` per row),
because the full matrix log is the dominant cost on wide files and no hard-label metric
needs it. Soft targets and logits do need every class, and get the full matrix.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from .fused import RowFigures, score_columns, score_matrix
from .errors import InputError, where
from .label_indices import label_indices
from .list_columns import list_matrix
from .not_predictions import multi_hot_targets
from .arrow_values import _numpy, dictionary_codes
from .batch_figures import fused_squares_exact, known_sum_modes
from .class_sums import TOP_K
from .schema import POSITIVE_LOGIT, POSITIVE_PROB, PROBS, Layout

if TYPE_CHECKING:
    from .class_sums import ColumnSums

#: Probabilities of float64 input are clipped to [EPS, 1 - EPS] as scikit-learn's ``log_loss``
#: does; other dtypes use their own eps, carried by :attr:`Layout.eps`.
EPS = float(np.finfo(np.float64).eps)
#: Row-sum tolerance of float64 input, scikit-learn's: ``isclose(sum, 1, rtol=sqrt(eps),
#: atol=1e-8)``; other dtypes use :attr:`Layout.row_sum_tolerance`.
SUM_RTOL = float(np.sqrt(EPS))
SUM_ATOL = 1e-8
#: Label shown for rows whose split or slice value is missing (null, NaN or empty text).
MISSING = "(missing)"
#: A real split or slice value spelled like MISSING is shown quoted, so the two never merge.
QUOTED_MISSING = f'"{MISSING}"'


@dataclass
class ScoredBatch:
    """The per-example arrays of one batch, all of length ``n``.

    ``label`` is the true class index, or for soft targets the index of the most likely
    target class. ``loss`` is cross-entropy in nats, exact for logits and clipped as
    scikit-learn does for probabilities. ``probs`` holds the predicted distribution per row
    (None where ``prob_columns`` holds it: see :meth:`matrix`).
    ``rows`` holds 1-based data row numbers in ``source``.

    A wide row group scored column by column (:mod:`losslens.columnwise`) has no ``probs``
    matrix; it carries what the accumulate stage would have taken from it instead: each
    row's ``brier`` sum and ``top_k_hit``, and the per-class ``class_sums`` of its rows and
    of each split and slice value (dropped by :meth:`take`, as they cannot be subset).
    """

    source: str
    rows: np.ndarray
    label: np.ndarray
    probs: np.ndarray | None
    loss: np.ndarray
    true_prob: np.ndarray
    predicted: np.ndarray
    confidence: np.ndarray
    weight: np.ndarray
    clipped: np.ndarray
    unnormalized: np.ndarray
    targets: np.ndarray | None = None
    target_entropy: np.ndarray | None = None
    ids: np.ndarray | None = None
    split: np.ndarray | None = None
    slices: dict[str, np.ndarray] | None = None
    cluster: np.ndarray | None = None
    brier: np.ndarray | None = None
    top_k_hit: np.ndarray | None = None
    class_sums: "ColumnSums | None" = None
    #: The float64 log-softmax of logit inputs (None for probabilities), kept by reference for
    #: the temperature fit's sample (:mod:`losslens.calibration_sample`).
    log_probs: np.ndarray | None = None
    #: ``(n_bins, weight, Σw·q, Σw·1[y = c])``: the one-vs-rest calibration sums of every row,
    #: taken in the scoring pass by the C library (:mod:`losslens.fused`); dropped by :meth:`take`.
    class_bins: tuple | None = None
    #: Σ_i w_i²·q_ij² of each class, from the same pass (``batch_figures.square_sums``); dropped by :meth:`take`.
    square_sums: np.ndarray | None = None
    #: ``np.ones(n) @ probs`` (unit weights) from the same pass, added as BLAS adds it
    #: (``batch_figures.unit_column_sums``); dropped by :meth:`take`.
    prob_sum: np.ndarray | None = None
    #: The batch's probability columns (float64, one per class) when the scoring pass wrote no
    #: ``probs`` matrix: every figure the accumulate stage needs came from the pass, and whoever
    #: needs the rows after all has them from :meth:`matrix` (the same values, copied).
    prob_columns: tuple | None = None

    @property
    def n(self) -> int:
        """Number of examples."""
        return len(self.loss)

    @property
    def has_rows(self) -> bool:
        """Whether the batch has rows of probabilities (a wide row group scored column by column has not)."""
        return self.probs is not None or self.prob_columns is not None

    def matrix(self) -> np.ndarray | None:
        """The n × k probabilities: ``probs``, or the rows of ``prob_columns`` (stacked once, then kept)."""
        if self.probs is None and self.prob_columns is not None:
            self.probs = np.column_stack(self.prob_columns)
            self.prob_columns = None
        return self.probs

    def take(self, index: np.ndarray) -> "ScoredBatch":
        """The examples at ``index`` (an integer array or boolean mask), as a new batch."""
        def pick(a):
            return None if a is None else a[index]

        return ScoredBatch(
            source=self.source,
            rows=self.rows[index],
            label=self.label[index],
            probs=pick(self.probs),
            prob_columns=None if self.prob_columns is None else tuple(c[index] for c in self.prob_columns),
            loss=self.loss[index],
            true_prob=self.true_prob[index],
            predicted=self.predicted[index],
            confidence=self.confidence[index],
            weight=self.weight[index],
            clipped=self.clipped[index],
            unnormalized=self.unnormalized[index],
            targets=pick(self.targets),
            target_entropy=pick(self.target_entropy),
            ids=pick(self.ids),
            split=pick(self.split),
            slices={k: v[index] for k, v in self.slices.items()} if self.slices else None,
            cluster=pick(self.cluster),
            brier=pick(self.brier),
            top_k_hit=pick(self.top_k_hit),
            log_probs=pick(self.log_probs),
        )


def score_batch(
    batch: pa.RecordBatch,
    layout: Layout,
    source: str,
    row_offset: int,
    renormalize: bool = False,
    n_bins: int | None = None,
) -> ScoredBatch:
    """Validate one batch and compute each example's loss.

    Parameters
    ----------
    batch : pyarrow.RecordBatch
        The columns of ``layout.columns()``, prediction, target and weight columns as float64
        (or float32/float16 as stored: computed in float64, clipped with ``layout.eps``).
    layout : Layout
        What each column means.
    source : str
        File name for error messages.
    row_offset : int
        Data rows before this batch in its file; row numbers in messages are 1-based.
    renormalize : bool
        Divide each probability row by its sum before scoring (never done otherwise).
    n_bins : int, optional
        Calibration bins per class: where the C library is built (:mod:`losslens.fused`), the
        batch carries its one-vs-rest calibration sums, taken in the scoring pass.

    Returns
    -------
    ScoredBatch
    """
    n = batch.num_rows
    first_row = row_offset + 1

    def fail(column, index, message):
        raise InputError(f"{where(source, column, first_row + int(index))}: {message}")

    targets = target_entropy = None
    if layout.target_columns is not None:
        targets = _target_matrix(batch, layout, n, fail)
        label = targets.argmax(axis=1)
    else:
        label = label_indices(batch.column(layout.label), layout, fail)
    probs, log_probs, unnormalized, figures = _scored_predictions(batch, layout, fail, renormalize, label,
                                                                  targets, n_bins)
    if targets is not None:
        target_entropy = -_xlogy_sum(targets, targets, logged=False)
    loss, true_prob, clipped = _losses(probs, log_probs, label, targets, layout, figures.true_prob, figures.clipped)
    predicted, confidence = figures.predicted, figures.confidence
    weight = _weights(batch, layout, n, fail)

    return ScoredBatch(
        source=source,
        rows=np.arange(first_row, first_row + n),
        label=label,
        probs=probs,
        loss=loss,
        true_prob=true_prob,
        predicted=predicted,
        confidence=confidence,
        weight=weight,
        clipped=clipped,
        unnormalized=unnormalized,
        targets=targets,
        target_entropy=target_entropy,
        ids=_strings(batch.column(layout.id)) if layout.id else None,
        split=scope_values(batch.column(layout.split)) if layout.split else None,
        slices={c: scope_values(batch.column(c)) for c in layout.by} or None,
        cluster=_strings(batch.column(layout.cluster)) if layout.cluster else None,
        log_probs=log_probs,
        class_bins=figures.class_bins,
        brier=figures.brier,
        top_k_hit=figures.top_k_hit,
        square_sums=figures.square_sums,
        prob_sum=figures.column_sums,
        prob_columns=figures.columns,
    )


def _scored_predictions(batch, layout: Layout, fail, renormalize: bool, label, targets, n_bins):
    """:func:`_predictions`, and the figures one pass over the probabilities gives (a RowFigures).

    The C library (:mod:`losslens.fused`) takes the argmax, p(true), the calibration bins, top-5
    hits, Brier rows and square sums (see ``batch_figures.fused_squares_exact``) as it copies the
    columns, or in one pass over the matrix; else numpy does, here or where they are used.
    """
    hard = targets is None
    request = dict(label=label if hard else None,
                   weight=_column(batch, layout.weight) if layout.weight else None,  # checked later
                   n_bins=n_bins if hard else None, top=TOP_K if hard and layout.n_classes > TOP_K else 0,
                   squares=hard and fused_squares_exact(layout.n_classes),
                   clip=(layout.eps, 1 - layout.eps) if hard and layout.kind in (PROBS, POSITIVE_PROB) else None,
                   sum_modes=None if layout.weight else known_sum_modes(batch.num_rows, layout.n_classes))
    probs, log_probs, unnormalized, figures = _predictions(batch, layout, fail, renormalize, request)
    if figures is None:
        figures = score_matrix(probs, **request)
    if figures is None:  # numpy: the argmax here, the other figures where they are used
        predicted = probs.argmax(axis=1)
        figures = RowFigures(probs, predicted, probs[np.arange(len(probs)), predicted])
    return probs, log_probs, unnormalized, figures


def _predictions(batch, layout: Layout, fail, renormalize: bool, request: dict):
    """The checked n×k probabilities, the log-softmax of logits (None for probabilities), which
    rows do not sum to 1, and the C library's figures of ``request`` when they came with the
    copy of the columns (else None: see :func:`losslens.fused.score_columns`)."""
    n = batch.num_rows
    log_probs = figures = None
    if layout.kind == PROBS:
        request = None if renormalize else {**request, "sum_tolerance": SUM_ATOL + layout.row_sum_tolerance}
        probs, sums, figures = _checked_probabilities(batch, layout, fail, request)
        taken = figures is not None and figures.unnormalized is not None
        unnormalized = figures.unnormalized if taken else unnormalized_rows(sums, layout.row_sum_tolerance)
        if renormalize:
            zero = np.flatnonzero(sums <= 0)
            if zero.size:
                fail(None, zero[0], "probabilities sum to 0, cannot renormalize")
            probs = probs / sums[:, None]
    elif layout.kind == POSITIVE_PROB:
        p = _column(batch, layout.prediction_columns[0])
        _check_probabilities(p[:, None], layout.prediction_columns, fail)
        probs = _binary_matrix(p, layout.positive_index)
        unnormalized = np.zeros(n, dtype=bool)
    else:
        log_probs = _log_softmax_checked(batch, layout, fail)
        probs = np.exp(log_probs)
        unnormalized = np.zeros(n, dtype=bool)
    return probs, log_probs, unnormalized, figures


def _losses(probs, log_probs, label, targets, layout: Layout, true_prob=None, clipped=None):
    """Each example's loss in nats, p(true class) and whether its probability was clipped.

    With soft targets the loss is the cross-entropy against the target row and p(true) its
    exp; logits score from the log-softmax itself, exactly, never exp-then-log. ``true_prob``
    and ``clipped`` (see :func:`clipped_loss`), if given, were taken already.
    """
    n, eps = len(label), layout.eps
    logits = log_probs is not None
    if targets is not None:
        if logits:
            loss = -_xlogy_sum(targets, log_probs, logged=True)
            clipped = np.zeros(n, dtype=bool)
        else:
            clipped_probs = np.clip(probs, eps, 1 - eps)
            loss = -_xlogy_sum(targets, np.log(clipped_probs), logged=True)
            clipped = ((probs < eps) | (probs > 1 - eps)) & (targets > 0)
            clipped = clipped.any(axis=1)
        return loss, np.exp(-loss), clipped
    if true_prob is None:
        true_prob = probs[np.arange(n), label]
    if logits:
        return -log_probs[np.arange(n), label], true_prob, np.zeros(n, dtype=bool)
    loss, clipped = clipped_loss(true_prob, eps, clipped)
    return loss, true_prob, clipped


def clipped_loss(true_prob: np.ndarray, eps: float, taken=None) -> tuple[np.ndarray, np.ndarray]:
    """Each example's loss ``-log(clip(p, eps, 1 - eps))`` as scikit-learn clips, and whether it was clipped.

    ``taken``: ``(clip(p, eps, 1 - eps), clipped)`` as the C scoring pass takes them (a new array,
    overwritten here with the loss).
    """
    if taken is None:
        clipped = (true_prob < eps) | (true_prob > 1 - eps)
        kept = np.clip(true_prob, eps, 1 - eps)
    else:
        kept, clipped = taken
    loss = np.log(kept, out=kept)
    return np.negative(loss, out=loss), clipped


def unnormalized_rows(sums: np.ndarray, rtol: float) -> np.ndarray:
    """Rows whose probabilities do not sum to 1 within ``rtol`` (relative) and SUM_ATOL."""
    return ~(np.abs(sums - 1.0) <= SUM_ATOL + rtol)


def _column(batch: pa.RecordBatch, name: str) -> np.ndarray:
    return _numpy(batch.column(name)).astype(np.float64, copy=False)


#: Rows of the n×k matrix filled at a time by :func:`_matrix` (8,192 × 10 float64 is 640 KB).
MATRIX_BLOCK_ROWS = 8192
#: Up to this many columns :func:`_matrix` fills blocks of rows (wider: whole columns).
MATRIX_BLOCK_COLUMNS = 64


def _matrix(batch: pa.RecordBatch, columns) -> np.ndarray:
    """Stack float64 columns into an n×k array (C order, one row per example)."""
    n = batch.num_rows
    out = np.empty((n, len(columns)), dtype=np.float64)
    values = _float_columns(batch, columns)
    # Block by block: each block's strided column writes stay in cache, about twice as fast
    # as writing whole columns into the row-major matrix (the same values, copied). Wide
    # matrices are filled whole columns at a time: blocks would cost a Python step per cell run.
    rows = MATRIX_BLOCK_ROWS if len(columns) <= MATRIX_BLOCK_COLUMNS else max(n, 1)
    for start in range(0, n, rows):
        block = out[start:start + rows]
        for j, column in enumerate(values):
            block[:, j] = column[start:start + rows]
    return out


def _checked_probabilities(batch: pa.RecordBatch, layout: Layout, fail, request: dict | None):
    """The n×k probability matrix, every value checked to be in [0, 1], its row sums, and the
    figures of ``request`` (None if not asked for or not taken).

    The C library (:mod:`losslens.fused`) checks, sums and scores the values as it copies the
    columns; a batch with a bad value goes through numpy's path, which names it.
    """
    if not layout.from_list:
        columns = _float_columns(batch, layout.prediction_columns)
        # No n × k copy where the pass gives every figure the accumulate stage would take from
        # one (see ScoredBatch.prob_columns): the unit weights' column sums, the einsum squares
        # and the dense per-class bins. 10M rows: wall ×0.92, 15 MB less a batch in flight.
        asked = request or {}
        every = asked.get("sum_modes") is not None and asked.get("n_bins") is not None and asked.get("squares")
        figures = score_columns(columns, **asked, matrix=not every)
        if figures is not None:
            return figures.probs, figures.sums, figures if request is not None else None
    probs = _prediction_matrix(batch, layout, fail)
    _check_probabilities(probs, layout.class_columns, fail)
    figures = score_matrix(probs, **(request or {}), sums=True) if request is not None else None
    return probs, probs.sum(axis=1) if figures is None else figures.sums, figures


def _float_columns(batch: pa.RecordBatch, columns) -> list[np.ndarray]:
    """The columns as numpy float arrays (views of float columns; other numbers as float64)."""
    # Floats are cast to float64 as the matrix is written (exactly as astype would): a float32
    # file makes no float64 copies of its columns beside the matrix.
    values = [_numpy(batch.column(name)) for name in columns]
    return [v if v.dtype.kind == "f" else v.astype(np.float64) for v in values]


def _prediction_matrix(batch: pa.RecordBatch, layout: Layout, fail) -> np.ndarray:
    """The n×k prediction matrix: the class columns stacked, or a list column flattened."""
    if not layout.from_list:
        return _matrix(batch, layout.prediction_columns)
    column = layout.prediction_columns[0]
    return list_matrix(batch.column(column), layout.n_classes, lambda row, message: fail(column, row, message))


def _first_bad(mask: np.ndarray) -> tuple[int, int]:
    """Row and column of the first True in a row-major scan."""
    flat = int(np.flatnonzero(mask.ravel())[0])
    return divmod(flat, mask.shape[1])


def _describe(value) -> str:
    value = float(value)  # a Python float prints as -0.25, not np.float64(-0.25)
    if np.isnan(value):
        return "missing or NaN value"
    if np.isinf(value):
        return f"infinite value {value}"
    return f"value {value!r}"


def _check_probabilities(probs: np.ndarray, columns, fail) -> None:
    # Two reductions instead of four masks: comparisons with NaN are False, so NaN fails too.
    if probs.size == 0:
        return
    lo, hi = probs.min(), probs.max()
    if lo >= 0.0 and hi <= 1.0:
        return
    bad = ~((probs >= 0.0) & (probs <= 1.0))
    row, col = _first_bad(bad)
    value = probs[row, col]
    message = f"{_describe(value)} is not a probability (must be in [0, 1])"
    fail(columns[col], row, message + _scale_hint(probs, bad, columns))


def _scale_hint(probs: np.ndarray, bad: np.ndarray, columns) -> str:
    """Say what out-of-range "probabilities" look like, when their pattern is recognisable.

    Percentages: every value in [0, 100] and every row summing to 100 (within the rounding
    of printed percentages). Logits: negative values, or many rows out of range. A single
    stray value gets no hint: it is more likely a typo than a different scale.
    """
    if not np.isfinite(probs).all():
        return ""
    k = probs.shape[1]
    sums = probs.sum(axis=1)
    if k > 1 and probs.min() >= 0.0 and probs.max() <= 100.0 and np.all(np.abs(sums - 100.0) <= 1.0):
        return "; the columns look like percentages (each row sums to 100): divide them by 100"
    rows_out = int(bad.any(axis=1).sum())
    if probs.min() < 0.0 or rows_out > 1:
        if k == 1:
            return f"; the column looks like logits: use --positive-logit {columns[0]}"
        prefix = os.path.commonprefix(list(columns))
        spec = prefix.removesuffix("[") if prefix else ",".join(columns)  # probs[0], probs[1]: --logits probs
        return f"; the columns look like logits: use --logits {spec}"
    return ""


def _binary_matrix(p: np.ndarray, positive_index: int) -> np.ndarray:
    """[1 - p, p] as scikit-learn builds it from a one-column prediction."""
    probs = np.empty((len(p), 2), dtype=np.float64)
    probs[:, positive_index] = p
    probs[:, 1 - positive_index] = 1.0 - p
    return probs


def _log_softmax_checked(batch, layout: Layout, fail) -> np.ndarray:
    """Float64 log-softmax (max-shifted logsumexp) of the logit columns, after checking them."""
    if layout.kind == POSITIVE_LOGIT:
        z = _column(batch, layout.prediction_columns[0])
        bad = ~np.isfinite(z)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            fail(layout.prediction_columns[0], i, f"{_describe(z[i])} is not a finite logit")
        log_probs = np.empty((len(z), 2))
        # log sigmoid(z) = -log(1 + exp(-z)), computed without overflow.
        log_probs[:, layout.positive_index] = -np.logaddexp(0.0, -z)
        log_probs[:, 1 - layout.positive_index] = -np.logaddexp(0.0, z)
        return log_probs
    z = _prediction_matrix(batch, layout, fail)
    with np.errstate(over="ignore", invalid="ignore"):  # an overflowing sum is checked value by value
        total = z.sum()  # one reduction for the common all-finite case
    if z.size and not np.isfinite(total):
        bad = ~np.isfinite(z)
        if layout.neg_inf_padding:
            # −inf pads a class the row does not have (probability exactly 0), unless all of it is padding.
            pad = z == -np.inf
            bad &= ~pad | pad.all(axis=1, keepdims=True)
        if bad.any():  # finite logits whose sum overflows are fine: the max-shift below keeps them finite
            row, col = _first_bad(bad)
            fail(layout.class_columns[col], row, f"{_describe(z[row, col])} is not a finite logit")
    shifted = z - z.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def _xlogy_sum(x: np.ndarray, y: np.ndarray, logged: bool) -> np.ndarray:
    """Row sums of ``x * log(y)`` with ``0 * log(0) = 0`` (``y`` already logged if ``logged``)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = y if logged else np.log(y)
        terms = np.where(x > 0, x * logs, 0.0)
    return terms.sum(axis=1)


def _target_matrix(batch, layout: Layout, n: int, fail) -> np.ndarray:
    columns = [c for c in layout.target_columns if c is not None]
    targets = np.zeros((n, layout.n_classes), dtype=np.float64)
    for j, name in enumerate(layout.target_columns):
        if name is not None:
            targets[:, j] = _column(batch, name)
    given = np.array([c is not None for c in layout.target_columns])
    part = targets[:, given]
    if part.size and not (part.min() >= 0.0 and part.max() <= 1.0):
        row, col = _first_bad(~((part >= 0.0) & (part <= 1.0)))
        fail(columns[col], row, f"{_describe(part[row, col])} is not a target probability (must be in [0, 1])")
    sums = targets.sum(axis=1)
    off = np.flatnonzero(~(np.abs(sums - 1.0) <= SUM_ATOL + SUM_RTOL))
    if off.size:
        hint = multi_hot_targets(targets[off[0]], layout.target_columns)
        fail(None, off[0], f"target probabilities sum to {float(sums[off[0]])!r}, not 1{hint}")
    return targets


def _weights(batch, layout: Layout, n: int, fail) -> np.ndarray:
    if layout.weight is None:
        return unit_weights(n)
    w = _column(batch, layout.weight)
    if n and not (w.min() >= 0.0 and np.isfinite(w.max())):
        i = int(np.flatnonzero(~((w >= 0.0) & np.isfinite(w)))[0])
        fail(layout.weight, i, f"{_describe(w[i])} is not a valid weight (must be finite and >= 0)")
    return w


@lru_cache(maxsize=4)
def unit_weights(n: int) -> np.ndarray:
    """``np.ones(n)``, read-only and shared by every batch of ``n`` rows without a weight column.

    A file's batches have one or two lengths; a new array per batch cost a worker 0.5 ms (its
    pages faulted in) and 1.5 MB for each of the batches in flight.
    """
    ones = np.ones(n, dtype=np.float64)
    ones.flags.writeable = False
    return ones


def _strings(column: pa.Array) -> np.ndarray:
    """A column as an object array of str, missing values shown as ``(missing)``."""
    if _plain_text(column):
        return _through_distinct(column)
    import pyarrow.compute as pc

    if not pa.types.is_string(column.type):
        column = pc.cast(column, pa.string())  # large_string too: the scalar below is string
    column = pc.fill_null(column, _text_scalar(MISSING))
    # Through the distinct values: Array.to_numpy of strings imports pandas (0.2 s of a run).
    encoded = pc.dictionary_encode(column)
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks()
    values = np.empty(len(encoded.dictionary), dtype=object)
    values[:] = encoded.dictionary.to_pylist()
    return values[_numpy(encoded.indices)]


def _plain_text(column: pa.Array) -> bool:
    """Whether a column is text without nulls (see :func:`_through_distinct`)."""
    return (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)) and not column.null_count


def _through_distinct(column: pa.Array, rename=None) -> np.ndarray:
    """A text column without nulls as an object array of str, each distinct value (``rename``-d) made once.

    Through :func:`losslens.arrow_values.dictionary_codes`, so that a small file's ids, splits
    and slices need no ``pyarrow.compute`` (26 ms to import).
    """
    codes, distinct = dictionary_codes(column)
    values = np.empty(len(distinct), dtype=object)
    values[:] = distinct if rename is None else [rename(v) for v in distinct]
    return values[codes]


def _text_scalar(value: str | None) -> pa.Scalar:
    """An Arrow string scalar made from buffers: ``pa.scalar`` of a Python value imports pandas."""
    if value is None:
        return pa.nulls(1, pa.string())[0]
    data = value.encode()
    offsets = pa.py_buffer(np.array([0, len(data)], dtype=np.int32))
    return pa.Array.from_buffers(pa.string(), 1, [None, offsets, pa.py_buffer(data)])[0]


def scope_values(column: pa.Array) -> np.ndarray:
    """Split or slice values as an object array of str, each missing one as :data:`MISSING`.

    Missing is null (Parquet, JSON), NaN (a float column) or empty text (a CSV cell that
    ``DataFrame.to_csv`` wrote for NaN or None): an empty scope name would read as no scope.
    A real value ``(missing)`` becomes :data:`QUOTED_MISSING` rather than merging with them.
    """
    if _plain_text(column):
        return _through_distinct(column, lambda v: MISSING if v == "" else QUOTED_MISSING if v == MISSING else v)
    import pyarrow.compute as pc

    if pa.types.is_floating(column.type):
        column = pc.if_else(pc.is_nan(column), pa.nulls(1, column.type)[0], column)
    if not pa.types.is_string(column.type):
        column = pc.cast(column, pa.string())  # large_string too: the scalars below are string
    column = pc.if_else(pc.equal(column, _text_scalar("")), _text_scalar(None), column)
    column = pc.if_else(pc.equal(column, _text_scalar(MISSING)), _text_scalar(QUOTED_MISSING), column)
    return _strings(column)
