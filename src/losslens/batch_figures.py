"""Per-batch figures the accumulate stage takes from a scored batch's rows and matrix.

Pure numpy: the one-vs-rest calibration bins of every class (dense or sparse), each row's Brier
sum, the classes' sums of squares, whether each row's true class is among its top five, the
loss histogram's bin of each value, and the unit-weight column sums with the order in which BLAS
adds them, learned for the scoring pass. Kept apart from :mod:`losslens.accumulate`, which only adds
such figures up (and re-exports these names). Where the C library (:mod:`losslens.fused`) takes
a figure in the scoring pass, these functions are the reference it must equal to the last bit.
"""

from __future__ import annotations

import threading
from functools import lru_cache

import numpy as np

from .fused import PROBE_ROWS, column_sums, histogram_counts, library, same_bits, score_matrix

# The functions below read a losslens.batch.ScoredBatch (``batch``), not imported: the scoring
# stage (batch.py) asks fused_squares_exact here which figures its pass may take.

#: Loss histogram: 20 log-spaced bins per decade from 1e-16 to 1e3 nats, plus one bin for
#: smaller losses (including 0) and one for larger. Quantiles read from it are exact to a
#: factor 10**(1/20), about 12%.
HIST_DECADES = (-16, 3)
HIST_PER_DECADE = 20
HIST_EDGES = np.logspace(HIST_DECADES[0], HIST_DECADES[1], (HIST_DECADES[1] - HIST_DECADES[0]) * HIST_PER_DECADE + 1)

#: Above this many classes, per-class calibration bins only the cells outside bin 0 (see
#: _class_calibration); at 10 classes binning every cell is faster (13 against 33 ms for
#: 190,000 rows), at 30 about even (11.5 against 9.4 ms), at 1,000 nearly every cell is in bin 0.
SPARSE_CALIBRATION_CLASSES = 30


#: Rows binned at a time by :func:`_class_calibration`: the block's bin indices (8,192 × k
#: int64) stay in cache, and no n × k temporary is made (two worker threads score batches).
CALIBRATION_BLOCK_ROWS = 8192


def _class_calibration(batch, k: int, b: int) -> dict[str, np.ndarray]:
    """One-vs-rest reliability sums: for class c and bin j of q_c, weight, Σw·q_c, Σw·1[y=c]."""
    if k > SPARSE_CALIBRATION_CLASSES:
        return _sparse_class_calibration(batch, k, b)
    if batch.class_bins is not None and batch.class_bins[0] == b:
        # Taken in the scoring pass by the C library (losslens.fused): the very values of the
        # code below, added in the very same order.
        return dict(zip(("class_bin_weight", "class_bin_prob_sum", "class_bin_hit_weight"), batch.class_bins[1:]))
    w = batch.weight
    unit = bool(np.all(w == 1.0))
    size = k * b
    weight, prob_sum = np.zeros(size), np.zeros(size)
    hits = np.zeros(size) if batch.targets is not None else None
    probs = batch.matrix()
    for start in range(0, batch.n, CALIBRATION_BLOCK_ROWS):
        rows = slice(start, start + CALIBRATION_BLOCK_ROWS)
        cells = _cells(probs[rows], b)
        # Unit weights (the common case) skip the weight products; counts add exactly.
        if unit:
            weight += np.bincount(cells, minlength=size)
            prob_sum = _carry_bincount(cells, prob_sum, probs[rows].ravel())
        else:
            block_weight = w[rows]
            weight = _carry_bincount(cells, weight, np.repeat(block_weight, k))
            prob_sum = _carry_bincount(cells, prob_sum, (probs[rows] * block_weight[:, None]).ravel())
        if hits is not None:
            hits = _carry_bincount(cells, hits, (batch.targets[rows] * w[rows][:, None]).ravel())
    if hits is None:
        # Each row hits only its true class's bin: one bincount over the rows adds the same
        # weights in the same (row) order as one per class over that class's rows.
        hits = _true_class_hits(batch, k, b)
    return {"class_bin_weight": weight, "class_bin_prob_sum": prob_sum, "class_bin_hit_weight": hits}


def _cells(probs: np.ndarray, b: int) -> np.ndarray:
    """Flat bin index c·b + min(⌊b·q⌋, b − 1) of every cell of a row block, in row-major order."""
    cells = np.empty(probs.shape, dtype=np.int64)
    np.multiply(probs, b, out=cells, casting="unsafe")  # truncating, as astype(int64) does
    np.minimum(cells, b - 1, out=cells)
    cells += np.arange(0, probs.shape[1] * b, b)
    return cells.ravel()


def _carry_bincount(cells: np.ndarray, sums: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``sums`` plus the weights of ``cells`` by bin (in place), added exactly as one bincount over all blocks.

    ``np.add.at`` adds the block's values to each bin's running sum one by one in row order,
    as bincount adds in element order from 0: every bin receives the same values in the same
    order as a bincount of its class's whole column, so the sums are bit-identical to that
    (and no concatenated copies of the block are made: about 40% less time per block).
    """
    np.add.at(sums, cells, weights)
    return sums


def _sparse_class_calibration(batch, k: int, b: int) -> dict[str, np.ndarray]:
    """As :func:`_class_calibration`, binning only the cells outside bin 0.

    With many classes nearly every cell has q < 1/b (bin 0). Only the other cells are
    binned one by one; bin 0 of each class is what its totals leave (equal to binning every
    cell within a few ulps of the class's total weight; counts stay exact integers).
    """
    w = batch.weight
    probs = batch.matrix()
    flat = probs.ravel()
    selected = np.flatnonzero(flat * b >= 1.0)
    q = flat[selected]
    rows, columns = np.divmod(selected, k)
    cells = np.minimum((q * b).astype(np.int64), b - 1)
    cells += columns * b
    first = np.arange(k) * b
    if np.all(w == 1.0):
        weight = np.bincount(cells, minlength=k * b).astype(np.float64)
        prob_sum = np.bincount(cells, weights=q, minlength=k * b)
        total_weight, total_prob = float(batch.n), probs.sum(axis=0)
    else:
        row_weight = w[rows]
        weight = np.bincount(cells, weights=row_weight, minlength=k * b)
        prob_sum = np.bincount(cells, weights=row_weight * q, minlength=k * b)
        total_weight, total_prob = float(w.sum()), w @ probs
    weight[first] = total_weight - weight.reshape(k, b)[:, 1:].sum(axis=1)
    prob_sum[first] = total_prob - prob_sum.reshape(k, b)[:, 1:].sum(axis=1)
    if batch.targets is not None:
        hits = np.bincount(cells, weights=w[rows] * batch.targets.ravel()[selected], minlength=k * b)
        hits[first] = w @ batch.targets - hits.reshape(k, b)[:, 1:].sum(axis=1)
    else:
        hits = _true_class_hits(batch, k, b)
    return {"class_bin_weight": weight, "class_bin_prob_sum": prob_sum, "class_bin_hit_weight": hits}


def _true_class_hits(batch, k: int, b: int) -> np.ndarray:
    """Σw·1[y=c] of each class's bins: each row's weight in the bin of its true class's q."""
    label = batch.label
    true_bin = np.minimum((batch.matrix()[np.arange(batch.n), label] * b).astype(np.int64), b - 1) + label * b
    return np.bincount(true_bin, weights=batch.weight, minlength=k * b)


#: Rows of a batch whose differences q − onehot are squared at a time in :func:`hard_label_brier`.
BRIER_ROWS = 16_384


def hard_label_brier(probs: np.ndarray, label: np.ndarray) -> np.ndarray:
    """Each row's Brier sum Σ_j (q_j − 1[y = j])², a chunk of rows at a time.

    Squares the differences themselves: the shortcut Σq² − 2q_y + 1 cancels catastrophically
    for confident, correct rows (q_y ≈ 1) and reports 0. Each row is computed as on the whole
    matrix (bit-identical), with one chunk-sized copy instead of an n × k one.
    """
    n = len(probs)
    out = np.empty(n)
    for start in range(0, n, BRIER_ROWS):
        stop = min(n, start + BRIER_ROWS)
        diff = probs[start:stop].copy()
        diff[np.arange(stop - start), label[start:stop]] -= 1.0
        out[start:stop] = np.einsum("ij,ij->i", diff, diff)
    return out


def square_sums(probs: np.ndarray, w2: np.ndarray | None = None) -> np.ndarray:
    """Each class's ``Σ_i w_i²·q_ij²`` (``Σ_i q_ij²`` for unit weights, ``w2`` None), as einsum adds it.

    With the mean prediction's Σw²·q, the variance of the label counts a calibrated model implies
    (the bias correction of KL(P̂ ‖ Q̄), see ``evaluation.kl_sampling_bias_bits``).
    """
    if w2 is None:
        return np.einsum("ij,ij->j", probs, probs)
    return np.einsum("i,ij,ij->j", w2, probs, probs)


@lru_cache(maxsize=None)
def fused_squares_exact(k: int) -> bool:
    """Whether the C library's Brier rows and square sums are this numpy's, bit for bit, for k classes.

    The library adds the squares in the order of numpy's einsum kernels with two lanes and no
    fused multiply-add (numpy's x86-64 baseline). A numpy that adds otherwise (with FMA on
    aarch64, or another kernel in a later release) gives other last bits: a probe of random rows
    against :func:`hard_label_brier` and :func:`square_sums` decides once per class count, and
    where it fails (or the library is absent) numpy computes both, so the figures are always
    this machine's numpy's.
    """
    rng = np.random.default_rng(k)
    probs = rng.random((PROBE_ROWS, k)) ** 3  # uneven rows, many exponents
    probs /= probs.sum(axis=1, keepdims=True)
    label = rng.integers(0, k, PROBE_ROWS)
    weight = rng.random(PROBE_ROWS) * 3
    weighted = score_matrix(probs, label, weight, squares=True)
    unit = score_matrix(probs, label, None, squares=True)
    if weighted is None or unit is None:
        return False
    return same_bits(((weighted.brier, hard_label_brier(probs, label)), (unit.square_sums, square_sums(probs)),
                      (weighted.square_sums, square_sums(probs, weight * weight))))


#: The scoring pass's ways of adding a column of ``np.ones(n) @ probs`` (``_fused.c``'s SUM_BLOCKS
#: and SUM_RUNNING: OpenBLAS's four-row kernel, and its running sum of the columns left over).
SUM_BLOCKS, SUM_RUNNING = 1, 2
#: Widest batches whose column sums the scoring pass may take, and fewest rows worth learning for.
SUM_MODES_MAX_COLUMNS = 128
SUM_MODES_MIN_ROWS = 4096
#: Batch shapes kept at most (a run has one or two: its full batches and its last; a long
#: session reading many files forgets the oldest).
SUM_MODES_MAX_SHAPES = 64
#: Half an ulp of 1.0: 1 + HALF_ULP rounds back to 1 (a tie, to even), 1 + 4·HALF_ULP does not.
HALF_ULP = 2.0 ** -53
#: (n, k) -> the mode of each column (int8), or None where neither mode is BLAS's order here.
_SUM_MODES: dict[tuple[int, int], np.ndarray | None] = {}
_SUM_MODES_LOCK = threading.Lock()


def known_sum_modes(n: int, k: int) -> np.ndarray | None:
    """The way to add each column of an n × k batch's unit-weight column sums as BLAS does, if learned.

    None until :func:`unit_column_sums` has learned it from a first batch of that shape (and
    always where BLAS adds otherwise): the scoring pass is then not asked for the sums.
    """
    return _SUM_MODES.get((n, k))


def unit_column_sums(probs: np.ndarray, weight: np.ndarray, taken: np.ndarray | None = None) -> np.ndarray:
    """``weight @ probs`` for unit ``weight``: the mean prediction's Σq, the very bits of numpy's BLAS.

    ``taken`` is the batch's sums from the scoring pass, asked for with :func:`known_sum_modes`.
    Without it BLAS adds, and the first batch of each shape teaches the scoring pass its order.

    A 190,000 × 10 batch's BLAS call (OpenBLAS's ``dgemv``, split over its threads) cost 3–4 ms
    of a worker's 25 ms, reading the matrix once more from memory; the scoring pass adds the
    same values in the same order while the rows are in cache. OpenBLAS gives each of its
    threads a range of the columns; in a range it adds four columns at a time in blocks of four
    rows (then two rows and one) and the one to three columns left over row by row, so each
    column's sum is one of two orders (``_fused.c``'s ``add_column_sums``). Which one, for this
    shape, this BLAS and its number of threads, is learned here, and only where both checks
    agree with BLAS bit for bit: a matrix of zeros but for a few values at 1.0 and half an ulp,
    where the two orders and their handling of the last rows give different sums, and the first
    real batch itself. A BLAS that adds otherwise (another kernel, or OpenBLAS splitting the
    rows over its threads, as it does for four columns or fewer) fails them and keeps adding.
    What is learned is kept for the process: a thread count changed later (``threadpoolctl``)
    keeps the order of the first batches of each shape.
    """
    if taken is not None:
        return taken
    total = weight @ probs
    n, k = probs.shape
    # Learned once per shape, and only with the library on (LOSSLENS_FUSED=0 must not teach "no").
    # The shape is taken (None) before it is learned: a batch of it scored meanwhile in the other
    # thread leaves it to this one.
    if (n, k) in _SUM_MODES or not _learnable(n, k) or library() is None:
        return total
    with _SUM_MODES_LOCK:
        if (n, k) in _SUM_MODES:
            return total
        while len(_SUM_MODES) >= SUM_MODES_MAX_SHAPES:  # a long session's many files: the oldest go
            del _SUM_MODES[next(iter(_SUM_MODES))]
        _SUM_MODES[(n, k)] = None
    _SUM_MODES[(n, k)] = _learned_sum_modes(probs, total)
    return total


def _learnable(n: int, k: int) -> bool:
    return n >= SUM_MODES_MIN_ROWS and 1 <= k <= SUM_MODES_MAX_COLUMNS


def _learned_sum_modes(probs: np.ndarray, total: np.ndarray) -> np.ndarray | None:
    """The mode of each column under which the scoring pass gives ``total`` (BLAS's), or None."""
    n, k = probs.shape
    if not _learnable(n, k):
        return None
    # Row 0 at 1.0, then four rows and the rows after the last multiple of four at half an ulp:
    # a block of four adds 2 ulps to 1 and a running sum nothing, and the last rows' two-row
    # and one-row steps each round differently from a running sum. Zeros add exactly, so the
    # pass's sums over the few rows alone are its sums over the whole matrix.
    left = n % 4
    few = np.zeros((8 + left, k))
    few[0], few[4:] = 1.0, HALF_ULP
    probe = np.zeros((n, k))
    probe[0], probe[4:8] = 1.0, HALF_ULP
    if left:
        probe[n - left:] = HALF_ULP
    expected = np.ones(n) @ probe
    matches = []
    for mode in (SUM_BLOCKS, SUM_RUNNING):
        sums = column_sums(few, np.full(k, mode, dtype=np.int8))
        if sums is None:
            return None
        matches.append(sums == expected)  # the two orders give 1 + 2 ulps and 1
    blocks, running = matches
    if np.any(blocks == running):  # a column BLAS adds in neither order, or rows that do not tell
        return None
    modes = np.where(blocks, SUM_BLOCKS, SUM_RUNNING).astype(np.int8)
    checked = column_sums(np.ascontiguousarray(probs, dtype=np.float64), modes)
    if checked is None or not same_bits(((checked, total),)):
        return None
    return modes


def top_k_hits(probs: np.ndarray, label: np.ndarray, true_prob: np.ndarray, top: int) -> np.ndarray:
    """Whether each row's true class is among its ``top`` most probable classes.

    Ties are ranked as ``sklearn.metrics.top_k_accuracy_score`` ranks them (a stable sort,
    reversed): the rank of the true class is the number of classes with a greater
    probability plus the number with an equal one and a higher column index.

    Parameters
    ----------
    probs : ndarray, shape (n, k)
        Predicted probabilities.
    label : ndarray of int, shape (n,)
        True class index of each row.
    true_prob : ndarray, shape (n,)
        ``probs[i, label[i]]``.
    top : int
        How many classes count as a hit.

    Returns
    -------
    ndarray of bool, shape (n,)
    """
    # One pass decides most rows: at most ``top`` values >= p(true), itself included, is a
    # hit whatever the ties. The others need the count of greater values, and the (rare)
    # rows with a tie of their true probability the column-index rule on their own.
    column = true_prob[:, None]
    at_least = _row_counts(probs >= column)
    hits = at_least <= top
    unsure = np.flatnonzero(~hits)
    if unsure.size == 0:
        return hits
    # Few uncertain rows (a good model, few classes): count on their copy only; most rows
    # uncertain (many classes): a second pass over the whole matrix beats copying them.
    rows = unsure if unsure.size * 2 < len(hits) else slice(None)
    part, part_column, part_label = probs[rows], column[rows], label[rows]
    rank = _row_counts(part > part_column)
    tied = at_least[rows] - 1 - rank
    ties = np.flatnonzero((tied > 0) & (rank < top))
    if ties.size:
        later = np.arange(probs.shape[1]) > part_label[ties][:, None]
        rank[ties] += _row_counts((part[ties] == part_column[ties]) & later)
    hits[unsure] = (rank < top) if rows is unsure else (rank < top)[unsure]
    return hits


#: Losses binned at a time by numpy in :func:`loss_histogram`: its temporaries (four arrays of
#: this many values) stay small while two threads count whole batches of 700,000 tokens.
HISTOGRAM_CHUNK = 1 << 16


def loss_histogram(loss: np.ndarray) -> np.ndarray:
    """Counts of ``loss`` (>= 0, never NaN) in the loss histogram's ``len(HIST_EDGES) + 1`` bins.

    ``np.bincount(histogram_bins(loss), minlength=...)``, in one pass of the C library where it
    is built (a table lookup per value: 0.3 against 1.0 ms for 190,000 values); integer counts,
    so both give the same numbers. Other floats are binned as float64 (float32's log10 is not
    exact enough near an edge).
    """
    loss = np.asarray(loss, dtype=np.float64)
    counts = histogram_counts(loss, HIST_EDGES)
    if counts is not None:
        return counts
    counts = np.zeros(len(HIST_EDGES) + 1, np.int64)
    for start in range(0, len(loss), HISTOGRAM_CHUNK):
        counts += np.bincount(histogram_bins(loss[start:start + HISTOGRAM_CHUNK]), minlength=len(counts))
    return counts


def histogram_bins(loss: np.ndarray) -> np.ndarray:
    """Loss histogram bin of each value: the number of ``HIST_EDGES`` at or below it.

    Exactly ``np.searchsorted(HIST_EDGES, loss, side="right")`` for losses >= 0 (never NaN),
    computed from log10 (a binary search over 381 edges for every token was the slowest step
    of a 10M-token file); the few values within rounding of an edge are placed by the search.
    """
    with np.errstate(divide="ignore", invalid="ignore"):  # log10(0) = -inf lands in bin 0
        position = np.log10(loss)
        position -= HIST_DECADES[0]
        position *= HIST_PER_DECADE
        whole = np.floor(position)
        # Distance above the integer below; near an edge when close to 0 or to 1 (in place, as
        # |position - rint(position)| took two more passes over 10M tokens).
        position -= whole
        near_edge = (position < 1e-6) | (position > 1 - 1e-6)
    whole += 1
    np.clip(whole, 0, len(HIST_EDGES), out=whole)
    bins = whole.astype(np.intp)
    if near_edge.any():
        bins[near_edge] = np.searchsorted(HIST_EDGES, loss[near_edge], side="right")
    return bins


def _row_counts(mask: np.ndarray) -> np.ndarray:
    """Number of True values in each row of a boolean matrix."""
    if mask.shape[1] < 256:
        # A uint8 matrix product counts four times faster than count_nonzero(axis=1), and
        # cannot overflow below 256 columns.
        return (mask.view(np.uint8) @ np.ones(mask.shape[1], dtype=np.uint8)).astype(np.int64)
    # Wider: summing the bytes is three times faster than count_nonzero(axis=1).
    return mask.view(np.uint8).sum(axis=1, dtype=np.int64)
