"""Every number losslens computes, checked against an independent reference.

The references are scikit-learn (``log_loss``, ``brier_score_loss``, ``accuracy_score``,
``precision_score``, ``recall_score``), SciPy (``scipy.stats.entropy``,
``scipy.special.log_softmax``) and hand-worked constants from the tutorial. The tests are
written from the specification of losslens, not from its implementation.

Conventions
-----------
* Values are compared with ``pytest.approx(x, rel=1e-12, abs=0)`` unless a test says
  otherwise (``abs=0`` because pytest's default absolute tolerance of 1e-12 would make
  the check meaningless for tiny values). Quantities that can be close to zero through
  cancellation (KL divergences, information gain) additionally get ``abs=1e-14``.
* Most tests call the library (``losslens.evaluate``) and read ``ev.to_dict()``, which is
  the same document the CLI prints; a handful run ``python -m losslens metrics ... --json -``
  as a real process (about a second each).
* Files are written by the ``write_table`` fixture from ``conftest.py`` (csv, tsv,
  csv.gz, parquet; floats with ``%.17g`` so they round-trip exactly).

Sections
--------
1. scikit-learn's own ``test_log_loss*`` cases as files and library calls.
2. Column layout: name matching, prefixes, label column names.
3. Weights, clipping, unnormalised rows.
4. Every overall metric against the references (Brier, accuracy, entropy, KL ...).
5. Logits.
6. Soft targets and the tutorial's worked values.
7. Several files / folders / globs as one run.
8. Per split, per slice and per class.
9. The CLI as a real process.
10. Hypothesis property tests.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.special import log_softmax
from scipy.stats import entropy
from sklearn.metrics import (
    accuracy_score,
    brier_score_loss,
    log_loss,
    precision_score,
    recall_score,
)

import losslens

#: Every input format losslens reads (the same tuple as ``conftest.FORMATS``).
FORMATS = ("csv", "tsv", "csv.gz", "parquet")

REL = 1e-12
EPS = np.finfo(np.float64).eps
LN2 = math.log(2.0)
#: Loss of a true-class probability of exactly 0 after clipping to eps.
CLIPPED_ZERO_LOSS = 36.04365338911715

#: Keys of a METRICS block that every label-based evaluation must fill with a number.
LABEL_METRIC_KEYS = (
    "n_examples",
    "weight_sum",
    "log_loss",
    "cross_entropy_bits",
    "perplexity",
    "label_entropy_bits",
    "kl_empirical_bits",
    "information_gain_bits",
    "relative_information_gain",
    "accuracy",
    "brier_score",
    "n_clipped",
    "n_unnormalized",
)
#: Keys that may legitimately be (near) zero through cancellation.
NEAR_ZERO_KEYS = {"kl_empirical_bits", "information_gain_bits", "relative_information_gain",
                  "kl_bits", "target_entropy_bits"}

HYPOTHESIS = settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# --------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------


def close(expected, rel=REL, abs=0.0):
    """``pytest.approx`` with a purely relative tolerance by default."""
    return pytest.approx(expected, rel=rel, abs=abs)


def run_dict(data, **kwargs) -> dict:
    """Evaluate ``data`` with the library and return ``to_dict()["runs"][0]``."""
    ev = losslens.evaluate(data, **kwargs)
    d = ev.to_dict()
    assert d["format_version"] == 3
    assert len(d["runs"]) == 1
    return d["runs"][0]


def class_entry(mapping: dict, cls):
    """Look a class up in a by_class mapping whose keys may be str or the raw label."""
    candidates = [cls, str(cls)]
    if isinstance(cls, (int, float, np.integer, np.floating)) and not isinstance(cls, bool):
        f = float(cls)
        candidates += [f, str(f), int(f) if f.is_integer() else f, str(int(f)) if f.is_integer() else str(f)]
    for key in candidates:
        if key in mapping:
            return mapping[key]
    raise KeyError(f"class {cls!r} not among {list(mapping)}")


def is_missing(x) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def assert_metrics_equal(got: dict, expected: dict, rel=REL, keys=None, context=""):
    """Compare every key of ``expected`` (or ``keys``) in two METRICS dicts."""
    for key in keys if keys is not None else expected:
        exp = expected[key]
        assert key in got, f"{context}missing metric {key!r}; have {sorted(got)}"
        val = got[key]
        if is_missing(exp):
            assert is_missing(val), f"{context}{key}: expected missing, got {val!r}"
            continue
        assert not is_missing(val), f"{context}{key}: expected {exp!r}, got {val!r}"
        if isinstance(exp, float) and math.isinf(exp):
            assert val == exp, f"{context}{key}: expected {exp!r}, got {val!r}"
            continue
        abs_tol = 1e-14 if key in NEAR_ZERO_KEYS else 0.0
        assert val == close(exp, rel=rel, abs=abs_tol), f"{context}{key}: {val!r} != {exp!r}"


def frame(y, P, classes, prefix="p_", label="label", weight=None, order=None) -> pd.DataFrame:
    """A DataFrame with a label column and one probability column per class.

    ``P`` columns are in the order of ``classes``; ``order`` (a permutation of class
    indices) writes the probability columns in a different order.
    """
    P = np.asarray(P, dtype=float)
    cols = {label: list(y)}
    idx = range(len(classes)) if order is None else order
    for j in idx:
        cols[f"{prefix}{classes[j]}"] = P[:, j]
    if weight is not None:
        cols["w"] = np.asarray(weight, dtype=float)
    return pd.DataFrame(cols)


def reference_metrics(y, P, classes, w=None) -> dict:
    """Every overall metric computed with scikit-learn / SciPy / NumPy.

    ``P`` has one column per class in the order of ``classes`` and rows that sum to 1.
    """
    y = np.asarray(y, dtype=object)
    P = np.asarray(P, dtype=float)
    classes = list(classes)
    n = len(y)
    weights = np.ones(n) if w is None else np.asarray(w, dtype=float)
    ll = log_loss(list(y), P, labels=classes, sample_weight=w)
    onehot = np.array([[yi == c for c in classes] for yi in y], dtype=float)
    p_hat = (weights[:, None] * onehot).sum(axis=0) / weights.sum()
    q_bar = (weights[:, None] * P).sum(axis=0) / weights.sum()
    label_h = float(entropy(p_hat, base=2))
    ce_bits = ll / LN2
    pred = [classes[j] for j in P.argmax(axis=1)]
    if len(classes) == 2:
        brier = brier_score_loss(list(y), P[:, 1], pos_label=classes[1], sample_weight=w)
    else:
        brier = brier_score_loss(list(y), P, labels=classes, sample_weight=w)
    return {
        "n_examples": n,
        "weight_sum": float(weights.sum()),
        "log_loss": ll,
        "cross_entropy_bits": ce_bits,
        "perplexity": math.exp(ll),
        "label_entropy_bits": label_h,
        "kl_empirical_bits": float(entropy(p_hat, q_bar, base=2)),
        "information_gain_bits": label_h - ce_bits,
        "relative_information_gain": 1.0 - ce_bits / label_h if label_h > 0 else float("nan"),
        "accuracy": accuracy_score(list(y), pred, sample_weight=w),
        "brier_score": brier,
    }


def per_example_loss(y, P, classes) -> np.ndarray:
    """-log(clip(q_true, eps, 1-eps)), as scikit-learn computes it, per row."""
    P = np.asarray(P, dtype=float)
    idx = np.array([list(classes).index(v) for v in y])
    q = np.clip(P[np.arange(len(idx)), idx], EPS, 1 - EPS)
    return -np.log(q)


def random_multiclass(n=60, seed=0, classes=("bird", "cat", "dog"), alpha=1.0):
    """Labels drawn from Dirichlet predictions (so accuracy is informative); no ties."""
    rng = np.random.default_rng(seed)
    P = rng.dirichlet([alpha] * len(classes), size=n)
    # y_i ~ Categorical(P_i) by inverse-CDF sampling
    u = rng.random(n)
    idx = np.minimum((P.cumsum(axis=1) < u[:, None]).sum(axis=1), len(classes) - 1)
    y = [classes[i] for i in idx]
    w = rng.uniform(0.1, 5.0, size=n)
    return y, P, list(classes), w


# --------------------------------------------------------------------------------------
# 1. scikit-learn's own log_loss test cases, as files
# --------------------------------------------------------------------------------------

# (id, y_true, y_proba, classes)  -- y_proba columns in the order of (sorted) classes.
SKLEARN_CASES = [
    (
        "symbolic_binary_no_yes",
        ["no", "no", "no", "yes", "yes", "yes"],
        [[0.5, 0.5], [0.1, 0.9], [0.01, 0.99], [0.9, 0.1], [0.75, 0.25], [0.001, 0.999]],
        ["no", "yes"],
    ),
    (
        "multiclass_0_6904911",
        [1, 0, 2],
        [[0.2, 0.7, 0.1], [0.6, 0.2, 0.2], [0.6, 0.1, 0.3]],
        [0, 1, 2],
    ),
    (
        "multiclass_doubled",
        [1, 0, 2] * 2,
        [[0.2, 0.7, 0.1], [0.6, 0.2, 0.2], [0.6, 0.1, 0.3]] * 2,
        [0, 1, 2],
    ),
    (
        "string_ham_spam_0_7469410",
        ["ham", "spam", "spam", "ham"],
        [[0.3, 0.7], [0.6, 0.4], [0.4, 0.6], [0.7, 0.3]],
        ["ham", "spam"],
    ),
    (
        "docstring_spam_ham_0_21616",
        ["spam", "ham", "ham", "spam"],
        [[0.1, 0.9], [0.9, 0.1], [0.8, 0.2], [0.35, 0.65]],
        ["ham", "spam"],
    ),
    (
        "labels_option_only_one_class_present",
        [2, 2],
        [[0.1, 0.9], [0.1, 0.9]],
        [1, 2],
    ),
    (
        "labels_option_absent_class",
        [1, 2, 2],
        [[0.7, 0.1, 0.2], [0.2, 0.7, 0.1], [0.1, 0.7, 0.2]],
        [1, 2, 3],
    ),
]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("case", SKLEARN_CASES, ids=[c[0] for c in SKLEARN_CASES])
def test_sklearn_log_loss_cases_as_files_match_sklearn(case, fmt, tmp_path, write_table):
    _, y, P, classes = case
    path = write_table(frame(y, P, classes), tmp_path, fmt)
    run = run_dict(path)
    expected = log_loss(y, P, labels=classes)
    assert run["overall"]["log_loss"] == close(expected)
    assert run["overall"]["n_examples"] == len(y)


def test_sklearn_hand_values_are_reproduced():
    """The constants sklearn's tests hard-code, reproduced by losslens directly."""
    expected = {
        "multiclass_0_6904911": 0.6904911,
        "multiclass_doubled": 0.6904911,
        "string_ham_spam_0_7469410": 0.7469410,
        "docstring_spam_ham_0_21616": 0.21616,
        "labels_option_only_one_class_present": -math.log(0.9),
        "labels_option_absent_class": -math.log(0.7),
    }
    for name, y, P, classes in SKLEARN_CASES:
        if name in expected:
            got = run_dict(frame(y, P, classes))["overall"]["log_loss"]
            # sklearn's constants are rounded (0.21616 to 5 digits, the others to 7)
            assert got == pytest.approx(expected[name], rel=1e-7, abs=1e-5 / 2), name


def test_sklearn_symbolic_binary_matches_bernoulli_logpmf():
    from scipy.stats import bernoulli

    _, y, P, classes = SKLEARN_CASES[0]
    P = np.asarray(P)
    truth = -np.mean(bernoulli.logpmf(np.array(y) == "yes", P[:, 1]))
    assert run_dict(frame(y, P, classes))["overall"]["log_loss"] == close(truth)


@pytest.mark.parametrize(
    "y, y_proba",
    [
        ([0, 1, 0], [0.0, 1.0, 0.0]),
        ([0, 1, 0], [[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]]),
        ([0, 1, 2], [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]),
    ],
    ids=["binary_one_column", "binary_two_columns", "three_classes"],
)
def test_sklearn_perfect_predictions_cost_minus_log_one_minus_eps(y, y_proba):
    """Probability 1 for the true class is clipped to 1-eps: loss -log(1-eps), not 0."""
    if np.ndim(y_proba) == 1:
        data = pd.DataFrame({"label": y, "y_prob": y_proba})
    else:
        data = frame(y, y_proba, sorted(set(y)))
    run = run_dict(data)
    expected = log_loss(y, y_proba)
    # sklearn takes the log with numpy (SIMD on some CPUs), math.log is libm's: the two may
    # differ in the last bit (2.220446049250313e-16 vs 2.2204460492503136e-16), so compare
    # within a few ulps rather than bitwise.
    assert expected == close(-math.log(1 - EPS), rel=1e-15)
    assert run["overall"]["log_loss"] == close(expected)


def test_sklearn_eps_case_certainly_wrong_costs_36_nats_per_row():
    """sklearn test_log_loss_eps: y=[0, 1], P(1)=[1, 0] -- both rows clipped to eps."""
    data = pd.DataFrame({"label": [0, 1], "y_prob": [1.0, 0.0]})
    run = run_dict(data)
    assert log_loss([0, 1], [1.0, 0.0]) == close(CLIPPED_ZERO_LOSS)
    assert run["overall"]["log_loss"] == close(CLIPPED_ZERO_LOSS)
    assert run["overall"]["n_clipped"] == 2


def test_n_clipped_counts_true_class_probability_of_exactly_one():
    """A true-class probability of 1.0 is clipped to 1-eps and therefore counted."""
    P = [[1.0, 0.0], [0.0, 1.0], [0.3, 0.7]]
    run = run_dict(frame([0, 1, 1], P, [0, 1]))
    assert run["overall"]["n_clipped"] == 2


def test_exact_zero_and_one_probabilities_multiclass_match_sklearn():
    y = ["a", "b", "c", "a", "c"]
    P = [[0.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.5, 0.5, 0.0], [1.0, 0.0, 0.0], [0.2, 0.3, 0.5]]
    run = run_dict(frame(y, P, ["a", "b", "c"]))
    o = run["overall"]
    assert o["log_loss"] == close(log_loss(y, P, labels=["a", "b", "c"]))
    # true class 0 in rows 1 and 3 -> clipped up; true class 1 in rows 2 and 4 -> clipped down
    assert o["n_clipped"] == 4
    # two rows cost 36.04 nats, two cost -log(1-eps), one costs -log(0.5)
    hand = (2 * CLIPPED_ZERO_LOSS - 2 * math.log1p(-EPS) - math.log(0.5)) / 5
    assert o["log_loss"] == close(hand)


# --------------------------------------------------------------------------------------
# 2. Column layout
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_probability_columns_are_matched_by_name_not_position(fmt, tmp_path, write_table):
    y, P, classes, _ = random_multiclass(n=40, seed=1)
    # columns written as p_dog, p_bird, p_cat -- not the sorted class order
    data = frame(y, P, classes, order=[2, 0, 1])
    assert list(data.columns) == ["label", "p_dog", "p_bird", "p_cat"]
    run = run_dict(write_table(data, tmp_path, fmt))
    expected = reference_metrics(y, P, classes)
    assert_metrics_equal(run["overall"], expected)
    for j, c in enumerate(classes):
        assert class_entry(run["by_class"], c)["mean_predicted_prob"] == close(P[:, j].mean())


@pytest.mark.parametrize(
    "labels_as, suffixes",
    [("int", ["2.0", "0.0", "1.0"]), ("float", ["2", "0", "1"]), ("int", ["2", "0", "1"])],
    ids=["int_labels_p_1.0_columns", "float_labels_p_1_columns", "int_labels_p_1_columns"],
)
def test_numeric_labels_match_probability_columns_as_numbers(labels_as, suffixes, tmp_path,
                                                             write_table):
    y_int, P, _, _ = random_multiclass(n=30, seed=2, classes=(0, 1, 2))
    y = [float(v) for v in y_int] if labels_as == "float" else [int(v) for v in y_int]
    # column for class 2 first, then 0, then 1
    data = pd.DataFrame({"label": y})
    for suffix, j in zip(suffixes, [2, 0, 1]):
        data[f"p_{suffix}"] = P[:, j]
    for fmt in ("csv", "parquet"):
        run = run_dict(write_table(data, tmp_path, fmt))
        assert run["overall"]["log_loss"] == close(log_loss(y_int, P, labels=[0, 1, 2])), fmt
        assert run["overall"]["accuracy"] == close(
            accuracy_score(y_int, np.asarray(P).argmax(axis=1))), fmt


@pytest.mark.parametrize("prefix", ["p_", "prob_", "proba_", "prob_of_"])
def test_probability_prefixes_are_detected(prefix):
    y, P, classes, _ = random_multiclass(n=25, seed=3)
    run = run_dict(frame(y, P, classes, prefix=prefix, order=[1, 2, 0]))
    assert run["overall"]["log_loss"] == close(log_loss(y, P, labels=classes))


def test_explicit_probs_prefix_is_used():
    """--probs x_ names a prefix that is not one of the defaults."""
    y, P, classes, _ = random_multiclass(n=25, seed=4)
    data = pd.DataFrame({"label": y, "x_bird": P[:, 0], "x_cat": P[:, 1], "x_dog": P[:, 2]})
    run = run_dict(data, probs="x_")
    assert run["overall"]["log_loss"] == close(log_loss(y, P, labels=classes))


@pytest.mark.parametrize("label_col", ["label", "y_true", "target", "y", "class", "true_label"])
def test_default_label_column_names_are_detected(label_col):
    y, P, classes, _ = random_multiclass(n=20, seed=5)
    run = run_dict(frame(y, P, classes, label=label_col))
    assert run["overall"]["log_loss"] == close(log_loss(y, P, labels=classes))


def test_explicit_label_column_overrides_defaults():
    y, P, classes, _ = random_multiclass(n=20, seed=6)
    decoy = list(reversed(y))
    data = frame(y, P, classes, label="truth")
    data["label"] = decoy
    run = run_dict(data, label="truth")
    assert run["overall"]["log_loss"] == close(log_loss(y, P, labels=classes))


# --------------------------------------------------------------------------------------
# 3. Weights, single-column binary, unnormalised rows
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_weighted_log_loss_matches_sklearn_sample_weight(fmt, tmp_path, write_table):
    y, P, classes, w = random_multiclass(n=50, seed=7)
    path = write_table(frame(y, P, classes, weight=w), tmp_path, fmt)
    run = run_dict(path, weight="w")
    o = run["overall"]
    assert o["log_loss"] == close(log_loss(y, P, labels=classes, sample_weight=w))
    assert o["weight_sum"] == close(float(np.sum(w)))
    assert o["n_examples"] == 50


def test_weighted_log_loss_is_not_the_unweighted_one():
    """Guard: the weighted reference really differs, so ignoring weights would fail."""
    y, P, classes, w = random_multiclass(n=50, seed=7)
    weighted = run_dict(frame(y, P, classes, weight=w), weight="w")["overall"]["log_loss"]
    unweighted = log_loss(y, P, labels=classes)
    assert abs(weighted - unweighted) > 1e-6


def test_integer_weights_equal_repeated_rows():
    y = ["a", "b", "c", "a"]
    P = [[0.6, 0.3, 0.1], [0.2, 0.5, 0.3], [0.1, 0.1, 0.8], [0.3, 0.4, 0.3]]
    w = [3, 1, 2, 1]
    weighted = run_dict(frame(y, P, ["a", "b", "c"], weight=w), weight="w")["overall"]
    y_rep = [yi for yi, k in zip(y, w) for _ in range(k)]
    P_rep = [pi for pi, k in zip(P, w) for _ in range(k)]
    repeated = run_dict(frame(y_rep, P_rep, ["a", "b", "c"]))["overall"]
    for key in ("log_loss", "accuracy", "brier_score", "label_entropy_bits", "kl_empirical_bits"):
        assert weighted[key] == close(repeated[key], abs=1e-15), key
    assert weighted["weight_sum"] == 7
    assert repeated["n_examples"] == 7


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_tutorial_binary_one_column_log_loss(fmt, tmp_path, write_table):
    y = [1, 1, 1, 1, 1, 0, 0, 0, 0, 0]
    p = [0.8, 0.9, 0.9, 0.6, 0.8, 0.1, 0.4, 0.2, 0.1, 0.3]
    run = run_dict(write_table(pd.DataFrame({"label": y, "y_prob": p}), tmp_path, fmt))
    o = run["overall"]
    assert o["log_loss"] == close(0.24691989080446482)
    assert o["log_loss"] == close(log_loss(y, p))
    assert o["brier_score"] == close(brier_score_loss(y, p))
    assert o["accuracy"] == close(1.0)


@pytest.mark.parametrize("column", ["y_prob", "prob", "p", "score"])
def test_single_probability_column_names_are_detected(column):
    y, P, classes, _ = random_multiclass(n=30, seed=8, classes=(0, 1))
    data = pd.DataFrame({"label": y, column: P[:, 1]})
    run = run_dict(data)
    assert run["overall"]["log_loss"] == close(log_loss(y, P[:, 1]))
    assert run["overall"]["brier_score"] == close(brier_score_loss(y, P[:, 1]))


def test_single_column_with_unordered_string_labels_is_refused():
    """pos/neg have no natural order: guessing P("pos") would be a silent coin flip."""
    y = ["pos", "neg", "pos", "neg", "pos"]
    p = [0.9, 0.3, 0.6, 0.8, 0.55]  # P("pos")
    message = (
        "<DataFrame>: column 'y_prob' holds one probability, but the labels 'neg' and 'pos' have "
        "no natural order, so it could be P('neg') or P('pos'); say which with "
        "--positive-label pos (or --positive-label neg)"
    )
    with pytest.raises(losslens.InputError, match=re.escape(message)):
        run_dict(pd.DataFrame({"label": y, "y_prob": p}))
    o = run_dict(pd.DataFrame({"label": y, "y_prob": p}), positive_label="pos")["overall"]
    assert o["log_loss"] == close(log_loss(y, p))
    assert o["brier_score"] == close(brier_score_loss(y, p, pos_label="pos"))
    assert o["accuracy"] == close(accuracy_score(y, ["pos" if q > 0.5 else "neg" for q in p]))


def test_single_column_with_labels_2_and_10_needs_positive_label():
    """Only 0/1, False/True and -1/1 name their positive class; 2 and 10 compare as numbers."""
    y = [10, 2, 10, 2, 2]
    p = [0.8, 0.3, 0.4, 0.1, 0.6]  # P(10)
    with pytest.raises(losslens.InputError, match=re.escape("--positive-label 10 (or --positive-label 2)")):
        run_dict(pd.DataFrame({"label": y, "y_prob": p}))
    o = run_dict(pd.DataFrame({"label": y, "y_prob": p}), positive_label="10")["overall"]
    assert o["log_loss"] == close(log_loss(y, p))
    assert o["log_loss"] == close(log_loss(y, np.column_stack([1 - np.array(p), p]), labels=[2, 10]))


def test_single_column_with_positive_label_flips_the_column():
    y = ["pos", "neg", "pos", "neg", "pos"]
    p_neg = [0.1, 0.7, 0.4, 0.2, 0.45]  # P("neg")
    run = run_dict(pd.DataFrame({"label": y, "score": p_neg}), positive_label="neg")
    o = run["overall"]
    P = np.column_stack([p_neg, 1 - np.asarray(p_neg)])  # columns neg, pos
    assert o["log_loss"] == close(log_loss(y, P, labels=["neg", "pos"]))
    assert o["brier_score"] == close(brier_score_loss(y, p_neg, pos_label="neg"))


def test_explicit_positive_prob_column():
    y = [0, 1, 1, 0, 1]
    p = [0.2, 0.7, 0.9, 0.4, 0.35]
    data = pd.DataFrame({"label": y, "model_output": p, "other": [0.5] * 5})
    run = run_dict(data, positive_prob="model_output")
    assert run["overall"]["log_loss"] == close(log_loss(y, p))


def test_unnormalized_rows_are_counted_and_not_renormalized():
    """sklearn 1.9 warns about rows not summing to one and does not renormalise."""
    y = [0, 1, 1, 0, 1]
    P = [[0.2, 0.7], [0.6, 0.3], [0.4, 0.7], [0.8, 0.3], [0.25, 0.75]]
    with pytest.warns(UserWarning, match="do not sum to one"):
        expected = log_loss(y, P)
    run = run_dict(frame(y, P, [0, 1]))
    o = run["overall"]
    assert o["log_loss"] == close(expected)
    assert o["n_unnormalized"] == 4
    assert "unnormalized_rows" in {w["code"] for w in run["warnings"]}
    renormalised = log_loss(y, np.asarray(P) / np.asarray(P).sum(axis=1, keepdims=True))
    assert abs(o["log_loss"] - renormalised) > 1e-3


@pytest.mark.parametrize("deviation, flagged", [
    (5e-9, False), (2e-8, False), (-2e-8, False), (3e-8, True), (-3e-8, True), (1e-6, True),
])
def test_unnormalized_tolerance_is_sklearns(deviation, flagged):
    """A row is unnormalised when |sum - 1| > 1e-8 + sqrt(eps) (~2.49e-8), as in sklearn."""
    import warnings

    y = [0, 1, 2]
    P = [[0.2, 0.3, 0.5 + deviation], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4]]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        expected = log_loss(y, P)
    sklearn_warned = any("do not sum to one" in str(w.message) for w in caught)
    assert sklearn_warned == flagged  # the reference itself
    run = run_dict(frame(y, P, [0, 1, 2]))
    assert run["overall"]["n_unnormalized"] == int(flagged)
    assert ("unnormalized_rows" in {w["code"] for w in run["warnings"]}) == flagged
    assert run["overall"]["log_loss"] == close(expected)


def test_renormalize_divides_each_row_by_its_sum():
    y = [0, 1, 1, 0, 1]
    P = np.array([[0.2, 0.7], [0.6, 0.3], [0.4, 0.7], [0.8, 0.3], [0.25, 0.75]])
    run = run_dict(frame(y, P, [0, 1]), renormalize=True)
    P_norm = P / P.sum(axis=1, keepdims=True)
    assert run["overall"]["log_loss"] == close(log_loss(y, P_norm))
    assert run["overall"]["brier_score"] == close(brier_score_loss(y, P_norm[:, 1]))


# --------------------------------------------------------------------------------------
# 4. Every overall metric against the references
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("classes", [("bird", "cat", "dog"), (0, 1), ("a", "b", "c", "d", "e")],
                         ids=["3_classes", "binary_2_columns", "5_classes"])
def test_all_overall_metrics_match_references(classes, weighted):
    y, P, classes, w = random_multiclass(n=80, seed=9, classes=classes)
    kwargs = {"weight": "w"} if weighted else {}
    run = run_dict(frame(y, P, classes, weight=w if weighted else None), **kwargs)
    expected = reference_metrics(y, P, classes, w if weighted else None)
    assert_metrics_equal(run["overall"], expected)
    assert run["overall"]["n_clipped"] == 0
    assert run["overall"]["n_unnormalized"] == 0


def test_derived_metrics_follow_their_definitions():
    y, P, classes, w = random_multiclass(n=40, seed=10)
    o = run_dict(frame(y, P, classes, weight=w), weight="w")["overall"]
    assert o["cross_entropy_bits"] == close(o["log_loss"] / LN2)
    assert o["perplexity"] == close(math.exp(o["log_loss"]))
    assert o["information_gain_bits"] == close(o["label_entropy_bits"] - o["cross_entropy_bits"])
    assert o["relative_information_gain"] == close(
        1 - o["cross_entropy_bits"] / o["label_entropy_bits"])


def test_label_entropy_and_empirical_kl_hand_worked():
    """Labels a,a,b,c: P_hat = (1/2, 1/4, 1/4), H = 1.5 bits exactly."""
    y = ["a", "a", "b", "c"]
    P = [[0.5, 0.25, 0.25], [0.7, 0.2, 0.1], [0.1, 0.6, 0.3], [0.3, 0.3, 0.4]]
    o = run_dict(frame(y, P, ["a", "b", "c"]))["overall"]
    assert o["label_entropy_bits"] == close(1.5)
    q_bar = np.array([1.6, 1.35, 1.05]) / 4
    p_hat = np.array([0.5, 0.25, 0.25])
    kl = float(np.sum(p_hat * np.log2(p_hat / q_bar)))
    assert o["kl_empirical_bits"] == close(kl)
    assert o["kl_empirical_bits"] == close(entropy(p_hat, q_bar, base=2))


def test_weighted_label_entropy_and_empirical_kl_match_scipy():
    y = ["a", "b", "b", "c", "a"]
    P = np.array([[0.5, 0.25, 0.25], [0.7, 0.2, 0.1], [0.1, 0.6, 0.3], [0.3, 0.3, 0.4],
                  [0.2, 0.2, 0.6]])
    w = np.array([2.0, 0.5, 1.5, 3.0, 1.0])
    o = run_dict(frame(y, P, ["a", "b", "c"], weight=w), weight="w")["overall"]
    p_hat = np.array([3.0, 2.0, 3.0]) / 8.0
    q_bar = (w[:, None] * P).sum(axis=0) / w.sum()
    assert o["label_entropy_bits"] == close(entropy(p_hat, base=2))
    assert o["kl_empirical_bits"] == close(entropy(p_hat, q_bar, base=2))


def test_multiclass_brier_matches_sklearn_with_labels_and_absent_class():
    """Classes from the columns include one nobody has: Brier sums over all 4 columns."""
    y = ["a", "b", "a", "c", "b", "a"]
    P = np.array([[0.5, 0.2, 0.2, 0.1], [0.1, 0.6, 0.2, 0.1], [0.4, 0.4, 0.1, 0.1],
                  [0.1, 0.1, 0.7, 0.1], [0.25, 0.25, 0.25, 0.25], [0.3, 0.1, 0.1, 0.5]])
    classes = ["a", "b", "c", "d"]
    o = run_dict(frame(y, P, classes))["overall"]
    assert o["brier_score"] == close(brier_score_loss(y, P, labels=classes))
    assert o["log_loss"] == close(log_loss(y, P, labels=classes))
    # row 3 ties a/b (0.4, 0.4) -- avoided: only compare accuracy on a tie-free copy
    P2 = P.copy()
    P2[2] = [0.45, 0.35, 0.1, 0.1]
    o2 = run_dict(frame(y, P2, classes))["overall"]
    pred = [classes[j] for j in P2.argmax(axis=1)]
    assert o2["accuracy"] == close(accuracy_score(y, pred))


@pytest.mark.parametrize("layout", ["one_column", "two_columns", "three_classes"])
def test_brier_of_near_certain_predictions_keeps_full_precision(layout):
    """Brier must equal sklearn's sum of squares even when every row is almost perfect.

    Here the per-row Brier terms are ~1e-18; computing them as ``sum q^2 - 2 q_y + 1``
    cancels catastrophically (gives 0), while sklearn's ``(q - y)^2`` keeps every digit.
    """
    d = np.array([1e-9, 2e-9, 3e-9, 5e-10])
    if layout == "three_classes":
        y = ["a", "b", "c", "a"]
        classes = ["a", "b", "c"]
        P = np.array([[1 - 2 * e, e, e] for e in d])
        P[1] = P[1][[1, 0, 2]]
        P[2] = P[2][[1, 2, 0]]
        data = frame(y, P, classes)
        expected = brier_score_loss(y, P, labels=classes)
    else:
        y = [1, 0, 1, 0]
        p = np.where(np.array(y) == 1, 1 - d, d)
        if layout == "one_column":
            data = pd.DataFrame({"label": y, "y_prob": p})
        else:
            data = frame(y, np.column_stack([1 - p, p]), [0, 1])
        expected = brier_score_loss(y, p)
    assert 0 < expected < 1e-16
    assert run_dict(data)["overall"]["brier_score"] == close(expected)


def test_brier_of_confident_predictions_matches_sklearn():
    rng = np.random.default_rng(25)
    y = rng.integers(0, 2, size=500)
    conf = rng.uniform(0.99, 0.99999, size=500)
    p = np.where(y == 1, conf, 1 - conf)
    o = run_dict(pd.DataFrame({"label": y, "y_prob": p}))["overall"]
    assert o["brier_score"] == close(brier_score_loss(y, p))


def test_binary_two_column_brier_is_the_binary_score():
    y, P, classes, w = random_multiclass(n=40, seed=11, classes=("neg", "pos"))
    o = run_dict(frame(y, P, classes, weight=w), weight="w")["overall"]
    expected = brier_score_loss(y, P[:, 1], pos_label="pos", sample_weight=w)
    assert expected == close(brier_score_loss(y, P, labels=classes, sample_weight=w))
    assert o["brier_score"] == close(expected)


def test_library_attributes_agree_with_to_dict():
    y, P, classes, _ = random_multiclass(n=30, seed=12, classes=("bird", "cat", "dog"))
    data = frame(y, P, classes)
    data["split"] = ["train", "test"] * 15
    ev = losslens.evaluate(data, split="split")
    run = ev.runs[0]
    d = ev.to_dict()["runs"][0]
    assert run.overall.log_loss == d["overall"]["log_loss"]
    assert run.overall.log_loss == close(log_loss(y, P, labels=classes))
    assert run.by_split["train"].accuracy == d["by_split"]["train"]["accuracy"]
    assert run.by_class["cat"].log_loss == d["by_class"]["cat"]["log_loss"]


# --------------------------------------------------------------------------------------
# 5. Logits
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("explicit", [True, False], ids=["--logits", "auto_detected"])
def test_logits_match_scipy_log_softmax(explicit):
    rng = np.random.default_rng(13)
    classes = ["a", "b", "c"]
    Z = rng.normal(scale=6.0, size=(40, 3))
    y = [classes[i] for i in rng.integers(0, 3, size=40)]
    data = frame(y, Z, classes, prefix="logit_", order=[2, 0, 1])  # logit_c first
    run = run_dict(data, **({"logits": "logit_"} if explicit else {}))
    logp = log_softmax(Z, axis=1)
    idx = np.array([classes.index(v) for v in y])
    expected = -logp[np.arange(40), idx].mean()
    o = run["overall"]
    assert o["log_loss"] == close(expected)
    Q = np.exp(logp)
    assert o["accuracy"] == close(accuracy_score(y, [classes[j] for j in Z.argmax(axis=1)]))
    assert o["brier_score"] == close(brier_score_loss(y, Q, labels=classes))
    assert o["kl_empirical_bits"] == close(
        entropy(np.bincount(idx, minlength=3) / 40, Q.mean(axis=0), base=2), abs=1e-14)


def test_logit_gap_of_50_is_not_clipped_to_36_nats():
    data = pd.DataFrame({"label": ["a"], "logit_a": [0.0], "logit_b": [50.0]})
    o = run_dict(data)["overall"]
    expected = 50.0 + math.log1p(math.exp(-50.0))
    assert expected == close(-log_softmax([0.0, 50.0])[0])
    assert o["log_loss"] == close(expected)
    assert o["log_loss"] > CLIPPED_ZERO_LOSS + 10
    assert o["n_clipped"] == 0


def test_large_logit_gaps_match_log_softmax():
    classes = ["a", "b", "c"]
    Z = np.array([[0.0, 50.0, -3.0], [0.0, 1000.0, 2.0], [41.0, 0.0, 0.5], [700.0, -700.0, 0.0],
                  [-45.0, 0.0, 1.0]])
    y = ["a", "a", "a", "b", "c"]
    o = run_dict(frame(y, Z, classes, prefix="logit_"), logits="logit_")["overall"]
    logp = log_softmax(Z, axis=1)
    per_row = -logp[np.arange(5), [0, 0, 0, 1, 2]]
    assert per_row[1] == close(1000.0)
    assert o["log_loss"] == close(per_row.mean())
    assert o["n_clipped"] == 0


def test_weighted_logits_match_log_softmax():
    rng = np.random.default_rng(14)
    classes = ["x", "y"]
    Z = rng.normal(scale=20.0, size=(30, 2))
    y = [classes[i] for i in rng.integers(0, 2, size=30)]
    w = rng.uniform(0.5, 3.0, size=30)
    o = run_dict(frame(y, Z, classes, prefix="logit_", weight=w), weight="w")["overall"]
    logp = log_softmax(Z, axis=1)
    idx = np.array([classes.index(v) for v in y])
    loss = -logp[np.arange(30), idx]
    assert o["log_loss"] == close(np.sum(w * loss) / np.sum(w))


def test_single_positive_logit_matches_log_softmax():
    y = [1, 0, 1, 0, 1, 0, 1, 0]
    z = np.array([2.5, -1.0, -60.0, 45.0, 0.3, 700.0, -800.0, 1000.0])  # exp(800) overflows
    o = run_dict(pd.DataFrame({"label": y, "margin": z}), positive_logit="margin")["overall"]
    per_row = np.array([-log_softmax([0.0, zi])[yi] for zi, yi in zip(z, y)])
    assert per_row[2] == close(60.0)
    assert per_row[6] == close(800.0)
    assert o["log_loss"] == close(per_row.mean())
    assert o["n_clipped"] == 0
    assert o["accuracy"] == close(accuracy_score(y, (z > 0).astype(int)))


def test_single_positive_logit_with_string_labels():
    y = ["spam", "ham", "spam", "ham"]
    z = np.array([1.5, -0.5, -3.0, 0.25])  # logit of P("spam")
    o = run_dict(pd.DataFrame({"label": y, "s": z}), positive_logit="s", positive_label="spam")["overall"]
    expected = np.mean([-log_softmax([0.0, zi])[1 if yi == "spam" else 0] for zi, yi in zip(z, y)])
    assert o["log_loss"] == close(expected)


# --------------------------------------------------------------------------------------
# 6. Soft targets and the tutorial's worked values
# --------------------------------------------------------------------------------------


def soft_frame(T, Q, classes=("a", "b", "c"), weight=None) -> pd.DataFrame:
    T = np.atleast_2d(np.asarray(T, dtype=float))
    Q = np.atleast_2d(np.asarray(Q, dtype=float))
    cols = {}
    for j, c in enumerate(classes):
        cols[f"t_{c}"] = T[:, j]
    for j, c in enumerate(classes):
        cols[f"p_{c}"] = Q[:, j]
    if weight is not None:
        cols["w"] = np.asarray(weight, dtype=float)
    return pd.DataFrame(cols)


TUTORIAL_P = [0.10, 0.40, 0.50]
TUTORIAL_Q = [0.80, 0.15, 0.05]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_tutorial_soft_target_cross_entropy_entropy_and_kl(fmt, tmp_path, write_table):
    path = write_table(soft_frame(TUTORIAL_P, TUTORIAL_Q), tmp_path, fmt)
    o = run_dict(path, targets="t_")["overall"]
    assert o["cross_entropy_bits"] == close(3.2879430945989)
    assert o["target_entropy_bits"] == close(1.3609640474436812)
    assert o["kl_bits"] == close(1.9269790471552187)
    assert o["log_loss"] == close(3.2879430945989 * LN2)
    assert o["perplexity"] == close(math.exp(3.2879430945989 * LN2))
    assert o["n_examples"] == 1


def test_tutorial_soft_target_with_roles_swapped():
    o = run_dict(soft_frame(TUTORIAL_Q, TUTORIAL_P), targets="t_")["overall"]
    assert o["cross_entropy_bits"] == close(2.9058316901429942)
    assert o["target_entropy_bits"] == close(entropy(TUTORIAL_Q, base=2))
    assert o["kl_bits"] == close(entropy(TUTORIAL_Q, TUTORIAL_P, base=2))


def test_tutorial_constants_agree_with_scipy():
    """The hand-worked constants themselves, so a typo in them cannot hide."""
    P, Q = np.array(TUTORIAL_P), np.array(TUTORIAL_Q)
    assert -np.sum(P * np.log2(Q)) == close(3.2879430945989)
    assert entropy(P, base=2) == close(1.3609640474436812)
    assert entropy(P, Q, base=2) == close(1.9269790471552187)
    assert -np.sum(Q * np.log2(P)) == close(2.9058316901429942)


def test_soft_targets_weighted_match_scipy():
    rng = np.random.default_rng(15)
    T = rng.dirichlet([0.5] * 4, size=12)
    Q = rng.dirichlet([2.0] * 4, size=12)
    w = rng.uniform(0.2, 4.0, size=12)
    classes = ("a", "b", "c", "d")
    o = run_dict(soft_frame(T, Q, classes, weight=w), targets="t_", weight="w")["overall"]
    h = np.array([entropy(t, base=2) for t in T])
    kl = np.array([entropy(t, q, base=2) for t, q in zip(T, Q)])
    ce = -np.sum(T * np.log2(Q), axis=1)
    assert o["target_entropy_bits"] == close(np.sum(w * h) / w.sum())
    assert o["kl_bits"] == close(np.sum(w * kl) / w.sum())
    assert o["cross_entropy_bits"] == close(np.sum(w * ce) / w.sum())
    assert o["log_loss"] == close(np.sum(w * ce) / w.sum() * LN2)


def test_soft_target_and_prediction_columns_are_matched_by_name():
    """t_ columns in order a,b,c and p_ columns in order c,a,b must still pair by name."""
    T = np.array([TUTORIAL_P, [0.2, 0.2, 0.6]])
    Q = np.array([TUTORIAL_Q, [0.5, 0.3, 0.2]])
    data = pd.DataFrame({"t_a": T[:, 0], "t_b": T[:, 1], "t_c": T[:, 2],
                         "p_c": Q[:, 2], "p_a": Q[:, 0], "p_b": Q[:, 1]})
    o = run_dict(data, targets="t_")["overall"]
    assert o["cross_entropy_bits"] == close(np.mean(-np.sum(T * np.log2(Q), axis=1)))
    assert o["kl_bits"] == close(np.mean([entropy(t, q, base=2) for t, q in zip(T, Q)]))


def test_one_hot_soft_targets_equal_hard_labels():
    y, P, classes, _ = random_multiclass(n=30, seed=16)
    T = np.array([[float(yi == c) for c in classes] for yi in y])
    o = run_dict(soft_frame(T, P, classes), targets="t_")["overall"]
    assert o["log_loss"] == close(log_loss(y, P, labels=classes))
    assert o["target_entropy_bits"] == close(0.0, abs=1e-15)


# --------------------------------------------------------------------------------------
# 7. Several files, a glob or a folder of parts: one run
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["folder", "list_of_paths", "glob"])
def test_parquet_parts_make_one_run_equal_to_the_whole_frame(how, tmp_path, write_table):
    y, P, classes, w = random_multiclass(n=90, seed=17)
    whole = frame(y, P, classes, weight=w)
    parts_dir = tmp_path / "parts"
    paths = [
        write_table(whole.iloc[a:b].reset_index(drop=True), parts_dir, "parquet", stem=f"part-{i}")
        for i, (a, b) in enumerate([(0, 20), (20, 55), (55, 90)])
    ]
    data = {"folder": parts_dir, "list_of_paths": paths,
            "glob": str(parts_dir / "part-*.parquet")}[how]
    got = run_dict(data, weight="w")
    ref = run_dict(whole, weight="w")
    assert got["overall"]["n_examples"] == 90
    assert_metrics_equal(got["overall"], ref["overall"], keys=LABEL_METRIC_KEYS)
    assert got["overall"]["log_loss"] == close(log_loss(y, P, labels=classes, sample_weight=w))
    for c in classes:
        assert class_entry(got["by_class"], c)["log_loss"] == close(
            class_entry(ref["by_class"], c)["log_loss"])


def test_csv_parts_make_one_run(tmp_path, write_table):
    y, P, classes, _ = random_multiclass(n=30, seed=18)
    whole = frame(y, P, classes)
    paths = [write_table(whole.iloc[i::3].reset_index(drop=True), tmp_path, "csv", stem=f"p{i}")
             for i in range(3)]
    got = run_dict(paths)
    assert got["overall"]["n_examples"] == 30
    assert got["overall"]["log_loss"] == close(log_loss(y, P, labels=classes))


def test_csv_larger_than_one_read_block_is_one_run(tmp_path, write_table):
    """A CSV of ~10 MB is read in several blocks; the sums must still be the whole file's."""
    n = 110_000
    y, P, classes, w = random_multiclass(n=n, seed=26)
    data = frame(y, P, classes, weight=w)
    data["split"] = np.where(np.arange(n) % 7 == 0, "test", "train")
    path = write_table(data, tmp_path, "csv")
    assert path.stat().st_size > 9 * 10**6
    run = run_dict(path, weight="w", split="split")
    o = run["overall"]
    assert o["n_examples"] == n
    assert o["log_loss"] == close(log_loss(y, P, labels=classes, sample_weight=w), rel=1e-11)
    assert o["accuracy"] == close(
        accuracy_score(y, [classes[j] for j in P.argmax(axis=1)], sample_weight=w), rel=1e-11)
    m = (data["split"] == "test").to_numpy()
    assert run["by_split"]["test"]["n_examples"] == int(m.sum())
    assert run["by_split"]["test"]["log_loss"] == close(
        log_loss(np.array(y)[m], P[m], labels=classes, sample_weight=w[m]), rel=1e-11)


# --------------------------------------------------------------------------------------
# 8. Per split, per slice, per class
# --------------------------------------------------------------------------------------


def split_slice_data(seed=19, n=120):
    """Random 3-class data with a split and a region column; split "test" has no "dog"."""
    y, P, classes, w = random_multiclass(n=n, seed=seed)
    rng = np.random.default_rng(seed + 1000)
    split = rng.choice(["train", "valid", "test"], size=n)
    split = np.where((split == "test") & (np.array(y) == "dog"), "train", split)
    region = rng.choice(["north", "south", "east"], size=n)
    data = frame(y, P, classes, weight=w)
    data["split"] = split
    data["region"] = region
    return data, y, P, classes, w


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_per_split_metrics_equal_sklearn_on_the_subset(weighted):
    data, y, P, classes, w = split_slice_data()
    kwargs = {"weight": "w"} if weighted else {}
    run = run_dict(data, split="split", **kwargs)
    assert set(run["by_split"]) == {"train", "valid", "test"}
    y = np.array(y)
    for s in ("train", "valid", "test"):
        m = (data["split"] == s).to_numpy()
        ws = w[m] if weighted else None
        expected = reference_metrics(y[m], P[m], classes, ws)
        assert_metrics_equal(run["by_split"][s], expected, context=f"split {s}: ")
    assert "dog" not in set(y[(data["split"] == "test").to_numpy()])


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_per_slice_metrics_equal_sklearn_on_the_subset(weighted):
    data, y, P, classes, w = split_slice_data(seed=20)
    kwargs = {"weight": "w"} if weighted else {}
    run = run_dict(data, by=("region",), **kwargs)
    slices = run["by_slice"]["region"]
    assert set(slices) == {"north", "south", "east"}
    y = np.array(y)
    for r in ("north", "south", "east"):
        m = (data["region"] == r).to_numpy()
        ws = w[m] if weighted else None
        assert slices[r]["log_loss"] == close(log_loss(y[m], P[m], labels=classes, sample_weight=ws))
        assert slices[r]["n_examples"] == int(m.sum())
        assert_metrics_equal(slices[r], reference_metrics(y[m], P[m], classes, ws),
                             context=f"region {r}: ")


def test_slice_with_a_missing_class_uses_all_classes():
    y = ["a", "b", "a", "c", "a", "b"]
    P = np.array([[0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.5, 0.2, 0.3], [0.1, 0.2, 0.7],
                  [0.3, 0.3, 0.4], [0.25, 0.5, 0.25]])
    data = frame(y, P, ["a", "b", "c"])
    data["grp"] = ["g1", "g1", "g1", "g2", "g2", "g2"]
    run = run_dict(data, by=("grp",))
    g1 = run["by_slice"]["grp"]["g1"]  # no "c" in g1
    expected = reference_metrics(y[:3], P[:3], ["a", "b", "c"])
    assert_metrics_equal(g1, expected)


def test_by_class_log_loss_is_the_mean_loss_of_that_class_rows():
    y, P, classes, _ = random_multiclass(n=90, seed=21)
    run = run_dict(frame(y, P, classes))
    losses = per_example_loss(y, P, classes)
    y_arr = np.array(y)
    for c in classes:
        m = y_arr == c
        entry = class_entry(run["by_class"], c)
        assert entry["n_examples"] == int(m.sum())
        assert entry["log_loss"] == close(losses[m].mean())
        assert entry["log_loss"] == close(log_loss(y_arr[m], P[m], labels=classes))


def test_weighted_by_class_log_loss_is_the_weighted_mean_of_that_class_rows():
    y, P, classes, w = random_multiclass(n=90, seed=27)
    run = run_dict(frame(y, P, classes, weight=w), weight="w")
    losses = per_example_loss(y, P, classes)
    y_arr = np.array(y)
    for c in classes:
        m = y_arr == c
        entry = class_entry(run["by_class"], c)
        assert entry["log_loss"] == close(np.sum(w[m] * losses[m]) / np.sum(w[m]))
        assert entry["log_loss"] == close(
            log_loss(y_arr[m], P[m], labels=classes, sample_weight=w[m]))


def test_by_class_recall_precision_and_shares_match_sklearn():
    y, P, classes, _ = random_multiclass(n=90, seed=22)
    run = run_dict(frame(y, P, classes))
    pred = [classes[j] for j in P.argmax(axis=1)]
    recall = recall_score(y, pred, labels=classes, average=None)
    precision = precision_score(y, pred, labels=classes, average=None)
    for j, c in enumerate(classes):
        entry = class_entry(run["by_class"], c)
        assert entry["recall"] == close(recall[j])
        assert entry["precision"] == close(precision[j])
        assert entry["actual_share"] == close(np.mean(np.array(y) == c))
        assert entry["predicted_share"] == close(np.mean(np.array(pred) == c))
        assert entry["mean_predicted_prob"] == close(P[:, j].mean())


def test_weighted_by_class_shares_are_p_hat_and_q_bar():
    """actual_share is P_hat(c) and mean_predicted_prob is Q_bar(c), both weighted."""
    y, P, classes, w = random_multiclass(n=90, seed=28)
    run = run_dict(frame(y, P, classes, weight=w), weight="w")
    y_arr = np.array(y)
    pred = np.array([classes[j] for j in P.argmax(axis=1)])
    recall = recall_score(y, pred, labels=classes, average=None, sample_weight=w)
    precision = precision_score(y, pred, labels=classes, average=None, sample_weight=w)
    for j, c in enumerate(classes):
        entry = class_entry(run["by_class"], c)
        assert entry["actual_share"] == close(w[y_arr == c].sum() / w.sum())
        assert entry["mean_predicted_prob"] == close(np.sum(w * P[:, j]) / w.sum())
        assert entry["predicted_share"] == close(w[pred == c].sum() / w.sum())
        assert entry["recall"] == close(recall[j])
        assert entry["precision"] == close(precision[j])


def test_by_class_with_clipped_rows():
    y = ["a", "a", "b", "c"]
    P = [[0.0, 0.5, 0.5], [0.9, 0.05, 0.05], [0.2, 0.8, 0.0], [0.3, 0.7, 0.0]]
    run = run_dict(frame(y, P, ["a", "b", "c"]))
    a = class_entry(run["by_class"], "a")
    assert a["log_loss"] == close((CLIPPED_ZERO_LOSS - math.log(0.9)) / 2)
    c = class_entry(run["by_class"], "c")
    assert c["log_loss"] == close(CLIPPED_ZERO_LOSS)
    assert run["overall"]["n_clipped"] == 2


# --------------------------------------------------------------------------------------
# 9. The CLI as a real process
# --------------------------------------------------------------------------------------


def test_cli_two_inputs_are_two_runs_matching_sklearn(tmp_path, write_table, run_cli_json):
    _, y1, P1, c1 = SKLEARN_CASES[2]  # multiclass, doubled
    _, y2, P2, c2 = SKLEARN_CASES[3]  # ham / spam
    f1 = write_table(frame(y1, P1, c1), tmp_path, "csv", stem="multi")
    f2 = write_table(frame(y2, P2, c2, order=[1, 0]), tmp_path, "parquet", stem="hamspam")
    _, y3, P3, c3 = SKLEARN_CASES[5]  # y = [2, 2], columns p_1, p_2
    f3 = write_table(frame(y3, P3, c3), tmp_path, "tsv", stem="oneclass")
    doc = run_cli_json(f1, f2, f3, "--name", "multi", "--name", "hamspam", "--name", "oneclass",
                       cwd=tmp_path)
    assert doc["format_version"] == 3
    assert [r["name"] for r in doc["runs"]] == ["multi", "hamspam", "oneclass"]
    r1, r2, r3 = doc["runs"]
    # one class only: H(P_hat) = 0, so 1 - CE/H is undefined and must be JSON null
    assert r3["overall"]["log_loss"] == close(log_loss(y3, P3, labels=c3))
    assert r3["overall"]["label_entropy_bits"] == 0
    assert r3["overall"]["relative_information_gain"] is None
    assert r1["overall"]["log_loss"] == close(log_loss(y1, P1))
    assert r1["overall"]["log_loss"] == pytest.approx(0.6904911, rel=1e-6)
    assert r2["overall"]["log_loss"] == close(log_loss(y2, P2))
    assert r2["overall"]["log_loss"] == pytest.approx(0.7469410, rel=1e-6)
    y2a, P2a = np.array(y2), np.array(P2)
    m = y2a == "spam"
    assert class_entry(r2["by_class"], "spam")["log_loss"] == close(
        -np.log(P2a[m, 1]).mean())


def test_cli_weighted_gzip_all_metrics(tmp_path, write_table, run_cli_json):
    y, P, classes, w = random_multiclass(n=60, seed=23)
    path = write_table(frame(y, P, classes, weight=w, order=[2, 1, 0]), tmp_path, "csv.gz")
    doc = run_cli_json(path, "--weight", "w", cwd=tmp_path)
    assert_metrics_equal(doc["runs"][0]["overall"], reference_metrics(y, P, classes, w))


def test_cli_tutorial_binary_one_column_tsv(tmp_path, write_table, run_cli_json):
    y = [1, 1, 1, 1, 1, 0, 0, 0, 0, 0]
    p = [0.8, 0.9, 0.9, 0.6, 0.8, 0.1, 0.4, 0.2, 0.1, 0.3]
    path = write_table(pd.DataFrame({"label": y, "y_prob": p}), tmp_path, "tsv")
    o = run_cli_json(path, cwd=tmp_path)["runs"][0]["overall"]
    assert o["log_loss"] == close(0.24691989080446482)
    assert o["brier_score"] == close(brier_score_loss(y, p))
    assert o["label_entropy_bits"] == close(1.0)


def test_cli_clipping_and_unnormalized_rows(tmp_path, write_table, run_cli_json):
    y = ["a", "b", "c", "a", "b"]
    P = [[0.0, 1.0, 0.0], [0.2, 0.7, 0.3], [0.1, 0.1, 0.8], [0.5, 0.4, 0.3], [0.3, 0.7, 0.0]]
    path = write_table(frame(y, P, ["a", "b", "c"]), tmp_path, "parquet")
    run = run_cli_json(path, cwd=tmp_path)["runs"][0]
    with pytest.warns(UserWarning, match="do not sum to one"):
        expected = log_loss(y, P, labels=["a", "b", "c"])
    o = run["overall"]
    assert o["log_loss"] == close(expected)
    assert o["n_clipped"] == 1
    assert o["n_unnormalized"] == 2
    assert "unnormalized_rows" in {w["code"] for w in run["warnings"]}


def test_cli_logits_with_a_gap_of_50(tmp_path, write_table, run_cli_json):
    Z = np.array([[0.0, 50.0], [3.0, -1.0], [-2.0, 2.5]])
    y = ["a", "a", "b"]
    path = write_table(frame(y, Z, ["a", "b"], prefix="logit_"), tmp_path, "csv")
    o = run_cli_json(path, "--logits", "logit_", cwd=tmp_path)["runs"][0]["overall"]
    per_row = -log_softmax(Z, axis=1)[np.arange(3), [0, 0, 1]]
    assert per_row[0] == close(50.0 + math.log1p(math.exp(-50.0)))
    assert o["log_loss"] == close(per_row.mean())
    assert o["n_clipped"] == 0


def test_cli_positive_logit(tmp_path, write_table, run_cli_json):
    y = [0, 1, 1, 0]
    z = np.array([-2.0, 3.0, -55.0, 0.5])
    path = write_table(pd.DataFrame({"label": y, "z": z}), tmp_path, "csv")
    o = run_cli_json(path, "--positive-logit", "z", cwd=tmp_path)["runs"][0]["overall"]
    expected = np.mean([-log_softmax([0.0, zi])[yi] for zi, yi in zip(z, y)])
    assert o["log_loss"] == close(expected)


def test_cli_tutorial_soft_targets(tmp_path, write_table, run_cli_json):
    path = write_table(soft_frame(TUTORIAL_P, TUTORIAL_Q), tmp_path, "csv")
    o = run_cli_json(path, "--targets", "t_", cwd=tmp_path)["runs"][0]["overall"]
    assert o["cross_entropy_bits"] == close(3.2879430945989)
    assert o["target_entropy_bits"] == close(1.3609640474436812)
    assert o["kl_bits"] == close(1.9269790471552187)


def test_cli_split_and_slice(tmp_path, write_table, run_cli_json):
    data, y, P, classes, w = split_slice_data(seed=24, n=90)
    path = write_table(data, tmp_path, "csv")
    run = run_cli_json(path, "--split", "split", "--by", "region", "--weight", "w",
                       cwd=tmp_path)["runs"][0]
    y = np.array(y)
    for s in ("train", "valid", "test"):
        m = (data["split"] == s).to_numpy()
        assert run["by_split"][s]["log_loss"] == close(
            log_loss(y[m], P[m], labels=classes, sample_weight=w[m]))
    for r in ("north", "south", "east"):
        m = (data["region"] == r).to_numpy()
        assert run["by_slice"]["region"][r]["log_loss"] == close(
            log_loss(y[m], P[m], labels=classes, sample_weight=w[m]))
    assert run["overall"]["log_loss"] == close(log_loss(y, P, labels=classes, sample_weight=w))


# --------------------------------------------------------------------------------------
# 10. Hypothesis property tests
# --------------------------------------------------------------------------------------


@st.composite
def prob_rows(draw, n, k, min_value=0.0):
    """``n`` probability rows over ``k`` classes (exact zeros possible if min_value=0)."""
    rows = []
    for _ in range(n):
        raw = draw(st.lists(st.floats(min_value=min_value, max_value=1.0, allow_nan=False),
                            min_size=k, max_size=k))
        total = sum(raw)
        if total <= 0 or not math.isfinite(total):
            raw = [1.0] * k
            total = float(k)
        rows.append([v / total for v in raw])
    return np.array(rows, dtype=float)


@st.composite
def labelled_data(draw, max_n=25, with_weights=True):
    k = draw(st.integers(min_value=2, max_value=4))
    n = draw(st.integers(min_value=1, max_value=max_n))
    P = draw(prob_rows(n, k))
    y = draw(st.lists(st.integers(min_value=0, max_value=k - 1), min_size=n, max_size=n))
    w = None
    if with_weights and draw(st.booleans()):
        w = np.array(draw(st.lists(st.floats(min_value=0.01, max_value=100.0), min_size=n,
                                   max_size=n)))
    return y, P, list(range(k)), w


@HYPOTHESIS
@given(data=st.data())
def test_property_soft_target_cross_entropy_is_entropy_plus_kl(data):
    k = data.draw(st.integers(min_value=2, max_value=4), label="k")
    n = data.draw(st.integers(min_value=1, max_value=10), label="n")
    T = data.draw(prob_rows(n, k), label="targets")
    Q = data.draw(prob_rows(n, k, min_value=1e-3), label="predictions")
    classes = "abcd"[:k]
    o = run_dict(soft_frame(T, Q, classes), targets="t_")["overall"]
    assert o["cross_entropy_bits"] == pytest.approx(
        o["target_entropy_bits"] + o["kl_bits"], rel=1e-9, abs=1e-12)
    h = np.mean([entropy(t, base=2) for t in T])
    kl = np.mean([entropy(t, q, base=2) for t, q in zip(T, Q)])
    assert o["target_entropy_bits"] == pytest.approx(h, rel=1e-9, abs=1e-12)
    assert o["kl_bits"] == pytest.approx(kl, rel=1e-9, abs=1e-12)


def _all_numbers(run: dict) -> dict:
    """Flatten overall and by_class numbers of a run dict into {path: value}."""
    out = {}
    for key, val in run["overall"].items():
        if isinstance(val, (int, float)) or val is None:
            out[("overall", key)] = val
    for cls, entry in run["by_class"].items():
        for key, val in entry.items():
            if isinstance(val, (int, float)) or val is None:
                out[("by_class", str(cls), key)] = val
    return out


def assert_runs_equal(a: dict, b: dict, rel=REL):
    na, nb = _all_numbers(a), _all_numbers(b)
    assert set(na) == set(nb)
    for key in na:
        va, vb = na[key], nb[key]
        if is_missing(va) or is_missing(vb):
            assert is_missing(va) and is_missing(vb), key
        elif isinstance(va, float) and math.isinf(va):
            assert va == vb, key
        else:
            assert va == pytest.approx(vb, rel=rel, abs=1e-14), key


@HYPOTHESIS
@given(sample=labelled_data(), seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_property_row_order_does_not_change_any_metric(sample, seed):
    y, P, classes, w = sample
    df = frame(y, P, classes, weight=w)
    kwargs = {"weight": "w"} if w is not None else {}
    perm = np.random.default_rng(seed).permutation(len(df))
    shuffled = df.iloc[perm].reset_index(drop=True)
    assert_runs_equal(run_dict(df, **kwargs), run_dict(shuffled, **kwargs))


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(sample=labelled_data(max_n=15))
def test_property_csv_tsv_gzip_parquet_give_the_same_numbers(sample, tmp_path_factory,
                                                            write_table):
    y, P, classes, w = sample
    df = frame(y, P, classes, weight=w)
    kwargs = {"weight": "w"} if w is not None else {}
    directory = tmp_path_factory.mktemp("formats")
    reference = run_dict(df, **kwargs)
    for fmt in FORMATS:
        got = run_dict(write_table(df, directory, fmt), **kwargs)
        assert_runs_equal(got, reference)


@HYPOTHESIS
@given(sample=labelled_data(max_n=30))
def test_property_log_loss_equals_sklearn(sample):
    y, P, classes, w = sample
    df = frame(y, P, classes, weight=w)
    kwargs = {"weight": "w"} if w is not None else {}
    o = run_dict(df, **kwargs)["overall"]
    assert o["log_loss"] == close(log_loss(y, P, labels=classes, sample_weight=w))
    expected_clipped = int(np.sum(
        (P[np.arange(len(y)), y] < EPS) | (P[np.arange(len(y)), y] > 1 - EPS)))
    assert o["n_clipped"] == expected_clipped
