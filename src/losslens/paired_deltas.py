"""Paired deltas of the catalog metrics that are means over units, beyond log loss and accuracy.

A comparison (:mod:`losslens.comparison`, :mod:`losslens.lm.compare`) pairs two runs unit by
unit (an example, a question, a document). Every catalog metric that is a mean over those units
has a paired delta with a 95 % interval and a two-sided p-value from the same paired differences:

- ``brier_score_delta``: the (weighted) mean of each example's Brier score difference, the Brier
  score as the run's ``brier_score`` averages it (scikit-learn's: halved for two classes);
- ``p_gold_delta``: the mean difference of the probability given to the true class (or the
  true answer of a question): Miller 2024's p(gold), a continuous score with less variance
  than the 0/1 accuracy;
- ``bits_per_byte_delta``: Σnll_c/Σbytes_c − Σnll_r/Σbytes_r over the paired documents, in
  bits: a ratio estimator whose error (delta method, :func:`losslens.paired_stats.ratio_difference_se`)
  and bootstrap take *documents* as the units, never tokens or bytes as independent.

Each name gives ``NAME``, ``NAME_ci95`` and ``NAME_p_value`` (normal test of the same error as the
interval; clustered with ``--cluster``); with ``--bootstrap N`` the comparison's ``bootstrap``
adds ``NAME_ci95`` and ``NAME_p_value`` from the paired bootstrap at the job's fixed seed.
"""

from __future__ import annotations

import math

import numpy as np

from .batch_figures import hard_label_brier
from .many_classes import LN2
from .paired_stats import (
    Z95,
    clustered_standard_error,
    mean_se,
    normal_p_value,
    paired_bootstrap,
    ratio_difference_se,
    weighted_mean_delta,
)

#: Mean-over-unit deltas (beyond log loss and accuracy) and ratio deltas, by JSON name.
BRIER_DELTA, P_GOLD_DELTA, BITS_PER_BYTE_DELTA = "brier_score_delta", "p_gold_delta", "bits_per_byte_delta"


def example_brier(batch, n_classes: int) -> np.ndarray:
    """Each example's Brier score, as the run's ``brier_score`` averages it.

    Σ_k (q_k − y_k)² over the classes (y the one-hot label or the soft target), halved for two
    classes (scikit-learn's binary Brier score). A batch scored column by column carries the sum
    already (``batch.brier``).
    """
    if batch.brier is not None:
        brier = np.asarray(batch.brier, dtype=np.float64)
    elif batch.targets is not None:
        diff = batch.matrix() - batch.targets
        brier = np.einsum("ij,ij->i", diff, diff)
    else:
        brier = hard_label_brier(batch.matrix(), batch.label)  # the rows the run's brier_score sums
    return brier / 2 if n_classes == 2 else brier


def _interval(mean: float, se: float) -> list[float] | None:
    return [mean - Z95 * se, mean + Z95 * se] if math.isfinite(se) else None


def mean_deltas(differences: dict[str, np.ndarray], weights: np.ndarray, *, ratio: bool = False,
                clusters=None) -> dict:
    """``NAME``, ``NAME_ci95``, ``NAME_p_value`` of each per-unit difference's weighted mean.

    Parameters
    ----------
    differences : dict of str to numpy.ndarray
        JSON name → per-unit difference (candidate − reference), all of the paired units.
    weights : numpy.ndarray
        The units' weights (the reference run's example weights; a document's token count).
    ratio : bool
        Weights are token or byte counts of documents: the ratio estimator's error, documents as units.
    clusters : array, optional
        ``--cluster`` values: clustered standard errors.

    Returns
    -------
    dict
        Plain JSON data; an interval and p-value of None where the error is undefined (n < 2).
    """
    out: dict = {}
    for name, d in differences.items():
        d = np.asarray(d, dtype=np.float64)
        mean, se = mean_se(d, weights, ratio)
        if clusters is not None:
            se, _ = clustered_standard_error(d, clusters, weights)
        out[name] = mean
        out[f"{name}_ci95"] = _interval(mean, se)
        out[f"{name}_p_value"] = normal_p_value(mean, se) if math.isfinite(se) else None
    return out


def bits_per_byte_delta(nll_ref, bytes_ref, nll_cand, bytes_cand, clusters=None) -> dict:
    """``bits_per_byte_delta`` with its interval and p-value, documents as the units.

    Parameters
    ----------
    nll_ref, bytes_ref, nll_cand, bytes_cand : numpy.ndarray
        Each paired document's summed loss (nats) and UTF-8 bytes in the reference and the
        candidate run (the same text gives the same bytes; they are kept apart all the same).
    clusters : array, optional
        ``--cluster`` values of the documents.

    Returns
    -------
    dict
        Empty when some document has no byte count (then the runs have no bits per byte).
    """
    arrays = usable_documents((nll_ref, bytes_ref, nll_cand, bytes_cand))
    if arrays is None:
        return {}
    a_r, b_r, a_c, b_c = arrays
    delta = (a_c.sum() / b_c.sum() - a_r.sum() / b_r.sum()) / LN2
    se = ratio_difference_se(a_r, b_r, a_c, b_c, clusters) / LN2
    return {BITS_PER_BYTE_DELTA: delta, f"{BITS_PER_BYTE_DELTA}_ci95": _interval(delta, se),
            f"{BITS_PER_BYTE_DELTA}_p_value": normal_p_value(delta, se) if math.isfinite(se) else None}


def usable_documents(documents) -> tuple | None:
    """``(nll_ref, bytes_ref, nll_cand, bytes_cand)`` as float arrays, or None when some document
    has no byte count (the runs then have no bits per byte) or no document is left."""
    if documents is None or any(a is None for a in documents):
        return None
    arrays = tuple(np.asarray(a, dtype=np.float64) for a in documents)
    if not all(np.isfinite(a).all() for a in arrays) or not (arrays[1].sum() > 0 and arrays[3].sum() > 0):
        return None
    return arrays


def _bits_per_byte(totals: dict) -> np.ndarray:
    """The bits-per-byte delta of resample totals (for :func:`losslens.paired_stats.paired_bootstrap`)."""
    return (totals["a_c"] / totals["b_c"] - totals["a_r"] / totals["b_r"]) / LN2


def bootstrap_deltas(differences: dict[str, np.ndarray], weights: np.ndarray, documents: tuple | None,
                     clusters, n_resamples: int, seed: int) -> dict:
    """Paired-bootstrap ``NAME_ci95`` and ``NAME_p_value`` of each delta (the same seed as the log loss's).

    ``documents`` is ``(nll_ref, bytes_ref, nll_cand, bytes_cand)`` for the bits-per-byte delta,
    resampled by document (whole clusters with ``clusters``), or None.
    """
    out: dict = {}
    runs = [(name, {"wd": weights * np.asarray(d, dtype=np.float64), "w": weights},
             weighted_mean_delta) for name, d in differences.items()]
    documents = usable_documents(documents)
    if documents is not None:
        runs.append((BITS_PER_BYTE_DELTA, dict(zip(("a_r", "b_r", "a_c", "b_c"), documents)), _bits_per_byte))
    for name, columns, statistic in runs:
        result = paired_bootstrap(columns, statistic, n_resamples=n_resamples, seed=seed,
                                               clusters=clusters)
        out[f"{name}_ci95"] = list(result.ci95)
        out[f"{name}_p_value"] = result.p_value
    return out
