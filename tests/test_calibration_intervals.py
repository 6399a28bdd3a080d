"""Bootstrap intervals of the calibration figures: against a slow bootstrap at the same seed, and as intervals.

The point figures are checked against torchmetrics and HELM in tests/test_calibration_runs.py;
here the intervals: the fast vectorised resampling equals a plain per-resample loop drawing the
same indices, the intervals hold the figure, shrink as the data grow, and are reproducible.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.special import softmax
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

import losslens
from losslens.calibration_fit import equal_mass_edges
from losslens.calibration_fit import _distinct
from losslens.calibration_intervals import CI_RESAMPLES, CI_SEED, NAMES, _quantiles, resampled_figures, scope_intervals

FIGURES = NAMES  # ece_equal_width, ece_equal_mass, rms_calibration_error, max_calibration_error


def _slow_figures(conf, hit, w, width_bins, edges):
    """The four figures of one resample, bin by bin in plain Python (torchmetrics' binning rules)."""
    width = [min(int(c * width_bins), width_bins - 1) for c in conf]
    mass = [min(int(np.searchsorted(edges, c, side="left")), len(edges) - 1) for c in conf]
    total = float(np.sum(w))

    def per_bin(index, n_bins):
        gaps, weights = [], []
        for b in range(n_bins):
            members = [i for i in range(len(conf)) if index[i] == b]
            wb = sum(w[i] for i in members)
            if wb > 0:
                acc = sum(w[i] * hit[i] for i in members) / wb
                mean_conf = sum(w[i] * conf[i] for i in members) / wb
                gaps.append(acc - mean_conf)
                weights.append(wb)
        return np.array(gaps), np.array(weights)

    gap, wb = per_bin(width, width_bins)
    gap_m, wb_m = per_bin(mass, len(edges))
    return [float(wb @ np.abs(gap)) / total, float(wb_m @ np.abs(gap_m)) / total,
            math.sqrt(float(wb @ gap**2) / total), float(np.abs(gap).max())]


@pytest.mark.parametrize("weighted", [False, True])
def test_vectorised_resampling_equals_a_slow_loop_at_the_same_seed(weighted):
    rng = np.random.default_rng(0)
    m = 300
    conf = rng.uniform(0.2, 1.0, m)
    conf[:5] = 1.0  # the top bin's edge: equal-width bins put 1.0 in the last bin
    hit = rng.random(m) < conf**1.5
    w = rng.uniform(0.5, 2.0, m) if weighted else np.ones(m)
    edges = equal_mass_edges(conf, 10)
    draws = np.random.default_rng(7).integers(0, m, size=(20, m), dtype=np.int32)
    fast = resampled_figures(conf, hit, w, 15, edges, draws)
    for r in range(draws.shape[0]):
        i = draws[r]
        # Sums in another order: agreement to rounding, not bitwise.
        assert fast[r] == pytest.approx(_slow_figures(conf[i], hit[i], w[i], 15, edges), rel=1e-12, abs=1e-15)


def test_scope_intervals_are_the_slow_bootstrap_spread_centred_on_the_figure():
    rng = np.random.default_rng(1)
    m = 400
    conf = rng.uniform(0.3, 1.0, m)
    hit = rng.random(m) < conf - 0.1  # overconfident
    w, keys = np.ones(m), rng.random(m)
    point = {"ece_equal_width": 0.1, "ece_equal_mass": 0.09, "rms_calibration_error": 0.12,
             "max_calibration_error": 0.3}
    got = scope_intervals(point, conf, hit, w, keys, 10, n_scope=m, n_resamples=50)
    # The slow bootstrap: the same seed, the same draws, one resample at a time.
    draws = np.random.default_rng(CI_SEED).integers(0, m, size=(50, m), dtype=np.int32)
    edges = equal_mass_edges(conf, 10)
    slow = np.array([_slow_figures(conf[d], hit[d], w[d], 10, edges) for d in draws])
    low, mid, high = np.quantile(slow, [0.025, 0.5, 0.975], axis=0)
    for j, name in enumerate(FIGURES):
        expected = [max(0.0, point[name] + low[j] - mid[j]), point[name] + high[j] - mid[j]]
        assert got[f"{name}_ci95"] == pytest.approx(expected, rel=1e-9)
        assert got[f"{name}_ci95"][0] <= point[name] <= got[f"{name}_ci95"][1]


def _bits(a):
    return np.ascontiguousarray(a, dtype=np.float64).view(np.uint64)


@pytest.mark.filterwarnings("ignore:invalid value encountered")
def test_quantiles_are_numpys_to_the_bit():
    # The interval's own quantiles stand for np.quantile (which imports numpy.ma through np.unique):
    # the same operations on the same numpy, so every bit agrees, signed zeros, ties, NaN and inf included.
    rng = np.random.default_rng(1)
    for case in range(600):
        n, m = int(rng.integers(1, 300)), int(rng.integers(1, 5))
        values = rng.standard_normal((n, m))
        if case % 3 == 0:
            values = np.round(values, 1)  # ties, and -0.0 beside 0.0
        if case % 5 == 0:
            values[rng.integers(0, n), rng.integers(0, m)] = np.nan
        if case % 7 == 0:
            values[rng.integers(0, n), rng.integers(0, m)] = np.inf
        for q in ((0.025, 0.5, 0.975), (0.0, 1.0), (0.3,)):
            assert np.array_equal(_bits(_quantiles(values, q)), _bits(np.quantile(values, list(q), axis=0)))


def test_distinct_edges_are_np_unique_to_the_bit():
    rng = np.random.default_rng(2)
    pool = np.array([0.0, -0.0, 1.0, 0.5, np.nan, 0.25, 1e-300, np.inf, 0.5000000000000001])
    for case in range(2000):
        values = rng.choice(pool, int(rng.integers(0, 30)))
        assert np.array_equal(_bits(_distinct(values)), _bits(np.unique(values)))


def test_a_larger_scope_than_the_subsample_scales_the_spread_by_root_m_over_n():
    rng = np.random.default_rng(2)
    n = 10_000
    conf = rng.uniform(0.3, 1.0, n)
    hit = rng.random(n) < conf
    w, keys = np.ones(n), rng.random(n)
    point = {name: 0.05 for name in FIGURES}
    whole = scope_intervals(point, conf, hit, w, keys, 10, n_scope=n, size=n)
    # 2,500 of 10,000 examples resampled, the spread carried to the 10,000 by √(2500/10000).
    small = scope_intervals(point, conf, hit, w, keys, 10, n_scope=n, size=2_500)
    keep = np.sort(np.argpartition(keys, 2_499)[:2_500])
    alone = scope_intervals(point, conf[keep], hit[keep], w[keep], keys[keep], 10, n_scope=2_500, size=2_500)
    for name in FIGURES:
        lo, hi = small[f"{name}_ci95"]
        a_lo, a_hi = alone[f"{name}_ci95"]
        assert hi - 0.05 == pytest.approx((a_hi - 0.05) / 2, rel=1e-12)
        if a_lo > 0:
            assert 0.05 - lo == pytest.approx((0.05 - a_lo) / 2, rel=1e-12)
        # Of the same order as resampling all 10,000 examples.
        w_small, w_whole = hi - lo, np.subtract(*whole[f"{name}_ci95"][::-1])
        assert 0.5 < w_small / w_whole < 2.0


def _digits_run(n_copies: int, seed: int = 0):
    x, y = load_digits(return_X_y=True)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.5, random_state=0)
    p = LogisticRegression(C=10.0, max_iter=5000).fit(x_tr, y_tr).predict_proba(x_te)
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(y_te), len(y_te) * n_copies)  # a bigger test set from the same model
    frame = pd.DataFrame(p[pick], columns=[f"p_{c}" for c in range(10)])
    frame["label"] = y_te[pick]
    frame["split"] = np.where(np.arange(len(pick)) % 3 == 0, "validation", "test")
    return frame


def test_runs_carry_intervals_in_every_scope_holding_the_figure_and_shrinking_with_n():
    small = losslens.evaluate(_digits_run(1)).runs[0]
    large = losslens.evaluate(_digits_run(20)).runs[0]
    again = losslens.evaluate(_digits_run(1)).runs[0]
    for name in FIGURES:
        for scope in (small.overall, *small.by_split.values()):
            lo, hi = getattr(scope, f"{name}_ci95")
            assert lo <= getattr(scope, name) <= hi and hi > lo
        width = np.subtract(*getattr(small.overall, f"{name}_ci95")[::-1])
        wide = np.subtract(*getattr(large.overall, f"{name}_ci95")[::-1])
        assert wide < 0.6 * width  # 20 times the examples: about √20 ≈ 4.5 times narrower
        assert getattr(again.overall, f"{name}_ci95") == getattr(small.overall, f"{name}_ci95")
    data = small.overall.to_dict()
    assert len(data["ece_equal_mass_ci95"]) == 2 and CI_RESAMPLES == 200


def test_soft_probabilities_still_get_intervals():
    frame = _digits_run(1)
    frame[[f"p_{c}" for c in range(10)]] = softmax(np.log(frame[[f"p_{c}" for c in range(10)]].to_numpy()) / 2, axis=1)
    run = losslens.evaluate(frame).runs[0]
    lo, hi = run.overall.ece_equal_width_ci95
    assert lo <= run.overall.ece_equal_width <= hi


def test_wilson_interval_equals_statsmodels():
    from statsmodels.stats.proportion import proportion_confint

    from losslens.calibration_intervals import wilson_interval

    for hits, n in ((0, 12), (12, 12), (7, 20), (431, 500), (1, 3)):
        expected = proportion_confint(hits, n, alpha=0.05, method="wilson")
        assert wilson_interval(hits / n, n) == pytest.approx(expected, rel=1e-9, abs=1e-15)


def test_equal_mass_bins_give_helms_ece_and_their_own_intervals():
    from test_calibration_fit import _reference_ece_em

    from losslens.calibration_intervals import equal_mass_bins

    rng = np.random.default_rng(4)
    conf = rng.uniform(0.2, 1.0, 1_003)
    hit = (rng.random(1_003) < conf - 0.05).astype(float)
    bins = equal_mass_bins(conf, hit, np.ones(conf.size), 10)
    assert sum(b.n_examples for b in bins) == conf.size and len(bins) == 10
    # The bins' weighted mean gap is HELM's equal-mass ECE (the calibration package's get_ece_em).
    ece = sum(b.n_examples * abs(b.accuracy - b.mean_confidence) for b in bins) / conf.size
    assert ece == pytest.approx(_reference_ece_em(conf, hit, 10), rel=1e-12)
    for b in bins:
        assert b.accuracy_ci95[0] <= b.accuracy <= b.accuracy_ci95[1] and b.lower < b.upper


def test_the_page_and_terminal_show_the_equal_mass_diagram_and_intervals(tmp_path, run_cli):
    path = tmp_path / "digits.csv"
    _digits_run(1).to_csv(path, index=False)
    done = run_cli("report", path, "--output", tmp_path / "r.html", "--quiet")
    page = (tmp_path / "r.html").read_text()
    run = losslens.evaluate(_digits_run(1)).runs[0]
    lo, hi = run.overall.ece_equal_mass_ci95
    assert "chart-reliability-mass" in page and "with a 95% interval (Wilson" in page
    assert f"Equal-mass bins (ECE = {run.overall.ece_equal_mass:.4f}, 95% CI {lo:.4f}–{hi:.4f})" in page
    # The guide says the intervals with this run's numbers, as the terminal prints them.
    assert "How sure are the calibration figures?" in page
    assert f"ECE equal-mass {run.overall.ece_equal_mass:.4f} (95% CI {lo:.4f}–{hi:.4f})" in page
    text = run_cli("metrics", path).stdout
    assert "overall, bootstrap: ECE equal-width" in text
    assert f"{lo:.4f}–{hi:.4f}" in text  # also the calibration table's interval column
    assert done.returncode == 0
