"""prior_shift: silent for calibrated models at any number of classes, firing on a real shift.

The plug-in KL(P̂ ‖ Q̄) of a perfectly calibrated model is biased upward by about
(k − 1) / (2 n ln 2) bits (0.24 bits at k = 1000, n = 3000, against the 0.05-bit default), so
the warning uses the bias-corrected KL and a G-test of the label counts. The false-alarm
rate is measured by simulation: labels are drawn from the model's own predictions, many
times, and the warning's rule is applied to the streamed sums.
"""

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chi2, power_divergence

import losslens
from losslens.accumulate import Accumulator
from losslens.diagnostics import PRIOR_SHIFT_ALPHA, prior_shift_fires
from losslens.evaluation import LN2, chi2_sf, kl_sampling_bias_bits, metrics_of, prior_shift_test

THRESHOLD = 0.05  # the --prior-shift default, bits


def realistic_predictions(rng, n, k):
    """Softmax predictions of a decent model: a skewed class prior, one favoured class a row.

    Rows are far from identical (confident ones and unsure ones), as a real model's are.
    """
    prior = 1.0 / np.arange(1, k + 1) ** 0.7
    prior /= prior.sum()
    favoured = rng.choice(k, size=n, p=prior)
    logits = rng.normal(0.0, 1.0, (n, k)) + np.log(prior)
    logits[np.arange(n), favoured] += rng.uniform(0.0, 6.0, n)
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    return probs / probs.sum(axis=1, keepdims=True)


def draw_labels(rng, cumulative):
    """One label per row drawn from the row's distribution (cumulative sums along the row)."""
    u = rng.random(len(cumulative)) * cumulative[:, -1]
    return np.minimum((cumulative < u[:, None]).sum(axis=1), cumulative.shape[1] - 1)


def shifted(probs, rng):
    """The same predictions with 10% of the classes (at least 3) four times as frequent."""
    k = probs.shape[1]
    boosted = rng.choice(k, size=max(3, k // 10), replace=False)
    factor = np.ones(k)
    factor[boosted] = 4.0
    moved = probs * factor
    return moved / moved.sum(axis=1, keepdims=True)


def column_sums(probs):
    """Σq and Σq² per class: what the predictions contribute to the streamed sums."""
    return probs.shape[0], probs.sum(axis=0), (probs * probs).sum(axis=0)


def sums_for(probs, labels):
    """The accumulator a run with these predictions and labels streams (unit weights)."""
    return sums_of(column_sums(probs), labels)


def sums_of(columns, labels):
    """As :func:`sums_for`, from precomputed :func:`column_sums`."""
    n, prob_sum, prob_sq_sum = columns
    counts = np.bincount(labels, minlength=len(prob_sum))
    return replace(
        Accumulator.empty(len(prob_sum)),
        n_examples=n,
        weight_sum=float(n),
        weight_sq_sum=float(n),
        class_count=counts,
        class_weight=counts.astype(float),
        prob_sum=prob_sum,
        prob_w2_sum=prob_sum,
        prob_sq_w2_sum=prob_sq_sum,
    )


# Each size the issue names, and how many calibrated runs are simulated for it.
SIZES = [(2000, 100, 200), (3000, 1000, 100), (20000, 1000, 40), (100000, 10, 200)]


@pytest.mark.parametrize("n, k, runs", SIZES)
def test_a_calibrated_model_stays_silent(n, k, runs):
    rng = np.random.default_rng(n + k)
    probs = realistic_predictions(rng, n, k)
    cumulative = np.cumsum(probs, axis=1)
    columns = column_sums(probs)
    plug_in, corrected, fired = [], [], 0
    for _ in range(runs):
        metrics = metrics_of(sums_of(columns, draw_labels(rng, cumulative)))
        plug_in.append(metrics.kl_empirical_bits)
        corrected.append(metrics.kl_empirical_bits_corrected)
        fired += prior_shift_fires(metrics, THRESHOLD)
    assert fired <= 0.02 * runs
    # The correction removes most of the plug-in's inflation. What remains is largest where
    # classes are expected only a few times (second-order expansion): about 0.03 bits at
    # k = 1000, n = 3000, against 0.27 before; there the G-test keeps the warning silent.
    assert abs(np.mean(corrected)) < 0.15 * np.mean(plug_in)


@pytest.mark.parametrize("n, k", [(20000, 1000), (100000, 10)])
def test_a_real_prior_shift_fires(n, k):
    rng = np.random.default_rng(7 * n + k)
    probs = realistic_predictions(rng, n, k)
    columns = column_sums(probs)
    for _ in range(3):
        truth = shifted(probs, rng)
        metrics = metrics_of(sums_of(columns, draw_labels(rng, np.cumsum(truth, axis=1))))
        assert metrics.prior_shift_p_value < PRIOR_SHIFT_ALPHA
        assert metrics.kl_empirical_bits_corrected > THRESHOLD
        assert prior_shift_fires(metrics, THRESHOLD)


def test_end_to_end_calibrated_1000_classes_silent_and_shift_fires():
    """Through evaluate(): float32 predictions as torch gives them, sums from the batches."""
    rng = np.random.default_rng(11)
    n, k = 3000, 1000
    probs = realistic_predictions(rng, n, k).astype(np.float32)
    columns = [f"p_{c}" for c in range(k)]
    # float64 labels drawn from the float32 rows (renormalised in float64 only for drawing).
    labels = draw_labels(rng, np.cumsum(probs.astype(np.float64), axis=1))
    frame = pd.DataFrame(probs.astype(np.float64), columns=columns).assign(label=labels)
    run = losslens.evaluate(frame).run
    assert run.overall.kl_empirical_bits > 0.15  # the false alarm of the plug-in rule
    assert "prior_shift" not in {w.code for w in run.warnings}
    expected_bias = (probs.astype(np.float64) * (1 - probs)).sum(axis=0) / (2 * n * probs.astype(np.float64).sum(axis=0))
    assert run.overall.kl_empirical_bits - run.overall.kl_empirical_bits_corrected == pytest.approx(
        expected_bias.sum() / LN2, rel=1e-9
    )

    big_n = 20000
    probs = realistic_predictions(rng, big_n, k)
    labels = draw_labels(rng, np.cumsum(shifted(probs, rng), axis=1))
    frame = pd.DataFrame(probs, columns=columns).assign(label=labels)
    warnings = losslens.evaluate(frame).warnings
    assert [w.code for w in warnings if w.code == "prior_shift"] == ["prior_shift"]
    assert "G-test p" in next(w.message for w in warnings if w.code == "prior_shift")


def test_bias_of_identical_rows_is_k_minus_1_over_2n_ln2():
    n, k = 500, 40
    probs = np.full((n, k), 1.0 / k)
    acc = sums_for(probs, np.arange(n) % k)
    assert kl_sampling_bias_bits(acc) == pytest.approx((k - 1) / (2 * n * LN2), rel=1e-12)


def test_weighted_bias_uses_sum_of_squared_weights():
    # Hand-worked: two rows with q = (1/2, 1/2), weights 1 and 3. W = 4, Σw²q(1 − q) = 10/4
    # per class, Q̄ = 1/2: bias = 2 · (10/4) / (2 · 16 · 1/2) = 5/16 nats.
    probs = np.array([[0.5, 0.5], [0.5, 0.5]])
    w = np.array([1.0, 3.0])
    acc = replace(
        Accumulator.empty(2), n_examples=2, weight_sum=4.0, weight_sq_sum=10.0,
        class_count=np.array([1, 1]), class_weight=np.array([1.0, 3.0]),
        prob_sum=w @ probs, prob_w2_sum=(w * w) @ probs, prob_sq_w2_sum=(w * w) @ (probs * probs),
    )
    assert kl_sampling_bias_bits(acc) == pytest.approx(5 / 16 / LN2, rel=1e-14)


def test_g_test_against_scipy_power_divergence():
    rng = np.random.default_rng(3)
    k = 30
    q = rng.dirichlet(np.ones(k) * 2)
    counts = rng.multinomial(4000, q)
    probs = np.tile(q, (4000, 1))
    g, df, p = prior_shift_test(sums_for(probs, np.repeat(np.arange(k), counts)))
    # Every expected count is at least 5 here, so no pooling: the plain G-test.
    assert (4000 * q).min() >= 5
    statistic, p_value = power_divergence(counts, 4000 * q, lambda_="log-likelihood")
    assert g == pytest.approx(statistic, rel=1e-10)
    assert df == k - 1
    assert p == pytest.approx(p_value, rel=1e-9)


def test_g_test_pools_sparse_classes():
    # Expected counts 50, 40, and three classes expected 2, 2, 1 -> pooled into one cell of 5.
    q = np.array([50, 40, 2, 2, 1]) / 95
    labels = np.repeat(np.arange(5), [45, 40, 4, 4, 2])
    g, df, p = prior_shift_test(sums_for(np.tile(q, (95, 1)), labels))
    observed, expected = np.array([45, 40, 10]), np.array([50, 40, 5])
    assert df == 2
    assert g == pytest.approx(2 * (observed * np.log(observed / expected)).sum(), rel=1e-12)
    assert p == pytest.approx(chi2.sf(g, 2), rel=1e-10)


@pytest.mark.parametrize("df", [1, 2, 3, 7, 10, 99, 100, 500, 999, 2000])
def test_chi2_sf_matches_scipy(df):
    for x in (1e-3, 0.5, df / 3, df - 1, df, df + 0.5, df + 3 * math.sqrt(2 * df), df * 2 + 40, df * 5 + 200):
        expected = chi2.sf(x, df)
        if expected < 1e-300:
            assert chi2_sf(x, df) < 1e-290
        else:
            assert chi2_sf(x, df) == pytest.approx(expected, rel=1e-10, abs=1e-300), (x, df)
    assert chi2_sf(0.0, df) == 1.0
    assert chi2_sf(math.inf, df) == 0.0


def test_soft_targets_keep_the_plug_in_rule():
    frame = pd.DataFrame({"t_a": [1.0, 0.0] * 50, "t_b": [0.0, 1.0] * 50, "p_a": 0.9, "p_b": 0.1})
    run = losslens.evaluate(frame, targets="t_").run
    assert run.overall.kl_empirical_bits_corrected is None
    assert run.overall.prior_shift_p_value is None
    assert "prior_shift" in {w.code for w in run.warnings}
