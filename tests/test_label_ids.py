"""Labels joined by id when the two files write the same ids differently.

pandas writes an integer id column as ``1.0`` once it held a NaN (the column became float),
spreadsheets zero-pad (``0001``), and hand-made files carry spaces (`` 7``). Every file here
is written by ``DataFrame.to_csv`` from a logistic regression's predictions on iris, and the
number is checked against scikit-learn's ``log_loss`` on the rows that pair up.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss

import losslens
from losslens.errors import InputError


@pytest.fixture(scope="module")
def predictions() -> pd.DataFrame:
    data = load_iris()
    model = LogisticRegression(max_iter=500).fit(data.data, data.target)
    proba = model.predict_proba(data.data)
    frame = pd.DataFrame({"id": np.arange(1, len(proba) + 1), "label": data.target_names[data.target]})
    for j, name in enumerate(data.target_names):
        frame[f"p_{name}"] = proba[:, j]
    return frame


def reference(frame: pd.DataFrame) -> float:
    columns = [c for c in frame.columns if c.startswith("p_")]
    return log_loss(frame["label"], frame[columns].to_numpy(), labels=[c[2:] for c in columns])


def write(tmp_path, predictions, truth_ids, pred_ids=None):
    """preds.csv (no label) and truth.csv (id, label, shuffled), each id column as given."""
    preds = predictions.drop(columns="label")
    if pred_ids is not None:
        preds = preds.assign(id=pred_ids)
    preds.to_csv(tmp_path / "preds.csv", index=False)
    truth = predictions[["id", "label"]].assign(id=truth_ids).sample(frac=1, random_state=0)
    truth.to_csv(tmp_path / "truth.csv", index=False)
    return str(tmp_path / "preds.csv"), str(tmp_path / "truth.csv")


def float_ids_with_a_gap(n: int) -> pd.Series:
    """What pandas makes of integer ids once the column held a NaN (a row dropped later): floats, written 1.0."""
    return pd.Series([*range(1, n + 1), None]).iloc[:n]


def test_float_ids_written_by_pandas_pair_with_integer_ids(predictions, tmp_path):
    ids = float_ids_with_a_gap(len(predictions))
    preds, truth = write(tmp_path, predictions, ids)
    assert (tmp_path / "truth.csv").read_text().splitlines()[1].split(",")[0].endswith(".0")
    evaluation = losslens.evaluate(preds, labels=truth, id="id")
    assert evaluation.overall.n_examples == len(predictions)
    assert evaluation.overall.log_loss == pytest.approx(reference(predictions), rel=1e-12)
    note = next(n for n in evaluation.runs[0].layout.notes if n.startswith("labels from"))
    assert re.search(r"matched as numbers \('\d+' in .*preds\.csv is '\d+\.0' in .*truth\.csv\)", note), note


@pytest.mark.parametrize("form", ["{:04d}", " {}", "{} ", "+{}", "{}.00", "{}e0"])
def test_ids_written_another_way_pair_as_numbers(predictions, tmp_path, form):
    ids = [form.format(i) for i in predictions["id"]]
    preds, truth = write(tmp_path, predictions, ids)
    evaluation = losslens.evaluate(preds, labels=truth, id="id")
    assert evaluation.overall.log_loss == pytest.approx(reference(predictions), rel=1e-12)
    assert any("matched as numbers" in n for n in evaluation.runs[0].layout.notes)


def test_zero_padded_prediction_ids_and_missing_labels(predictions, tmp_path):
    # Both sides differ in format, and 10 labels are missing: only those rows are dropped.
    pred_ids = [f"{i:05d}" for i in predictions["id"]]
    preds, _ = write(tmp_path, predictions, predictions["id"], pred_ids=pred_ids)
    truth = tmp_path / "partial.csv"
    predictions[["id", "label"]].iloc[10:].assign(id=lambda f: f["id"].astype(float)).to_csv(truth, index=False)
    with pytest.raises(InputError, match=re.escape("10 of 150 prediction rows have no label")):
        losslens.evaluate(preds, labels=str(truth), id="id")
    kept = losslens.evaluate(preds, labels=str(truth), id="id", allow_missing_labels=True)
    assert kept.overall.n_examples == len(predictions) - 10
    assert kept.overall.log_loss == pytest.approx(reference(predictions.iloc[10:]), rel=1e-12)


def test_exact_ids_need_no_note(predictions, tmp_path):
    preds, truth = write(tmp_path, predictions, predictions["id"])
    evaluation = losslens.evaluate(preds, labels=truth, id="id")
    assert evaluation.overall.log_loss == pytest.approx(reference(predictions), rel=1e-12)
    assert f"labels from {truth}, column 'label', joined on 'id'" in evaluation.runs[0].layout.notes


def test_ids_that_are_one_number_twice_are_not_paired_as_numbers(predictions, tmp_path):
    # "1" and "01" in the labels: which of them would prediction 1.0 get? Refused, saying why.
    ids = [str(i) for i in predictions["id"]]
    ids[1] = "01"  # id 2's label mistyped: 1 is now two labels as a number
    preds, truth = write(tmp_path, predictions, ids, pred_ids=float_ids_with_a_gap(len(predictions)))
    for allow in (False, True):
        with pytest.raises(InputError) as error:
            losslens.evaluate(preds, labels=truth, id="id", allow_missing_labels=allow)
        message = str(error.value)
        assert message.startswith(f"{preds}: joining on 'id', no prediction id matched a label id of {truth} ")
        assert f"; the ids differ in format and cannot be paired as numbers ('01', '1' are the same number " \
            f"in {truth}): '1.0' in {preds} is " in message
        assert message.endswith(f" in {truth}; write them the same way in both files")
        assert "--allow-missing-labels" not in message


def test_no_id_in_common_is_refused_without_advising_to_drop_every_row(predictions, tmp_path):
    preds, truth = write(tmp_path, predictions, predictions["id"] + 1000)
    for allow in (False, True):
        with pytest.raises(InputError) as error:
            losslens.evaluate(preds, labels=truth, id="id", allow_missing_labels=allow)
        assert str(error.value) == (
            f"{preds}: joining on 'id', no prediction id matched a label id of {truth} "
            "(prediction ids '1', '2', '3'; label ids '1115', '1063', '1034'); "
            "check that --id id names the same ids in both files"
        )


def test_text_ids_written_another_way_are_named(predictions, tmp_path):
    preds, truth = write(tmp_path, predictions, [f"Row-{i}" for i in predictions["id"]],
                         pred_ids=[f"row-{i} " for i in predictions["id"]])
    with pytest.raises(InputError) as error:
        losslens.evaluate(preds, labels=truth, id="id")
    message = str(error.value)
    assert message.endswith(
        f"the ids differ in format: 'row-1 ' in {preds} is 'Row-1' in {truth}; write them the same way in both files"
    )
    assert "--allow-missing-labels" not in message


def test_some_ids_written_another_way_name_one_and_still_offer_to_drop(predictions, tmp_path):
    ids = [str(i) for i in predictions["id"]]
    ids[4] = "id5"  # one label id is not a number: no pairing as numbers, but say what differs
    pred_ids = [str(i) for i in predictions["id"]]
    pred_ids[4] = "ID5"
    preds, truth = write(tmp_path, predictions, ids, pred_ids=pred_ids)
    with pytest.raises(InputError) as error:
        losslens.evaluate(preds, labels=truth, id="id")
    assert str(error.value) == (
        f"{preds}: joining on 'id', 1 of 150 prediction rows have no label in {truth} (e.g. ids 'ID5') and "
        "1 of 150 labels have no prediction (e.g. ids 'id5'); the ids differ in format: "
        f"'ID5' in {preds} is 'id5' in {truth}; write them the same way in both files, or score only the ids "
        "found in both with --allow-missing-labels"
    )


def test_cli_exit_code_and_one_line(predictions, tmp_path, run_cli):
    preds, truth = write(tmp_path, predictions, predictions["id"] + 1000)
    proc = run_cli("metrics", preds, "--labels", truth, "--id", "id")
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "no prediction id matched a label id" in proc.stderr


def test_a_labels_file_with_a_header_only_is_named(predictions, tmp_path):
    preds, _ = write(tmp_path, predictions, predictions["id"])
    truth = tmp_path / "empty.csv"
    predictions[["id", "label"]].iloc[:0].to_csv(truth, index=False)
    with pytest.raises(InputError) as error:
        losslens.evaluate(preds, labels=str(truth), id="id", allow_missing_labels=True)
    assert str(error.value) == f"{truth}: the labels file has no rows (column 'id' is empty)"
