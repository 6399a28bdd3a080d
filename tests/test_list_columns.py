"""Predictions stored as one list per row, as Hugging Face ``datasets`` writes them.

A ``probs`` / ``logits`` column of lists (fixed-size or not) with the class names from the
file's ``ClassLabel`` metadata, a ``classes`` column or ``--classes``: checked against
scikit-learn on a model fitted to iris, float32 as a model writes it.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy.special import log_softmax
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, log_loss

import losslens
from test_bad_input import Expect, check_bad_run

NAMES = ["setosa", "versicolor", "virginica"]
# float32 rows widened to float64 sum to 1 only within float32's rounding: scikit-learn says so.
pytestmark = pytest.mark.filterwarnings("ignore:The y_prob values do not sum to one")


@pytest.fixture(scope="module")
def iris_model():
    X, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=1000).fit(X, y)
    return y, model.predict_proba(X).astype(np.float32), model.decision_function(X).astype(np.float32)


def _huggingface_metadata(label_names):
    """The schema metadata ``datasets.Dataset.to_parquet`` writes for a ClassLabel column."""
    features = {"label": {"names": list(label_names), "_type": "ClassLabel"},
                "probs": {"feature": {"dtype": "float32", "_type": "Value"}, "_type": "Sequence"}}
    return {"huggingface": json.dumps({"info": {"features": features}})}


def _run(run_cli, *args):
    proc = run_cli("metrics", *args, "--json", "-")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)["runs"][0]


def test_datasets_parquet_with_classlabel_metadata(tmp_path, run_cli, iris_model):
    y, P, _ = iris_model
    table = pa.table({"label": pa.array(y, pa.int64()),
                      "probs": pa.FixedSizeListArray.from_arrays(pa.array(P.ravel()), 3)})
    pq.write_table(table.replace_schema_metadata(_huggingface_metadata(NAMES)), tmp_path / "hf.parquet")

    run = _run(run_cli, tmp_path / "hf.parquet")

    assert run["layout"]["classes"] == NAMES
    assert run["layout"]["prediction_columns"] == {"setosa": "probs[0]", "versicolor": "probs[1]",
                                                   "virginica": "probs[2]"}
    # float32 kept exact: widened to float64 without rounding, float32's eps and tolerance.
    assert run["layout"]["eps"] == float(np.finfo(np.float32).eps)
    # Clipping to float32's eps moves no true-class probability here, so scikit-learn's float64
    # number is the reference (its float32 one rounds each term to float32).
    assert P[np.arange(len(y)), y].min() > np.finfo(np.float32).eps
    expected = log_loss(y, P.astype(np.float64))
    assert run["overall"]["log_loss"] == pytest.approx(expected, rel=1e-12)
    assert run["overall"]["accuracy"] == accuracy_score(y, P.argmax(axis=1))
    assert not run["warnings"] or all(w["code"] != "unnormalized_rows" for w in run["warnings"])


def test_variable_length_logits_with_string_labels(tmp_path, run_cli, iris_model):
    y, _, Z = iris_model
    table = pa.table({"label": pa.array(np.array(NAMES)[y]),
                      "logits": pa.array(list(Z), pa.list_(pa.float32()))})
    pq.write_table(table, tmp_path / "logits.parquet", row_group_size=40)

    run = _run(run_cli, tmp_path / "logits.parquet", "--classes", ",".join(NAMES))

    assert run["layout"]["kind"] == "logits"
    # Exact log-softmax in float64 of the float32 logits; scipy sums in another order.
    expected = -np.mean(log_softmax(Z.astype(np.float64), axis=1)[np.arange(len(y)), y])
    assert run["overall"]["log_loss"] == pytest.approx(expected, rel=1e-12)


def test_classes_column_and_pandas_lists(tmp_path, run_cli, iris_model):
    """A DataFrame with a column of arrays (``datasets``' with_format("pandas")) and a classes column."""
    y, P, _ = iris_model
    frame = pd.DataFrame({"label": np.array(NAMES)[y], "probabilities": list(P.astype(np.float64)),
                          "label_names": [NAMES] * len(y)})
    frame.to_parquet(tmp_path / "frame.parquet", index=False)

    run = _run(run_cli, tmp_path / "frame.parquet")

    assert run["layout"]["classes"] == NAMES
    assert run["overall"]["log_loss"] == pytest.approx(log_loss(y, P.astype(np.float64)), rel=1e-12)
    # The Python API reads the same frame the same way.
    evaluation = losslens.evaluate(frame)
    assert evaluation.runs[0].overall.log_loss == pytest.approx(run["overall"]["log_loss"], rel=1e-15)


def test_integer_labels_without_names_are_positions(tmp_path, run_cli, iris_model):
    y, P, _ = iris_model
    pq.write_table(pa.table({"label": y, "scores": pa.array(list(P), pa.list_(pa.float32()))}),
                   tmp_path / "plain.parquet")

    run = _run(run_cli, tmp_path / "plain.parquet")

    assert run["layout"]["classes"] == ["0", "1", "2"]
    assert run["overall"]["log_loss"] == pytest.approx(log_loss(y, P.astype(np.float64)), rel=1e-12)


def test_row_of_another_length_is_refused_naming_the_row(tmp_path, iris_model):
    y, P, _ = iris_model
    rows = [list(p) for p in P]
    rows[117] = rows[117][:2]  # in the third row group of 40
    table = pa.table({"label": y, "probs": pa.array(rows, pa.list_(pa.float32()))})
    pq.write_table(table.replace_schema_metadata(_huggingface_metadata(NAMES)), tmp_path / "short.parquet",
                   row_group_size=40)

    check_bad_run(tmp_path, [tmp_path / "short.parquet"], [],
                  Expect("short.parquet", column="probs", row=118, extra=["a list of 2 values, but there are 3 classes"]))


def test_string_labels_without_class_names_are_refused(tmp_path, iris_model):
    y, P, _ = iris_model
    pq.write_table(pa.table({"label": np.array(NAMES)[y], "probs": pa.array(list(P), pa.list_(pa.float32()))}),
                   tmp_path / "nonames.parquet")

    check_bad_run(tmp_path, [tmp_path / "nonames.parquet"], [],
                  Expect("nonames.parquet", column="probs", extra=["--classes"]))


def test_classlabel_metadata_of_another_size_is_refused(tmp_path, iris_model):
    y, P, _ = iris_model
    table = pa.table({"label": y, "probs": pa.FixedSizeListArray.from_arrays(pa.array(P.ravel()), 3)})
    pq.write_table(table.replace_schema_metadata(_huggingface_metadata(NAMES[:2])), tmp_path / "two.parquet")

    check_bad_run(tmp_path, [tmp_path / "two.parquet"], [],
                  Expect("two.parquet", column="probs", extra=["lists of 3 values, but 2 classes"]))


def test_unlabelled_rows_of_a_datasets_test_split_are_refused(tmp_path, iris_model):
    """datasets' test splits often carry label -1 (no label): a row to leave out, named."""
    y, P, _ = iris_model
    labels = y.copy()
    labels[9] = -1
    table = pa.table({"label": pa.array(labels, pa.int64()),
                      "probs": pa.FixedSizeListArray.from_arrays(pa.array(P.ravel()), 3)})
    pq.write_table(table.replace_schema_metadata(_huggingface_metadata(NAMES)), tmp_path / "test.parquet")

    check_bad_run(tmp_path, [tmp_path / "test.parquet"], [], Expect(
        "test.parquet", column="label", row=10, extra=["label -1 is not a class position (0 to 2)"]))


def test_polars_frame_with_a_list_column(iris_model):
    import polars as pl

    y, P, _ = iris_model
    frame = pl.DataFrame({"label": np.array(NAMES)[y], "probs": P.tolist()},
                         schema={"label": pl.String, "probs": pl.List(pl.Float32)})

    evaluation = losslens.evaluate(frame, classes=NAMES)

    assert evaluation.runs[0].layout.classes == tuple(NAMES)
    assert evaluation.runs[0].overall.log_loss == pytest.approx(log_loss(y, P.astype(np.float64)), rel=1e-12)
