"""Accumulators merge: halves merged equal one pass, in any order."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import losslens
from losslens.accumulate import Accumulator, RunAccumulator
from losslens.layouts.classifier import layout_of
from losslens.batch import score_batch
from losslens.options import Options
from losslens.reading import FrameSource

import pyarrow as pa


def frame(seed, n, k=3, weights=True):
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.ones(k) * 0.7, size=n)
    data = {"label": rng.integers(0, k, size=n).astype(str)}
    for c in range(k):
        data[f"p_{c}"] = probs[:, c]
    if weights:
        data["w"] = rng.uniform(0.1, 3.0, size=n)
    data["split"] = rng.choice(["train", "validation"], size=n)
    data["region"] = rng.choice(["north", "south", "east"], size=n)
    return pd.DataFrame(data)


def run_accumulator(df, options):
    source = FrameSource(pa.Table.from_pandas(df, preserve_index=False))
    layout = layout_of([source], options)
    batch = score_batch(source.table.to_batches()[0] if len(df) else None, layout, "df", 0)
    return RunAccumulator.of(batch, layout.n_classes, options.bins, options.worst), layout


def _without_worst(acc: Accumulator) -> Accumulator:
    return Accumulator(**{**acc.__dict__, "worst": ()})


def assert_same(a: Accumulator, b: Accumulator):
    for name in ("n_examples", "n_clipped", "n_unnormalized", "n_confident_errors"):
        assert getattr(a, name) == getattr(b, name), name
    for name in ("weight_sum", "weight_sq_sum", "loss_sum", "loss_sq_sum", "correct_weight", "brier_sum"):
        assert getattr(a, name) == pytest.approx(getattr(b, name), rel=1e-12, abs=1e-12), name
    for name in ("class_count", "class_weight", "class_loss_sum", "prob_sum", "bin_weight", "bin_correct_weight", "loss_histogram"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=1e-12, atol=1e-12, err_msg=name)
    assert [(e.source, e.row) for e in a.worst] == [(e.source, e.row) for e in b.worst]


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(2, 300), cut=st.floats(0.05, 0.95))
def test_two_halves_merged_equal_one_pass(seed, n, cut):
    df = frame(seed, n)
    options = Options(weight="w", by=("region",), worst=5)
    whole, _ = run_accumulator(df, options)
    k = max(1, min(n - 1, int(n * cut)))
    first, _ = run_accumulator(df.iloc[:k], options)
    second, _ = run_accumulator(df.iloc[k:], options)
    merged = first + second
    # Row numbers restart in each part, so the kept worst examples differ by row; the
    # sums must not.
    assert_same(_without_worst(merged.overall), _without_worst(whole.overall))
    assert set(merged.by_split) == set(whole.by_split)
    for key in whole.by_split:
        assert merged.by_split[key].loss_sum == pytest.approx(whole.by_split[key].loss_sum, rel=1e-12)
        assert merged.by_split[key].n_examples == whole.by_split[key].n_examples
    for value in whole.by_slice["region"]:
        assert merged.by_slice["region"][value].weight_sum == pytest.approx(
            whole.by_slice["region"][value].weight_sum, rel=1e-12
        )


def test_sum_starts_from_zero_and_empty_is_identity():
    df = frame(1, 50)
    acc, layout = run_accumulator(df, Options())
    empty = RunAccumulator.empty(layout.n_classes)
    assert (empty + acc).overall.loss_sum == acc.overall.loss_sum
    assert sum([acc, acc]).overall.n_examples == 100


def test_merging_accumulators_of_different_shapes_is_refused():
    with pytest.raises(ValueError):
        Accumulator.empty(3) + Accumulator.empty(4)


def test_streamed_batches_equal_one_batch(tmp_path, monkeypatch):
    """Many small read batches give the numbers of one big batch."""
    import losslens.reading as reading

    df = frame(7, 5000)
    path = tmp_path / "preds.parquet"
    df.to_parquet(path)
    one = losslens.evaluate(path, weight="w", by=["region"])
    monkeypatch.setattr(reading, "BATCH_BYTES", 8 * 1024 * 6)  # ~1024 rows a batch
    many = losslens.evaluate(path, weight="w", by=["region"])
    assert many.overall.log_loss == pytest.approx(one.overall.log_loss, rel=1e-12)
    assert many.overall.ece == pytest.approx(one.overall.ece, rel=1e-12)
    assert many.run.by_slice["region"]["north"].log_loss == pytest.approx(
        one.run.by_slice["region"]["north"].log_loss, rel=1e-12
    )
    assert [(e.row, e.loss) for e in many.run.worst] == [(e.row, e.loss) for e in one.run.worst]


def test_worst_examples_are_the_largest_losses_in_order():
    df = frame(3, 400)
    ev = losslens.evaluate(df, worst=7)
    losses = [e.loss for e in ev.run.worst]
    assert len(losses) == 7
    assert losses == sorted(losses, reverse=True)
    probs = df[["p_0", "p_1", "p_2"]].to_numpy()
    per_row = -np.log(probs[np.arange(len(df)), df["label"].astype(int)])
    assert losses == pytest.approx(sorted(per_row, reverse=True)[:7], rel=1e-12)
    assert ev.run.worst[0].row == int(np.argmax(per_row)) + 1


def _losses_on_and_around_every_edge():
    from losslens.accumulate import HIST_EDGES

    rng = np.random.default_rng(0)
    return np.r_[
        0.0, -0.0, 1e-300, 5e-324, 5e3, 1e10, np.inf, 36.04365338911715, HIST_EDGES,
        np.nextafter(HIST_EDGES, 0), np.nextafter(HIST_EDGES, np.inf), 10 ** rng.uniform(-18, 4, 20000),
    ]


def test_histogram_bins_equal_searchsorted_on_and_around_every_edge():
    from losslens.accumulate import HIST_EDGES
    from losslens.batch_figures import histogram_bins

    values = _losses_on_and_around_every_edge()
    assert np.array_equal(histogram_bins(values), np.searchsorted(HIST_EDGES, values, side="right"))


@pytest.mark.parametrize("library", ["1", "0"])
def test_the_loss_histogram_counts_searchsorteds_bins_with_and_without_the_library(library, monkeypatch):
    from losslens import batch_figures, fused
    from losslens.accumulate import HIST_EDGES

    monkeypatch.setenv(fused.FUSED_ENV, library)
    monkeypatch.setattr(batch_figures, "HISTOGRAM_CHUNK", 4096)  # numpy's chunks: several, one partial
    values = _losses_on_and_around_every_edge()
    expected = np.bincount(np.searchsorted(HIST_EDGES, values, side="right"), minlength=len(HIST_EDGES) + 1)
    counts = batch_figures.loss_histogram(values)
    assert counts.dtype == np.int64 and np.array_equal(counts, expected)
    assert counts[0] >= 4 and counts[-1] >= 3  # the zeros and tiny values; 5e3, 1e10 and inf
    # float32 losses are binned as float64, exactly.
    float32 = values[np.isfinite(values) & (values < 1e30)].astype(np.float32)
    expected = np.bincount(np.searchsorted(HIST_EDGES, float32.astype(np.float64), side="right"),
                           minlength=len(HIST_EDGES) + 1)
    assert np.array_equal(batch_figures.loss_histogram(float32), expected)


@pytest.mark.parametrize("k, weighted, soft", [(10, False, False), (10, True, False), (300, False, False), (4, True, True)])
def test_class_calibration_bins_equal_a_dense_binning(k, weighted, soft):
    # With many classes the accumulator bins only cells with q >= 1/bins and fills bin 0
    # from each class's totals; a plain dense bincount over every cell is the reference.
    from losslens.batch_figures import _sparse_class_calibration as _class_calibration

    rng = np.random.default_rng(k)
    n, bins = 3000, 15
    probs = rng.dirichlet(np.ones(k) * 0.3, size=n)
    probs[0, :] = 0.0
    probs[0, 0] = 1.0  # a 1.0 lands in the last bin
    probs[1, :] = 0.0
    probs[1, :2] = [1 / 15, 1 - 1 / 15]  # a value on the edge of bin 1
    label = rng.integers(0, k, n)
    targets = rng.dirichlet(np.ones(k), size=n) if soft else None
    w = rng.uniform(0.1, 3, n) if weighted else np.ones(n)

    class Batch:
        def matrix(self):
            return self.probs

    batch = Batch()
    batch.weight, batch.probs, batch.label, batch.targets, batch.n = w, probs, label, targets, n
    got = _class_calibration(batch, k, bins)
    cells = np.minimum((probs * bins).astype(np.int64), bins - 1) + np.arange(k) * bins
    expected_weight = np.bincount(cells.ravel(), weights=np.repeat(w, k), minlength=k * bins)
    expected_prob = np.bincount(cells.ravel(), weights=(w[:, None] * probs).ravel(), minlength=k * bins)
    if soft:
        expected_hits = np.bincount(cells.ravel(), weights=(w[:, None] * targets).ravel(), minlength=k * bins)
    else:
        expected_hits = np.bincount(cells[np.arange(n), label], weights=w, minlength=k * bins)
    scale = w.sum()
    # Bin 0 is a difference of totals: equal to a few ulps of the class's total weight.
    np.testing.assert_allclose(got["class_bin_weight"], expected_weight, rtol=0, atol=1e-12 * scale)
    np.testing.assert_allclose(got["class_bin_prob_sum"], expected_prob, rtol=0, atol=1e-12 * scale)
    np.testing.assert_allclose(got["class_bin_hit_weight"], expected_hits, rtol=0, atol=1e-12 * scale)
    if not weighted:
        assert np.array_equal(got["class_bin_weight"], expected_weight)  # counts stay exact
