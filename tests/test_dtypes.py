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


# --- Text keeps no dtype: float32 probabilities written by to_csv --------------------------


@pytest.mark.parametrize("k", [3, 1000])
@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_float32_softmax_written_as_text_is_not_unnormalized(k, fmt, tmp_path):
    labels, probs = float32_softmax(2000 if k == 3 else 300, k)
    frame = frame_of(labels, probs)
    path = tmp_path / f"p.{fmt}"
    if fmt == "csv":
        frame.to_csv(path, index=False)  # pandas writes float32's shortest decimals
    else:
        frame.to_json(path, orient="records", lines=True)
    evaluation = losslens.evaluate(path)
    layout = evaluation.to_dict()["runs"][0]["layout"]
    assert evaluation.overall.n_unnormalized == 0
    assert layout["row_sum_tolerance"] == pytest.approx(np.sqrt(EPS32), rel=1e-15)
    assert layout["eps"] == EPS64  # clipping as scikit-learn clips the parsed float64 frame
    assert any("float32's tolerance" in note for note in layout["notes"])
    parsed = pd.read_csv(path) if fmt == "csv" else pd.read_json(path, lines=True)
    with warnings.catch_warnings():
        # scikit-learn, given the parsed float64 frame, applies float64's tolerance and warns.
        warnings.simplefilter("ignore", UserWarning)
        expected = log_loss(labels, parsed[[f"p_{j}" for j in range(k)]].to_numpy(), labels=np.arange(k))
    assert evaluation.overall.log_loss == pytest.approx(expected, rel=1e-12)


def test_float32_text_rows_that_do_not_sum_to_one_are_still_found(tmp_path):
    labels, probs = float32_softmax(500, 10)
    probs[:7] *= np.float32(1.01)  # seven rows sum to 1.01, far outside float32's tolerance
    frame_of(labels, np.minimum(probs, 1)).to_csv(tmp_path / "p.csv", index=False)
    evaluation = losslens.evaluate(tmp_path / "p.csv")
    assert evaluation.overall.n_unnormalized == 7
    (warning,) = [w for w in evaluation.runs[0].warnings if w.code == "unnormalized_rows"]
    assert "tolerance: relative 0.00035, absolute 1e-8" in warning.message


@pytest.mark.parametrize(
    "write, float32_text",
    [
        # float64 probabilities written with all their digits: float64's tolerance
        (lambda f, p: _float64_softmax(f).to_csv(p, index=False), False),
        # float32 values widened to float64 before writing are still float32 values
        (lambda f, p: f.astype({c: np.float64 for c in f.columns if c != "label"}).to_csv(p, index=False), True),
        # short hand-typed decimals fit float32 too, but nothing says they came from float32
        (lambda f, p: f.round(2).to_csv(p, index=False), False),
        (lambda f, p: f.to_csv(p, index=False), True),
    ],
)
def test_only_text_written_from_float32_gets_its_tolerance(write, float32_text, tmp_path):
    labels, probs = float32_softmax(300, 5)
    write(frame_of(labels, probs), tmp_path / "p.csv")
    layout = losslens.evaluate(tmp_path / "p.csv", renormalize=True).to_dict()["runs"][0]["layout"]
    assert (layout["row_sum_tolerance"] == pytest.approx(np.sqrt(EPS32), rel=1e-15)) == float32_text


def _float64_softmax(frame):
    """The frame with float64 probabilities of its own (a float64 softmax of random logits)."""
    columns = [c for c in frame.columns if c != "label"]
    z = np.random.default_rng(1).standard_normal((len(frame), len(columns)))
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    return frame.assign(**{c: p[:, j] for j, c in enumerate(columns)})


def test_printed_with_float32_precision_by_hand():
    from losslens.tolerances import printed_with_float32_precision

    as_text = np.array(["0.0006652632", "1.9379358e-05", "0.99931985", "0"], dtype=str).astype(np.float64)
    assert printed_with_float32_precision(as_text)
    assert printed_with_float32_precision(np.round(as_text, 10))  # DataFrame.to_json's 10 decimals
    assert printed_with_float32_precision(np.float32(as_text).astype(np.float64))  # float32 values, widened
    assert not printed_with_float32_precision(as_text + 1e-12)  # float64 digits beyond float32's
    assert not printed_with_float32_precision(np.random.default_rng(0).random(100))
    assert not printed_with_float32_precision(np.array([0.25, 0.75, 0.1, 0.9]))
    assert not printed_with_float32_precision(np.array([0.0, np.nan]))
