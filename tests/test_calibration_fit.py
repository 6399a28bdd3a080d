"""calibration_fit against independent references: HELM's equal-mass ECE code, scipy and torch."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import minimize_scalar
from scipy.special import logsumexp
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from losslens.calibration_fit import (INDEX_BY_COMPARISON_EDGES, equal_mass_edges, equal_mass_ece, equal_mass_index,
                                      fit_temperature, temperature_split)


def _reference_ece_em(probs, labels, num_bins=10):
    """The ``calibration`` package's get_ece_em (HELM's ece_10_bin), written out with lists."""
    sorted_probs = sorted(probs)
    part = int(np.ceil(len(sorted_probs) / num_bins))
    parts = [sorted_probs[i:i + part] for i in range(0, len(sorted_probs), part)]
    bins = sorted(set([(parts[i][-1] + parts[i + 1][0]) / 2.0 for i in range(len(parts) - 1)] + [1.0]))
    data = np.array(list(zip(probs, labels)), dtype=float)
    index = np.searchsorted(bins, data[:, 0])
    total = 0.0
    for b in range(len(bins)):
        rows = data[index == b]
        if len(rows):
            total += len(rows) / len(data) * abs(rows[:, 0].mean() - rows[:, 1].mean())
    return total


@pytest.fixture(scope="module")
def digits_model():
    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.5, random_state=0)
    # Weak regularisation: an overconfident model, which a temperature > 1 fixes.
    model = LogisticRegression(C=10.0, max_iter=5000).fit(x_train, y_train)
    return (model.decision_function(x_train), y_train, model.decision_function(x_test), y_test)


def test_equal_mass_ece_equals_the_reference(digits_model):
    _, _, logits, y = digits_model
    z = logits - logsumexp(logits, axis=1, keepdims=True)
    p = np.exp(z)
    conf, correct = p.max(axis=1), (p.argmax(axis=1) == y)
    for bins in (10, 15, 7):
        assert equal_mass_ece(conf, correct, bins) == pytest.approx(
            _reference_ece_em(conf.tolist(), correct.astype(int).tolist(), bins), rel=1e-12)
    # Ties at the edges merge bins as in the reference.
    tied = np.array([0.5] * 7 + [0.9] * 5 + [1.0] * 3)
    hits = np.array([1, 0, 0, 1, 1, 0, 1, 1, 1, 1, 0, 1, 1, 1, 1])
    assert equal_mass_ece(tied, hits, 10) == pytest.approx(_reference_ece_em(tied.tolist(), hits.tolist(), 10), rel=1e-12)
    assert math.isnan(equal_mass_ece([], [], 10))


def test_temperature_equals_scipy_and_torch(digits_model):
    _, _, logits, y = digits_model
    fit = fit_temperature(logits, y)

    def nll(t):
        z = logits / t
        return float(np.mean(logsumexp(z, axis=1) - z[np.arange(len(y)), y]))

    ref = minimize_scalar(nll, bounds=(0.05, 50), method="bounded", options={"xatol": 1e-12})
    assert fit.temperature == pytest.approx(ref.x, rel=1e-6)
    assert fit.log_loss_after == pytest.approx(ref.fun, rel=1e-10)
    assert fit.log_loss == pytest.approx(nll(1.0), rel=1e-12)
    assert fit.temperature > 1  # overconfident
    torch = pytest.importorskip("torch")
    t = torch.tensor(fit.temperature, dtype=torch.float64, requires_grad=True)
    loss = torch.nn.functional.cross_entropy(torch.tensor(logits) / t, torch.tensor(y))
    loss.backward()
    assert loss.item() == pytest.approx(fit.log_loss_after, rel=1e-12)
    assert abs(t.grad.item()) < 1e-8  # a minimum: the gradient in T vanishes


def test_temperature_on_log_probabilities_and_padding():
    # Log-probabilities give the same fit as their logits (softmax is shift invariant), and a
    # -inf padded choice changes nothing.
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, (400, 4))
    # Labels drawn from softmax(logits / 2): a model overconfident by a factor of about 2.
    true_p = np.exp(logits / 2 - logsumexp(logits / 2, axis=1, keepdims=True))
    y = np.array([rng.choice(4, p=row) for row in true_p])
    logp = logits - logsumexp(logits, axis=1, keepdims=True)
    a, b = fit_temperature(logits, y), fit_temperature(logp, y)
    assert a.temperature == pytest.approx(b.temperature, rel=1e-9)
    padded = np.hstack([logits, np.full((400, 1), -np.inf)])
    assert fit_temperature(padded, y).temperature == pytest.approx(a.temperature, rel=1e-9)
    w = rng.uniform(0.2, 3, 400)
    weighted = fit_temperature(logits, y, w)

    def nll(t):
        z = logits / t
        return float(np.dot(w, logsumexp(z, axis=1) - z[np.arange(400), y]) / w.sum())

    assert weighted.log_loss_after == pytest.approx(minimize_scalar(nll, bounds=(0.05, 50), method="bounded",
                                                                    options={"xatol": 1e-12}).fun, rel=1e-10)


def test_temperature_split_on_a_held_out_split(digits_model):
    # Fitted on the training split, a memorising model's temperature runs to 0 (separable
    # data): the honest use is two held-out parts, fit on one and report on the other.
    _, _, logits, y = digits_model
    train_logits, y_train, test_logits, y_test = logits[::2], y[::2], logits[1::2], y[1::2]
    same = temperature_split(test_logits, y_test)
    assert same.calibration_loss >= 0
    assert same.log_loss == pytest.approx(same.calibration_loss + same.refinement_loss, rel=1e-12)
    honest = temperature_split(test_logits, y_test, fit_z=train_logits, fit_labels=y_train,
                               fit_weights=np.ones(len(y_train)), fitted_on="train")
    t_train = fit_temperature(train_logits, y_train).temperature
    assert honest.temperature == pytest.approx(t_train, rel=1e-12)
    z = test_logits / t_train
    assert honest.log_loss_after_temperature == pytest.approx(
        float(np.mean(logsumexp(z, axis=1) - z[np.arange(len(y_test)), y_test])), rel=1e-12)
    from sklearn.metrics import log_loss
    p = np.exp(z - logsumexp(z, axis=1, keepdims=True))
    assert honest.log_loss_after_temperature == pytest.approx(log_loss(y_test, p, labels=range(10)), rel=1e-9)
    onehot = np.eye(10)[y_test]
    assert honest.brier_after_temperature == pytest.approx(np.mean(((p - onehot) ** 2).sum(axis=1)), rel=1e-12)


def test_shuffled_rows_give_the_same_temperature_to_the_last_bit():
    # Nearly one-hot predictions: the log loss is almost flat in T, and sums taken in another
    # order moved T by 1 % before the fit sorted its examples (found by the row-order property).
    rng = np.random.default_rng(7)
    logits = rng.normal(0, 30, (60, 4))
    y = np.where(rng.uniform(size=60) < 0.97, logits.argmax(axis=1), rng.integers(0, 4, 60))
    fit = fit_temperature(logits, y)
    for seed in range(5):
        order = np.random.default_rng(seed).permutation(60)
        assert fit_temperature(logits[order], y[order]) == fit


def test_equal_mass_index_is_searchsorted_to_the_integer():
    rng = np.random.default_rng(21)
    conf = rng.beta(5, 2, 50_000)
    edges = equal_mass_edges(conf, 10)
    # Confidences on the edges themselves, at 0, 1 and -0.0, and tied runs: side="left" puts an
    # edge's own value in the bin below it.
    conf = np.concatenate([conf, edges, edges, [0.0, -0.0, 1.0], np.repeat(edges[3], 7)])
    got = equal_mass_index(edges, conf)
    np.testing.assert_array_equal(got, np.searchsorted(edges, conf, side="left"))
    assert got.max() == edges.size - 1 and got.min() == 0  # the first and the last bin are there
    # A NaN confidence goes after every edge, as in searchsorted; so do many edges' bins.
    with_nan = np.append(conf, np.nan)
    np.testing.assert_array_equal(equal_mass_index(edges, with_nan), np.searchsorted(edges, with_nan, side="left"))
    many = np.linspace(0.0, 1.0, INDEX_BY_COMPARISON_EDGES + 5)
    np.testing.assert_array_equal(equal_mass_index(many, conf), np.searchsorted(many, conf, side="left"))
