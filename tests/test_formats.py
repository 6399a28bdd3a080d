"""Reading what people have: every format, separator, encoding and stdin gives the same numbers.

The reference is scikit-learn's ``log_loss`` on the frame the file was written from, by
pandas' own writers (``to_csv``, ``to_json(lines=True)``, ``to_feather``) with their
default options, on a real model's predictions (logistic regression on the bundled iris).
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss

import losslens


@pytest.fixture(scope="module")
def iris_predictions() -> pd.DataFrame:
    """Predictions of a logistic regression on iris, with string labels and an id column."""
    data = load_iris()
    model = LogisticRegression(max_iter=500).fit(data.data, data.target)
    proba = model.predict_proba(data.data)
    names = data.target_names
    frame = pd.DataFrame({"id": [f"x{i}" for i in range(len(proba))], "label": names[data.target]})
    for j, name in enumerate(names):
        frame[f"p_{name}"] = proba[:, j]
    return frame


def reference(frame: pd.DataFrame) -> float:
    columns = [c for c in frame.columns if c.startswith("p_")]
    return log_loss(frame["label"], frame[columns].to_numpy(), labels=[c[2:] for c in columns])


def log_loss_of(path, **options) -> float:
    return losslens.evaluate(path, **options).overall.log_loss


def test_jsonl_and_ndjson(iris_predictions, tmp_path):
    for ending in ("jsonl", "ndjson"):
        path = tmp_path / f"preds.{ending}"
        iris_predictions.to_json(path, orient="records", lines=True)
        # pandas writes 10 significant digits by default: the reference reads the file back.
        written = pd.read_json(path, lines=True)
        assert log_loss_of(path) == pytest.approx(reference(written), rel=1e-12)


def test_feather_and_arrow_ipc_file_and_stream(iris_predictions, tmp_path):
    table = pa.Table.from_pandas(iris_predictions, preserve_index=False)
    feather = tmp_path / "preds.feather"
    iris_predictions.to_feather(feather)
    stream = tmp_path / "preds.arrow"
    with pa.OSFile(str(stream), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
        for batch in table.to_batches(max_chunksize=40):  # several batches
            writer.write_batch(batch)
    expected = reference(iris_predictions)
    assert log_loss_of(feather) == pytest.approx(expected, rel=1e-12)
    assert log_loss_of(stream) == pytest.approx(expected, rel=1e-12)


def test_stdin_is_read_as_csv_or_the_given_format(iris_predictions, tmp_path):
    csv_text = iris_predictions.to_csv(index=False)
    expected = reference(iris_predictions)
    for data, args in ((csv_text.encode(), []),
                       (iris_predictions.to_csv(index=False, sep="\t").encode(), ["--format", "tsv"])):
        proc = subprocess.run(
            [sys.executable, "-m", "losslens", "metrics", "-", *args, "--json", "-"],
            input=data, capture_output=True, timeout=120,
        )
        assert proc.returncode == 0, proc.stderr.decode()
        run = json.loads(proc.stdout)["runs"][0]
        assert run["overall"]["log_loss"] == pytest.approx(expected, rel=1e-12)
    parquet = tmp_path / "p.parquet"
    iris_predictions.to_parquet(parquet)
    proc = subprocess.run(
        [sys.executable, "-m", "losslens", "metrics", "-", "--format", "parquet", "--json", "-"],
        input=parquet.read_bytes(), capture_output=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    assert json.loads(proc.stdout)["runs"][0]["overall"]["log_loss"] == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("sep, note", [(";", "separator ';'"), ("\t", "separator tab"), ("|", "separator '|'")])
def test_separator_is_sniffed_from_the_header_of_a_csv(iris_predictions, tmp_path, sep, note):
    path = tmp_path / "preds.csv"
    iris_predictions.to_csv(path, index=False, sep=sep)
    evaluation = losslens.evaluate(path)
    assert evaluation.overall.log_loss == pytest.approx(reference(iris_predictions), rel=1e-12)
    assert any(n.startswith(note) for n in evaluation.runs[0].layout.notes)


def test_european_export_is_detected_or_read_with_sep_and_decimal(iris_predictions, tmp_path):
    path = tmp_path / "preds.csv"
    iris_predictions.to_csv(path, index=False, sep=";", decimal=",")
    expected = reference(iris_predictions)
    detected = losslens.evaluate(path)
    assert detected.overall.log_loss == pytest.approx(expected, rel=1e-12)
    assert "decimal commas (0,25 is 0.25; set --decimal)" in detected.runs[0].layout.notes
    assert log_loss_of(path, sep=";", decimal=",") == pytest.approx(expected, rel=1e-12)


def test_utf8_bom_is_read_transparently(iris_predictions, tmp_path):
    path = tmp_path / "preds.csv"
    iris_predictions.to_csv(path, index=False, encoding="utf-8-sig")  # Excel's "CSV UTF-8"
    evaluation = losslens.evaluate(path)
    assert evaluation.runs[0].layout.label == "label"
    assert evaluation.overall.log_loss == pytest.approx(reference(iris_predictions), rel=1e-12)


def test_latin1_file_is_read_with_encoding(tmp_path):
    frame = pd.DataFrame({"label": ["café", "thé", "café"], "p_café": [0.7, 0.4, 0.9], "p_thé": [0.3, 0.6, 0.1]})
    path = tmp_path / "excel.csv"
    frame.to_csv(path, index=False, encoding="latin-1")
    evaluation = losslens.evaluate(path, encoding="latin-1")
    assert evaluation.runs[0].layout.classes == ("café", "thé")
    assert evaluation.overall.log_loss == pytest.approx(reference(frame), rel=1e-12)


def test_classes_keep_the_order_of_the_columns(iris_predictions, tmp_path):
    frame = iris_predictions[["label", "p_virginica", "p_setosa", "p_versicolor"]]
    document = losslens.evaluate(frame).to_dict()
    run = document["runs"][0]
    assert document["format_version"] == 3
    assert run["layout"]["classes"] == ["virginica", "setosa", "versicolor"]
    assert list(run["by_class"]) == ["virginica", "setosa", "versicolor"]
    explicit = losslens.evaluate(frame, classes="setosa,versicolor,virginica").to_dict()["runs"][0]
    assert explicit["layout"]["classes"] == ["setosa", "versicolor", "virginica"]


@pytest.mark.parametrize("numeric_labels", [False, True])
def test_columns_named_after_the_classes_are_detected(tmp_path, numeric_labels):
    """``DataFrame(model.predict_proba(X), columns=model.classes_)`` with the labels added."""
    data = load_iris()
    y = data.target if numeric_labels else data.target_names[data.target]
    model = LogisticRegression(max_iter=500).fit(data.data, y)
    frame = pd.DataFrame(model.predict_proba(data.data), columns=model.classes_)
    frame.insert(0, "label", y)
    path = tmp_path / "preds.csv"
    frame.to_csv(path, index=False)  # pandas' default names: "0","1","2" or the class names
    evaluation = losslens.evaluate(path)
    layout = evaluation.runs[0].layout
    assert layout.classes == tuple(str(c) for c in model.classes_)
    assert any("columns named after the classes" in n for n in layout.notes)
    expected = log_loss(y, model.predict_proba(data.data), labels=model.classes_)
    assert evaluation.overall.log_loss == pytest.approx(expected, rel=1e-12)


def test_lone_class_column_is_that_class_probability(tmp_path):
    y = np.array(["churn", "stay", "stay", "churn", "stay"])
    p_churn = np.array([0.8, 0.3, 0.1, 0.4, 0.35])
    for column in ("p_churn", "prob_churn", "proba_churn"):
        evaluation = losslens.evaluate(pd.DataFrame({"label": y, column: p_churn}))
        expected = log_loss(y == "churn", p_churn)
        assert evaluation.overall.log_loss == pytest.approx(expected, rel=1e-12)
        assert evaluation.to_dict()["runs"][0]["layout"]["positive_class"] == "churn"


def test_explicit_binary_labels_keep_the_greater_as_positive():
    p = np.array([0.8, 0.3, 0.1, 0.4])
    for y in ([1, 0, 0, 1], [True, False, False, True], [1, -1, -1, 1]):
        evaluation = losslens.evaluate(pd.DataFrame({"label": y, "y_prob": p}))
        assert evaluation.overall.log_loss == pytest.approx(log_loss(np.array(y) == 1, p), rel=1e-12)


def test_labels_in_a_separate_file_kaggle_style(iris_predictions, tmp_path):
    preds = tmp_path / "preds.csv"
    iris_predictions.drop(columns="label").to_csv(preds, index=False)
    truth = tmp_path / "truth.csv"
    # Shuffled and with another label name: the join is on the id, never on position.
    iris_predictions[["id", "label"]].rename(columns={"label": "species"}).sample(frac=1, random_state=0) \
        .to_csv(truth, index=False)
    evaluation = losslens.evaluate(preds, labels=str(truth), id="id")
    assert evaluation.overall.log_loss == pytest.approx(reference(iris_predictions), rel=1e-12)
    assert f"labels from {truth}, column 'species', joined on 'id'" in evaluation.runs[0].layout.notes

    partial = tmp_path / "partial.csv"
    iris_predictions[["id", "label"]].iloc[10:].to_csv(partial, index=False)
    kept = losslens.evaluate(preds, labels=str(partial), id="id", allow_missing_labels=True)
    assert kept.overall.n_examples == len(iris_predictions) - 10
    assert kept.overall.log_loss == pytest.approx(reference(iris_predictions.iloc[10:]), rel=1e-12)
    assert any("dropped 10 prediction row(s) without a label" in n for n in kept.runs[0].layout.notes)


def test_labels_join_pairs_integer_ids_across_parquet_and_csv(iris_predictions, tmp_path):
    frame = iris_predictions.assign(id=np.arange(len(iris_predictions)))
    preds = tmp_path / "preds.parquet"
    frame.drop(columns="label").to_parquet(preds)
    truth = tmp_path / "truth.csv"
    frame[["id", "label"]].to_csv(truth, index=False)
    assert log_loss_of(preds, labels=str(truth), id="id") == pytest.approx(reference(frame), rel=1e-12)


@pytest.mark.parametrize("name", ["a\x1b[31mred\x07", "x" * 10_000, "שלום", "🐱", "nul\x00byte"])
def test_strange_class_names_are_read_and_scored(name):
    frame = pd.DataFrame({"label": [name, "other", name], f"p_{name}": [0.9, 0.2, 0.6],
                          "p_other": [0.1, 0.8, 0.4]})
    evaluation = losslens.evaluate(frame)
    assert evaluation.runs[0].layout.classes == (name, "other")
    # Hand-worked: p(true class) is 0.9, 0.8 and 0.6.
    assert evaluation.overall.log_loss == pytest.approx(-np.log([0.9, 0.8, 0.6]).mean(), rel=1e-12)
    json.dumps(evaluation.to_dict())


def test_gzip_on_stdin_is_recognised(iris_predictions):
    import gzip

    data = gzip.compress(iris_predictions.to_csv(index=False).encode())
    proc = subprocess.run([sys.executable, "-m", "losslens", "metrics", "-", "--json", "-"],
                          input=data, capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()
    log_loss_value = json.loads(proc.stdout)["runs"][0]["overall"]["log_loss"]
    assert log_loss_value == pytest.approx(reference(iris_predictions), rel=1e-12)
