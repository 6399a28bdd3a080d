"""Issue #22, second round: cheaper paths that must give exactly the order or sums they replace."""

from __future__ import annotations

import numpy as np

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
