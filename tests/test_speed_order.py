"""Issue #22, second round: cheaper paths that must give exactly the order or sums they replace."""

from __future__ import annotations

import json

import numpy as np
import pytest

from losslens.calibration_fit import _canonical_order, _order_by_first_bytes


def _bytes_order(z, y, w):
    """The canonical order before the change: a stable sort of each row's bytes (scores, label, weight)."""
    rows = np.ascontiguousarray(np.column_stack([z, y.astype(np.float64), w]))
    keys = rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1]))).ravel()
    return np.argsort(keys, kind="stable")


def _sample(n, k, seed):
    rng = np.random.default_rng(seed)
    z = np.log(np.clip(rng.dirichlet(np.full(k, 0.5), n), 1e-15, 1.0))
    return z, rng.integers(0, k, n), rng.uniform(0.5, 2.0, n)


def test_first_score_order_is_the_bytes_order():
    z, y, w = _sample(50_000, 10, 1)
    for scores in (z, -z, z * 1e-300):  # negative, positive and subnormal first scores
        order = _order_by_first_bytes(scores)
        assert order is not None
        np.testing.assert_array_equal(order, _bytes_order(scores, y, w))


def test_tied_first_scores_fall_back_to_the_whole_rows():
    z, y, w = _sample(5_000, 4, 2)
    z[:, 0] = np.log(0.25)  # every row ties on its first score: the other bytes decide
    assert _order_by_first_bytes(z) is None
    sorted_z, sorted_y, sorted_w = _canonical_order(z, y, w)
    expected = _bytes_order(z, y, w)
    np.testing.assert_array_equal(sorted_z, z[expected])
    np.testing.assert_array_equal(sorted_y, y[expected])
    np.testing.assert_array_equal(sorted_w, w[expected])


def _scored(n, k, seed):
    from losslens.batch import ScoredBatch

    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.full(k, 0.5), n)
    label = rng.integers(0, k, n)
    zeros = np.zeros(n)
    predicted = probs.argmax(axis=1)
    return ScoredBatch(source="t", rows=np.arange(n), label=label, probs=probs, loss=zeros,
                       true_prob=probs[np.arange(n), label], predicted=predicted,
                       confidence=probs.max(axis=1), weight=rng.uniform(0.5, 2.0, n),
                       clipped=zeros.astype(bool), unnormalized=zeros.astype(bool),
                       split=rng.choice(np.array(["train", "test"], dtype=object), n))


def test_a_sample_told_its_row_count_keeps_the_same_examples_in_the_same_slots():
    from losslens.calibration_sample import CalibrationSample

    batches = [_scored(n, 4, seed) for seed, n in enumerate((3_000, 700, 5_000, 1, 2_500))]
    total = sum(b.n for b in batches)
    plain, told = CalibrationSample(4, 1e-15, size=1_000), CalibrationSample(4, 1e-15, size=1_000)
    told.expect_rows(total)
    assert told.threshold < 1.0
    for batch in batches:
        plain(batch)
        told(batch)
    # Same keys and, for every kept example, the same values, slot by slot, to the bit.
    for name in ("keys", "confidence", "correct", "weight", "label", "z", "split"):
        np.testing.assert_array_equal(getattr(told, name), getattr(plain, name), err_msg=name)
    told.check_complete()


@pytest.mark.parametrize("stand_in", [False, True])
def test_a_sample_whose_batches_were_prepared_by_workers_keeps_the_same_examples_in_the_same_slots(stand_in):
    # Worker threads draw each batch's keys (jumped ahead to its first row) and copy its sampled
    # examples, in any order; the sample then places them in reading order, every bit as one
    # thread drawing and copying everything. With ``stand_in`` and the threshold drawn, prepare()
    # hands back what it took of each batch (SampledRows), and the sample fills its slots from
    # those alone.
    from losslens.calibration_sample import CalibrationSample, SampledRows

    batches = [_scored(n, 4, seed) for seed, n in enumerate((3_000, 700, 5_000, 1, 2_500))]
    total = sum(b.n for b in batches)
    starts = np.cumsum([0, *(b.n for b in batches[:-1])])
    for size in (1_000, 4_000):
        plain, prepared = CalibrationSample(4, 1e-15, size=size), CalibrationSample(4, 1e-15, size=size)
        prepared.expect_rows(total)
        if stand_in:
            assert prepared.threshold < 1.0  # drawn (in a thread of its own with several threads): waits for it
        given = {id(batch): prepared.prepare(batch, int(start), stand_in=stand_in)
                 for batch, start in reversed(list(zip(batches, starts)))}
        assert all(isinstance(given[id(b)], SampledRows) == stand_in for b in batches)
        for batch in batches:
            plain(batch)
            prepared(given[id(batch)])
        assert not prepared._prepared  # every prepared batch was taken back (or never kept)
        assert prepared.n_seen == plain.n_seen == total and prepared.has_z and not prepared.soft
        for name in ("keys", "confidence", "correct", "weight", "label", "z", "split"):
            np.testing.assert_array_equal(getattr(prepared, name), getattr(plain, name), err_msg=name)


@pytest.mark.parametrize("lag", [1, 2, 3])
def test_a_batch_prepared_while_the_sample_takes_earlier_ones_keeps_the_same_slots(lag):
    # As in a run: a worker prepares batch i + lag while the sample still takes batch i. It keeps
    # the rows whose key is under the sample's largest kept key then (that key only falls), and the
    # sample compares those few against its largest, not every key of the batch.
    from losslens.calibration_sample import CalibrationSample

    batches = [_scored(n, 4, seed) for seed, n in enumerate((1_200, 700, 5_000, 1, 2_500, 4_000, 3_000, 900))]
    total = sum(b.n for b in batches)
    starts = np.cumsum([0, *(b.n for b in batches[:-1])])
    plain, prepared = CalibrationSample(4, 1e-15, size=1_000), CalibrationSample(4, 1e-15, size=1_000)
    prepared.expect_rows(total)
    assert prepared.threshold < 1.0  # drawn: every prepared batch is a stand-in
    given = []
    for i, batch in enumerate(batches):
        while len(given) <= min(i + lag, len(batches) - 1):
            j = len(given)
            given.append(prepared.prepare(batches[j], int(starts[j]), stand_in=True))
        plain(batch)
        prepared(given[i])
    assert sum(g.prepared.below is not None for g in given) >= len(batches) - lag - 2  # the few-rows path ran
    for name in ("keys", "confidence", "correct", "weight", "label", "z", "split"):
        np.testing.assert_array_equal(getattr(prepared, name), getattr(plain, name), err_msg=name)


def _slots_as_before(key_batches, capacity):
    """The rows in each slot as the sample placed them before it tracked its largest key: every
    slot argpartition keeps marked, the others given up (the reference for ties at the largest)."""
    keys, owner, filled, offset = np.full(capacity, np.inf), np.full(capacity, -1), 0, 0
    for batch_keys in key_batches:
        n = len(batch_keys)
        take = min(capacity - filled, n)
        keys[filled:filled + take], owner[filled:filled + take] = batch_keys[:take], offset + np.arange(take)
        filled += take
        rest = np.flatnonzero(batch_keys[take:] < keys.max()) + take
        if take < n and rest.size:
            merged = np.concatenate([keys, batch_keys[rest]])
            keep = np.argpartition(merged, capacity - 1)[:capacity]
            entering = keep[keep >= capacity] - capacity
            stays = np.zeros(capacity, dtype=bool)
            stays[keep[keep < capacity]] = True
            free = np.flatnonzero(~stays)
            keys[free], owner[free] = batch_keys[rest[entering]], offset + rest[entering]
        offset += n
    return keys, owner


@pytest.mark.parametrize("levels", [None, 64])  # distinct keys, and keys on 64 levels: ties at the largest
def test_the_slots_given_up_are_those_argpartition_does_not_keep_even_with_tied_keys(monkeypatch, levels):
    from losslens.calibration_sample import CalibrationSample

    if levels is not None:
        drawn = CalibrationSample.keys_at
        monkeypatch.setattr(CalibrationSample, "keys_at",
                            lambda self, position, n: np.floor(drawn(self, position, n) * levels) / levels)
    batches = [_scored(n, 4, seed) for seed, n in enumerate((1_500, 700, 5_000, 1, 2_500, 4_000))]
    sample = CalibrationSample(4, 1e-15, size=1_000)
    for batch in batches:
        sample(batch)
    starts = np.cumsum([0, *(b.n for b in batches[:-1])])
    keys, owner = _slots_as_before([sample.keys_at(int(s), b.n) for s, b in zip(starts, batches)], 1_000)
    np.testing.assert_array_equal(sample.keys, keys)
    np.testing.assert_array_equal(sample.weight, np.concatenate([b.weight for b in batches])[owner])
    if levels is not None:
        assert np.count_nonzero(sample.keys == sample.keys.max()) > 1  # the largest key kept was tied


@pytest.mark.parametrize("rows", [1_001, 1_200, 5_000, 70_000])
@pytest.mark.parametrize("bound", ["workers'", "too low"])
def test_the_threshold_is_the_capacity_th_smallest_key_of_the_run(monkeypatch, rows, bound):
    # Drawn from the keys under the workers' bound alone; a bound under it (which 50 standard
    # deviations make a theory) is found out, and every key is drawn again.
    from losslens import calibration_sample
    from losslens.calibration_sample import CalibrationSample

    monkeypatch.setattr(calibration_sample, "THRESHOLD_CHUNK", 4_096)  # several chunks
    sample = CalibrationSample(4, 1e-15, size=1_000)
    if bound == "too low":
        monkeypatch.setattr(CalibrationSample, "_likely_above", lambda self, n: 100 / n)
    keys = sample.keys_at(0, rows)
    assert sample._largest_kept_key(rows) == np.partition(keys, 999)[999]


def test_no_stand_in_while_the_threshold_is_drawn_or_when_not_asked_for():
    # Before the threshold is known a worker copies the rows under a bound; the sample may then
    # need a row of the batch itself, so the batch is kept (and its prepared values by its id).
    from losslens.calibration_sample import CalibrationSample

    batch = _scored(3_000, 4, 7)
    sample = CalibrationSample(4, 1e-15, size=1_000)
    sample.expect_rows(10_000)
    assert sample.threshold < 1.0  # drawn: waits for it
    assert sample.prepare(batch, 0) is batch and id(batch) in sample._prepared
    drawing = CalibrationSample(4, 1e-15, size=1_000)
    drawing.expect_rows(10_000)
    drawing._threshold_drawn = type("Drawing", (), {"done": staticmethod(lambda: False)})()
    assert drawing.prepare(batch, 0, stand_in=True) is batch and id(batch) in drawing._prepared
    few = CalibrationSample(4, 1e-15, size=1_000)  # no threshold: the sample copies the rows itself
    assert few.prepare(batch, 0, stand_in=True) is batch and not few._prepared


def test_a_stand_in_missing_a_kept_row_is_an_error_not_a_wrong_sample(monkeypatch):
    from losslens.calibration_sample import CalibrationSample

    batch = _scored(3_000, 4, 8)
    sample = CalibrationSample(4, 1e-15, size=1_000)
    sample.expect_rows(3_000)
    low = sample.threshold / 3
    monkeypatch.setattr(CalibrationSample, "_bound", lambda self: low)  # a bound that cannot be
    stand_in = sample.prepare(batch, 0, stand_in=True)
    with pytest.raises(RuntimeError, match="stand-in"):
        sample(stand_in)


def test_a_row_above_the_workers_bound_is_copied_from_the_batch(monkeypatch):
    # While the threshold is drawn, workers copy the rows under a bound meant to be above it;
    # were it ever below, the rows it missed are found missing and copied by the sample itself.
    from losslens.calibration_sample import CalibrationSample

    batches = [_scored(n, 4, seed) for seed, n in enumerate((3_000, 700, 5_000))]
    plain, prepared = CalibrationSample(4, 1e-15, size=1_000), CalibrationSample(4, 1e-15, size=1_000)
    prepared.expect_rows(sum(b.n for b in batches))
    low = prepared.threshold / 3
    monkeypatch.setattr(CalibrationSample, "_bound", lambda self: low)
    for batch, start in zip(batches, (0, 3_000, 3_700)):
        prepared.prepare(batch, start)
        plain(batch)
        prepared(batch)
    for name in ("keys", "confidence", "correct", "weight", "label", "z", "split"):
        np.testing.assert_array_equal(getattr(prepared, name), getattr(plain, name), err_msg=name)


@pytest.mark.parametrize("rows", [200_001, 250_000, 1_000_000, 3_333_333, 10_000_000])
def test_the_workers_bound_is_above_the_threshold(rows):
    from losslens.calibration_sample import CalibrationSample

    sample = CalibrationSample(10, 1e-15)
    drawing = type("Drawing", (), {"done": staticmethod(lambda: False)})()
    sample.rows_at_least, sample._threshold_drawn = rows, drawing
    bound = sample._bound()
    assert bound >= sample._largest_kept_key(rows)


def test_the_keys_of_a_position_are_those_of_one_generator_drawing_them_all():
    from losslens.calibration_sample import SAMPLE_SEED, CalibrationSample

    sample = CalibrationSample(3, 1e-15)
    every = np.random.default_rng(SAMPLE_SEED).random(10_000)
    for start, n in ((0, 10_000), (1, 5), (4_321, 999), (9_999, 1)):
        assert np.array_equal(sample.keys_at(start, n), every[start:start + n])


def test_a_sample_told_too_many_rows_fails_rather_than_keep_skipped_rows():
    import pytest

    from losslens.calibration_sample import CalibrationSample

    sample = CalibrationSample(4, 1e-15, size=100)
    sample.expect_rows(1_000)
    sample(_scored(600, 4, 1))
    with pytest.raises(RuntimeError, match="fewer than the 1000 expected"):
        sample.check_complete()


def test_row_max_by_columns_is_numpys_row_max():
    from losslens.calibration_fit import row_max

    z, _, _ = _sample(3_000, 10, 3)
    z[5, 3] = -np.inf  # a padded choice
    z[7] = -np.inf
    z[7, 9] = -2.0
    z[11, 4] = np.nan
    for matrix in (z, z[:, :1], z[:, :7], np.hstack([z] * 4)):  # 40 columns: numpy's own
        np.testing.assert_array_equal(row_max(matrix), matrix.max(axis=1, keepdims=True))


def test_arrow_to_numpy_without_pandas_equals_pyarrows_own():
    import pyarrow as pa

    from losslens.arrow_values import bool_array, int64_array, plain_numpy

    rng = np.random.default_rng(4)
    flags = rng.random(1_000) < 0.3
    ints = rng.integers(-5, 5, 1_000)
    for array in (pa.array(flags), pa.array(ints), pa.array(ints.astype(np.int32)), pa.array(rng.random(1_000))):
        for part in (array, array.slice(3), array.slice(13, 500), array.slice(1_000)):  # offsets not a byte apart
            got = plain_numpy(part)
            expected = part.to_numpy(zero_copy_only=False)
            assert got.dtype == expected.dtype
            np.testing.assert_array_equal(got, expected)
    chunked = pa.chunked_array([pa.array(ints[:10]), pa.array(ints[10:])])
    np.testing.assert_array_equal(plain_numpy(chunked), ints)
    with_nulls = pa.array([1, None, 3])  # nulls: pyarrow's own conversion (NaN)
    np.testing.assert_array_equal(plain_numpy(with_nulls), [1.0, np.nan, 3.0])
    assert int64_array(ints[5:900:3]).equals(pa.array(ints[5:900:3], pa.int64()))
    for n in (0, 1, 7, 8, 9, 1_000):
        assert bool_array(flags[:n]).equals(pa.array(flags[:n]))


def test_a_token_run_loads_no_pandas(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    from test_startup import _loaded, _roots

    rng = np.random.default_rng(5)
    documents = np.repeat(np.arange(40), 25)
    table = pa.table({"doc_id": documents, "logprob": -rng.exponential(size=1_000).astype(np.float32),
                      "n_bytes": rng.integers(1, 6, 1_000).astype(np.int32)})
    path = tmp_path / "tokens.parquet"
    pq.write_table(table, path)
    run = _loaded("metrics", str(path))
    assert run["code"] == 0
    assert "pandas" not in _roots(run["modules"])


def test_a_run_hands_every_batch_its_workers_prepared_to_the_sample(tmp_path, monkeypatch):
    # End to end: a Parquet file (its row count known) read in several batches; each batch the
    # workers prepared reaches the sample as the very object the sample gets (none left over),
    # and the figures are those of a run without workers.
    import pandas as pd
    from typer.testing import CliRunner

    import losslens.layouts.classifier as classifier
    from losslens import reading
    from losslens.calibration_sample import CalibrationSample, SampledRows
    from losslens.cli import app

    rng = np.random.default_rng(5)
    probs = rng.dirichlet(np.full(4, 0.7), 6_000)
    frame = pd.DataFrame(probs, columns=[f"p_{c}" for c in range(4)])
    frame["label"] = rng.integers(0, 4, len(frame))
    frame.to_parquet(tmp_path / "preds.parquet")
    samples, used = [], []
    monkeypatch.setattr(reading, "BATCH_BYTES", 40 * 1024)  # about 1,000 rows a batch
    monkeypatch.setattr(classifier, "sample_for", lambda layout: samples.append(
        CalibrationSample(layout.n_classes, layout.eps, size=700)) or samples[-1])
    put = CalibrationSample._put
    stood_in = []
    monkeypatch.setattr(CalibrationSample, "_put", lambda self, slots, batch, rows, keys, prepared=None: (
        used.append(prepared is not None), stood_in.append(isinstance(batch, SampledRows)),
        put(self, slots, batch, rows, keys, prepared))[2])

    def run(threads: str, *more) -> str:
        result = CliRunner().invoke(app, ["metrics", str(tmp_path / "preds.parquet"), "--json", "-", *more],
                                    env={"LOSSLENS_THREADS": threads})
        assert result.exit_code == 0, result.stdout
        return result.stdout

    threaded = run("2")
    assert samples[-1]._prepared == {} and used and all(used)
    # The sample the only observer: once the threshold was drawn, stand-ins came instead of batches.
    assert any(stood_in)
    used.clear()
    stood_in.clear()
    assert run("1") == threaded
    assert not any(used)  # one thread: nothing is prepared, the sample copies every row itself
    # Another observer (the per-example file) needs the whole batches: no stand-ins, the same figures.
    used.clear()
    with_rows = run("2", "--per-example", str(tmp_path / "rows.csv"))
    assert used and all(used) and not any(stood_in)
    assert json.loads(with_rows)["runs"] == json.loads(threaded)["runs"]
    assert len(pd.read_csv(tmp_path / "rows.csv")) == len(frame)


def test_batches_without_a_weight_column_share_one_read_only_array_of_ones(tmp_path, monkeypatch):
    import pandas as pd

    from losslens import reading
    from losslens.batch import unit_weights
    from losslens.engine import evaluate_runs

    rng = np.random.default_rng(9)
    probs = rng.dirichlet(np.ones(3), 5_000)
    frame = pd.DataFrame(probs, columns=[f"p_{j}" for j in range(3)])
    frame["label"] = rng.integers(0, 3, len(frame))
    frame.to_parquet(tmp_path / "preds.parquet")
    monkeypatch.setattr(reading, "BATCH_BYTES", 32 * 1024)  # 1,024-row batches and a last one of 904
    weights = []
    evaluate_runs([str(tmp_path / "preds.parquet")], observers=[lambda run, layout, batch: weights.append(batch.weight)])
    assert [len(w) for w in weights] == [1_024] * 4 + [904]
    assert all(w is unit_weights(len(w)) for w in weights) and weights[0] is weights[3]
    assert np.array_equal(weights[0], np.ones(1_024)) and not weights[0].flags.writeable
    with pytest.raises(ValueError):
        weights[0][0] = 2.0  # shared by the batches: nothing may write into it
