"""Statistics that decide between two runs scored on the same units: pure arithmetic, no I/O.

Every function takes plain numpy arrays (one value per paired unit: example, question or
document) and returns plain numbers, so the comparison module, the gates and the reporters can
share one definition of each test. Only numpy and the standard library are used: losslens does
not depend on scipy or statsmodels, and the tests check each function against them.

Definitions
-----------
- McNemar's exact test on the discordant pairs of a 0/1 score (accuracy flips): with ``b``
  units improved and ``c`` worsened, p = min(1, 2·P[Binomial(b + c, ½) ≤ min(b, c)]), as
  ``statsmodels.stats.contingency_tables.mcnemar(exact=True)`` and ``scipy.stats.binomtest``.
- Benjamini–Hochberg adjusted p-values (``statsmodels.stats.multitest.multipletests(method=
  "fdr_bh")``): p_(i)·m/i, made monotone from the largest down, capped at 1.
- Minimum detectable effect of a paired mean at level α (two-sided) and power 1 − β:
  (z_{1−α/2} + z_{1−β})·SE, with SE the standard error of the mean difference.
- Clustered standard error of a (weighted) mean when units share a passage, a template or a
  source document (Miller 2024, "Adding error bars to evals", appendix A, with the finite-cluster
  factor C/(C − 1) that inspect-ai's ``stderr(cluster=...)`` applies):
  SE² = C/(C − 1) · Σ_c (Σ_{i∈c} wᵢ(xᵢ − x̄))² / (Σw)².
- Paired bootstrap: the units are resampled with replacement (whole clusters when clusters are
  given) with a fixed seed, so that a report is reproducible; the interval is the percentile
  interval of the resampled statistic and the two-sided p-value is the share of resampled
  statistics at least as far from the observed one as the observed one is from 0
  (the bootstrap distribution shifted to the null), with the usual +1 in numerator and
  denominator so that it is never 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Callable, Sequence

import numpy as np

#: The 97.5 % point of the standard normal, as losslens.evaluation writes it (intervals ± Z95·SE).
Z95 = 1.959963984540054
#: Default number of bootstrap resamples and the seed that makes reports reproducible.
BOOTSTRAP_SEED = 20241101
#: How many resamples are drawn at once (bounds the (chunk × units) count matrix).
_CHUNK_CELLS = 4_000_000


def mcnemar_exact(improved: int, worsened: int) -> float:
    """Two-sided exact McNemar p-value from the two discordant counts.

    Parameters
    ----------
    improved, worsened : int
        Units whose 0/1 score went from 0 to 1, and from 1 to 0.

    Returns
    -------
    float
        ``min(1, 2 · P[Binomial(n, 1/2) ≤ min(improved, worsened)])`` with n their sum;
        1.0 when there is no discordant pair.

    Examples
    --------
    >>> round(mcnemar_exact(10, 2), 6)
    0.038574
    """
    improved, worsened = int(improved), int(worsened)
    if improved < 0 or worsened < 0:
        raise ValueError("discordant counts must be 0 or more")
    n = improved + worsened
    if n == 0:
        return 1.0
    k = min(improved, worsened)
    return min(1.0, 2.0 * _binomial_half_cdf(k, n))


def _binomial_half_cdf(k: int, n: int) -> float:
    """P[Binomial(n, 1/2) ≤ k], summed in log space so that n may be large."""
    log_half_n = -n * math.log(2.0)
    log_terms = np.array([math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + log_half_n
                          for i in range(k + 1)])
    top = log_terms.max()
    return float(math.exp(top) * np.exp(log_terms - top).sum())


def benjamini_hochberg(p_values: Sequence[float]) -> np.ndarray:
    """Benjamini–Hochberg adjusted p-values, in the order given.

    NaN entries (a comparison that has no p-value) are left NaN and do not count towards the
    number of tests.

    Examples
    --------
    >>> benjamini_hochberg([0.01, 0.04, 0.03]).round(4).tolist()
    [0.03, 0.04, 0.04]
    """
    p = np.asarray(p_values, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    present = np.flatnonzero(~np.isnan(p))
    m = present.size
    if m == 0:
        return out
    order = present[np.argsort(p[present], kind="stable")]
    scaled = p[order] * m / np.arange(1, m + 1)
    adjusted = np.minimum.accumulate(scaled[::-1])[::-1]
    out[order] = np.minimum(adjusted, 1.0)
    return out


def minimum_detectable_effect(standard_error: float, *, alpha: float = 0.05, power: float = 0.8) -> float:
    """Smallest true mean difference a two-sided test at ``alpha`` detects with ``power``.

    ``(z_{1−α/2} + z_{power}) · standard_error``; 2.8016 standard errors at the defaults.
    """
    normal = NormalDist()
    return (normal.inv_cdf(1 - alpha / 2) + normal.inv_cdf(power)) * float(standard_error)


def normal_p_value(estimate: float, standard_error: float) -> float:
    """Two-sided p-value of ``estimate`` under a normal null with this standard error."""
    if not standard_error > 0:
        return 1.0 if estimate == 0 else 0.0
    z = abs(estimate) / standard_error
    # 2·Φ(−z) = erfc(z/√2): NormalDist.cdf computes 1 + erf(−z/√2), which loses every digit
    # below about 1e-16 (a clear difference on thousands of examples printed p = 0).
    return min(1.0, math.erfc(z / math.sqrt(2.0)))


def weighted_mean_se(values: np.ndarray, weights: np.ndarray) -> tuple[float, float]:
    """Weighted mean of ``values`` and its standard error s/√n_eff.

    n_eff = (Σw)²/Σw² is Kish's effective sample size and s² the weighted variance with Bessel's
    correction on it (see :func:`losslens.comparison.weighted_mean_ci`); NaN error when n_eff ≤ 1.
    """
    w_sum = float(weights.sum())
    if w_sum <= 0:
        return math.nan, math.nan
    mean = float(weights @ values) / w_sum
    n_eff = w_sum**2 / float(weights @ weights)
    if n_eff <= 1:
        return mean, math.nan
    # Centred before squaring: the differences are small and Σwd²/Σw − d̄² would cancel.
    centred = values - mean
    variance = float(weights @ (centred * centred)) / w_sum * n_eff / (n_eff - 1)
    return mean, math.sqrt(variance / n_eff)


def mean_se(values: np.ndarray, weights: np.ndarray, ratio: bool) -> tuple[float, float]:
    """Weighted mean and its standard error: Kish's (classifier example weights) or, for
    ``ratio``, the ratio estimator's with each unit (a document) its own cluster."""
    if ratio:
        mean = float(weights @ values) / float(weights.sum()) if weights.sum() > 0 else math.nan
        se, _ = clustered_standard_error(values, np.arange(len(values)), weights)
        return mean, se
    return weighted_mean_se(values, weights)


def clustered_standard_error(values, clusters, weights=None) -> tuple[float, int]:
    """Standard error of the weighted mean of ``values`` when units are correlated within clusters.

    Parameters
    ----------
    values : array of float
        One value per unit (a loss, a 0/1 score, a paired difference).
    clusters : array
        The cluster of each unit (any hashable values: passage ids, template names).
    weights : array of float, optional
        Unit weights (default 1).

    Returns
    -------
    (float, int)
        The clustered standard error and the number of clusters C. With C < 2 the error is NaN.

    Notes
    -----
    SE² = C/(C − 1) · Σ_c (Σ_{i∈c} wᵢ(xᵢ − x̄))² / (Σw)², x̄ the weighted mean; with unit weights
    and one unit per cluster it is the textbook s/√n times √((n−1)/n)·√(n/(n−1)) = s/√n.
    """
    x = np.asarray(values, dtype=np.float64)
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=np.float64)
    _, codes = np.unique(np.asarray(clusters, dtype=object).astype(str), return_inverse=True)
    n_clusters = int(codes.max()) + 1 if codes.size else 0
    if n_clusters < 2:
        return math.nan, n_clusters
    total = w.sum()
    mean = float((w * x).sum() / total)
    per_cluster = np.bincount(codes, weights=w * (x - mean), minlength=n_clusters)
    variance = n_clusters / (n_clusters - 1) * float((per_cluster ** 2).sum()) / total ** 2
    return math.sqrt(variance), n_clusters


def ratio_difference_se(num_ref, den_ref, num_cand, den_cand, clusters=None) -> float:
    """Standard error of Σa_c/Σb_c − Σa_r/Σb_r with the units (documents) as the sampling units.

    Parameters
    ----------
    num_ref, den_ref, num_cand, den_cand : array of float
        Per-unit numerators and denominators of each run's ratio (for bits per byte: each
        document's summed loss and its UTF-8 bytes), over the same paired units.
    clusters : array, optional
        A cluster per unit: the units' contributions are summed within clusters first.

    Returns
    -------
    float
        The linearised (delta-method) error: with zᵢ = (a_cᵢ − R_c·b_cᵢ)/Σb_c − (a_rᵢ − R_r·b_rᵢ)/Σb_r,
        SE² = C/(C − 1)·Σ_c (Σ_{i∈c} zᵢ)², C the number of units (or clusters). When both runs
        share the denominators this is :func:`clustered_standard_error` of the per-unit ratio
        differences weighted by the denominators (Cochran's ratio estimator). NaN with C < 2.
    """
    a_r, b_r, a_c, b_c = (np.asarray(v, dtype=np.float64) for v in (num_ref, den_ref, num_cand, den_cand))
    total_r, total_c = b_r.sum(), b_c.sum()
    if not (total_r > 0 and total_c > 0):
        return math.nan
    z = (a_c - a_c.sum() / total_c * b_c) / total_c - (a_r - a_r.sum() / total_r * b_r) / total_r
    if clusters is not None:
        _, codes = np.unique(np.asarray(clusters, dtype=object).astype(str), return_inverse=True)
        z = np.bincount(codes, weights=z)
    if z.size < 2:
        return math.nan
    return math.sqrt(z.size / (z.size - 1) * float(z @ z))


@dataclass(frozen=True)
class BootstrapResult:
    """A paired bootstrap of one statistic: its percentile interval and two-sided p-value."""

    estimate: float
    ci95: tuple[float, float]
    p_value: float
    n_resamples: int
    seed: int


def paired_bootstrap(columns: dict[str, np.ndarray], statistic: Callable[[dict[str, np.ndarray]], float], *,
                     n_resamples: int = 1000, seed: int = BOOTSTRAP_SEED, clusters=None) -> BootstrapResult:
    """Bootstrap ``statistic`` over paired units, resampling whole units (or whole clusters).

    Parameters
    ----------
    columns : dict of str to array
        Per-unit sums that the statistic needs, all of one length (for a log-loss delta:
        ``{"d": differences, "w": weights}``; for a bits-per-byte delta of documents:
        ``{"nll_a", "nll_b", "bytes"}``). Token- or byte-weighted figures are ratios of such sums,
        so documents, not tokens, are the resampled unit.
    statistic : callable
        Maps a dict of the same keys, each a vector of *totals* over one resample, to a number.
        It is called with the totals of every resample at once (each value an array of
        resample totals), so it must be written with numpy operations.
    n_resamples, seed : int
        How many resamples, and the seed of ``numpy.random.default_rng``.
    clusters : array, optional
        A cluster per unit: clusters are drawn instead of units.

    Returns
    -------
    BootstrapResult
    """
    names = list(columns)
    matrix = np.vstack([np.asarray(columns[k], dtype=np.float64) for k in names])  # (keys, units)
    if clusters is not None:
        _, codes = np.unique(np.asarray(clusters, dtype=object).astype(str), return_inverse=True)
        n_groups = int(codes.max()) + 1
        matrix = np.vstack([np.bincount(codes, weights=row, minlength=n_groups) for row in matrix])
    n_units = matrix.shape[1]
    observed = float(statistic({k: matrix[i].sum(keepdims=True) for i, k in enumerate(names)})[0])
    rng = np.random.default_rng(seed)
    chunk = max(1, min(n_resamples, _CHUNK_CELLS // max(n_units, 1)))
    values = []
    done = 0
    while done < n_resamples:
        size = min(chunk, n_resamples - done)
        counts = np.stack([np.bincount(rng.integers(0, n_units, n_units), minlength=n_units)
                           for _ in range(size)]).astype(np.float64)
        totals = counts @ matrix.T  # (size, keys)
        values.append(np.asarray(statistic({k: totals[:, i] for i, k in enumerate(names)}), dtype=np.float64))
        done += size
    resampled = np.concatenate(values)
    low, high = np.quantile(resampled, [0.025, 0.975])
    extreme = np.count_nonzero(np.abs(resampled - observed) >= abs(observed))
    p_value = (extreme + 1) / (n_resamples + 1)
    return BootstrapResult(observed, (float(low), float(high)), float(p_value), n_resamples, seed)


def weighted_mean_delta(totals: dict[str, np.ndarray]) -> np.ndarray:
    """The statistic of a mean paired difference: Σwd / Σw (for :func:`paired_bootstrap`)."""
    return totals["wd"] / totals["w"]
