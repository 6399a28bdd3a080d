"""Bootstrap intervals of the calibration figures, cheap enough to be always on.

``ece_equal_width``, ``ece_equal_mass``, ``rms_calibration_error`` and ``max_calibration_error``
each get a ``..._ci95`` in every scope (overall, split, slice value) where the figure exists and
the run kept its example sample (:mod:`losslens.calibration_sample`; not with ``--engine dask``).

Method (chosen so that a 1M-row run pays a few milliseconds, not seconds):

1. A bounded subsample of at most :data:`CI_SAMPLE` examples of the scope is taken from the
   run's uniform sample (the smallest sample keys: itself a uniform random subset).
2. The bins are fixed before resampling: the run's equal-width bins, and HELM's equal-mass edges
   of that subsample (10 bins: the quantiles the point figure's edges estimate, without sorting
   200,000 confidences again); a resample is not re-binned.
3. :data:`CI_RESAMPLES` multinomial resamples of it are drawn at once (seed :data:`CI_SEED`,
   ``numpy.random.default_rng``: reproducible), each example's joint (equal-width bin, equal-mass
   bin, correct) cell summed with one ``np.bincount`` over every resample; the four figures of
   each resample follow from those cell sums.
4. The spread is carried to the scope's size and centred on the reported figure:
   ``[θ̂ + s·(q₀.₀₂₅ − q₀.₅), θ̂ + s·(q₀.₉₇₅ − q₀.₅)]`` with q the resampled figures' quantiles
   and s = √(m / n) (m resampled examples, n the scope's examples; s = 1 when the subsample is
   the whole scope), the lower end floored at 0. Centred on θ̂ by the median, the interval always
   holds the figure: it shows the sampling spread, and does not correct the upward bias every
   binned calibration error has on few examples.

Cost: 200 × 2,000 draws per scope, about 5–10 ms on one core.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from .calibration_fit import equal_mass_edges, equal_mass_index
from .calibration_sample import slice_masks

#: Resamples per scope, and most examples resampled (the cost is their product).
CI_RESAMPLES = 200
CI_SAMPLE = 2_000
#: Seed of the resamples: the same input gives the same intervals.
CI_SEED = 20261206
#: The figures that get an interval (JSON ``NAME_ci95``), in the order of :func:`resampled_figures`' columns.
NAMES = ("ece_equal_width", "ece_equal_mass", "rms_calibration_error", "max_calibration_error")


def bin_figures(weight, conf_sum, hit_sum, mass_weight, mass_conf_sum, mass_hit_sum) -> np.ndarray:
    """The four figures from per-bin sums; the last axis is the bins (any leading axes).

    Returns an array with a last axis of 4, in :data:`NAMES` order: Σ|C_b − H_b|/W over the
    equal-width bins, the same over the equal-mass bins, √(Σ W_b·gap_b²/W) and max |gap_b| over
    non-empty equal-width bins (gap_b = (H_b − C_b)/W_b).
    """
    total = weight.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        ece = np.abs(conf_sum - hit_sum).sum(axis=-1) / total
        ece_mass = np.abs(mass_conf_sum - mass_hit_sum).sum(axis=-1) / mass_weight.sum(axis=-1)
        gap = np.where(weight > 0, (hit_sum - conf_sum) / np.where(weight > 0, weight, 1.0), 0.0)
        rms = np.sqrt((weight * gap * gap).sum(axis=-1) / total)
    worst = np.abs(gap).max(axis=-1)
    return np.stack([ece, ece_mass, rms, worst], axis=-1)


def resampled_figures(confidence, correct, weight, width_bins: int, mass_edges, draws) -> np.ndarray:
    """The four figures of each resample: ``draws`` is (resamples, m) indices into the examples.

    Parameters
    ----------
    confidence, correct, weight : numpy.ndarray
        The examples' top-label probability, whether the top label was right, their weights.
    width_bins : int
        Equal-width bins of [0, 1] (the run's).
    mass_edges : numpy.ndarray
        Upper edges of the equal-mass bins (:func:`losslens.calibration_fit.equal_mass_edges`).
    draws : numpy.ndarray
        Integer indices, one row per resample.

    Returns
    -------
    numpy.ndarray
        (resamples, 4), columns in :data:`NAMES` order.
    """
    n_mass = mass_edges.size
    width = np.minimum((confidence * width_bins).astype(np.int64), width_bins - 1)
    mass = np.minimum(np.searchsorted(mass_edges, confidence, side="left"), n_mass - 1)
    cells = width_bins * n_mass * 2
    # One cell per (equal-width bin, equal-mass bin, correct): one bincount gives every sum.
    joint = ((width * n_mass + mass) * 2 + correct.astype(np.int64)).astype(np.int32)
    n_resamples = draws.shape[0]
    code = joint[draws]
    code += (np.arange(n_resamples, dtype=np.int32) * cells)[:, None]
    code = code.ravel()
    unit = bool(np.all(weight == 1.0))
    w_cells = np.bincount(code, weights=None if unit else weight[draws].ravel(), minlength=n_resamples * cells)
    c_cells = np.bincount(code, weights=(confidence * weight)[draws].ravel(), minlength=n_resamples * cells)
    w_cells = w_cells.reshape(n_resamples, width_bins, n_mass, 2).astype(np.float64)
    c_cells = c_cells.reshape(n_resamples, width_bins, n_mass, 2)
    return bin_figures(w_cells.sum(axis=(2, 3)), c_cells.sum(axis=(2, 3)), w_cells[..., 1].sum(axis=2),
                       w_cells.sum(axis=(1, 3)), c_cells.sum(axis=(1, 3)), w_cells[..., 1].sum(axis=1))


def _quantiles(values: np.ndarray, quantiles) -> np.ndarray:
    """``np.quantile(values, quantiles, axis=0)`` of a 2-D float array, to the bit, without ``numpy.ma``.

    numpy's quantile partitions at ``np.unique`` of its indices, and ``np.unique`` imports
    ``numpy.ma`` (8 ms of each run, issue #22). This is its default method ("linear") step by
    step: the virtual index (n − 1)·q, its floor and the next index (the last row at or above
    n − 1), γ = index − floor, numpy's ``_lerp`` (a + (b − a)·γ, or b − (b − a)·(1 − γ) for γ ≥ 0.5),
    and a column holding a NaN gives NaN. The tests compare with ``np.quantile`` on the installed numpy.
    """
    n = values.shape[0]
    virtual = (n - 1) * np.asarray(quantiles, dtype=np.float64)
    previous = np.floor(virtual)
    following = previous + 1
    above = virtual >= n - 1
    previous[above] = following[above] = -1
    below = virtual < 0
    previous[below] = following[below] = 0
    previous, following = previous.astype(np.intp), following.astype(np.intp)
    # numpy's very partition (the same kth, sorted and distinct): where equal values differ in
    # their bits (+0 and -0), another order would pick the other one.
    kth = np.array(sorted({0, -1, *previous.tolist(), *following.tolist()}), dtype=np.intp)
    ordered = values.copy()
    ordered.partition(kth, axis=0)
    gamma = (virtual - previous)[:, None]
    a, b = ordered[previous], ordered[following]
    difference = b - a
    result = a + difference * gamma
    np.subtract(b, difference * (1 - gamma), out=result, where=gamma >= 0.5)
    nan = np.isnan(ordered[-1])
    if nan.any():
        result[:, nan] = ordered[-1, nan]
    return result


def scope_intervals(point: dict, confidence, correct, weight, keys, width_bins: int, n_scope: int, *,
                    mass_bins: int = 10, n_resamples: int = CI_RESAMPLES, size: int = CI_SAMPLE, seed: int = CI_SEED) -> dict:
    """``NAME_ci95`` of each figure of ``point`` (name → value) for one scope's sampled examples.

    ``keys`` are the sample's random keys of these examples (the smallest ``size`` are
    resampled); ``n_scope`` is the scope's number of examples in the whole run (the equal-mass
    ECE, computed on the sample, takes the sample's instead). A figure that is
    None or NaN gets no interval (None). See the module docstring for the method.
    """
    out = {f"{name}_ci95": None for name in NAMES}
    n_sampled = confidence.size
    if confidence.size == 0 or weight.sum() <= 0:
        return out
    if confidence.size > size:
        keep = np.sort(np.argpartition(keys, size - 1)[:size])
        confidence, correct, weight = confidence[keep], correct[keep], weight[keep]
    edges = equal_mass_edges(confidence, mass_bins)
    m = confidence.size
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, m, size=(n_resamples, m), dtype=np.int32)
    figures = resampled_figures(confidence, correct, weight, width_bins, edges, draws)
    low, mid, high = _quantiles(figures, (0.025, 0.5, 0.975))
    for i, name in enumerate(NAMES):
        value = point.get(name)
        if value is None or not math.isfinite(value) or not math.isfinite(mid[i]):
            continue
        # The equal-mass ECE is computed on the sample, the equal-width figures on every example.
        n = n_sampled if name == "ece_equal_mass" else n_scope
        scale = math.sqrt(m / n) if n > m else 1.0
        out[f"{name}_ci95"] = (max(0.0, value + scale * (low[i] - mid[i])), value + scale * (high[i] - mid[i]))
    return out


@dataclass(frozen=True)
class MassBin:
    """One equal-mass bin of the reliability diagram, with a Wilson 95% interval of its accuracy."""

    lower: float
    upper: float
    n_examples: int
    weight: float
    mean_confidence: float
    accuracy: float
    accuracy_ci95: tuple[float, float]


def wilson_interval(accuracy: float, n: float, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson's score interval of a proportion ``accuracy`` observed on ``n`` (effective) examples.

    (p + z²/2n ± z·√(p(1 − p)/n + z²/4n²)) / (1 + z²/n): within [0, 1] and never empty, also for
    a bin whose examples were all right or all wrong (``statsmodels`` ``proportion_confint(method="wilson")``).
    """
    if not n > 0:
        return (math.nan, math.nan)
    z2 = z * z
    centre = (accuracy + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(max(accuracy * (1 - accuracy), 0.0) / n + z2 / (4 * n * n))
    return (max(0.0, centre - half), min(1.0, centre + half))


def equal_mass_bins(confidence, correct, weight, n_bins: int = 10) -> tuple[MassBin, ...]:
    """The equal-mass bins of HELM's ECE (:func:`losslens.calibration_fit.equal_mass_edges`) as
    reliability-diagram bins: range, count, mean confidence, accuracy and its Wilson interval
    on the bin's effective sample size (Kish's (Σw)²/Σw²; the count for unit weights)."""
    if confidence.size == 0 or weight.sum() <= 0:
        return ()
    edges = equal_mass_edges(confidence, n_bins)
    size = edges.size
    # The edges below the last (1): a confidence above it, were there one, stays in the last bin.
    index = equal_mass_index(edges[:-1], confidence)

    def sums(values):
        return np.bincount(index, weights=values, minlength=size)

    counts = np.bincount(index, minlength=size)
    if np.all(weight == 1.0):  # the common case: no weight products (this runs on every classifier run)
        w = w2 = counts.astype(np.float64)
        wc, wh = sums(confidence), sums(correct)
    else:
        w, wc, wh, w2 = sums(weight), sums(weight * confidence), sums(weight * correct), sums(weight * weight)
    low = np.concatenate([[0.0], edges[:-1]])
    out = []
    for b in np.flatnonzero(w > 0):
        accuracy = float(wh[b] / w[b])
        out.append(MassBin(float(low[b]), float(edges[b]), int(counts[b]), float(w[b]), float(wc[b] / w[b]),
                           accuracy, wilson_interval(accuracy, float(w[b] ** 2 / w2[b]))))
    return tuple(out)


def with_calibration_intervals(run, sample, mass_bins: int):
    """``run`` with ``NAME_ci95`` of the four calibration figures in every scope the sample covers,
    and the equal-mass bins of its reliability diagram (:func:`equal_mass_bins`, from the sample).

    Parameters
    ----------
    run : losslens.evaluation.RunEvaluation
        A classifier (or multiple-choice) run finished with its sample.
    sample : losslens.calibration_sample.CalibrationSample
        The run's example sample.
    mass_bins : int
        Equal-mass bins, as the point figure's (``calibration_sample.EQUAL_MASS_BINS``).

    Returns
    -------
    RunEvaluation
    """
    n = sample.filled
    if n == 0 or not run.calibration:
        return run
    width_bins = len(run.calibration)
    columns = (sample.confidence[:n], sample.correct[:n], sample.weight[:n], sample.keys[:n])

    def finished(metrics, mask):
        point = {name: getattr(metrics, name, None) for name in NAMES}
        parts = columns if mask is None else [c[mask] for c in columns]
        found = scope_intervals(point, *parts, width_bins=width_bins, n_scope=metrics.n_examples, mass_bins=mass_bins)
        return replace(metrics, **found)

    split = sample.split[:n] if sample.split is not None else None
    by_split = {name: finished(m, split == name) for name, m in run.by_split.items()} if split is not None else {}
    by_slice = {column: {v: finished(values[v], mask) for v, mask in slice_masks(run, sample, column).items()}
                for column, values in run.by_slice.items()}
    bins = equal_mass_bins(columns[0], columns[1].astype(np.float64), columns[2], mass_bins)
    return replace(run, overall=finished(run.overall, None), by_split=by_split or run.by_split,
                   by_slice=by_slice, calibration_equal_mass=bins)
