"""Warnings fire on cases whose answer is known, and intervals cover as often as they claim."""

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.naive_bayes import GaussianNB
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

import losslens
from losslens.accumulate import OTHER


def predictions(model, X_train, y_train, X_test, y_test):
    """A prediction frame with train and validation rows, columns p_<class> by name."""
    model.fit(X_train, y_train)
    parts = []
    for split, X, y in (("train", X_train, y_train), ("validation", X_test, y_test)):
        probs = model.predict_proba(X)
        frame = pd.DataFrame(probs, columns=[f"p_{c}" for c in model.classes_])
        frame.insert(0, "label", y)
        frame.insert(1, "split", split)
        parts.append(frame)
    return pd.concat(parts, ignore_index=True)


def codes(evaluation):
    return {(w.code, w.scope) for w in evaluation.warnings}


@pytest.fixture(scope="module")
def cancer():
    X, y = load_breast_cancer(return_X_y=True)
    return train_test_split(X, y, test_size=0.4, random_state=0, stratify=y)


def test_memorising_tree_fires_near_zero_loss_on_train_and_a_gap(cancer):
    X_train, X_test, y_train, y_test = cancer
    frame = predictions(DecisionTreeClassifier(random_state=0), X_train, y_train, X_test, y_test)
    evaluation = losslens.evaluate(frame)
    train = evaluation.run.by_split["train"]
    assert train.log_loss == pytest.approx(-math.log(1 - np.finfo(float).eps), rel=1e-9)  # ≈ 2.2e-16
    found = codes(evaluation)
    assert ("near_zero_loss", "split=train") in found
    assert ("generalization_gap", "split=validation") in found
    assert ("clipped_probabilities", "overall") in found
    message = next(w.message for w in evaluation.warnings if w.code == "near_zero_loss")
    assert "memorised" in message


def test_regularised_logistic_regression_fires_neither(cancer):
    X_train, X_test, y_train, y_test = cancer
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.05, max_iter=1000))
    frame = predictions(model, X_train, y_train, X_test, y_test)
    evaluation = losslens.evaluate(frame)
    train, valid = evaluation.run.by_split["train"], evaluation.run.by_split["validation"]
    assert abs(valid.log_loss / train.log_loss - 1) < 0.25
    kinds = {code for code, _ in codes(evaluation)}
    assert "near_zero_loss" not in kinds
    assert "generalization_gap" not in kinds


def test_shuffled_predictions_fire_worse_than_prior(cancer):
    X_train, X_test, y_train, y_test = cancer
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    frame = predictions(model, X_train, y_train, X_test, y_test)
    frame["label"] = np.random.default_rng(0).permutation(frame["label"].to_numpy())
    evaluation = losslens.evaluate(frame)
    assert ("worse_than_prior", "overall") in codes(evaluation)
    overall = evaluation.overall
    assert overall.information_gain_bits < 0


def test_naive_bayes_underflow_fires_clipped_probabilities():
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0)
    frame = predictions(GaussianNB(), X_train, y_train, X_test, y_test)
    p_true = frame.filter(like="p_").to_numpy()[np.arange(len(frame)), frame["label"].to_numpy()]
    assert (p_true < 1e-30).any()  # the premise: probabilities of 1e-30 or less for the true class
    evaluation = losslens.evaluate(frame)
    found = {code for code, _ in codes(evaluation)}
    assert {"clipped_probabilities", "confident_errors"} <= found
    assert evaluation.overall.n_clipped == int(((p_true < np.finfo(float).eps) | (p_true > 1 - np.finfo(float).eps)).sum())


def test_prior_shift_and_missing_mass():
    frame = pd.DataFrame({"label": ["a"] * 50 + ["b"] * 50 + ["c"] * 5, "p_a": 0.9, "p_b": 0.1, "p_c": 0.0})
    evaluation = losslens.evaluate(frame)
    found = {code for code, _ in codes(evaluation)}
    assert "prior_shift" in found
    assert "missing_classes" in found  # c has examples but no probability mass
    assert ("small_sample", "overall") not in codes(evaluation)


def test_small_sample_per_scope():
    frame = pd.DataFrame({"label": [0, 1] * 20, "y_prob": 0.5, "split": ["train"] * 35 + ["test"] * 5})
    assert ("small_sample", "split=test") in codes(losslens.evaluate(frame))


def test_thresholds_are_options():
    frame = pd.DataFrame({"label": [0, 1] * 50, "y_prob": np.tile([0.05, 0.95], 50)})
    assert "near_zero_loss" not in {c for c, _ in codes(losslens.evaluate(frame))}
    assert "near_zero_loss" in {c for c, _ in codes(losslens.evaluate(frame, near_zero=0.06))}


def test_ece_and_per_class_ece_against_a_hand_computation():
    rng = np.random.default_rng(5)
    n, k, bins = 2000, 3, 10
    probs = rng.dirichlet([1, 1, 1], size=n)
    label = rng.integers(0, k, size=n)
    frame = pd.DataFrame(probs, columns=["p_0", "p_1", "p_2"]).assign(label=label)
    run = losslens.evaluate(frame, bins=bins).run
    conf, pred = probs.max(axis=1), probs.argmax(axis=1)
    which = np.minimum((conf * bins).astype(int), bins - 1)
    expected = sum(abs((pred[which == b] == label[which == b]).sum() - conf[which == b].sum()) for b in range(bins)) / n
    assert run.overall.ece == pytest.approx(expected, rel=1e-12)
    for c in range(k):
        cb = np.minimum((probs[:, c] * bins).astype(int), bins - 1)
        ece_c = sum(abs((label[cb == b] == c).sum() - probs[cb == b, c].sum()) for b in range(bins)) / n
        assert run.by_class[str(c)].ece == pytest.approx(ece_c, rel=1e-12)
    assert sum(b.weight for b in run.calibration) == n


def test_brier_decomposition_adds_up_and_is_exact_for_binned_forecasts():
    rng = np.random.default_rng(2)
    p = rng.choice([0.05, 0.25, 0.45, 0.65, 0.85], size=4000)  # one forecast value per bin
    y = (rng.uniform(size=p.size) < p * 0.9).astype(int)
    run = losslens.evaluate(pd.DataFrame({"label": y, "y_prob": p}), bins=10).run
    parts = run.brier_decomposition
    assert parts["residual"] == pytest.approx(0, abs=1e-12)
    base = y.mean()
    rel = sum((p == v).mean() * (v - y[p == v].mean()) ** 2 for v in np.unique(p))
    res = sum((p == v).mean() * (y[p == v].mean() - base) ** 2 for v in np.unique(p))
    assert parts["reliability"] == pytest.approx(rel, rel=1e-9)
    assert parts["resolution"] == pytest.approx(res, rel=1e-9)
    assert parts["uncertainty"] == pytest.approx(base * (1 - base), rel=1e-12)
    assert run.overall.brier_score == pytest.approx(rel - res + base * (1 - base), rel=1e-9)


def test_slices_fold_into_other_and_rank_by_excess_loss():
    rng = np.random.default_rng(1)
    n = 3000
    # r7 is the most frequent value, so it is kept by name even with max_slices=5.
    names = [f"r{i}" for i in range(30)]
    weights = np.where(np.array(names) == "r7", 5.0, 1.0)
    region = rng.choice(names, size=n, p=weights / weights.sum())
    p = np.where(region == "r7", 0.3, 0.8)  # r7 is much worse
    frame = pd.DataFrame({"label": 1, "y_prob": p, "region": region})
    run = losslens.evaluate(frame, by=["region"], max_slices=5, classes=["0", "1"]).run
    values = list(run.by_slice["region"])
    assert len(values) == 6 and values[-1] == OTHER
    total = sum(m.n_examples for m in run.by_slice["region"].values())
    assert total == n
    assert values[0] == "r7"  # worst first, whatever its size
    whole = losslens.evaluate(frame, by=["region"], max_slices=100, classes=["0", "1"]).run
    assert list(whole.by_slice["region"])[0] == "r7"


def test_bootstrap_is_seeded_and_brackets_the_estimate():
    frame = pd.DataFrame({"label": [0, 1] * 200, "y_prob": np.tile([0.3, 0.6, 0.2, 0.9], 100)})
    a = losslens.evaluate(frame, bootstrap=200, seed=3)
    b = losslens.evaluate(frame, bootstrap=200, seed=3)
    assert a.overall.bootstrap == b.overall.bootstrap
    lo, hi = a.overall.bootstrap["log_loss"]
    assert lo < a.overall.log_loss < hi
    assert a.overall.bootstrap["method"] == "percentile bootstrap"
    assert "bootstrap" not in losslens.evaluate(frame).to_dict()["runs"][0]["overall"]


def test_normal_interval_covers_about_95_percent():
    """Coverage by simulation: the true expected loss lies in the interval ~95% of the time."""
    rng = np.random.default_rng(11)
    p = 0.7  # the model says P(1) = 0.7; labels are drawn with P(1) = 0.6
    true_loss = -(0.6 * math.log(p) + 0.4 * math.log(1 - p))
    hits = 0
    trials = 400
    for _ in range(trials):
        y = (rng.uniform(size=200) < 0.6).astype(int)
        w = rng.uniform(0.5, 2.0, size=200)
        lo, hi = losslens.evaluate(pd.DataFrame({"label": y, "y_prob": p, "w": w}), weight="w").overall.log_loss_ci95
        hits += lo <= true_loss <= hi
    assert 0.92 <= hits / trials <= 0.975


def test_generalization_gap_interval_reported():
    rng = np.random.default_rng(0)
    train = pd.DataFrame({"label": rng.integers(0, 2, 500), "split": "train"})
    train["y_prob"] = np.where(train.label == 1, 0.9, 0.1)
    valid = pd.DataFrame({"label": rng.integers(0, 2, 500), "split": "validation"})
    valid["y_prob"] = np.where(valid.label == 1, 0.7, 0.3)
    evaluation = losslens.evaluate(pd.concat([train, valid]))
    (gap,) = [w for w in evaluation.warnings if w.code == "generalization_gap"]
    assert "0.3567 nats against 0.1054" in gap.message and "95% interval [" in gap.message


def test_loss_quantiles_are_within_the_histograms_resolution():
    """The streamed quantiles agree with numpy's exact ones to one histogram bin (~12%)."""
    rng = np.random.default_rng(4)
    p = rng.uniform(0.001, 0.999, size=20_000)
    y = (rng.uniform(size=p.size) < p).astype(int)
    run = losslens.evaluate(pd.DataFrame({"label": y, "y_prob": p})).run
    loss = -np.log(np.where(y == 1, p, 1 - p))
    for name, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99)):
        exact = float(np.quantile(loss, q))
        assert run.loss_quantiles[name] == pytest.approx(exact, rel=10 ** (1 / 20) - 1)
