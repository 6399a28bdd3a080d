"""One pass over a batch's probability matrix in C, giving numpy's very values.

numpy takes one pass over the n × k matrix for each figure of a batch (the copy of the columns
into rows, the range check, the row sums and which rows do not sum to 1, argmax, the true
class's value, the one-vs-rest calibration bins, the top-5 hits, each row's Brier sum, each
class's sum of squares), each with its temporaries. The C library ``losslens._fused``
(``_fused.c``, built at install where a C compiler is) takes them all in one pass, a block of
rows at a time while it is in cache (:func:`score_columns`, :func:`score_matrix`), and the
accumulate stage's per-class and per-bin sums of the rows' figures (eight ``np.bincount`` calls
and the confused pairs' count) in one more (:func:`batch_sums`), and the loss histogram's
counts in a third (:func:`histogram_counts`). A 10M-row ``losslens metrics`` spends about 40%
less CPU time. Where the processor has AVX2 (chosen at run time: the library is built for any
x86-64), float64 columns are scored four rows at a time, each lane doing one row's steps in
the row's own order (:func:`four_rows_at_a_time`); elsewhere two rows at a time (SSE2). A caller
that needs no matrix (every figure taken in the pass) asks :func:`score_columns` for none.
The temperature fit's passes over its 200,000-row sample take their exact steps here too (the
scaling and shift by the row maximum, the row sums and division, the softmax moments, the Brier
rows: :func:`shifted_rows`, :func:`row_totals`, :func:`softmax_moments`, :func:`square_error_rows`),
leaving ``exp`` and ``log`` to numpy.

Each function returns ``None`` when it cannot do the work (the library was not built,
``LOSSLENS_FUSED=0``, an input it does not take such as a float16 column, or a value that is
not a probability), and the caller then runs its numpy code. Both give the same figures to the
last bit: the library only copies, compares, and adds one value at a time in the order numpy
adds them (row sums pairwise as ``np.add.reduce``, bins in row order as ``np.bincount`` and
``np.add.at``), and it is built without fused multiply-adds. The Brier rows and square sums
and the fit's softmax moments follow the order of numpy's einsum kernels (two lanes, no FMA:
numpy's x86-64 baseline); they are asked for only where a probe (:func:`same_bits`) has checked,
on the machine itself, that einsum adds so. The unit-weight column sums (the mean prediction's
Σq) follow the order of BLAS's ``np.ones(n) @ probs``, with the way of adding each column that
``batch_figures.unit_column_sums`` learned from BLAS itself for the batch's shape.
tests/test_fused.py checks every figure against the numpy code it stands for.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
from functools import lru_cache

import numpy as np

#: Set to 0 to compute everything with numpy (the same figures; for checking and debugging).
FUSED_ENV = "LOSSLENS_FUSED"

_LIBRARY: list = []  # [the loaded library or None], filled on first use
#: The layout of _fused.c's functions and structures this module calls (its LL_ABI_VERSION).
ABI_VERSION = 9


class _Outputs(ctypes.Structure):
    """The C side's ``Outputs``: what a scoring pass reads and writes (NULL: not asked for)."""

    _fields_ = [(name, ctypes.c_void_p) for name in ("label", "weight")] + [
        ("n_bins", ctypes.c_int64), ("top", ctypes.c_int64)] + [
        (name, ctypes.c_double) for name in ("sum_tolerance", "clip_low", "clip_high")] + [
        (name, ctypes.c_void_p) for name in ("sums", "predicted", "confidence", "true_prob", "bin_weight",
                                              "bin_prob_sum", "bin_hit_weight", "top_hit", "unnormalized",
                                              "brier", "square_sums", "clipped_prob", "clipped", "sum_modes",
                                              "column_sums")
    ]


class _BatchSums(ctypes.Structure):
    """The C side's ``BatchSums``: the per-class and per-bin sums of a batch's per-row figures."""

    _fields_ = [(name, ctypes.c_void_p) for name in ("label", "predicted", "confidence", "weighted_loss", "weight")] + [
        ("n_bins", ctypes.c_int64)] + [
        (name, ctypes.c_void_p) for name in ("class_count", "class_loss_sum", "class_correct_weight",
                                              "predicted_weight", "bin_weight", "bin_confidence_sum",
                                              "bin_correct_weight", "pair_counts")] + [("n_correct", ctypes.c_int64)]


def library():
    """The loaded C library, or None (not built here, or turned off by ``LOSSLENS_FUSED=0``)."""
    if os.environ.get(FUSED_ENV, "1") == "0":
        return None
    if not _LIBRARY:
        _LIBRARY.append(_load())
    return _LIBRARY[0]


def _load():
    # Found, not imported: the extension module is only the library's carrier.
    spec = importlib.util.find_spec(f"{__package__}._fused")
    if spec is None or not spec.origin:
        return None
    try:
        lib = ctypes.CDLL(spec.origin)  # a CDLL's calls release the GIL: worker threads run in parallel
    except OSError:
        return None
    if not hasattr(lib, "ll_abi_version") or lib.ll_abi_version() != ABI_VERSION:
        return None  # a library built from another version of _fused.c (a stale build): numpy then
    pointer, i64, outputs = ctypes.c_void_p, ctypes.c_int64, ctypes.POINTER(_Outputs)
    lib.ll_fill_score.argtypes = [pointer, pointer, i64, i64, pointer, outputs]
    lib.ll_fill_score.restype = ctypes.c_int
    lib.ll_score.argtypes = [pointer, i64, i64, outputs]
    lib.ll_score.restype = ctypes.c_int
    lib.ll_batch_sums.argtypes = [i64, i64, ctypes.POINTER(_BatchSums)]
    lib.ll_batch_sums.restype = ctypes.c_int
    lib.ll_shift_rows.argtypes = [pointer, i64, i64, ctypes.c_double, ctypes.c_int32, pointer, pointer]
    lib.ll_shift_rows.restype = None
    lib.ll_row_totals.argtypes = [pointer, i64, i64, ctypes.c_int32, pointer]
    lib.ll_row_totals.restype = None
    lib.ll_softmax_moments.argtypes = [pointer, pointer, i64, i64, pointer, pointer, pointer]
    lib.ll_softmax_moments.restype = ctypes.c_int
    lib.ll_square_error_rows.argtypes = [pointer, i64, i64, pointer, pointer]
    lib.ll_square_error_rows.restype = ctypes.c_int
    lib.ll_histogram.argtypes = [pointer, i64, pointer, i64, pointer, i64, i64, i64, pointer]
    lib.ll_histogram.restype = None
    if hasattr(lib, "ll_set_avx2"):  # x86-64 built with GCC or Clang
        lib.ll_set_avx2.argtypes = [ctypes.c_int]
        lib.ll_set_avx2.restype = ctypes.c_int
    return lib


def four_rows_at_a_time(on: bool | None = None) -> bool:
    """Whether :func:`score_columns` scores four rows at a time (AVX2, where the processor has it).

    ``on`` turns it on or off for the process (the tests compare both with numpy); the figures
    are the same to the last bit either way.
    """
    lib = library()
    if lib is None or not hasattr(lib, "ll_set_avx2"):
        return False
    return bool(lib.ll_set_avx2(-1 if on is None else int(on)))


class RowFigures:
    """What one pass over a batch's n × k probabilities gives (None: not asked for).

    Attributes
    ----------
    probs : ndarray (n, k) or None
        The float64 matrix (copied from the columns by :func:`score_columns`; None when it was
        asked for none).
    columns : tuple of ndarray or None
        The float64 columns scored without a matrix (``score_columns(..., matrix=False)``).
    sums : ndarray (n,) or None
        ``probs.sum(axis=1)``.
    predicted, confidence : ndarray (n,)
        ``probs.argmax(axis=1)`` and its values.
    true_prob : ndarray (n,) or None
        ``probs[i, label[i]]``.
    class_bins : tuple or None
        ``(n_bins, weight, Σw·q, Σw·1[y = c])``: the one-vs-rest calibration sums of every class
        and bin, flat k × n_bins arrays, as ``batch_figures._class_calibration`` adds them.
    top_k_hit : ndarray (n,) of bool, or None
        Whether the true class is among the ``top`` most probable, ties ranked as
        ``batch_figures.top_k_hits`` ranks them.
    unnormalized : ndarray (n,) of bool, or None
        Whether the row's sum is not 1 within the tolerance asked for (``batch.unnormalized_rows``).
    brier : ndarray (n,) or None
        Each row's ``Σ_j (q_j − 1[y = j])²`` as ``batch_figures.hard_label_brier`` sums it.
    square_sums : ndarray (k,) or None
        ``Σ_i w_i²·q_ij²`` of each class as ``batch_figures.square_sums`` sums it.
    clipped : tuple or None
        ``(np.clip(true_prob, low, high), whether true_prob is outside [low, high])``.
    column_sums : ndarray (k,) or None
        ``np.ones(n) @ probs``, each column added as this machine's BLAS adds it (asked for with
        the modes ``batch_figures.known_sum_modes`` gives).
    """

    __slots__ = ("probs", "predicted", "confidence", "sums", "true_prob", "class_bins", "top_k_hit",
                 "unnormalized", "brier", "square_sums", "clipped", "column_sums", "columns")

    def __init__(self, probs=None, predicted=None, confidence=None, sums=None, true_prob=None, class_bins=None):
        self.probs, self.predicted, self.confidence, self.sums = probs, predicted, confidence, sums
        self.true_prob, self.class_bins = true_prob, class_bins
        self.top_k_hit = self.unnormalized = self.brier = self.square_sums = self.clipped = None
        self.column_sums = self.columns = None


#: Random rows a probe compares the library with numpy on (see :func:`same_bits`): with random
#: values, another order of additions than numpy's changes the last bit of many of them.
PROBE_ROWS = 257


def same_bits(pairs) -> bool:
    """Whether each ``(library's, numpy's)`` pair of float64 arrays is equal bit for bit.

    The check behind the figures whose order of additions is that of a numpy kernel rather than
    plain row order (``batch_figures.fused_squares_exact``, ``calibration_fit.library_moments_exact``):
    they are asked of the library only where a probe on the machine itself gives numpy's bits.
    """
    return all(a.shape == b.shape and np.array_equal(a.view(np.uint64), b.view(np.uint64)) for a, b in pairs)


#: Column dtypes the library copies, by its kind code.
_KINDS = {np.dtype(np.float64): 0, np.dtype(np.float32): 1}


def _c_matrix(a: np.ndarray) -> bool:
    """Whether the library reads ``a`` as it is: a C-ordered float64 n × k matrix, k ≥ 1."""
    return a.dtype == np.float64 and a.ndim == 2 and a.flags.c_contiguous and a.shape[1] > 0


def _address(a: np.ndarray | None):
    return None if a is None else a.ctypes.data


def _request(n: int, k: int, label, weight, n_bins: int | None, top: int, sums: bool,
             sum_tolerance: float | None, squares: bool, clip: tuple[float, float] | None, sum_modes=None):
    """The arrays one pass fills, and the C structure pointing at them (and at the inputs)."""
    figures = RowFigures()
    if label is not None:
        label = np.ascontiguousarray(label, dtype=np.int64)
    if weight is not None:
        weight = np.ascontiguousarray(weight, dtype=np.float64)
    figures.sums = np.empty(n) if sums else None
    figures.predicted = np.empty(n, dtype=np.int64)
    figures.confidence = np.empty(n)
    figures.true_prob = None if label is None else np.empty(n)
    bins = None if n_bins is None else [np.zeros(k * n_bins) for _ in range(3)]
    figures.class_bins = None if bins is None else (n_bins, *bins)
    figures.top_k_hit = np.empty(n, dtype=np.bool_) if top and label is not None else None
    figures.unnormalized = np.empty(n, dtype=np.bool_) if sum_tolerance is not None else None
    figures.brier = np.empty(n) if squares and label is not None else None
    figures.square_sums = np.zeros(k) if squares else None
    clipped = (np.empty(n), np.empty(n, dtype=np.bool_)) if clip is not None and label is not None else None
    figures.clipped = clipped
    if sum_modes is not None:
        sum_modes = _sum_modes(sum_modes, k)
        figures.column_sums = np.zeros(k)
    keep = (label, weight, sum_modes)  # alive until the call returns: the structure holds raw addresses
    low, high = clip if clipped is not None else (0.0, 0.0)
    outputs = _Outputs(
        _address(label), _address(weight), n_bins or 0, top if figures.top_k_hit is not None else 0,
        0.0 if sum_tolerance is None else float(sum_tolerance), float(low), float(high),
        *(_address(a) for a in (figures.sums, figures.predicted, figures.confidence, figures.true_prob)),
        *(_address(b) for b in bins or (None,) * 3),
        *(_address(a) for a in (figures.top_k_hit, figures.unnormalized, figures.brier, figures.square_sums)),
        *(_address(a) for a in clipped or (None, None)),
        _address(sum_modes), _address(figures.column_sums),
    )
    return figures, outputs, keep


def score_columns(columns: list[np.ndarray], label=None, weight=None, n_bins: int | None = None,
                  top: int = 0, sum_tolerance: float | None = None, squares: bool = False,
                  clip: tuple[float, float] | None = None, sum_modes=None, matrix: bool = True) -> RowFigures | None:
    """Copy probability columns into one n × k float64 matrix and score its rows in the same pass.

    Parameters
    ----------
    columns : list of 1-D float64 or float32 arrays
        One per class, of one length.
    label : array of int (n,), optional
        True class of each row (gives ``true_prob``, the bins' hits, ``top_k_hit`` and ``brier``).
    weight : array (n,), optional
        Example weights for the calibration bins and square sums; None for unit weights.
    n_bins : int, optional
        Take the one-vs-rest calibration bins with this many bins per class.
    top : int
        Take ``top_k_hit`` for the ``top`` most probable classes (0: not).
    sum_tolerance : float, optional
        Take ``unnormalized``: rows whose sum is not within this of 1.
    squares : bool
        Take the Brier rows and the square sums. Their order of additions is that of numpy's
        einsum on x86-64: ask only where :func:`losslens.batch_figures.fused_squares_exact` says
        the library's values are einsum's on this machine.
    clip : (float, float), optional
        Take ``clipped``: p(true class) clipped to ``[low, high]`` as ``np.clip`` clips it, and
        whether it was outside (the log loss's clipping, ``batch.clipped_loss``).
    sum_modes : array of int8 (k,), optional
        Take ``column_sums``, each column added in the order of its mode (1: OpenBLAS's four-row
        blocks, 2: a running sum): ask only with the modes
        :func:`losslens.batch_figures.known_sum_modes` gives for this number of rows and columns.
    matrix : bool
        Write the n × k matrix (``probs``). False: float64 columns are scored where they lie
        and kept as ``columns`` instead (float32 ones are widened into the matrix all the same).

    Returns
    -------
    RowFigures or None
        None when the library cannot do it, or when a value is not in [0, 1] (numpy's path
        names it) or a label is not a column index.
    """
    lib = library()
    if lib is None or not columns or any(c.dtype not in _KINDS or c.ndim != 1 for c in columns):
        return None
    columns = [np.ascontiguousarray(c) for c in columns]
    n, k = len(columns[0]), len(columns)
    figures, outputs, keep = _request(n, k, label, weight, n_bins, top, True, sum_tolerance, squares, clip,
                                      sum_modes)
    if matrix or any(c.dtype != np.float64 for c in columns):
        figures.probs = np.empty((n, k), dtype=np.float64)
    else:
        figures.columns = tuple(columns)
    pointers = (ctypes.c_void_p * k)(*[c.ctypes.data for c in columns])
    kinds = np.array([_KINDS[c.dtype] for c in columns], dtype=np.int32)
    failed = lib.ll_fill_score(pointers, _address(kinds), n, k, _address(figures.probs), ctypes.byref(outputs))
    del keep
    return None if failed else figures


def score_matrix(probs: np.ndarray, label=None, weight=None, n_bins: int | None = None, top: int = 0,
                 sum_tolerance: float | None = None, squares: bool = False, clip: tuple[float, float] | None = None,
                 sums: bool = False, sum_modes=None) -> RowFigures | None:
    """Score the rows of an n × k float64 probability matrix in one pass (see :func:`score_columns`).

    ``sums`` asks for the row sums too. None when the library cannot do it (or the matrix is
    not C-ordered float64), when calibration bins are asked for and a value is not in [0, 1],
    or when a label is not a column index.
    """
    lib = library()
    if lib is None or not _c_matrix(probs):
        return None
    n, k = probs.shape
    figures, outputs, keep = _request(n, k, label, weight, n_bins, top, sums, sum_tolerance, squares, clip,
                                      sum_modes)
    figures.probs = probs
    failed = lib.ll_score(_address(probs), n, k, ctypes.byref(outputs))
    del keep
    return None if failed else figures


def column_sums(probs: np.ndarray, sum_modes) -> np.ndarray | None:
    """``np.ones(n) @ probs`` of an n × k float64 matrix, each column added in the order of its mode
    (as ``score_matrix(probs, sum_modes=...)`` adds them, without its other figures), or None."""
    lib = library()
    if lib is None or not _c_matrix(probs):
        return None
    n, k = probs.shape
    sum_modes, out = _sum_modes(sum_modes, k), np.zeros(k)
    outputs = _Outputs(sum_modes=_address(sum_modes), column_sums=_address(out))
    failed = lib.ll_score(_address(probs), n, k, ctypes.byref(outputs))
    return None if failed else out


def _sum_modes(sum_modes, k: int) -> np.ndarray:
    """The modes as the C side reads them: k int8 values, contiguous."""
    sum_modes = np.ascontiguousarray(sum_modes, dtype=np.int8)
    if sum_modes.shape != (k,):
        raise ValueError(f"sum_modes has {sum_modes.size} modes for {k} columns")
    return sum_modes


#: What :func:`batch_sums` gives, in the order of the C structure's outputs.
BATCH_SUMS = ("class_count", "class_loss_sum", "class_correct_weight", "predicted_weight", "bin_weight",
              "bin_confidence_sum", "bin_correct_weight")


def batch_sums(label, predicted, confidence, weighted_loss, weight, n_classes: int, n_bins: int,
               pairs: bool = False) -> dict | None:
    """The per-class and per-bin sums of a batch's per-row figures, as ``np.bincount`` adds them.

    Parameters
    ----------
    label, predicted : array of int (n,)
        True and predicted class of each row.
    confidence : array (n,)
        The predicted class's probability (binned as ``min(⌊b·c⌋, b − 1)``).
    weighted_loss : array (n,)
        ``w · loss`` (the loss itself for unit weights).
    weight : array (n,) or None
        Example weights; None for unit weights.
    n_classes, n_bins : int
    pairs : bool
        Also count the wrong rows' (true, predicted) pairs, dense over k × k codes.

    Returns
    -------
    dict or None
        :data:`BATCH_SUMS` (``class_count`` int64, the others float64), ``n_correct`` and, with
        ``pairs``, ``pair_counts`` (int64, k²); None when the library cannot do it (not built,
        a class index out of range, a confidence not in [0, 1]): numpy's ``bincount`` then.
    """
    lib = library()
    if lib is None:
        return None
    k, n = n_classes, len(label)
    inputs = [np.ascontiguousarray(label, dtype=np.int64), np.ascontiguousarray(predicted, dtype=np.int64),
              np.ascontiguousarray(confidence, dtype=np.float64), np.ascontiguousarray(weighted_loss, dtype=np.float64),
              None if weight is None else np.ascontiguousarray(weight, dtype=np.float64)]
    out = {name: np.zeros(k if name.startswith(("class", "predicted")) else n_bins,
                          dtype=np.int64 if name == "class_count" else np.float64) for name in BATCH_SUMS}
    if pairs:
        out["pair_counts"] = np.zeros(k * k, dtype=np.int64)
    sums = _BatchSums(*map(_address, inputs), n_bins, *(_address(out[name]) for name in BATCH_SUMS),
                      _address(out.get("pair_counts")), 0)
    if lib.ll_batch_sums(n, k, ctypes.byref(sums)):
        return None
    out["n_correct"] = sums.n_correct
    return out


# -- the temperature fit's row passes (losslens.calibration_fit) --------------------------------

def shifted_rows(z: np.ndarray, factor: float, divide: bool = False):
    """``(p, top)``: ``p = factor·z`` (``z / factor`` with ``divide``) less each row's maximum
    ``top`` (n × 1), or None when the library cannot.

    The maximum is numpy's column by column (``np.maximum`` from the first column: the later
    value kept on a tie, which tells +0 from -0, a NaN propagated), as ``calibration_fit.row_max`` takes it up to
    ``ROW_MAX_COLUMNS``; the caller keeps wider matrices, whose maximum numpy reduces, to numpy.
    """
    lib = library()
    if lib is None or not _c_matrix(z):
        return None
    n, k = z.shape
    p, top = np.empty((n, k)), np.empty((n, 1))
    lib.ll_shift_rows(_address(z), n, k, float(factor), int(divide), _address(p), _address(top))
    return p, top


def row_totals(p: np.ndarray, divide: bool = False) -> np.ndarray | None:
    """``p.sum(axis=1, keepdims=True)`` (n × 1), and with ``divide`` ``p /= total`` in place; or None."""
    lib = library()
    if lib is None or not _c_matrix(p):
        return None
    n, k = p.shape
    total = np.empty((n, 1))
    lib.ll_row_totals(_address(p), n, k, int(divide), _address(total))
    return total


def softmax_moments(p: np.ndarray, zz: np.ndarray):
    """``(total, mean, var)``: each row of ``p`` divided by its sum ``total`` (n × 1, in place), then
    the mean of ``zz`` under it and the mean of its squared deviations, or None.

    The row sums are ``p.sum(axis=1)``'s; the two means follow numpy's ``einsum("ij,ij->i")`` order
    on x86-64: ask only where ``calibration_fit`` has checked that einsum adds so on this machine.
    """
    lib = library()
    if lib is None or not _c_matrix(p) or not _c_matrix(zz) or zz.shape != p.shape:
        return None
    n, k = p.shape
    total, mean, var = np.empty((n, 1)), np.empty(n), np.empty(n)
    if lib.ll_softmax_moments(_address(p), _address(zz), n, k, _address(total), _address(mean), _address(var)):
        return None
    return total, mean, var


def square_error_rows(p: np.ndarray, label: np.ndarray) -> np.ndarray | None:
    """Each row's ``Σ_j (p_j − 1[y = j])²`` (``p`` overwritten with the squares), or None."""
    lib = library()
    if lib is None or not _c_matrix(p):
        return None
    n, k = p.shape
    label = np.ascontiguousarray(label, dtype=np.int64)
    out = np.empty(n)
    if lib.ll_square_error_rows(_address(p), n, k, _address(label), _address(out)):
        return None
    return out


#: Bits a histogram cell drops of a double (its sign, 11 exponent bits and the first 6 mantissa
#: bits remain): a cell spans at most a factor 1 + 2**-6, well within the loss histogram's 20
#: edges a decade (a factor 1.12 apart).
HISTOGRAM_SHIFT = 46


@lru_cache(maxsize=4)
def _histogram_table(edge_bytes: bytes):
    """``(edges padded with +inf, first cell, edges at or below each cell's lowest value)``, or
    None where a cell would hold two edges (the C side's one comparison would not decide)."""
    edges = np.frombuffer(edge_bytes, dtype=np.float64)
    if edges.size == 0 or not edges[0] > 0 or not np.all(np.isfinite(edges)) or np.any(np.diff(edges) <= 0):
        return None
    first, last = (int(b) >> HISTOGRAM_SHIFT for b in edges[[0, -1]].view(np.uint64))
    cells = np.arange(first, last + 2, dtype=np.uint64) << np.uint64(HISTOGRAM_SHIFT)
    lowest = cells.view(np.float64)  # each cell's lowest value, and the one after the last cell
    below = np.searchsorted(edges, lowest, side="right")
    inside = np.searchsorted(edges, lowest[1:], side="left") - below[:-1]  # edges within each cell
    if np.any(inside > 1):
        return None
    return np.append(edges, np.inf), first, below[:-1].astype(np.int32)


def histogram_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray | None:
    """``np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)``.

    For float64 ``values`` and sorted positive ``edges`` no two of which share a cell (see
    :data:`HISTOGRAM_SHIFT`); None where the library cannot take them. One pass without
    temporaries: a table lookup by the value's exponent and first bits and one comparison.
    """
    lib = library()
    if lib is None or values.dtype != np.float64 or values.ndim != 1:
        return None
    table = _histogram_table(np.ascontiguousarray(edges, dtype=np.float64).tobytes())
    if table is None:
        return None
    padded, first, below = table
    values = np.ascontiguousarray(values)
    counts = np.zeros(len(edges) + 1, dtype=np.int64)
    lib.ll_histogram(_address(values), len(values), _address(padded), len(edges), _address(below), first,
                     len(below), HISTOGRAM_SHIFT, _address(counts))
    return counts
