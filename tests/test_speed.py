"""The rewritten hot loops of issue #22 give the figures of the loops they replaced, to the bit.

Class calibration bins are now summed class by class and Brier sums a chunk of rows at a time
(no n × k temporaries for two worker threads to hold); each bin and row receives the same
values in the same order as the one-pass formulas below (the code before the change), so the
results are compared for exact equality: the same numpy operations, only grouped differently.
"""

from __future__ import annotations

import numpy as np
import pytest

from losslens import batch_figures
from losslens.batch import ScoredBatch
from losslens.batch_figures import _class_calibration, hard_label_brier


def _batch(n: int, k: int, seed: int, weighted: bool, soft: bool) -> ScoredBatch:
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.full(k, 0.3), n)
    probs[: n // 50] = 0.0
    probs[: n // 50, 0] = 1.0  # one-hot rows: q = 1 lands in the last bin
    label = rng.integers(0, k, n)
    weight = rng.uniform(0.1, 3.0, n) if weighted else np.ones(n)
    targets = rng.dirichlet(np.ones(k), n) if soft else None
    zeros = np.zeros(n)
    true_prob = probs[np.arange(n), label]  # as batch.py takes it for hard labels
    return ScoredBatch(source="t", rows=np.arange(n), label=label, probs=probs, loss=zeros, true_prob=true_prob,
                       predicted=probs.argmax(axis=1), confidence=probs.max(axis=1), weight=weight,
                       clipped=zeros.astype(bool), unnormalized=zeros.astype(bool), targets=targets)


def _one_pass(batch: ScoredBatch, k: int, b: int) -> dict[str, np.ndarray]:
    """The formula before issue #22: one bincount over the flattened n × k cells."""
    w = batch.weight
    cells = np.minimum((batch.probs * b).astype(np.int64), b - 1) + np.arange(k) * b
    flat = cells.ravel()
    weight = np.bincount(flat, weights=np.repeat(w, k), minlength=k * b)
    prob_sum = np.bincount(flat, weights=(w[:, None] * batch.probs).ravel(), minlength=k * b)
    if batch.targets is not None:
        hits = np.bincount(flat, weights=(w[:, None] * batch.targets).ravel(), minlength=k * b)
    else:
        hits = np.bincount(cells[np.arange(batch.n), batch.label], weights=w, minlength=k * b)
    return {"class_bin_weight": weight, "class_bin_prob_sum": prob_sum, "class_bin_hit_weight": hits}


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("soft", [False, True])
def test_class_by_class_bins_equal_the_one_pass_bins(weighted, soft):
    k, b = 10, 15
    batch = _batch(20_000, k, 3, weighted, soft)
    got, expected = _class_calibration(batch, k, b), _one_pass(batch, k, b)
    for key in expected:
        np.testing.assert_array_equal(got[key], expected[key], err_msg=key)
    assert got["class_bin_weight"].sum() == pytest.approx(batch.weight.sum() * k, rel=1e-12)


def test_brier_in_row_chunks_equals_the_whole_matrix(monkeypatch):
    batch = _batch(5_000, 7, 4, False, False)
    diff = batch.probs.copy()
    diff[np.arange(batch.n), batch.label] -= 1.0
    whole = np.einsum("ij,ij->i", diff, diff)
    monkeypatch.setattr(batch_figures, "BRIER_ROWS", 333)
    np.testing.assert_array_equal(hard_label_brier(batch.probs, batch.label), whole)
    # And scikit-learn's multiclass Brier score is the mean of these sums.
    from sklearn.metrics import brier_score_loss

    sk = brier_score_loss(batch.label, batch.probs, labels=list(range(7)))
    assert whole.mean() == pytest.approx(sk, rel=1e-12)
