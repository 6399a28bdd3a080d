"""Files at the edges of the classifier layouts: feature columns that share the probability
prefix, files that are not class predictions at all, and the polish of their messages.

Every number is checked against scikit-learn on a model fitted to a data set that ships with
it, written the way people write predictions (``DataFrame.to_csv`` / ``to_parquet`` defaults).
"""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, log_loss
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from test_bad_input import NUMPY_REPR, Expect, check_bad_run


def _fit(loader):
    X, y = loader(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X_train, y_train)
    return model, X_test, y_test


@pytest.fixture(scope="module")
def breast_cancer():
    """Labels 0/1, predict_proba of a fitted model, as a user's DataFrame would hold them."""
    model, X_test, y_test = _fit(load_breast_cancer)
    return y_test, model.predict_proba(X_test), model.classes_


@pytest.fixture(scope="module")
def iris():
    """String labels (the species), predict_proba of a fitted model."""
    model, X_test, y_test = _fit(load_iris)
    names = load_iris().target_names
    return names[y_test], model.predict_proba(X_test), names


def _stats_columns(frame: pd.DataFrame, n: int) -> pd.DataFrame:
    """Per-row statistics a user keeps beside the predictions: a test's p-value, a score."""
    rng = np.random.default_rng(7)
    frame["p_value"] = rng.uniform(0.0, 1.0, n)
    frame["prob_score"] = rng.uniform(0.0, 1.0, n)
    return frame


def _run(run_cli, *args):
    proc = run_cli("metrics", *args, "--json", "-")
    assert proc.returncode == 0, proc.stderr
    return proc, json.loads(proc.stdout)["runs"][0]


# -- 1. feature columns taken as classes ------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_p_value_and_prob_score_left_out_breast_cancer(tmp_path, run_cli, breast_cancer, fmt):
    y, P, classes = breast_cancer
    frame = pd.DataFrame(P, columns=[f"p_{c}" for c in classes])
    frame.insert(0, "label", y)
    frame = _stats_columns(frame, len(y))
    path = tmp_path / f"preds.{fmt}"
    frame.to_csv(path, index=False) if fmt == "csv" else frame.to_parquet(path, index=False)

    proc, run = _run(run_cli, path)

    # Old code: "several prefixes" refusal; without prob_score, accuracy 88 % and a class "value".
    assert run["layout"]["classes"] == ["0", "1"]
    assert run["layout"]["prediction_columns"] == {"0": "p_0", "1": "p_1"}
    # Log and sum in another order than scikit-learn: equal within a few ulps, not bitwise.
    assert run["overall"]["log_loss"] == pytest.approx(log_loss(y, P), rel=1e-12)
    assert run["overall"]["accuracy"] == accuracy_score(y, classes[P.argmax(axis=1)])
    notes = " ".join(run["layout"]["notes"])
    assert "'p_value' left out" in notes and "'prob_score' left out" in notes
    assert not [w for w in run["warnings"] if w["code"] == "unnormalized_rows"]


def test_p_value_left_out_iris_string_labels(tmp_path, run_cli, iris):
    y, P, names = iris
    frame = pd.DataFrame({"species": y})
    for j, name in enumerate(names):
        frame[f"p_{name}"] = P[:, j]
    frame["p_value"] = np.random.default_rng(3).uniform(size=len(y))
    frame.to_csv(tmp_path / "iris.csv", index=False)

    _, run = _run(run_cli, tmp_path / "iris.csv", "--label", "species")

    assert run["layout"]["classes"] == list(names)
    assert run["overall"]["log_loss"] == pytest.approx(log_loss(y, P, labels=names), rel=1e-12)
    assert run["overall"]["accuracy"] == accuracy_score(y, names[P.argmax(axis=1)])
    assert any("'p_value' left out" in n for n in run["layout"]["notes"])


def test_class_absent_from_labels_is_still_a_class(tmp_path, run_cli, iris):
    """A string class no row has (p_virginica) is kept: the rows sum to 1 only with it."""
    y, P, names = iris
    keep = y != "virginica"
    frame = pd.DataFrame({"label": y[keep]})
    for j, name in enumerate(names):
        frame[f"p_{name}"] = P[keep, j]
    frame.to_csv(tmp_path / "two_of_three.csv", index=False)

    _, run = _run(run_cli, tmp_path / "two_of_three.csv")

    assert run["layout"]["classes"] == list(names)
    assert run["overall"]["log_loss"] == pytest.approx(log_loss(y[keep], P[keep], labels=names), rel=1e-12)


def test_ambiguous_feature_column_refused(tmp_path, breast_cancer):
    """One-vs-rest scores that sum to 1 neither with p_value nor without it: refuse, naming both."""
    y, P, _ = breast_cancer
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"label": y, "p_0": P[:, 0] * 0.8, "p_1": P[:, 1] * 0.9,
                          "p_value": rng.uniform(size=len(y))})
    frame.to_csv(tmp_path / "ovr.csv", index=False)

    out = check_bad_run(tmp_path, [tmp_path / "ovr.csv"], [],
                        Expect("ovr.csv", column="p_value", row=1, extra=["--probs p_0,p_1", "--probs p_ "]))
    assert "no label of column 'label'" in out.stderr


def test_unnormalized_warning_names_the_column_not_renormalize(tmp_path, run_cli, breast_cancer):
    """With --probs p_ the user keeps p_value as a class: the warning names it, never --renormalize."""
    y, P, _ = breast_cancer
    frame = pd.DataFrame({"label": y, "p_0": P[:, 0], "p_1": P[:, 1]})
    frame = _stats_columns(frame, len(y)).drop(columns="prob_score")
    frame.to_csv(tmp_path / "forced.csv", index=False)

    _, run = _run(run_cli, tmp_path / "forced.csv", "--probs", "p_")

    warning = next(w for w in run["warnings"] if w["code"] == "unnormalized_rows")
    assert "--renormalize" not in warning["message"]
    assert "'p_value'" in warning["message"] and "--probs p_0,p_1" in warning["message"]


def test_renormalize_still_advised_when_no_column_explains(tmp_path, run_cli, breast_cancer):
    y, P, _ = breast_cancer
    frame = pd.DataFrame({"label": y, "p_0": P[:, 0] * 0.9, "p_1": P[:, 1] * 0.9})
    frame.to_csv(tmp_path / "scaled.csv", index=False)

    _, run = _run(run_cli, tmp_path / "scaled.csv")

    warning = next(w for w in run["warnings"] if w["code"] == "unnormalized_rows")
    assert "--renormalize" in warning["message"]
