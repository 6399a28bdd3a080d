"""Percentile bootstrap intervals of log loss, accuracy and ECE, and of paired deltas (``--bootstrap N``).

The streaming pass gives normal-approximation intervals for free; the bootstrap needs every
example's loss in memory, so it is opt-in. :class:`ExampleCollector` is an engine observer
that keeps the few per-example values needed; :func:`bootstrap_intervals` is pure.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .batch import ScoredBatch


@dataclass
class ExampleCollector:
    """Keeps loss, weight, correctness, confidence and split of every example of one run."""

    parts: list[tuple[np.ndarray, ...]] = field(default_factory=list)
    splits: list[np.ndarray] = field(default_factory=list)

    def __call__(self, batch: ScoredBatch) -> None:
        correct = batch.predicted == batch.label
        self.parts.append((batch.loss, batch.weight, correct, batch.confidence))
        if batch.split is not None:
            self.splits.append(batch.split)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(loss, weight, correct, confidence)`` of every example, in reading order."""
        return tuple(np.concatenate(column) for column in zip(*self.parts))

    def split_values(self) -> np.ndarray | None:
        """The split of every example, or None without a split column."""
        return np.concatenate(self.splits) if self.splits else None


def bootstrap_intervals(
    loss: np.ndarray,
    weight: np.ndarray,
    correct: np.ndarray,
    confidence: np.ndarray,
    n_bins: int,
    n_resamples: int,
    seed: int,
) -> dict:
    """Percentile 95% intervals from ``n_resamples`` resamples of the examples.

    Parameters
    ----------
    loss, weight, correct, confidence : numpy.ndarray
        Per-example loss (nats), weight, whether the argmax was right, top-label probability.
    n_bins : int
        Calibration bins for ECE (as in the point estimate).
    n_resamples : int
        Number of bootstrap resamples.
    seed : int
        Seed of numpy's default generator: the same seed gives the same intervals.

    Returns
    -------
    dict
        ``method``, ``n_resamples``, ``seed`` and ``[lo, hi]`` for ``log_loss``,
        ``accuracy`` and ``ece``.

    Notes
    -----
    A resample is drawn as multiplicities (how often each example is picked), so that one
    resample costs a few weighted sums instead of copying the data.
    """
    n = len(loss)
    rng = np.random.default_rng(seed)
    bins = np.minimum((confidence * n_bins).astype(np.int64), n_bins - 1)
    wl, wc, wconf = weight * loss, weight * correct, weight * confidence
    stats = np.empty((n_resamples, 3))
    for r in range(n_resamples):
        times = np.bincount(rng.integers(0, n, size=n), minlength=n).astype(np.float64)
        total = times @ weight
        gap = np.abs(
            np.bincount(bins, weights=times * wc, minlength=n_bins)
            - np.bincount(bins, weights=times * wconf, minlength=n_bins)
        ).sum()
        stats[r] = (times @ wl / total, times @ wc / total, gap / total)
    lo, hi = np.percentile(stats, [2.5, 97.5], axis=0)
    return {
        "method": "percentile bootstrap",
        "n_resamples": n_resamples,
        "seed": seed,
        "log_loss": [float(lo[0]), float(hi[0])],
        "accuracy": [float(lo[1]), float(hi[1])],
        "ece": [float(lo[2]), float(hi[2])],
    }


def paired_bootstrap_summary(d: np.ndarray, w: np.ndarray, flips: np.ndarray | None, clusters,
                             n_resamples: int, seed: int) -> dict:
    """Paired bootstrap of a comparison's deltas: percentile intervals and two-sided p-values.

    Parameters
    ----------
    d, w : numpy.ndarray
        Per-unit loss differences (candidate − reference) and weights. A token-weighted delta
        of documents is Σwd/Σw with w the token counts: a ratio, resampled by document.
    flips : numpy.ndarray or None
        Per-unit correctness differences (−1, 0, 1), for the accuracy delta.
    clusters : numpy.ndarray or None
        ``--cluster`` values: whole clusters are resampled.
    n_resamples, seed : int
        Resamples, and the seed that makes the report reproducible.

    Returns
    -------
    dict
        ``method``, ``n_resamples``, ``seed``, ``log_loss_delta_ci95``,
        ``log_loss_delta_p_value`` and, with ``flips``, ``accuracy_delta_ci95`` and
        ``accuracy_delta_p_value`` (see :func:`losslens.paired_stats.paired_bootstrap`).
    """
    from .paired_stats import paired_bootstrap, weighted_mean_delta

    out = {"method": "paired percentile bootstrap" + (" of clusters" if clusters is not None else ""),
           "n_resamples": n_resamples, "seed": seed}
    named = [("log_loss_delta", d)] + ([("accuracy_delta", flips)] if flips is not None else [])
    for name, values in named:
        result = paired_bootstrap({"wd": w * values, "w": w}, weighted_mean_delta, n_resamples=n_resamples,
                                  seed=seed, clusters=clusters)
        out[f"{name}_ci95"] = list(result.ci95)
        out[f"{name}_p_value"] = result.p_value
    return out
