"""Faster sums that must stay the very sums they replace (issue 22, fourth round).

The per-class calibration bins are summed block by block with ``np.add.at``; the temperature
split takes its Brier score at T = 1 from the fit's first pass. Both must give the figures of
the plain computation to the last bit (the JSON is compared byte for byte with the code before),
and the right figures: checked against scipy's softmax and a hand-written Brier score.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import softmax

from losslens import batch_figures, calibration_fit
from losslens.batch import ScoredBatch


def _batch(probs: np.ndarray, label: np.ndarray, weight: np.ndarray) -> ScoredBatch:
    n = len(label)
    rows = np.arange(n)
    return ScoredBatch(
        source="t", rows=rows + 1, label=label, probs=probs, loss=-np.log(probs[rows, label]),
        true_prob=probs[rows, label], predicted=probs.argmax(axis=1), confidence=probs.max(axis=1),
        weight=weight, clipped=np.zeros(n, bool), unnormalized=np.zeros(n, bool),
    )


@pytest.mark.parametrize("unit", [True, False])
def test_class_calibration_bins_equal_one_bincount_per_class_bit_for_bit(unit):
    rng = np.random.default_rng(3)
    # More rows than one block, and not a multiple of it, so that sums carry across blocks.
    n, k, bins = 3 * batch_figures.CALIBRATION_BLOCK_ROWS + 123, 7, 15
    probs = rng.dirichlet(np.full(k, 0.4), n)
    label = rng.integers(0, k, n)
    weight = np.ones(n) if unit else rng.gamma(2.0, 1.0, n)
    got = batch_figures._class_calibration(_batch(probs, label, weight), k, bins)
    # The reference: one bincount over each class's whole column, rows in order.
    cell = np.minimum((probs * bins).astype(np.int64), bins - 1)
    for c in range(k):
        cells = slice(c * bins, (c + 1) * bins)
        expected_weight = np.bincount(cell[:, c], weights=weight, minlength=bins)
        expected_prob = np.bincount(cell[:, c], weights=probs[:, c] * weight if not unit else probs[:, c],
                                    minlength=bins)
        assert np.array_equal(got["class_bin_weight"][cells], expected_weight)
        assert np.array_equal(got["class_bin_prob_sum"][cells], expected_prob)
    assert got["class_bin_weight"].sum() == pytest.approx(k * weight.sum(), rel=1e-12)


def test_carried_sums_add_in_row_order():
    # Values whose sum depends on the order of the additions. The running sum comes first and
    # the block's values follow one by one: (1 + 1e16) - 1e16 is 0, where adding the block's own
    # total (1e16 - 1e16 = 0) to the running sum would give 1.
    cells = np.array([0, 0, 1, 1, 1, 1])
    values = np.array([1e16, -1e16, 1e16, 1.0, 1.0, -1e16])
    sums = batch_figures._carry_bincount(cells, np.array([1.0, 0.0]), values)
    assert sums.tolist() == [(1.0 + 1e16) - 1e16, ((1e16 + 1.0) + 1.0) - 1e16]
    assert sums.tolist() == [0.0, 0.0]


@pytest.mark.parametrize("weighted", [False, True])
def test_temperature_split_brier_at_t1_is_the_softmax_brier(weighted):
    rng = np.random.default_rng(11)
    n, k = 40_000, 6  # more than one row chunk of the fit
    z = rng.normal(size=(n, k)) * 2.0
    y = rng.integers(0, k, n)
    w = rng.gamma(2.0, 1.0, n) if weighted else None
    split = calibration_fit.temperature_split(z, y, w)
    weights = np.ones(n) if w is None else w
    # The same computation the split made before it took the rows from the fit: bit for bit.
    assert split.brier_score == calibration_fit._brier(z, y, weights, 1.0)
    # And the right figure (scipy's softmax and a hand-written Brier score; a different
    # summation, so within rounding).
    onehot = np.eye(k)[y]
    reference = float(np.average(((softmax(z, axis=1) - onehot) ** 2).sum(axis=1), weights=weights))
    assert split.brier_score == pytest.approx(reference, rel=1e-12)
    after = float(np.average(((softmax(z / split.temperature, axis=1) - onehot) ** 2).sum(axis=1), weights=weights))
    assert split.brier_after_temperature == pytest.approx(after, rel=1e-12)


def test_fit_temperature_alone_is_unchanged_by_the_brier_rows():
    rng = np.random.default_rng(5)
    z = rng.normal(size=(5_000, 4)) * 3.0
    y = rng.integers(0, 4, 5_000)
    alone = calibration_fit.fit_temperature(z, y)
    with_rows, rows = calibration_fit._fit(z, y.astype(np.int64), np.ones(5_000), brier=True)
    assert alone == with_rows
    assert rows.shape == (5_000,)
