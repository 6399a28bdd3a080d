"""Bins of the loss histograms drawn on a log axis: how narrow, from the counts themselves.

The per-token histogram is accumulated while streaming on fixed log-spaced edges
(``HIST_EDGES``, 20 a decade; mergeable across batches and partitions);
per-document losses are all in memory and get finer fixed edges (:func:`log_histogram`). Either
way :func:`log_bin_group` picks how many neighbouring bins one drawn bar merges
(:func:`losslens.html.charts.rebin` merges them).
"""

from __future__ import annotations

import numpy as np

#: Fixed log-spaced edges for values held in memory (each document's mean loss): 100 a decade
#: over the accumulated histogram's range, so that Freedman–Diaconis can pick narrow bins.
FINE_PER_DECADE = 100


def log_histogram(values) -> tuple[np.ndarray, np.ndarray]:
    """Counts of ``values`` (≥ 0) on fixed log-spaced edges, 100 a decade: ``(counts, edges)``.

    The counts are laid out as the accumulated histograms' (below the first edge, each bin, at
    or above the last), for :func:`log_bin_group` and :func:`losslens.html.charts.rebin`.
    """
    from ..evaluation import HIST_EDGES  # the accumulated histogram's range (reporters never import accumulate)

    low, high = round(np.log10(HIST_EDGES[0])), round(np.log10(HIST_EDGES[-1]))
    edges = np.logspace(low, high, (high - low) * FINE_PER_DECADE + 1)
    values = np.asarray(values, dtype=float)
    bins = np.searchsorted(edges, values[np.isfinite(values)], side="right")
    return np.bincount(bins, minlength=len(edges) + 1), edges


def log_bin_group(counts, edges) -> int:
    """How many neighbouring fine bins to merge per drawn bin: Freedman–Diaconis on the log axis.

    The histogram is accumulated with fixed log-spaced ``edges`` (mergeable across batches and
    partitions), so the bin width can only be a whole number of those bins. Freedman–Diaconis's
    width, 2 · IQR · n^(−1/3) in decades, is estimated from the counts themselves (the quartiles
    interpolated within their bins); the largest allowed merge not wider than it is returned.
    Many values on a narrow range (per-document mean losses, a good model's tokens) get the
    finest bins; a handful of values get 4 a decade at the coarsest.

    Parameters
    ----------
    counts : sequence of int
        ``len(edges) + 1`` counts: below ``edges[0]``, each ``[edges[i-1], edges[i])``, and at
        or above ``edges[-1]``.
    edges : sequence of float
        Increasing, log-spaced edges.

    Returns
    -------
    int
        A divisor of the number of finite bins (none left over), at most a quarter decade.
    """
    counts = np.asarray(counts, dtype=float)
    logs = np.log10(np.asarray(edges, dtype=float))
    n = counts.sum()
    per_decade = round(1 / float(logs[1] - logs[0]))
    merges = [m for m in range(1, max(per_decade // 4, 1) + 1) if (len(logs) - 1) % m == 0]
    if n < 2:
        return merges[-1]
    # Each count's interval on the log axis; values below the first or above the last edge
    # count at those edges.
    lower = np.r_[logs[0], logs[:-1], logs[-1]]
    upper = np.r_[logs[0], logs[1:], logs[-1]]
    cumulative = np.cumsum(counts)

    def quantile(q: float) -> float:
        i = min(int(np.searchsorted(cumulative, q * n, side="left")), len(counts) - 1)
        before = cumulative[i - 1] if i else 0.0
        share = (q * n - before) / counts[i] if counts[i] else 0.0
        return float(lower[i] + share * (upper[i] - lower[i]))

    width = 2 * (quantile(0.75) - quantile(0.25)) * n ** (-1 / 3)
    fine = float(logs[1] - logs[0])
    allowed = [m for m in merges if m * fine <= width]
    return allowed[-1] if allowed else 1
