"""paired_stats against independent references: statsmodels, scipy and hand-worked values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from losslens.paired_stats import (
    benjamini_hochberg,
    clustered_standard_error,
    mcnemar_exact,
    minimum_detectable_effect,
    normal_p_value,
    paired_bootstrap,
    weighted_mean_delta,
)

statsmodels = pytest.importorskip("statsmodels")
from statsmodels.stats.contingency_tables import mcnemar  # noqa: E402
from statsmodels.stats.multitest import multipletests  # noqa: E402

#: The exact methods are sums of a few hundred float terms: agreement to 1e-9 relative.
REL = 1e-9


@pytest.mark.parametrize("improved, worsened", [(10, 2), (2, 10), (0, 0), (0, 7), (5, 5), (37, 21), (400, 351),
                                                (3000, 2890)])
def test_mcnemar_exact_equals_statsmodels_and_scipy(improved, worsened):
    table = [[50, improved], [worsened, 40]]
    expected = mcnemar(table, exact=True).pvalue
    assert mcnemar_exact(improved, worsened) == pytest.approx(expected, rel=REL)
    if improved + worsened:
        assert mcnemar_exact(improved, worsened) == pytest.approx(
            stats.binomtest(min(improved, worsened), improved + worsened, 0.5).pvalue, rel=REL)


def test_mcnemar_hand_worked():
    # b=10, c=2: 2·(1 + 12 + 66)/4096 = 158/4096.
    assert mcnemar_exact(10, 2) == pytest.approx(158 / 4096, rel=1e-15)
    with pytest.raises(ValueError):
        mcnemar_exact(-1, 3)


def test_benjamini_hochberg_equals_statsmodels():
    rng = np.random.default_rng(3)
    p = np.concatenate([rng.uniform(0, 1, 40), rng.uniform(0, 0.01, 10)])
    rng.shuffle(p)
    expected = multipletests(p, method="fdr_bh")[1]
    assert benjamini_hochberg(p) == pytest.approx(expected, rel=1e-12)
    # Ties and a NaN (a comparison without a p-value) that must not count as a test.
    with_nan = np.array([0.02, np.nan, 0.02, 0.5])
    adjusted = benjamini_hochberg(with_nan)
    assert math.isnan(adjusted[1])
    assert adjusted[[0, 2, 3]] == pytest.approx(multipletests([0.02, 0.02, 0.5], method="fdr_bh")[1], rel=1e-12)


def test_minimum_detectable_effect_and_normal_p():
    assert minimum_detectable_effect(1.0) == pytest.approx(stats.norm.ppf(0.975) + stats.norm.ppf(0.8), rel=1e-12)
    # "with 1,200 questions": sd of the differences 0.38 nats → SE 0.38/√1200.
    assert minimum_detectable_effect(0.38 / math.sqrt(1200)) == pytest.approx(2.801585 * 0.010969655, rel=1e-6)  # (1.959964 + 0.841621)·0.38/√1200
    assert normal_p_value(1.96, 1.0) == pytest.approx(2 * stats.norm.sf(1.96), rel=1e-12)
    assert normal_p_value(0.0, 0.0) == 1.0


def test_clustered_standard_error_hand_worked_and_inspect_formula():
    scores = np.array([1, 1, 1, 0, 0, 0], dtype=float)
    cluster = np.array([0, 1, 1, 1, 0, 0])
    # mean 0.5; cluster 0: 0.5 − 0.5 − 0.5 = −0.5; cluster 1: 0.5 + 0.5 − 0.5 = 0.5
    # SE = sqrt(2/1 · (0.25 + 0.25)) / 6 = 1/6.
    se, c = clustered_standard_error(scores, cluster)
    assert c == 2
    assert se == pytest.approx(1 / 6, rel=1e-15)
    # One unit per cluster gives the ordinary s/√n.
    rng = np.random.default_rng(5)
    x = rng.normal(size=200)
    se, c = clustered_standard_error(x, np.arange(200))
    assert c == 200
    assert se == pytest.approx(stats.sem(x), rel=1e-12)
    # Weights: the formula with Σw in the denominator, hand-written with loops.
    w = rng.uniform(0.5, 2, 200)
    groups = rng.integers(0, 17, 200)
    mean = np.sum(w * x) / np.sum(w)
    total = sum(np.sum(w[groups == g] * (x[groups == g] - mean)) ** 2 for g in np.unique(groups))
    expected = math.sqrt(17 / 16 * total) / np.sum(w)
    assert clustered_standard_error(x, groups, w)[0] == pytest.approx(expected, rel=1e-12)
    assert math.isnan(clustered_standard_error(x, np.zeros(200))[0])


def test_paired_bootstrap_is_reproducible_and_covers_the_mean():
    rng = np.random.default_rng(11)
    d = rng.normal(0.05, 0.3, 1500)
    w = np.ones_like(d)
    result = paired_bootstrap({"wd": w * d, "w": w}, weighted_mean_delta, n_resamples=2000)
    again = paired_bootstrap({"wd": w * d, "w": w}, weighted_mean_delta, n_resamples=2000)
    assert result == again
    assert result.estimate == pytest.approx(d.mean(), rel=1e-12)
    # The percentile interval agrees with scipy's on the same data to Monte-Carlo precision.
    ref = stats.bootstrap((d,), np.mean, n_resamples=2000, method="percentile", random_state=1)
    assert result.ci95[0] == pytest.approx(ref.confidence_interval.low, abs=0.004)
    assert result.ci95[1] == pytest.approx(ref.confidence_interval.high, abs=0.004)
    # A clear effect (t ≈ 6.5) gives the smallest p-value the resamples can give.
    assert result.p_value == pytest.approx(1 / 2001)
    null = paired_bootstrap({"wd": d - d.mean(), "w": w}, weighted_mean_delta, n_resamples=500)
    assert null.p_value > 0.5


def test_paired_bootstrap_ratio_over_documents_and_clusters():
    # Bits per byte of two checkpoints: a ratio of document sums; documents are the unit.
    rng = np.random.default_rng(2)
    nbytes = rng.integers(100, 5000, 300).astype(float)
    a = nbytes * rng.uniform(0.9, 1.1, 300)
    b = a * 0.97

    def delta(t):
        return (t["b"] - t["a"]) / t["bytes"] / math.log(2)

    result = paired_bootstrap({"a": a, "b": b, "bytes": nbytes}, delta, n_resamples=300)
    assert result.estimate == pytest.approx((b.sum() - a.sum()) / nbytes.sum() / math.log(2), rel=1e-12)
    assert result.ci95[0] < result.estimate < result.ci95[1] < 0
    clustered = paired_bootstrap({"a": a, "b": b, "bytes": nbytes}, delta, n_resamples=300,
                                 clusters=np.arange(300) // 10)
    assert clustered.estimate == pytest.approx(result.estimate, rel=1e-12)
