"""Tolerances follow the input's dtype, as scikit-learn's ``log_loss`` does for the same array.

float32 probabilities (what a PyTorch softmax gives) are clipped to float32's eps and their
row sums checked with rtol sqrt(float32 eps); losslens keeps float64 arithmetic, so its log
loss equals scikit-learn's on the float32 array within 1e-6 relative (scikit-learn computes
in float32), and a float32 softmax row is never called unnormalized.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import log_loss

import losslens

EPS32 = float(np.finfo(np.float32).eps)
EPS64 = float(np.finfo(np.float64).eps)


def float32_softmax(n: int, k: int, seed: int = 0, scale: float = 3.0):
    """Labels and float32 softmax probabilities, computed in float32 as a GPU model does."""
    rng = np.random.default_rng(seed)
    logits = (rng.standard_normal((n, k)) * scale).astype(np.float32)
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    probs = exp / exp.sum(axis=1, keepdims=True)
    assert probs.dtype == np.float32
    labels = rng.integers(0, k, n)
    return labels, probs


def frame_of(labels, probs) -> pd.DataFrame:
    columns = {f"p_{j}": probs[:, j] for j in range(probs.shape[1])}
    return pd.DataFrame({"label": labels, **columns})


@pytest.mark.parametrize("k", [3, 1000])
@pytest.mark.parametrize("via", ["dataframe", "parquet"])
def test_float32_softmax_is_never_unnormalized_and_matches_sklearn(k, via, tmp_path):
    labels, probs = float32_softmax(2000 if k == 3 else 300, k)
    data = frame_of(labels, probs)
    if via == "parquet":
        data.to_parquet(tmp_path / "p.parquet")  # keeps float32
        data = tmp_path / "p.parquet"
    evaluation = losslens.evaluate(data)
    layout = evaluation.to_dict()["runs"][0]["layout"]
    assert layout["eps"] == EPS32
    assert layout["row_sum_tolerance"] == pytest.approx(np.sqrt(EPS32), rel=1e-15)
    assert evaluation.overall.n_unnormalized == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # sklearn does not call these rows unnormalized either
        expected = log_loss(labels, probs, labels=np.arange(k))
    # sklearn computes in float32, losslens in float64 from the same float32 values.
    assert evaluation.overall.log_loss == pytest.approx(expected, rel=1e-6)


def test_float32_clipping_uses_float32_eps():
    """A float32 probability of 0 for the true class costs -log(eps32) ≈ 15.9, as in sklearn."""
    probs = np.array([[1.0, 0.0], [0.25, 0.75]], dtype=np.float32)
    labels = [1, 1]
    evaluation = losslens.evaluate(frame_of(labels, probs))
    expected = log_loss(labels, probs, labels=[0, 1])
    assert expected == pytest.approx((-np.log(EPS32) - np.log(0.75)) / 2, rel=1e-6)
    assert evaluation.overall.log_loss == pytest.approx(expected, rel=1e-6)
    assert evaluation.overall.n_clipped == 1


def test_float32_row_sum_tolerance_is_sqrt_eps32():
    """Off by 1e-4 is within sqrt(eps32) ≈ 3.45e-4; off by 1e-3 is not."""
    probs = np.array([[0.5, 0.5001], [0.5, 0.501], [0.3, 0.7]], dtype=np.float32)
    evaluation = losslens.evaluate(frame_of([0, 1, 1], probs))
    assert evaluation.overall.n_unnormalized == 1


def test_float64_input_keeps_float64_tolerances():
    labels, probs = float32_softmax(500, 3)
    evaluation = losslens.evaluate(frame_of(labels, probs.astype(np.float64)))
    layout = evaluation.to_dict()["runs"][0]["layout"]
    assert layout["eps"] == EPS64
    assert layout["row_sum_tolerance"] == pytest.approx(np.sqrt(EPS64), rel=1e-15)
    # Widened float32 rows are off by up to ~1e-7: float64's tolerance (1.5e-8 + 1e-8) sees it,
    # exactly as sklearn's warning does for the same float64 array.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        log_loss(labels, probs.astype(np.float64), labels=[0, 1, 2])
    warned = any("do not sum to one" in str(w.message) for w in caught)
    assert warned == (evaluation.overall.n_unnormalized > 0)


def test_mixed_float32_and_float64_columns_use_float64():
    """np.column_stack of float32 and float64 columns is float64: so are the tolerances."""
    frame = pd.DataFrame({"label": [0, 1], "p_0": np.array([0.25, 0.5], dtype=np.float32),
                          "p_1": np.array([0.75, 0.5])})
    assert losslens.evaluate(frame).to_dict()["runs"][0]["layout"]["eps"] == EPS64
