"""Per-class calibration bins taken in row blocks equal one bincount over the whole matrix, bit for bit."""

import numpy as np
import pytest

from losslens import batch_figures
from losslens.batch_figures import CALIBRATION_BLOCK_ROWS, _class_calibration


class _Batch:
    """The fields of a ScoredBatch that the per-class bins read."""

    def __init__(self, probs, label, weight, targets):
        self.probs, self.label, self.weight, self.targets, self.n = probs, label, weight, targets, len(probs)
        self.class_bins = None  # not taken in a scoring pass: the numpy blocks below add them

    def matrix(self):
        return self.probs


def _reference(probs, label, w, targets, bins):
    """One flat numpy bincount over every cell: what the blocks must reproduce."""
    n, k = probs.shape
    cells = (np.minimum((probs * bins).astype(np.int64), bins - 1) + np.arange(k) * bins).ravel()
    weight = np.bincount(cells, weights=np.repeat(w, k), minlength=k * bins)
    prob_sum = np.bincount(cells, weights=(probs * w[:, None]).ravel(), minlength=k * bins)
    if targets is not None:
        hits = np.bincount(cells, weights=(targets * w[:, None]).ravel(), minlength=k * bins)
    else:
        true_bin = np.minimum((probs[np.arange(n), label] * bins).astype(np.int64), bins - 1) + label * bins
        hits = np.bincount(true_bin, weights=w, minlength=k * bins)
    return weight, prob_sum, hits


@pytest.mark.parametrize("weighted, soft", [(False, False), (True, False), (False, True), (True, True)])
def test_blocked_class_bins_are_bit_identical_to_one_bincount(weighted, soft):
    # Same library, same values, same order of addition in every bin: the sums must be equal to
    # the last bit (a per-block sum added afterwards would differ in the last bits of prob_sum).
    rng = np.random.default_rng(22)
    n, k, bins = 2 * CALIBRATION_BLOCK_ROWS + 1234, 10, 15  # two whole blocks and a part
    probs = rng.dirichlet(np.ones(k) * 0.5, size=n)
    probs[0] = np.eye(k)[3]  # a 1.0 lands in the last bin
    label = rng.integers(0, k, n)
    w = rng.uniform(0.1, 3.0, n) if weighted else np.ones(n)
    targets = rng.dirichlet(np.ones(k), size=n) if soft else None
    got = _class_calibration(_Batch(probs, label, w, targets), k, bins)
    weight, prob_sum, hits = _reference(probs, label, w, targets, bins)
    assert np.array_equal(got["class_bin_weight"], weight)
    assert np.array_equal(got["class_bin_prob_sum"], prob_sum)
    assert np.array_equal(got["class_bin_hit_weight"], hits)
    assert got["class_bin_weight"].sum() == pytest.approx(k * w.sum(), rel=1e-12)


def test_block_size_does_not_change_the_sums(monkeypatch):
    # The running sums carried from block to block: any block size gives the same bits.
    rng = np.random.default_rng(5)
    probs = rng.dirichlet(np.ones(6), size=5000)
    batch = _Batch(probs, rng.integers(0, 6, 5000), rng.uniform(0.5, 2.0, 5000), None)
    whole = _class_calibration(batch, 6, 10)
    monkeypatch.setattr(batch_figures, "CALIBRATION_BLOCK_ROWS", 777)
    blocked = _class_calibration(batch, 6, 10)
    for name, values in whole.items():
        assert np.array_equal(values, blocked[name]), name
