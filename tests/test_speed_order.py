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
