"""Many-class metrics against scikit-learn: top-5 accuracy, confused pairs, worst classes, classwise ECE."""

import json
import math
import re

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import confusion_matrix, log_loss, top_k_accuracy_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import losslens
from losslens.accumulate import Accumulator, merge_pairs, top_k_hits
from losslens.batch import EPS
from losslens.evaluation import CLASSWISE_ECE_MIN_EXAMPLES, MAX_WORST_CLASSES


def softmax_model(rng, n, k, sharp=4.0):
    """A 1000-class-style softmax model as float32 (as torch gives it) with its labels.

    Labels are drawn from the model's own predictions, so it is calibrated, and the class
    prior is skewed so that some classes have no examples at all.
    """
    prior = 1.0 / np.arange(1, k + 1) ** 1.1
    prior /= prior.sum()
    favoured = rng.choice(k, size=n, p=prior)
    logits = rng.normal(0.0, 1.0, (n, k)) + np.log(prior)
    logits[np.arange(n), favoured] += rng.uniform(0.0, sharp, n)
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs = (probs / probs.sum(axis=1, keepdims=True)).astype(np.float32)
    cumulative = np.cumsum(probs.astype(np.float64), axis=1)
    u = rng.random(n) * cumulative[:, -1]
    labels = np.minimum((cumulative < u[:, None]).sum(axis=1), k - 1)
    return probs, labels


def frame_of(probs, labels, **extra):
    """A DataFrame as a user writes it: label first, then p_<class>, float32 kept."""
    k = probs.shape[1]
    frame = pd.DataFrame(probs, columns=[f"p_{c}" for c in range(k)])
    frame.insert(0, "label", labels)
    for name, values in extra.items():
        frame[name] = values
    return frame


@pytest.fixture(scope="module")
def wide():
    rng = np.random.default_rng(2024)
    probs, labels = softmax_model(rng, 4000, 1000)
    split = rng.choice(["train", "validation"], size=len(labels))
    return probs, labels, split, losslens.evaluate(frame_of(probs, labels, split=split))


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    X = X[:, ::6]  # 11 of the 64 pixels: a model that still misses the top 5 at times
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.5, random_state=0)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X_train, y_train)
    probs = model.predict_proba(X_test)
    frame = frame_of(probs, y_test)
    return probs, y_test, losslens.evaluate(frame, bins=10)


def test_top_5_accuracy_equals_sklearn_on_a_real_model(digits):
    probs, y, evaluation = digits
    assert evaluation.overall.top_5_accuracy == pytest.approx(top_k_accuracy_score(y, probs, k=5), rel=1e-15)
    assert evaluation.overall.top_5_accuracy < 1.0  # the premise: some misses to count


def test_top_5_accuracy_1000_classes_float32_overall_and_per_split(wide):
    probs, labels, split, evaluation = wide
    k = probs.shape[1]
    assert (np.bincount(labels, minlength=k) == 0).any()  # labels= needed for absent classes
    expected = top_k_accuracy_score(labels, probs, k=5, labels=np.arange(k))
    assert evaluation.overall.top_5_accuracy == pytest.approx(expected, rel=1e-15)
    assert 0.2 < expected < 0.99
    for name, metrics in evaluation.run.by_split.items():
        rows = split == name
        assert metrics.top_5_accuracy == pytest.approx(
            top_k_accuracy_score(labels[rows], probs[rows], k=5, labels=np.arange(k)), rel=1e-15
        )


def test_top_5_ties_ranked_as_sklearn_ranks_them():
    # Rounded probabilities tie a lot; scikit-learn ranks a tie with a higher column index
    # above a lower one (a stable sort, reversed).
    rng = np.random.default_rng(8)
    n, k = 3000, 12
    probs = np.round(rng.dirichlet(np.ones(k) * 0.5, n), 2)
    probs /= probs.sum(axis=1, keepdims=True)
    labels = rng.integers(0, k, n)
    true_prob = probs[np.arange(n), labels]
    ties = (probs == true_prob[:, None]).sum(axis=1) > 1
    assert ties.mean() > 0.1
    hits = top_k_hits(probs, labels, true_prob, 5)
    assert hits.mean() == top_k_accuracy_score(labels, probs, k=5, labels=np.arange(k))
    # Hand-worked row: six other classes tie with the true one (class 2) at 0.1; class 0
    # (0.3) and classes 3..7 (higher columns) outrank it, so it is seventh; with the true
    # class 7 it is second.
    row = np.array([[0.3, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1]])
    assert not top_k_hits(row, np.array([2]), np.array([0.1]), 5)[0]
    assert top_k_hits(row, np.array([7]), np.array([0.1]), 5)[0]


def test_top_5_accuracy_absent_with_five_classes_or_fewer():
    frame = pd.DataFrame({"label": [0, 1, 2, 3, 4], **{f"p_{c}": [0.2] * 5 for c in range(5)}})
    run = losslens.evaluate(frame).run
    assert run.overall.top_5_accuracy is None
    assert "top_5_accuracy" not in run.to_dict()["overall"]


def test_confused_pairs_match_sklearn_confusion_matrix(wide):
    probs, labels, _, evaluation = wide
    k = probs.shape[1]
    matrix = confusion_matrix(labels, probs.argmax(axis=1), labels=np.arange(k))
    run = evaluation.run
    assert np.array_equal(run.confusion.dense(), matrix)
    off = matrix.copy()
    np.fill_diagonal(off, 0)
    true, predicted = np.nonzero(off)
    counts = off[true, predicted]
    order = np.lexsort((predicted, true, -counts))[:20]
    expected = [
        {"true": str(t), "predicted": str(p), "count": int(c), "share_of_true": c / matrix[t].sum()}
        for t, p, c in zip(true[order], predicted[order], counts[order])
    ]
    assert [p.to_dict() for p in run.confused_pairs] == expected
    assert run.confused_pairs[0].count >= 3


def test_sparse_pairs_merge_as_one_count():
    a = (np.array([3, 7, 12]), np.array([1, 2, 5]))
    b = (np.array([7, 9]), np.array([4, 1]))
    codes, counts = merge_pairs(*a, *b)
    assert codes.tolist() == [3, 7, 9, 12]
    assert counts.tolist() == [1, 6, 1, 5]
    assert counts.dtype == np.int64


def test_streamed_batches_add_up_to_the_whole(wide, tmp_path, monkeypatch):
    # Parquet with small row groups streams in many batches; every new sum must merge exactly.
    # (1,000 classes are scored column by column, consecutive groups together: one group per
    # batch here, so that there are six batches to merge.)
    import losslens.reading as reading
    from losslens.layouts import classifier as engine

    monkeypatch.setattr(reading, "WHOLE_RUN_ROWS", 700)
    scored = []
    real = engine.score_row_group
    monkeypatch.setattr(engine, "score_row_group", lambda group, *a, **k: scored.append(group.num_rows) or real(group, *a, **k))
    probs, labels, split, evaluation = wide
    path = tmp_path / "wide.parquet"
    frame_of(probs, labels, split=split).to_parquet(path, index=False, row_group_size=700)
    streamed = losslens.evaluate(path).run
    assert scored == [700] * 5 + [500]
    whole = evaluation.run
    assert streamed.to_dict()["confused_pairs"] == whole.to_dict()["confused_pairs"]
    for a, b in zip(streamed.worst_classes, whole.worst_classes, strict=True):
        assert (a.name, a.n_examples, a.most_confused_with) == (b.name, b.n_examples, b.most_confused_with)
        assert a.excess_loss == pytest.approx(b.excess_loss, rel=1e-9)
    for key in ("top_5_accuracy", "kl_empirical_bits_corrected", "prior_shift_p_value", "classwise_ece"):
        assert getattr(streamed.overall, key) == pytest.approx(getattr(whole.overall, key), rel=1e-9)


def test_worst_classes_by_excess_loss(digits):
    probs, y, evaluation = digits
    run = evaluation.run
    n = len(y)
    losses = -np.log(np.clip(probs[np.arange(n), y], EPS, 1 - EPS))
    mean = losses.mean()
    excess = {c: (losses[y == c] - mean).sum() / n for c in np.unique(y)}
    assert sum(excess.values()) == pytest.approx(0.0, abs=1e-12)  # shares of the excess add to 0
    ranked = sorted(excess, key=lambda c: -excess[c])
    assert [w.name for w in run.worst_classes] == [str(c) for c in ranked]
    matrix = confusion_matrix(y, probs.argmax(axis=1), labels=np.arange(10))
    for worst in run.worst_classes:
        c = int(worst.name)
        rows = y == c
        assert worst.excess_loss == pytest.approx(excess[c], rel=1e-9, abs=1e-15)
        assert worst.n_examples == rows.sum()
        assert worst.log_loss == pytest.approx(log_loss(y[rows], probs[rows], labels=np.arange(10)), rel=1e-12)
        assert worst.recall == matrix[c, c] / matrix[c].sum()
        mistakes = matrix[c].copy()
        mistakes[c] = 0
        expected = str(int(mistakes.argmax())) if mistakes.any() else None
        assert worst.most_confused_with == expected


def test_worst_classes_json_at_most_20_objects(wide):
    document = wide[3].to_dict()
    json.dumps(document, allow_nan=False)  # JSON-safe: None, never NaN
    worst = document["runs"][0]["worst_classes"]
    assert len(worst) == MAX_WORST_CLASSES
    assert set(worst[0]) == {"class", "n_examples", "log_loss", "excess_loss", "recall", "most_confused_with"}
    excess = [w["excess_loss"] for w in worst]
    assert excess == sorted(excess, reverse=True)
    assert all(w["n_examples"] > 0 for w in worst)


def test_classwise_ece_by_hand(digits):
    probs, y, evaluation = digits
    bins, n = 10, len(y)
    eces = []
    for c in range(10):
        if (y == c).sum() < CLASSWISE_ECE_MIN_EXAMPLES:
            continue
        q = probs[:, c]
        which = np.minimum((q * bins).astype(int), bins - 1)
        gap = sum(abs((y[which == b] == c).sum() - q[which == b].sum()) for b in range(bins))
        eces.append(gap / n)
    assert len(eces) == 10
    assert evaluation.overall.classwise_ece == pytest.approx(np.mean(eces), rel=1e-12)
    assert evaluation.run.by_class["3"].ece == pytest.approx(eces[3], rel=1e-12)


def test_classwise_ece_only_over_classes_with_enough_examples(wide):
    _, labels, _, evaluation = wide
    run = evaluation.run
    enough = [c for c, m in run.by_class.items() if m.n_examples >= CLASSWISE_ECE_MIN_EXAMPLES]
    assert 0 < len(enough) < 1000
    assert run.overall.classwise_ece == pytest.approx(np.mean([run.by_class[c].ece for c in enough]), rel=1e-12)
    assert all(m.classwise_ece is None for m in run.by_split.values())


def test_unit_and_explicit_weights_give_the_same_sums():
    # The unit-weight shortcut (Σw²q = Σq) must equal the general weighted path.
    rng = np.random.default_rng(4)
    probs, labels = softmax_model(rng, 500, 40)
    base = frame_of(probs, labels)
    plain = losslens.evaluate(base).overall
    weighted = losslens.evaluate(base.assign(w=1.0), weight="w").overall
    for key in ("kl_empirical_bits_corrected", "prior_shift_p_value", "top_5_accuracy"):
        assert getattr(weighted, key) == pytest.approx(getattr(plain, key), rel=1e-12)


def test_empty_accumulator_gives_null_not_nan():
    from losslens.evaluation import json_safe, metrics_of

    data = json_safe(metrics_of(Accumulator.empty(12)).to_dict())
    assert data["top_5_accuracy"] is None
    json.dumps(data, allow_nan=False)
    assert math.isnan(metrics_of(Accumulator.empty(12)).log_loss)


# --- What the report shows at 1,000 and 10,000 classes (html/many_classes.py) -------------

from losslens.html import many_classes  # noqa: E402


@pytest.mark.parametrize("n, k", [(4000, 1000), (500, 10_000)])
def test_chart_selection_names_worst_shifted_frequent_and_sums_the_rest(n, k):
    rng = np.random.default_rng(k)
    probs, labels = softmax_model(rng, n, k)
    run = losslens.evaluate(frame_of(probs, labels)).run
    selection = many_classes.select_classes(run)
    shown = {b.name for b in selection.shown}
    assert len(shown) == len(selection.shown) <= 25
    assert {w.name for w in run.worst_classes[:10]} <= shown
    frequent = sorted(run.by_class, key=lambda c: (-run.by_class[c].n_examples, int(c)))[:3]
    assert set(frequent) <= shown
    other = selection.other
    assert selection.n_other == k - len(shown)
    assert other.name == f"all other {k - len(shown):,} classes"
    # Named classes plus the summary account for the whole run, exactly.
    assert other.n_examples + sum(b.n_examples for b in selection.shown) == n
    assert other.actual_share + sum(b.actual_share for b in selection.shown) == pytest.approx(1.0, rel=1e-12)
    assert other.predicted_share + sum(b.predicted_share for b in selection.shown) == pytest.approx(1.0, rel=1e-6)
    assert other.excess_loss + sum(b.excess_loss for b in selection.shown) == pytest.approx(0.0, abs=1e-9)
    for chart in (many_classes.class_distribution_chart(selection, "d"), many_classes.class_excess_chart(selection, "x")):
        assert len(chart) < 60_000  # the report stays far below 1 MB at any k
        assert "all other" in chart
    assert many_classes.confusion_heatmap(run.confusion, run.classes) is None


def test_few_classes_are_all_shown_and_charts_are_reproducible(digits):
    run = digits[2].run
    selection = many_classes.select_classes(run)
    assert selection.other is None and [b.name for b in selection.shown] == list(run.classes)
    first = many_classes.confusion_heatmap(run.confusion, run.classes)
    assert first == many_classes.confusion_heatmap(run.confusion, run.classes)
    assert many_classes.class_excess_chart(selection, "x") == many_classes.class_excess_chart(selection, "x")
    counts = confusion_matrix(digits[1], digits[0].argmax(axis=1))
    # Cells carry their counts (10 classes <= 12), in sklearn's confusion matrix order.
    assert [[cell.text for cell in row.cells] for row in first.rows] == [
        [f"{n:,}" if n else "" for n in row] for row in counts]


def test_class_names_are_escaped_in_charts():
    names = ["<script>alert(1)</script>", "a&b", "plain"]
    rng = np.random.default_rng(1)
    probs = rng.dirichlet(np.ones(3), 300)
    frame = pd.DataFrame(probs, columns=[f"p_{c}" for c in names]).assign(label=rng.choice(names, 300))
    run = losslens.evaluate(frame).run
    from losslens.html import render_report

    from datetime import datetime, timezone

    page = render_report(losslens.evaluate(frame), generated_at=datetime(2026, 1, 1, tzinfo=timezone.utc),
                         command_line="x")
    heat = re.search(r'<table class="heatmap">(.*?)</table>', page, flags=re.S).group(1)
    assert "<script>" not in heat and "&lt;script&gt;" in heat and "a&amp;b" in heat
    assert "&lt;script&gt;" in many_classes.class_distribution_chart(many_classes.select_classes(run), "d")


# --- --per-class FILE.csv (per_class.py) ------------------------------------------------

def test_per_class_table_has_every_class_and_reads_back(wide, tmp_path):
    import io

    from losslens.per_class import PER_CLASS_COLUMNS, per_class_csv, per_class_rows

    probs, labels, _, evaluation = wide
    run = evaluation.run
    rows = per_class_rows(run)
    assert [r["class"] for r in rows] == list(run.classes)
    assert len(rows) == 1000 and all(tuple(r) == PER_CLASS_COLUMNS for r in rows)
    matrix = confusion_matrix(labels, probs.argmax(axis=1), labels=np.arange(1000))
    off = matrix - np.diag(np.diag(matrix))
    for r in rows[:50]:
        c = int(r["class"])
        assert r["n_examples"] == matrix[c].sum()
        assert r["most_confused_count"] == off[c].max()
        if off[c].any():
            assert r["most_confused_with"] == str(int(off[c].argmax()))
        else:
            assert r["most_confused_with"] is None
    absent = next(r for r in rows if r["n_examples"] == 0)
    assert absent["log_loss"] is None and absent["recall"] is None  # undefined, not NaN
    back = pd.read_csv(io.StringIO(per_class_csv(run)), keep_default_na=False, na_values=[""])
    assert list(back.columns) == list(PER_CLASS_COLUMNS)
    np.testing.assert_array_equal(back["excess_loss"].fillna(0).to_numpy(),
                                  [r["excess_loss"] or 0 for r in rows])  # repr: exact round trip
    assert back["excess_loss"].sum() == pytest.approx(0.0, abs=1e-12)


def test_per_class_csv_quotes_awkward_names():
    from losslens.per_class import per_class_csv

    names = ['a,b', 'say "hi"', "plain"]
    frame = pd.DataFrame({"label": names * 3, **{f"p_{c}": [0.2, 0.3, 0.5] * 3 for c in names}})
    run = losslens.evaluate(frame).run
    back = pd.read_csv(__import__("io").StringIO(per_class_csv(run)))
    assert back["class"].tolist() == list(run.classes)
    assert sorted(back["class"]) == sorted(names)


# --- Wide Parquet row groups are read in slices (reading._row_group_slices) --------------

@pytest.fixture
def small_slices(monkeypatch):
    """Make every row group over 64 kB 'wide', so that small test files take the sliced path."""
    import losslens.reading as reading

    monkeypatch.setattr(reading, "PARQUET_SLICE_BYTES", 64 * 1024)
    return reading


def test_one_row_group_read_in_slices_gives_the_same_numbers(small_slices, tmp_path):
    rng = np.random.default_rng(21)
    probs, labels = softmax_model(rng, 3000, 40)  # float32, as torch gives them
    frame = frame_of(probs, [f"c{c}" for c in labels], split=rng.choice(["a", "b"], 3000))
    frame.columns = ["label"] + [f"p_c{c}" for c in range(40)] + ["split"]
    path = tmp_path / "one_group.parquet"
    frame.to_parquet(path, index=False)  # pandas' default: one row group
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(path)
    assert parquet.num_row_groups == 1
    columns = list(frame.columns)
    assert small_slices._decoded_bytes(parquet, 0, columns) > small_slices.PARQUET_SLICE_BYTES
    sliced = list(small_slices._parquet_batches(parquet, columns, 500))
    assert len(sliced) > 6 and sum(b.num_rows for b in sliced) == 3000
    assert pa_table(sliced).equals(parquet.read())  # every value, in order, nothing repeated
    # --renormalize keeps the evaluation on the sliced path (hard labels without it are
    # scored column by column: tests/test_columnwise.py); sums reordered by the slicing
    # agree within a few ulps.
    from json_close import assert_json_close

    streamed = losslens.evaluate(path, name="one_group", renormalize=True).to_dict()
    whole = losslens.evaluate(frame, name="one_group", renormalize=True).to_dict()
    assert_json_close(streamed, whole, skip=("inputs", "source", "elapsed_seconds"))
    assert streamed["runs"][0]["confused_pairs"]


def pa_table(batches):
    import pyarrow as pa

    return pa.Table.from_batches(batches)


def test_sliced_row_groups_keep_nulls_strings_and_row_numbers(small_slices, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    n = 4000
    rng = np.random.default_rng(3)
    p = rng.uniform(0.05, 0.95, n)
    p_null = pa.array(p, mask=np.arange(n) == 3217)  # a missing value in the third slice
    table = pa.table({"label": pa.array(rng.choice(["yes", "no"], n)), "p_no": pa.array(1 - p),
                      "p_yes": p_null, "weight": pa.array(np.arange(n), pa.int32())})
    path = tmp_path / "nulls.parquet"
    pq.write_table(table, path, row_group_size=n)
    parquet = pq.ParquetFile(path)
    batches = list(small_slices._parquet_batches(parquet, table.column_names, 700))
    assert len(batches) > 3
    assert pa_table(batches).equals(table)
    with pytest.raises(losslens.InputError, match=r"column 'p_yes', row 3218: missing or NaN value"):
        losslens.evaluate(path)


def test_narrow_row_groups_are_streamed_together(small_slices, tmp_path):
    # Consecutive narrow groups go through one iter_batches call, as before; a wide group
    # in the middle is sliced, and the order of rows is kept.
    import pyarrow as pa
    import pyarrow.parquet as pq

    values = np.arange(30000, dtype=np.float64)
    path = tmp_path / "mixed.parquet"
    with pq.ParquetWriter(path, pa.schema([("x", pa.float64())])) as writer:
        for lo, hi in ((0, 1000), (1000, 2000), (2000, 28000), (28000, 30000)):
            writer.write_table(pa.table({"x": values[lo:hi]}))
    parquet = pq.ParquetFile(path)
    assert [small_slices._decoded_bytes(parquet, g, ["x"]) > 64 * 1024 for g in range(4)] == [False, False, True, False]
    batches = list(small_slices._parquet_batches(parquet, ["x"], 4096))
    assert np.array_equal(pa_table(batches).column("x").to_numpy(), values)
