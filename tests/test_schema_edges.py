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


def test_tiny_p_values_are_left_out_too(tmp_path, run_cli, breast_cancer):
    """p-values of 1e-6 keep every row within tolerance of 1, but the classes alone sum closer."""
    y, P, classes = breast_cancer
    frame = pd.DataFrame({"label": y, "p_0": P[:, 0], "p_1": P[:, 1],
                          "p_value": np.random.default_rng(5).uniform(0, 2e-6, len(y))})
    frame.to_csv(tmp_path / "tiny.csv", index=False)

    _, run = _run(run_cli, tmp_path / "tiny.csv")

    assert run["layout"]["classes"] == ["0", "1"]
    assert run["overall"]["log_loss"] == pytest.approx(log_loss(y, P), rel=1e-12)
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


# -- 2. files that are not predictions say what they look like ---------------------------------


@pytest.fixture(scope="module")
def diabetes_regression():
    """A regression target with a fractional part (the diabetes progression / 10) and a fit."""
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import LinearRegression

    X, y = load_diabetes(return_X_y=True)
    y = y / 10
    return y, LinearRegression().fit(X, y).predict(X)


@pytest.mark.parametrize("columns", [("y_true", "y_prob"), ("target", "prediction")])
def test_regression_file_says_regression(tmp_path, diabetes_regression, columns):
    y, predicted = diabetes_regression
    pd.DataFrame({columns[0]: y, columns[1]: predicted}).to_csv(tmp_path / "reg.csv", index=False)

    # Old code: "label 7.5 is a third class" / "no prediction columns".
    check_bad_run(tmp_path, [tmp_path / "reg.csv"], [], Expect(
        "reg.csv", column=columns[0], row=1,
        extra=[f"label {y[0]:g} is not a class", "looks like regression", "losslens scores class probabilities"]))


def test_regression_labels_with_class_columns_say_regression(tmp_path, diabetes_regression):
    y, _ = diabetes_regression
    pd.DataFrame({"label": y, "p_0": 0.4, "p_1": 0.6}).to_csv(tmp_path / "reg.csv", index=False)

    check_bad_run(tmp_path, [tmp_path / "reg.csv"], [],
                  Expect("reg.csv", column="label", row=1, extra=["look like regression"]))


def _multilabel(n=60, seed=0):
    rng = np.random.default_rng(seed)
    targets = (rng.uniform(size=(n, 3)) < 0.5).astype(int)
    targets[0] = [1, 1, 0]  # several labels in the first row
    probs = np.clip(0.15 + 0.7 * targets + rng.normal(0, 0.1, (n, 3)), 0.01, 0.99)
    return targets, probs


def test_multilabel_target_columns_say_multilabel_with_a_command(tmp_path, run_cli):
    targets, probs = _multilabel()
    frame = pd.DataFrame(targets, columns=["y_toxic", "y_obscene", "y_insult"])
    for j, name in enumerate(["toxic", "obscene", "insult"]):
        frame[f"p_{name}"] = probs[:, j]
    frame.to_csv(tmp_path / "multi.csv", index=False)

    # Old code: "no label column".
    out = check_bad_run(tmp_path, [tmp_path / "multi.csv"], [], Expect(
        "multi.csv", row=1, extra=["multilabel: one run per label",
                                   "--label y_toxic --positive-prob p_toxic"]))
    # The command it gives works, and gives scikit-learn's number for that label.
    command = out.stderr.split("e.g. losslens ")[1].split()
    proc = run_cli(*command, "--json", "-")
    run = json.loads(proc.stdout)["runs"][0]
    assert run["overall"]["log_loss"] == pytest.approx(log_loss(targets[:, 0], probs[:, 0]), rel=1e-12)


def test_multi_hot_soft_targets_say_multilabel(tmp_path):
    targets, probs = _multilabel()
    frame = pd.DataFrame(targets, columns=["t_a", "t_b", "t_c"])
    for j, name in enumerate("abc"):
        frame[f"p_{name}"] = probs[:, j] / probs.sum(axis=1)
    frame.to_csv(tmp_path / "multi.csv", index=False)

    out = check_bad_run(tmp_path, [tmp_path / "multi.csv"], ["--targets", "t_"],
                        Expect("multi.csv", row=1, extra=["sum to 2.0, not 1", "multilabel"]))
    assert "np." not in out.stderr


def test_multi_hot_label_strings_say_multilabel(tmp_path):
    _, probs = _multilabel()
    probs = probs / probs.sum(axis=1, keepdims=True)
    labels = ["toxic|insult" if i % 3 == 0 else "obscene" for i in range(len(probs))]
    frame = pd.DataFrame({"label": labels, "p_toxic": probs[:, 0], "p_obscene": probs[:, 1],
                          "p_insult": probs[:, 2]})
    frame.to_csv(tmp_path / "multi.csv", index=False)

    check_bad_run(tmp_path, [tmp_path / "multi.csv"], [],
                  Expect("multi.csv", column="label", row=1, extra=["several classes (multilabel)"]))


def test_labels_1_2_say_which_class_and_how_to_choose(tmp_path, run_cli, breast_cancer):
    y, P, _ = breast_cancer
    frame = pd.DataFrame({"label": y + 1, "y_prob": P[:, 1]})  # R's factor levels 1/2
    frame.to_csv(tmp_path / "levels.csv", index=False)

    check_bad_run(tmp_path, [tmp_path / "levels.csv"], [], Expect(
        "levels.csv", column="y_prob",
        extra=["scikit-learn's log_loss takes it as P(2), the greater label",
               "--positive-label 2", "--positive-label 1"]))
    _, run = _run(run_cli, tmp_path / "levels.csv", "--positive-label", "2")
    assert run["overall"]["log_loss"] == pytest.approx(log_loss(y + 1, P[:, 1]), rel=1e-12)


# -- 3. polish: no Python repr, plurals, (missing) scopes ---------------------------------------


def test_class_key_of_numpy_scalars():
    from losslens.schema import class_key

    # Old code: "np.float64(0.5)", a class no label column spelled that way could match.
    assert class_key(np.float64(0.5)) == "0.5"
    assert class_key(np.float32(2.0)) == "2"
    assert class_key(np.int64(3)) == "3"


def test_one_example_is_singular(tmp_path, run_cli):
    """A split of one example: "only 1 example", never "1 examples"."""
    frame = pd.DataFrame({"label": [0, 1, 1, 0, 1], "y_prob": [0.2, 0.7, 1.0, 0.4, 0.6],
                          "split": ["test", "test", "lone", "test", "test"]})
    frame.to_csv(tmp_path / "small.csv", index=False)

    proc, run = _run(run_cli, tmp_path / "small.csv")

    messages = {(w["code"], w.get("scope")): w["message"] for w in run["warnings"]}
    assert messages[("small_sample", "split=lone")].startswith("only 1 example (fewer")
    assert messages[("clipped_probabilities", "overall")].startswith("1 row gave")
    assert "log loss 2.22e-16 nats" in messages[("near_zero_loss", "split=lone")]
    assert "over 1 example;" in messages[("near_zero_loss", "split=lone")]
    for text in (proc.stdout, *messages.values()):
        assert not re.search(r"\b1 (examples|rows|classes)\b", text)


def test_messages_carry_no_numpy_repr(tmp_path):
    """A few refusals built from numpy values: the numbers print as the user wrote them."""
    targets, probs = _multilabel()
    frame = pd.DataFrame({"t_a": targets[:, 0] * 0.75, "t_b": 0.5, "p_a": 0.5, "p_b": 0.5})
    frame.to_csv(tmp_path / "targets.csv", index=False)
    out = check_bad_run(tmp_path, [tmp_path / "targets.csv"], ["--targets", "t_"],
                        Expect("targets.csv", row=1))
    assert "sum to 1.25, not 1" in out.stderr  # old code: np.float64(1.25)
    for err in (out.stderr,):
        assert "np." not in err and "float64(" not in err


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_missing_split_and_slice_values_are_named(tmp_path, run_cli, fmt):
    n = 40
    rng = np.random.default_rng(2)
    p = rng.uniform(0.05, 0.95, n)
    frame = pd.DataFrame({"label": (rng.uniform(size=n) < p).astype(int), "y_prob": p,
                          "split": ["test"] * 30 + [None] * 10,
                          "region": [1.0] * 20 + [np.nan] * 20})
    path = tmp_path / f"m.{fmt}"
    if fmt == "csv":
        frame.to_csv(path, index=False)  # NaN and None become empty cells
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        # A float NaN kept as NaN (as polars writes it), not turned into null as pandas does.
        table = pa.Table.from_pandas(frame.drop(columns="region"), preserve_index=False)
        table = table.append_column("region", pa.array(frame["region"].to_numpy(), from_pandas=False))
        pq.write_table(table, path)

    proc, run = _run(run_cli, path, "--by", "region")

    # Old code (CSV): the empty string as a split and a slice value, "split=" as a scope.
    assert set(run["by_split"]) == {"test", "(missing)"}
    assert "(missing)" in run["by_slice"]["region"]
    assert "" not in run["by_split"] and "" not in run["by_slice"]["region"]
    assert run["by_split"]["(missing)"]["n_examples"] == 10
    assert run["by_slice"]["region"]["(missing)"]["n_examples"] == 20


def test_a_real_missing_value_does_not_merge(tmp_path, run_cli):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"label": [0, 1] * 20, "y_prob": [0.3, 0.6] * 20,
                      "split": ["(missing)"] * 10 + [None] * 10 + ["test"] * 20})
    pq.write_table(table, tmp_path / "m.parquet")

    _, run = _run(run_cli, tmp_path / "m.parquet")

    assert run["by_split"]['"(missing)"']["n_examples"] == 10
    assert run["by_split"]["(missing)"]["n_examples"] == 10


@pytest.mark.parametrize("labels", [[["toxic", "insult"], ["obscene"], ["toxic"]], [[1, 0, 1], [0, 1, 0], [1, 0, 0]]])
def test_a_list_of_labels_per_row_says_multilabel(tmp_path, labels):
    """A label column of lists (datasets' multilabel Sequence feature): old code, a traceback."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"label": labels * 10, "p_toxic": [0.8, 0.1, 0.7] * 10,
                      "p_obscene": [0.1, 0.8, 0.2] * 10, "p_insult": [0.6, 0.1, 0.1] * 10})
    pq.write_table(table, tmp_path / "lists.parquet")

    check_bad_run(tmp_path, [tmp_path / "lists.parquet"], [], Expect(
        "lists.parquet", column="label", extra=["multilabel: one run per label",
                                                "--label is_toxic --positive-prob p_toxic"]))
