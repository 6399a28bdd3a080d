"""Wide row groups scored column by column (losslens.columnwise) give the row-wise numbers.

The row-wise path (batch.score_batch + Accumulator.of on the n × k matrix) is the reference:
it is itself checked against scikit-learn elsewhere. The column-wise path adds the same
terms in another order, so sums agree within a few ulps (``json_close.REL``), while counts,
ranks, argmaxes and per-example losses must be identical.
"""

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.metrics import accuracy_score, brier_score_loss, log_loss, top_k_accuracy_score

from json_close import REL as RTOL, assert_json_close

import losslens
from losslens import columnwise
from losslens.layouts import classifier as engine  # where the classifier plugin looks the scorers up
from losslens.cli import app


@pytest.fixture
def wide_groups(monkeypatch):
    """Small files count as wide, and blocks are a few columns, so tests take the column-wise path.

    Returns a list that records every row group scored column by column (its row count).
    """
    import losslens.reading as reading

    monkeypatch.setattr(reading, "PARQUET_SLICE_BYTES", 16 * 1024)
    original = reading.RowGroupColumns.float_blocks
    monkeypatch.setattr(
        reading.RowGroupColumns, "float_blocks", lambda self, names, block_bytes=None: original(self, names, 8 * 7 * self.num_rows)
    )
    scored = []
    real = columnwise.score_row_group

    def spy(group, *args, **kwargs):
        scored.append(group.num_rows)
        return real(group, *args, **kwargs)

    monkeypatch.setattr(engine, "score_row_group", spy)  # where the engine looks it up
    return scored


def model(rng, n, k, ties=False):
    """float32 softmax predictions with calibrated labels; with ``ties``, rounded so that many values tie."""
    logits = rng.normal(0.0, 1.5, (n, k))
    logits[np.arange(n), rng.integers(0, k, n)] += rng.uniform(0, 5, n)
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    if ties:
        probs = np.round(probs, 2)
        probs[::17] = 1.0 / k  # constant rows: every class ties
        probs[5::23, :8] = probs[5::23, :8].max(axis=1, keepdims=True)  # eight-way ties at the top
        probs /= probs.sum(axis=1, keepdims=True)
    probs = probs.astype(np.float32)
    cumulative = np.cumsum(probs.astype(np.float64), axis=1)
    labels = np.minimum((cumulative < rng.random(n)[:, None] * cumulative[:, -1:]).sum(axis=1), k - 1)
    return probs, labels


TEMPERATURE_KEYS = ("temperature", "log_loss_after_temperature", "calibration_loss", "refinement_loss",
                    "brier_after_temperature")


def _without_temperature(document):
    for run in document["runs"]:
        run["layout"]["notes"] = [n for n in run["layout"]["notes"] if "temperature" not in n]
    return document


def frame_of(probs, labels, **extra):
    frame = pd.DataFrame(probs, columns=[f"p_{c}" for c in range(probs.shape[1])])
    frame.insert(0, "label", labels)
    for name, values in extra.items():
        frame[name] = values
    return frame


@pytest.mark.parametrize("k, ties, weighted", [(7, True, False), (40, False, True), (300, True, True), (300, False, False)])
def test_one_wide_row_group_gives_the_row_wise_numbers(wide_groups, tmp_path, k, ties, weighted):
    rng = np.random.default_rng(k)
    n = 2500
    probs, labels = model(rng, n, k, ties)
    extra = {"split": rng.choice(["train", "validation"], n), "region": rng.choice(["north", "south", "east"], n)}
    if weighted:
        extra["weight"] = rng.uniform(0.0, 3.0, n)
    frame = frame_of(probs, labels, **extra)
    path = tmp_path / "preds.parquet"
    frame.to_parquet(path, index=False)  # pandas' default: all rows in one row group
    options = dict(split="split", by=("region",), weight="weight" if weighted else None)

    columnar = losslens.evaluate(path, **options).to_dict()
    assert wide_groups == [n]
    row_wise = losslens.evaluate(frame, name="preds", **options).to_dict()
    # "source": the file name against "<DataFrame>". The column-wise path keeps no rows of
    # probabilities, so its temperature figures are null, with a note (losslens.calibration_sample).
    assert columnar["runs"][0]["overall"]["temperature"] is None
    assert any("scored column by column" in n for n in columnar["runs"][0]["layout"]["notes"])
    assert_json_close(_without_temperature(columnar), _without_temperature(row_wise),
                      skip=("inputs", "source", "elapsed_seconds", *TEMPERATURE_KEYS))
    overall = columnar["runs"][0]["overall"]
    assert overall["top_5_accuracy"] == pytest.approx(
        top_k_accuracy_score(labels, probs, k=5, labels=np.arange(k), sample_weight=extra.get("weight")), rel=RTOL
    )


@pytest.mark.parametrize("merge_rows", [columnwise.MERGE_ROWS, 100])
def test_top_five_and_argmax_keep_scikit_learns_tie_rules(monkeypatch, merge_rows):
    # Every row is full of ties: the columnar merge must rank them as a stable sort reversed,
    # also when it merges the rows in runs (merge_rows) rather than all at once.
    monkeypatch.setattr(columnwise, "MERGE_ROWS", merge_rows)
    rng = np.random.default_rng(5)
    n, k = 3000, 23
    probs = rng.integers(0, 4, (n, k)).astype(np.float64) / 8.0
    probs[::7] = 0.25
    labels = rng.integers(0, k, n)
    for width in (1, 2, 5, 6, 23):
        blocks = ((first, np.asfortranarray(probs[:, first:first + width])) for first in range(0, k, width))
        state, _ = columnwise.score_blocks(blocks, labels, np.ones(n), k, 15)
        assert np.array_equal(state.predicted, probs.argmax(axis=1))
        assert np.array_equal(state.confidence, probs.max(axis=1))
        assert state.top_k_hit.mean() == top_k_accuracy_score(labels, probs, k=5, labels=np.arange(k))
        ranked = np.argsort(probs, axis=1, kind="mergesort")[:, ::-1][:, :5]  # sklearn's own ranking
        assert np.array_equal(state.top_k_hit, (ranked == labels[:, None]).any(axis=1))


def test_a_real_float32_model_matches_scikit_learn(wide_groups, tmp_path):
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X[:, ::5], y, test_size=0.6, random_state=1)
    probs = LogisticRegression(max_iter=3000).fit(X_train, y_train).predict_proba(X_test).astype(np.float32)
    path = tmp_path / "digits.parquet"
    frame_of(probs, y_test).to_parquet(path, index=False)
    overall = losslens.evaluate(path).to_dict()["runs"][0]["overall"]
    assert wide_groups == [len(y_test)]
    # scikit-learn takes the float32 logs in float32: agreement to float32 precision.
    assert overall["log_loss"] == pytest.approx(log_loss(y_test, probs), rel=1e-6)
    assert overall["accuracy"] == accuracy_score(y_test, probs.argmax(axis=1))
    assert overall["top_5_accuracy"] == top_k_accuracy_score(y_test, probs, k=5)
    onehot = np.eye(10)[y_test]
    assert overall["brier_score"] == pytest.approx(np.mean(((probs.astype(np.float64) - onehot) ** 2).sum(axis=1)), rel=RTOL)
    assert overall["brier_score"] == pytest.approx(
        np.mean([brier_score_loss(onehot[:, c], probs[:, c]) for c in range(10)]) * 10, rel=1e-6
    )


@pytest.mark.parametrize(
    "k, group_rows, run_rows, scored",
    [
        # 30 classes: 1,000-row groups are wide (over the test's 16 kB), 100- and 50-row ones
        # narrow and read row-wise in between; consecutive wide groups are scored as one run.
        (30, [100, 1000, 50, 1000, 1000], None, [1000, 2000]),
        (30, [100, 1000, 50, 1000, 1000], 1500, [1000, 1000, 1000]),
        # 80 classes (>= WHOLE_GROUP_MIN_COLUMNS): every group is scored column by column.
        (80, [100, 1000, 50, 1000, 1000], None, [3150]),
    ],
)
def test_row_groups_keep_row_order_numbers_and_ids(wide_groups, monkeypatch, tmp_path, k, group_rows, run_rows, scored):
    import losslens.reading as reading

    if run_rows:
        monkeypatch.setattr(reading, "WHOLE_RUN_ROWS", run_rows)
    n = sum(group_rows)
    rng = np.random.default_rng(8)
    probs, labels = model(rng, n, k)
    frame = frame_of(probs, labels, id=[f"ex{i}" for i in range(n)])
    table = pa.Table.from_pandas(frame, preserve_index=False)
    path = tmp_path / "groups.parquet"
    with pq.ParquetWriter(path, table.schema) as writer:
        start = 0
        for rows in group_rows:
            writer.write_table(table.slice(start, rows))
            start += rows
    assert pq.ParquetFile(path).num_row_groups == len(group_rows)
    out = tmp_path / "per_example.csv"
    from typer.testing import CliRunner

    result = CliRunner().invoke(app, ["metrics", str(path), "--per-example", str(out), "--json", str(tmp_path / "m.json")])
    assert result.exit_code == 0, result.output
    assert wide_groups == scored
    rows = pd.read_csv(out)
    assert list(rows["row"]) == list(range(1, n + 1)) and list(rows["id"]) == list(frame["id"])
    expected = -np.log(np.clip(probs[np.arange(n), labels].astype(np.float64), np.finfo(np.float32).eps, None))
    np.testing.assert_allclose(rows["loss_nats"], expected, rtol=1e-9)
    document = json.loads((tmp_path / "m.json").read_text())["runs"][0]
    assert document["worst_examples"][0]["id"] == frame["id"][int(np.argmax(expected))]
    assert document["overall"]["log_loss"] == pytest.approx(log_loss(labels, probs, labels=np.arange(k)), rel=1e-6)


@pytest.mark.parametrize(
    "spoil, message",
    [
        (lambda t: t.__setitem__(("p_12", 1777), np.nan), "column 'p_12', row 1778: missing or NaN value is not a probability"),
        (lambda t: t.__setitem__(("p_3", 2999), 1.5), "column 'p_3', row 3000: value 1.5 is not a probability"),
        (lambda t: t.__setitem__(("label", 2500), 99), "column 'label', row 2501: label 99 has no prediction column"),
    ],
)
def test_bad_values_in_a_wide_group_are_named_as_row_wise(wide_groups, tmp_path, spoil, message):
    rng = np.random.default_rng(9)
    probs, labels = model(rng, 3000, 20)
    frame = frame_of(probs, labels)
    frame[["p_12", "p_3"]] = frame[["p_12", "p_3"]].astype(np.float64)
    spoil(_Setter(frame))
    path = tmp_path / "bad.parquet"
    frame.to_parquet(path, index=False)
    with pytest.raises(losslens.InputError) as columnar:
        losslens.evaluate(path)
    with pytest.raises(losslens.InputError) as row_wise:
        losslens.evaluate(frame)
    assert message in str(columnar.value)
    assert str(columnar.value).replace(str(path), "<DataFrame>") == str(row_wise.value)


class _Setter:
    """``frame[(column, row)] = value`` for the parametrized spoilers above."""

    def __init__(self, frame):
        self.frame = frame

    def __setitem__(self, key, value):
        column, row = key
        self.frame.loc[row, column] = value


def test_null_probability_in_a_wide_group(wide_groups, tmp_path):
    rng = np.random.default_rng(10)
    probs, labels = model(rng, 2000, 12)
    table = pa.Table.from_pandas(frame_of(probs, labels), preserve_index=False)
    p7 = pa.array(probs[:, 7], mask=np.arange(2000) == 1234)
    table = table.set_column(table.column_names.index("p_7"), "p_7", p7)
    path = tmp_path / "null.parquet"
    pq.write_table(table, path)
    with pytest.raises(losslens.InputError, match=r"column 'p_7', row 1235: missing or NaN value"):
        losslens.evaluate(path)


def test_logits_and_renormalize_are_read_in_row_slices(wide_groups, tmp_path):
    rng = np.random.default_rng(11)
    probs, labels = model(rng, 2000, 12)
    scaled = probs.astype(np.float64) * 0.99  # rows sum to 0.99
    path = tmp_path / "p.parquet"
    frame_of(scaled, labels).to_parquet(path, index=False)
    renormalized = losslens.evaluate(path, renormalize=True).to_dict()["runs"][0]["overall"]
    assert wide_groups == []
    assert renormalized["log_loss"] == pytest.approx(log_loss(labels, scaled / scaled.sum(axis=1, keepdims=True)), rel=1e-12)
    counted = losslens.evaluate(path).to_dict()["runs"][0]["overall"]
    assert wide_groups == [2000] and counted["n_unnormalized"] == 2000

    logits = pd.DataFrame(np.log(probs.astype(np.float64)) + 3.0, columns=[f"z_{c}" for c in range(12)])
    logits.insert(0, "label", labels)
    logits.to_parquet(path, index=False)
    from_logits = losslens.evaluate(path, logits="z_").to_dict()["runs"][0]["overall"]
    assert wide_groups == [2000]  # unchanged: logits need the whole row first
    normalized = probs.astype(np.float64) / probs.astype(np.float64).sum(axis=1, keepdims=True)
    assert from_logits["log_loss"] == pytest.approx(log_loss(labels, normalized), rel=1e-9)
