"""Calibration that says what is fixable: equal-mass ECE and the temperature split of the log loss.

Pure numpy, no I/O. The equal-width figures (``ece``, RMS and maximum calibration error) are
finished from the streamed bin sums in :mod:`losslens.evaluation`; this module holds what needs
the examples themselves:

- :func:`equal_mass_ece` — the top-label ECE over bins that each hold about the same number of
  examples, as HELM's ``ece_10_bin`` computes it (the ``calibration`` package's ``get_ece_em``:
  sorted confidences split into ⌈n/B⌉-sized runs, bin edges halfway between runs, the plug-in
  mean |confidence − accuracy| weighted by bin size).
- :func:`fit_temperature` — the one temperature T that minimises the mean negative
  log-likelihood of softmax(z / T) (z: logits, log-likelihoods, or the logs of probabilities).
  The objective in β = 1/T, f(β) = Σw [logsumexp(βz) − βz_y] / Σw, is convex (its second
  derivative is the weighted mean variance of z under softmax(βz)), so a safeguarded Newton
  iteration finds the global minimum.
- :func:`temperature_split` — log loss = calibration part (what one temperature removes) +
  refinement part (what it cannot), and the same for the Brier score.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .fused import PROBE_ROWS, row_totals, same_bits, shifted_rows, softmax_moments, square_error_rows


def equal_mass_ece(confidence, correct, n_bins: int = 10, weights=None) -> float:
    """Top-label expected calibration error over equal-mass bins (HELM's ``ece_10_bin``).

    Parameters
    ----------
    confidence : array of float
        Each example's top predicted probability.
    correct : array of bool or 0/1
        Whether the top prediction was right.
    n_bins : int
        Number of bins (fewer when ties at the edges merge bins, as in the reference).
    weights : array of float, optional
        Example weights. The bin edges stay HELM's (by example count); each bin's mean
        confidence and accuracy are then weighted means and its share is its weight share.
        Without weights (or with equal ones) this is exactly HELM's figure.

    Returns
    -------
    float
        Σ_b (n_b / n)·|mean confidence_b − accuracy_b|; NaN for no examples or no weight.
    """
    conf = np.asarray(confidence, dtype=np.float64)
    hit = np.asarray(correct, dtype=np.float64)
    n = conf.size
    if n == 0:
        return math.nan
    edges = equal_mass_edges(conf, n_bins)
    index = equal_mass_index(edges, conf)
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.sum() <= 0:
        return math.nan
    counts = np.bincount(index, weights=w, minlength=edges.size)
    conf_sum = np.bincount(index, weights=w * conf, minlength=edges.size)
    hit_sum = np.bincount(index, weights=w * hit, minlength=edges.size)
    present = counts > 0
    gap = np.abs(conf_sum[present] / counts[present] - hit_sum[present] / counts[present])
    return float(np.dot(counts[present] / w.sum(), gap))


def equal_mass_edges(confidence: np.ndarray, n_bins: int = 10) -> np.ndarray:
    """Upper edges of HELM's equal-mass bins: a confidence c is in bin ``searchsorted(edges, c)``.

    The sorted confidences split into ⌈n/B⌉-sized runs, each edge halfway between two runs, the
    last edge 1 (ties at an edge merge bins). ``confidence`` must not be empty.
    """
    n = confidence.size
    n_bins = min(n_bins, n)
    size = math.ceil(n / n_bins)
    starts = np.arange(size, n, size)
    if not starts.size:
        return np.ones(1)
    # Only values are read, so numpy's default (SIMD) sort serves: several times faster than a
    # stable sort, or a partition at the 18 ranks, on 200,000 examples.
    ordered = np.sort(confidence)
    return _distinct(np.append((ordered[starts - 1] + ordered[starts]) / 2.0, 1.0))


#: Up to this many edges :func:`equal_mass_index` compares with each edge in turn.
INDEX_BY_COMPARISON_EDGES = 32


def equal_mass_index(edges: np.ndarray, confidence: np.ndarray) -> np.ndarray:
    """``np.searchsorted(edges, confidence, side="left")``: each confidence's bin, the same integers.

    The bin is the number of edges below the confidence. For HELM's ten edges, one comparison
    per edge over all the examples, counted in bytes, is about three times faster than a binary
    search per example (with the ECE's bincount: 0.8 against 2.8 ms for 200,000 examples). A
    NaN confidence (searchsorted puts it after every edge) or many edges take the binary search.
    """
    if edges.size > INDEX_BY_COMPARISON_EDGES or np.isnan(confidence).any():
        return np.searchsorted(edges, confidence, side="left")
    index = np.zeros(confidence.shape, dtype=np.uint8)  # at most 32: a byte holds every bin
    for edge in edges:
        np.add(index, confidence > edge, out=index)
    return index


def _distinct(values: np.ndarray) -> np.ndarray:
    """``np.unique(values)`` of a 1-D float array (sorted, one NaN kept), without its import of ``numpy.ma``.

    ``np.unique`` asks ``np.ma.is_masked`` first, and importing ``numpy.ma`` took 8 ms of each
    run (issue #22), for the few bin edges taken here.
    """
    ordered = np.sort(values)
    keep = np.ones(ordered.size, dtype=np.bool_)
    # Sorted, equal values are neighbours; NaNs sort last and, as np.unique's equal_nan, count as one.
    keep[1:] = (ordered[1:] != ordered[:-1]) & ~(np.isnan(ordered[1:]) & np.isnan(ordered[:-1]))
    return ordered[keep]


def _finite_part(z: np.ndarray) -> np.ndarray:
    """``z`` with its −inf padding as 0 (z itself when all finite), for means under softmax."""
    finite = np.isfinite(z)
    return z if finite.all() else np.where(finite, z, 0.0)


#: Up to this many columns :func:`row_max` takes one column at a time.
ROW_MAX_COLUMNS = 32


def row_max(a: np.ndarray) -> np.ndarray:
    """``a.max(axis=1, keepdims=True)`` of an n×k float array, the same values.

    numpy reduces each short row on its own, slowly; an elementwise maximum over the columns
    (exact, NaN kept as max keeps it) takes a fifth of the time for 10 columns.
    """
    if a.ndim != 2 or not 1 <= a.shape[1] <= ROW_MAX_COLUMNS:
        return a.max(axis=1, keepdims=True)
    top = a[:, 0].copy()
    for j in range(1, a.shape[1]):
        np.maximum(top, a[:, j], out=top)
    return top[:, None]


def _shifted(z: np.ndarray, factor: float, divide: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``(p, top)``: ``factor·z`` (``z / factor`` with ``divide``) less each row's maximum ``top`` (n × 1).

    One pass in C where the library is built (:func:`losslens.fused.shifted_rows`, the very values).
    """
    # The library follows row_max's column-by-column maximum, which row_max takes up to
    # ROW_MAX_COLUMNS; numpy's reduction of wider rows stays numpy's.
    done = shifted_rows(z, factor, divide) if z.ndim == 2 and z.shape[1] <= ROW_MAX_COLUMNS else None
    if done is not None:
        return done
    p = z / factor if divide else factor * z
    top = row_max(p)
    p -= top
    return p, top


def _totals(p: np.ndarray, divide: bool = False) -> np.ndarray:
    """``p.sum(axis=1, keepdims=True)``, and with ``divide`` each row divided by it (in place)."""
    total = row_totals(p, divide)
    if total is None:
        total = p.sum(axis=1, keepdims=True)
        if divide:
            p /= total
    return total


def _lse(z: np.ndarray, beta: float) -> np.ndarray:
    """Row logsumexp of βz (−inf entries add exactly 0; each row has a finite entry)."""
    # In place on one temporary: at 200,000 × k the allocations cost more than the arithmetic.
    scaled, top = _shifted(z, beta)
    np.exp(scaled, out=scaled)
    return (top + np.log(_totals(scaled)))[:, 0]


def _softmax_stats(z: np.ndarray, beta: float, zz: np.ndarray | None = None, y: np.ndarray | None = None):
    """Row logsumexp of βz, and the mean and variance of z under softmax(βz).

    ``zz`` is :func:`_finite_part` of ``z`` (computed here if not given): a padded class has
    probability exactly 0, so it must add 0, not 0 × −inf, to the mean. With the labels ``y``,
    each row's Brier sum of softmax(βz) comes fourth: at β = 1 the very values :func:`_brier`
    takes at T = 1 (``1.0 * z`` and ``z / 1.0`` are both z, and the steps are the same).
    """
    zz = _finite_part(z) if zz is None else zz
    p, top = _shifted(z, beta)
    np.exp(p, out=p)
    moments = softmax_moments(p, zz) if library_moments_exact(p.shape[1]) else None
    total, mean, var = moments if moments is not None else _moments(p, zz)
    lse = (top + np.log(total))[:, 0]
    if y is None:
        return lse, mean, var
    return lse, mean, var, _square_error_rows(p, y)


def _moments(p: np.ndarray, zz: np.ndarray):
    """``(total, mean, var)`` of :func:`losslens.fused.softmax_moments` in numpy (``p`` divided in place)."""
    total = _totals(p, divide=True)
    mean = np.einsum("ij,ij->i", p, zz)
    centred = zz - mean[:, None]
    np.square(centred, out=centred)  # in place: one n×k temporary fewer, the same values
    return total, mean, np.einsum("ij,ij->i", p, centred)


@lru_cache(maxsize=None)
def library_moments_exact(k: int) -> bool:
    """Whether the C library's softmax moments are :func:`_moments`'s, bit for bit, for k classes here.

    The library adds the means in the order of numpy's einsum kernel with two lanes and no fused
    multiply-add (numpy's x86-64 baseline); a numpy that adds otherwise (FMA on aarch64) would
    give other last bits, so a probe of random rows decides once per class count and numpy
    takes the moments where it says no (as ``batch_figures.fused_squares_exact`` decides for the
    Brier rows).
    """
    rng = np.random.default_rng(k)
    z = rng.normal(0.0, 3.0, (PROBE_ROWS, k))
    p = np.exp(z - z.max(axis=1, keepdims=True))
    got = softmax_moments(p.copy(), z)
    if got is None:
        return False
    return same_bits(zip(got, _moments(p.copy(), z)))


def _nll(z, y, w, beta) -> float:
    return float(np.dot(w, _lse(z, beta) - beta * z[np.arange(len(y)), y]) / w.sum())


#: Rows of z a worker thread takes at a time in :func:`_row_stats`: a few n×k temporaries of
#: this many rows stay in the CPU's cache and a 200,000-row sample keeps both cores busy.
ROW_CHUNK = 16_384
#: Chunks in flight in the fit's thread map: with only as many as threads, a thread that ends
#: its chunk waits for the caller to take the result (a pass over 200,000 × 10 took 12.9 ms in
#: two threads, as in one; 9.9 ms with four in flight). Each chunk's results are a few rows.
FIT_AHEAD = 8


def _row_stats(z: np.ndarray, zz: np.ndarray, beta: float, moments: bool, y: np.ndarray | None = None):
    """:func:`_lse` (``moments`` False) or :func:`_softmax_stats` of z, row chunks in threads.

    Every figure is a per-row one, computed row by row exactly as on the whole matrix, so the
    result is the same to the last bit whatever the chunks; the sums over rows are the caller's.
    With the labels ``y`` (and ``moments``) each row's Brier sum comes fourth.
    """
    from .threads import ordered_map

    def chunk(start: int):
        rows = slice(start, start + ROW_CHUNK)
        if moments:
            return _softmax_stats(z[rows], beta, zz[rows], None if y is None else y[rows])
        return (_lse(z[rows], beta),)

    parts = list(ordered_map(chunk, range(0, len(z), ROW_CHUNK), ahead=FIT_AHEAD))
    if not parts:
        return (np.zeros(0),) * ((3 if y is None else 4) if moments else 1)
    return tuple(np.concatenate(column) for column in zip(*parts))


@dataclass(frozen=True)
class TemperatureFit:
    """The fitted temperature and the mean log loss at T = 1 and at the fitted T."""

    temperature: float
    log_loss: float
    log_loss_after: float
    n_examples: int


def fit_temperature(z, labels, weights=None, *, tol: float = 1e-12, max_iter: int = 100) -> TemperatureFit:
    """Fit one temperature T minimising the weighted log loss of softmax(z / T).

    Parameters
    ----------
    z : array (n, k)
        Logits, choice log-likelihoods or log-probabilities (``-inf`` allowed for an impossible
        class, e.g. a padded choice; the true class must be finite).
    labels : array of int (n,)
        Column of the true class.
    weights : array (n,), optional

    Returns
    -------
    TemperatureFit
        ``temperature`` = 1/β̂; ``log_loss`` at T = 1 and ``log_loss_after`` at T̂, in nats.

    Notes
    -----
    Newton's method on β with f'(β) = Σw(E_p[z] − z_y)/Σw and f''(β) = Σw Var_p[z]/Σw ≥ 0, halving
    the step while f does not decrease. When every example is already predicted with its
    highest score and β can grow without bound (separable data), β stops at 1e6 (T = 1e-6).
    """
    z, y = np.asarray(z, dtype=np.float64), np.asarray(labels, dtype=np.int64)
    w = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=np.float64)
    return _fit(z, y, w, tol, max_iter)[0]


def _fit(z: np.ndarray, y: np.ndarray, w: np.ndarray, tol: float = 1e-12, max_iter: int = 100,
         brier: bool = False) -> tuple[TemperatureFit, np.ndarray | None]:
    """:func:`fit_temperature` of float64 ``z``, int64 ``y`` and float64 ``w``; with ``brier``
    also each row's Brier sum at T = 1 (rows in their given order), from the fit's first pass."""
    # Every figure below is a per-row one summed over rows: the rows stay where they are and
    # only the per-row results are put in the canonical order before a sum (the same figures,
    # bit for bit, as on the sorted matrix, without copying it).
    order = _canonical_permutation(z, y, w)
    zy = z[np.arange(len(y)), y][order]
    w = w[order]
    zz = _finite_part(z)
    w_sum = w.sum()

    def stats(beta: float, moments: bool):
        return tuple(part[order] for part in _row_stats(z, zz, beta, moments))

    def nll(lse, beta) -> float:  # the figure of _nll, from the row logsumexps
        return float(np.dot(w, lse - beta * zy) / w_sum)

    # One pass gives the logsumexp and the softmax moments at a β, so a Newton step accepted at
    # once costs one pass over z, not two.
    first = _row_stats(z, zz, 1.0, True, y if brier else None)
    lse, mean, var = (part[order] for part in first[:3])
    beta, f = 1.0, nll(lse, 1.0)
    start = f
    # Near the minimum f changes by less than its rounding, so "f did not decrease" says nothing
    # there: a Newton step small enough that its own error (quadratic in it) is below tol ends
    # the fit, and a step is halved only while f rises beyond rounding, at most 60 times.
    noise = 8 * np.finfo(np.float64).eps
    for _ in range(max_iter):
        if mean is None:
            _, mean, var = stats(beta, moments=True)
        grad = float(np.dot(w, mean - zy) / w_sum)
        hess = float(np.dot(w, var) / w_sum)
        step = -grad / hess if hess > 0 else -math.copysign(beta, grad)
        candidate = min(max(beta + step, 1e-6), 1e6)
        if abs(candidate - beta) <= math.sqrt(tol) * max(1.0, beta) * 1e-2:
            beta, f = candidate, nll(stats(candidate, moments=False)[0], candidate)
            break
        lse, mean, var = stats(candidate, moments=True)
        f_new = nll(lse, candidate)
        for _ in range(60):
            if f_new <= f + noise * abs(f):
                break
            candidate = (candidate + beta) / 2
            mean = var = None  # the moments are those of a rejected β
            f_new = nll(stats(candidate, moments=False)[0], candidate)
        if f_new > f + noise * abs(f):
            break
        beta, f = candidate, f_new
        if candidate in (1e-6, 1e6):
            break
    return TemperatureFit(1.0 / beta, start, f, len(y)), (first[3] if brier else None)


def _canonical_order(z: np.ndarray, y: np.ndarray, w: np.ndarray):
    """The examples sorted by their bytes (scores, label, weight): the fit sees one order whatever the file's.

    Where the log loss is nearly flat in T (almost one-hot predictions), rounding in sums taken
    in another order moves the fitted T by up to a per cent; sorting makes T a function of the
    set of examples, so shuffled rows give the same figures to the last bit.
    """
    order = _canonical_permutation(z, y, w)
    return z[order], y[order], w[order]


def _canonical_permutation(z: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The row order of :func:`_canonical_order`."""
    if len(y) < 2:
        return np.arange(len(y))
    order = _order_by_first_bytes(z)
    if order is not None:
        return order
    rows = np.ascontiguousarray(np.column_stack([z, y.astype(np.float64), w]))
    keys = rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1]))).ravel()
    return np.argsort(keys, kind="stable")


def _order_by_first_bytes(z: np.ndarray):
    """The order of :func:`_canonical_order` from the first score alone, or None if it does not decide.

    Rows compared as bytes are decided by their first 8 bytes (``z[:, 0]``, little-endian) unless
    two rows share them. Those 8 bytes read most significant first are ``z[:, 0]``'s bits
    byte-swapped, so one integer argsort gives the very same order as sorting the whole rows'
    bytes (about 7 times faster on a 200,000 × 10 sample) whenever no two keys are equal.
    """
    if z.ndim != 2 or z.shape[1] == 0 or sys.byteorder != "little":
        return None
    first = np.ascontiguousarray(z[:, 0]).view(np.uint64).byteswap()
    # Distinct keys have one sorting permutation, so any sort finds it: numpy's SIMD quicksort
    # (4 against 17 ms for a stable sort of 200,000 keys). With a tie the order may differ from
    # a stable sort's, but then None is returned and the whole rows decide.
    order = np.argsort(first)
    ranked = first[order]
    if np.any(ranked[1:] == ranked[:-1]):
        return None  # some rows tie on their first score: the whole rows decide
    return order


def scaled_probabilities(z, temperature: float) -> np.ndarray:
    """softmax(z / T), row by row, in float64."""
    e, _ = _shifted(np.asarray(z, dtype=np.float64), temperature, divide=True)
    np.exp(e, out=e)  # a −inf (padded) class gets exactly 0
    _totals(e, divide=True)
    return e


@dataclass(frozen=True)
class TemperatureSplit:
    """Log loss and Brier score split into what one temperature fixes and what it cannot."""

    temperature: float
    log_loss: float
    log_loss_after_temperature: float
    calibration_loss: float
    refinement_loss: float
    brier_score: float
    brier_after_temperature: float
    fitted_on: str | None = None


def temperature_split(z, labels, weights=None, *, fit_z=None, fit_labels=None, fit_weights=None,
                      fitted_on: str | None = None) -> TemperatureSplit:
    """Fit T (on ``fit_*`` if given, e.g. a training split) and split the loss of ``z`` with it.

    ``calibration_loss`` = log loss − log loss after temperature; ``refinement_loss`` = log loss
    after temperature. Fitting on another split keeps the figure honest: on the same examples
    the calibration part is never negative, on held-out ones it can be.
    """
    z = np.asarray(z, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    w = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=np.float64)
    if fit_z is None:  # fitted on these examples: the fit has both losses, and the Brier rows at T = 1
        fit, brier_rows = _fit(z, y, w, brier=True)
        before, after = fit.log_loss, fit.log_loss_after
        brier_before = _weighted_mean(w, brier_rows)
    else:
        fit = fit_temperature(fit_z, fit_labels, fit_weights)
        before, after = _nll(z, y, w, 1.0), _nll(z, y, w, 1.0 / fit.temperature)
        brier_before = _brier(z, y, w, 1.0)
    return TemperatureSplit(fit.temperature, before, after, before - after, after,
                            brier_before, _brier(z, y, w, fit.temperature), fitted_on)


def _brier(z: np.ndarray, y: np.ndarray, w: np.ndarray, temperature: float) -> float:
    """Weighted mean Brier score of softmax(z / T) against the labels ``y``.

    Each row's sum is computed on a chunk of rows in a worker thread, exactly as on the whole
    matrix; the weighted mean over rows is one dot product here.
    """
    from .threads import ordered_map

    def chunk(start: int) -> np.ndarray:
        rows = slice(start, start + ROW_CHUNK)
        return _square_error_rows(scaled_probabilities(z[rows], temperature), y[rows])

    per_row = list(ordered_map(chunk, range(0, len(y), ROW_CHUNK), ahead=FIT_AHEAD))
    return _weighted_mean(w, np.concatenate(per_row) if per_row else np.zeros(0))


def _square_error_rows(p: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Each row's Σ_j (p_j − 1[y = j])² (``p`` is overwritten)."""
    done = square_error_rows(p, y)
    if done is not None:
        return done
    p[np.arange(len(p)), y] -= 1.0
    np.square(p, out=p)
    return p.sum(axis=1)


def _weighted_mean(w: np.ndarray, per_row: np.ndarray) -> float:
    """Σ w·x / Σ w of per-row figures."""
    return float(np.dot(w, per_row) / w.sum())
