"""Issue #22: the C scoring pass (losslens._fused through losslens.fused) gives numpy's figures, bit for bit.

Each figure of :func:`losslens.fused.score_columns` and :func:`~losslens.fused.score_matrix` is
compared with the numpy code it stands for, on a real model's predictions (scikit-learn's
digits and breast-cancer data) with awkward rows added: ties, exact 0 and 1, values on bin
edges, subnormals. Floats are compared as their bits (``-0.0`` is not ``0.0``): the library only
copies, compares and adds in numpy's order, so nothing may differ in the last bit. Then whole
JSON documents of ``losslens metrics`` with and without the library (``LOSSLENS_FUSED=0``) must
be byte-identical, for every layout the pass serves.
"""

from __future__ import annotations

import dataclasses
import shutil
import sysconfig
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner

from losslens import batch_figures, fused
from losslens.batch import SUM_ATOL, clipped_loss, unnormalized_rows
from losslens.batch_figures import (SPARSE_CALIBRATION_CLASSES, _class_calibration, fused_squares_exact, hard_label_brier,
                                    square_sums, top_k_hits)

BINS = 15
#: Top-k hits asked of the pass (3, not the runs' 5, so that small class counts miss too).
TOP = 3
#: A row-sum tolerance, as a float32 file's (relative) and SUM_ATOL.
RTOL = 1e-6
TOLERANCE = SUM_ATOL + RTOL
#: The log loss's clipping of p(true), as a float64 file's (1e-15: the exact 0s and 1s clip).
EPS = 1e-15


@pytest.fixture(autouse=True)
def _library_on(monkeypatch):
    monkeypatch.delenv(fused.FUSED_ENV, raising=False)


@pytest.fixture(params=[True, False], ids=["four rows", "two rows"])
def four_rows(request):
    """The pass four rows at a time (AVX2) and two (SSE2): each must give numpy's bits."""
    was = fused.four_rows_at_a_time()
    if request.param and not was:
        pytest.skip("no four-row pass here (no AVX2, or not x86-64 with GCC or Clang)")
    fused.four_rows_at_a_time(request.param)
    yield request.param
    fused.four_rows_at_a_time(was)


def _can_compile() -> bool:
    """Whether this machine has what setup.py needs to build the extension: a C compiler and Python.h."""
    compiler = (sysconfig.get_config_var("CC") or "cc").split()[0]
    headers = Path(sysconfig.get_paths()["include"]) / "Python.h"
    return bool(shutil.which(compiler) or shutil.which("cc")) and headers.is_file()


def test_the_library_is_built_where_a_c_compiler_is():
    # A build that failed quietly (setup.py's extension is optional) would leave every user on
    # the slower numpy path; the figures would not say so, this test does.
    if not _can_compile():
        pytest.skip("no C compiler or Python headers here: losslens runs on numpy alone, with the same figures")
    assert fused.library() is not None, "losslens._fused was not built: `pip install -e .` compiles it"


def test_losslens_fused_0_turns_the_library_off(monkeypatch):
    monkeypatch.setenv(fused.FUSED_ENV, "0")
    assert fused.library() is None
    assert fused.score_matrix(np.full((3, 2), 0.5)) is None


needs_library = pytest.mark.skipif(fused.library() is None, reason="losslens._fused not built (no C compiler)")


@needs_library
def test_a_library_built_from_another_version_of_the_c_file_is_not_used(monkeypatch):
    # A stale build (an old .so beside newer Python) could read its structures differently:
    # it is refused, and numpy computes the figures.
    class Stale:
        @staticmethod
        def ll_abi_version():
            return fused.ABI_VERSION + 1

    monkeypatch.setattr(fused.ctypes, "CDLL", lambda path: Stale())
    assert fused._load() is None


def _digits_probabilities() -> tuple[np.ndarray, np.ndarray]:
    x, y = load_digits(return_X_y=True)
    model = LogisticRegression(C=10.0, max_iter=5000).fit(x[:900], y[:900])
    return model.predict_proba(x[900:]), y[900:]


def _awkward(k: int, rng) -> np.ndarray:
    """Rows that test the edges: ties for the maximum, exact 0 and 1, bin edges, subnormals."""
    rows = [np.full(k, 1.0 / k), np.eye(k)[k - 1], np.eye(k)[0]]
    edges = np.zeros(k)
    edges[: min(k, BINS)] = np.arange(min(k, BINS)) / BINS  # exactly on the bins' edges
    rows += [edges, np.full(k, 5e-324), np.zeros(k)]
    tie = np.zeros(k)
    tie[[0, k - 1]] = 0.5  # two maxima: argmax takes the first
    rows.append(tie)
    signed = np.full(k, -0.0)
    signed[k // 2] = 0.0  # -0.0 and +0.0 tie for the maximum: argmax takes the first, its bits kept
    rows += [signed, -signed]
    rows += list(rng.dirichlet(np.full(k, 0.05), 50))  # near one-hot
    return np.array(rows)


def _matrix(k: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if k == 10:
        probs, _ = _digits_probabilities()
    elif k == 2:
        x, y = load_breast_cancer(return_X_y=True)
        probs = LogisticRegression(max_iter=5000).fit(x[:300], y[:300]).predict_proba(x[300:])
    else:
        probs = rng.dirichlet(np.full(k, 0.5), 400)
    return np.vstack([probs, _awkward(k, rng)])


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype.kind == "f":
        return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a.view(np.uint64), b.view(np.uint64))
    return np.array_equal(a, b)


class _Batch:
    """What the numpy per-class calibration bins read of a ScoredBatch."""

    def __init__(self, probs, label, weight):
        self.probs, self.label, self.weight, self.targets, self.n = probs, label, weight, None, len(probs)
        self.class_bins = None

    def matrix(self):
        return self.probs


def _check_figures(figures, probs, label, weight):
    n, k = probs.shape
    rows = np.arange(n)
    if figures.probs is None:  # asked for no matrix: the columns are kept instead
        assert _same_bits(np.column_stack(figures.columns), probs)
    else:
        assert _same_bits(figures.probs, probs)
    assert _same_bits(figures.sums, probs.sum(axis=1))
    assert _same_bits(figures.predicted, probs.argmax(axis=1))
    assert _same_bits(figures.confidence, probs[rows, probs.argmax(axis=1)])
    assert _same_bits(figures.true_prob, probs[rows, label])
    assert _same_bits(figures.top_k_hit, top_k_hits(probs, label, probs[rows, label], TOP))
    assert _same_bits(figures.unnormalized, unnormalized_rows(probs.sum(axis=1), RTOL))
    kept, clipped = figures.clipped
    expected_loss, expected_clipped = clipped_loss(probs[rows, label], EPS)
    assert _same_bits(kept, np.clip(probs[rows, label], EPS, 1 - EPS)) and _same_bits(clipped, expected_clipped)
    assert expected_clipped.any() and not expected_clipped.all()
    assert _same_bits(clipped_loss(probs[rows, label], EPS, (kept.copy(), clipped))[0], expected_loss)
    if fused_squares_exact(k):  # this numpy adds its einsum as the library does (x86-64)
        assert _same_bits(figures.brier, hard_label_brier(probs, label))
        w2 = None if weight is None else weight * weight
        assert _same_bits(figures.square_sums, square_sums(probs, w2))
    if k > SPARSE_CALIBRATION_CLASSES:  # above this the scoring pass asks for no bins (numpy's sparse ones)
        assert figures.class_bins is None
        return
    expected = _class_calibration(_Batch(probs, label, np.ones(n) if weight is None else weight), k, BINS)
    n_bins, *sums = figures.class_bins
    assert n_bins == BINS
    for name, got in zip(("class_bin_weight", "class_bin_prob_sum", "class_bin_hit_weight"), sums):
        assert _same_bits(got, expected[name]), name


@needs_library
# 128 and 129: the largest k scored two rows at a time in SSE2, and the first scored row by row;
# 300: a heap scratch row
@pytest.mark.parametrize("k", [1, 2, 3, 7, 8, 9, 10, 16, 17, 30, 128, 129, 300])
@pytest.mark.parametrize("dtypes", ["float64", "float32", "mixed"])
@pytest.mark.parametrize("weighted", [False, True])
def test_score_columns_gives_numpys_figures_bit_for_bit(k, dtypes, weighted, four_rows):
    probs = _matrix(k)
    if dtypes != "float64":
        # float32 columns, as a torch model or a float32 Parquet file gives them; "mixed" keeps
        # every other column float64 (the library's two copy loops).
        probs = probs.astype(np.float32).astype(np.float64)
    n = len(probs)
    rng = np.random.default_rng(k)
    label = rng.integers(0, k, n)
    weight = rng.uniform(0.1, 3.0, n) if weighted else None
    columns = [probs[:, j].copy() for j in range(k)]
    if dtypes == "float32":
        columns = [c.astype(np.float32) for c in columns]
    elif dtypes == "mixed":
        columns = [c.astype(np.float32) if j % 2 else c for j, c in enumerate(columns)]
    bins = BINS if k <= SPARSE_CALIBRATION_CLASSES else None  # as batch.score_batch asks
    figures = fused.score_columns(columns, label, weight, bins, TOP, TOLERANCE, squares=True, clip=(EPS, 1 - EPS))
    assert figures is not None
    _check_figures(figures, probs, label, weight)
    # The same figures from a matrix (logits' exp, renormalised rows): one pass, no copy.
    again = fused.score_matrix(probs, label, weight, bins, TOP, TOLERANCE, squares=True, clip=(EPS, 1 - EPS),
                                sums=True)
    _check_figures(again, probs, label, weight)


@needs_library
def test_a_whole_batch_of_rows_spans_several_blocks(four_rows):
    # 190,000 rows as a 16 MB batch has: many 512-row blocks, the last one partial.
    rng = np.random.default_rng(7)
    probs = rng.dirichlet(np.full(10, 0.3), 190_001)
    label = rng.integers(0, 10, len(probs))
    figures = fused.score_columns([probs[:, j].copy() for j in range(10)], label, None, BINS, TOP, TOLERANCE,
                                   squares=True, clip=(EPS, 1 - EPS))
    _check_figures(figures, probs, label, None)


@needs_library
@pytest.mark.parametrize("bad", [np.nan, -0.1, 1.5, np.inf])
@pytest.mark.parametrize("row", [123, -1])  # in a four-row step, and among the last rows
def test_a_value_that_is_no_probability_is_left_to_numpy(bad, row, four_rows):
    # numpy's path names the file, column, row and value; the library only declines.
    probs = _matrix(4)[:-2]  # 2 rows past the last four-row step
    probs[row, 2] = bad
    columns = [probs[:, j].copy() for j in range(4)]
    assert fused.score_columns(columns, np.zeros(len(probs), dtype=np.int64), None, BINS) is None
    assert fused.score_columns(columns, np.zeros(len(probs), dtype=np.int64), None, BINS, matrix=False) is None
    assert fused.score_matrix(probs, np.zeros(len(probs), dtype=np.int64), None, BINS) is None


@needs_library
@pytest.mark.parametrize("k", [1, 3, 10, 17, 128])
@pytest.mark.parametrize("drop", [0, 1, 2, 3])  # rows past the last four-row step
@pytest.mark.parametrize("weighted", [False, True])
def test_without_a_matrix_the_pass_gives_the_same_figures_and_keeps_the_columns(k, drop, weighted, four_rows):
    # A batch whose accumulate stage takes every figure from the pass needs no n x k copy
    # (ScoredBatch.prob_columns): the same bits, the float64 columns kept as they are.
    probs = _matrix(k)
    probs = probs[: len(probs) - drop]
    rng = np.random.default_rng(k + drop)
    label = rng.integers(0, k, len(probs))
    weight = rng.uniform(0.1, 3.0, len(probs)) if weighted else None
    modes = None if weighted else np.where(np.arange(k) % 2, batch_figures.SUM_RUNNING, batch_figures.SUM_BLOCKS)
    columns = [probs[:, j].copy() for j in range(k)]
    bins = BINS if k <= SPARSE_CALIBRATION_CLASSES else None  # as batch.score_batch asks
    asked = dict(label=label, weight=weight, n_bins=bins, top=TOP, sum_tolerance=TOLERANCE, squares=True,
                 clip=(EPS, 1 - EPS), sum_modes=modes)
    figures = fused.score_columns(columns, **asked, matrix=False)
    assert figures.probs is None and all(kept is given for kept, given in zip(figures.columns, columns))
    _check_figures(figures, probs, label, weight)
    with_matrix = fused.score_columns(columns, **asked)
    assert with_matrix.columns is None
    for name in ("sums", "predicted", "confidence", "true_prob", "top_k_hit", "unnormalized", "brier",
                 "square_sums", "column_sums", "clipped", "class_bins"):
        got, expected = getattr(figures, name), getattr(with_matrix, name)
        if expected is None:
            assert got is None, name
            continue
        pairs = zip(got, expected) if isinstance(expected, tuple) else [(got, expected)]  # clipped, class_bins
        assert all(_same_bits(a, b) for a, b in pairs), name
    # float32 columns are widened as they are copied: those batches keep the float64 matrix.
    single = fused.score_columns([c.astype(np.float32) for c in columns], **asked, matrix=False)
    assert single.probs is not None and single.probs.dtype == np.float64 and single.columns is None


@needs_library
def test_a_label_that_is_no_column_or_a_float16_column_is_left_to_numpy():
    probs = _matrix(3)
    columns = [probs[:, j].copy() for j in range(3)]
    label = np.zeros(len(probs), dtype=np.int64)
    label[-1] = 3
    assert fused.score_columns(columns, label) is None
    assert fused.score_matrix(probs, label) is None
    assert fused.score_columns([c.astype(np.float16) for c in columns]) is None


@needs_library
def test_argmax_of_rows_with_nan_is_numpys():
    # numpy's argmax stops at the first NaN; without calibration bins NaN rows are scored too.
    probs = np.array([[0.1, np.nan, 0.9], [np.nan, 0.5, np.nan], [0.2, 0.7, np.nan], [0.3, 0.3, 0.3]])
    figures = fused.score_matrix(probs)
    assert _same_bits(figures.predicted, probs.argmax(axis=1))
    assert _same_bits(figures.confidence, probs[np.arange(4), probs.argmax(axis=1)])


@needs_library
@pytest.mark.parametrize("k", [2, 10, 40])
@pytest.mark.parametrize("weighted", [False, True])
def test_batch_sums_are_numpys_bincounts_bit_for_bit(k, weighted):
    from losslens.accumulate import _counted

    probs = _matrix(k, seed=k)
    n = len(probs)
    rng = np.random.default_rng(k + 1)
    label = rng.integers(0, k, n)
    predicted = probs.argmax(axis=1)
    confidence = probs[np.arange(n), predicted]
    loss = -np.log(np.clip(probs[np.arange(n), label], 1e-16, 1.0))
    w = rng.uniform(0.1, 3.0, n) if weighted else np.ones(n)
    wl = w * loss if weighted else loss

    class _Rows:
        pass

    batch = _Rows()
    batch.label, batch.predicted, batch.confidence = label, predicted, confidence
    expected = _counted(batch, k, BINS, w, wl, not weighted, predicted == label)
    got = fused.batch_sums(label, predicted, confidence, wl, w if weighted else None, k, BINS, pairs=True)
    for name in (*fused.BATCH_SUMS, "n_correct"):
        assert _same_bits(got[name], expected[name]), name
    wrong = predicted != label
    assert np.array_equal(got["pair_counts"], np.bincount(label[wrong] * k + predicted[wrong], minlength=k * k))


@needs_library
def test_batch_sums_leave_an_index_or_confidence_out_of_range_to_numpy():
    label, predicted, confidence, loss = np.array([0, 1]), np.array([1, 1]), np.array([0.6, 0.9]), np.ones(2)
    assert fused.batch_sums(label, predicted, confidence, loss, None, 2, BINS) is not None
    assert fused.batch_sums(np.array([0, 2]), predicted, confidence, loss, None, 2, BINS) is None
    assert fused.batch_sums(label, np.array([-1, 1]), confidence, loss, None, 2, BINS) is None
    assert fused.batch_sums(label, predicted, np.array([0.6, np.nan]), loss, None, 2, BINS) is None


def _log_probabilities(k: int, seed: int) -> np.ndarray:
    """Rows of log-probabilities as the temperature fit gets them: a real model's and awkward
    ones, -inf for a padded class, ties for the maximum."""
    with np.errstate(divide="ignore"):
        z = np.log(_matrix(k, seed))
    z[5, -1] = -np.inf if k > 1 else z[5, -1]
    return z[np.isfinite(z).any(axis=1)]  # every row the fit sees has a finite score


@needs_library
@pytest.mark.parametrize("k", [1, 2, 3, 8, 10, 17, 32])
def test_the_temperature_fits_row_passes_are_numpys_bit_for_bit(k):
    from losslens.calibration_fit import row_max

    z = _log_probabilities(k, seed=k)
    label = np.random.default_rng(k).integers(0, k, len(z))
    for factor, divide in ((1.0, False), (0.37, False), (2.5, True), (1e-3, True)):
        expected = z / factor if divide else factor * z
        top = row_max(expected)
        expected -= top
        got, got_top = fused.shifted_rows(z, factor, divide)
        assert _same_bits(got, expected) and _same_bits(got_top, top)
        np.exp(expected, out=expected)
        np.exp(got, out=got)
        total = expected.sum(axis=1, keepdims=True)
        assert _same_bits(fused.row_totals(got.copy()), total)
        assert _same_bits(fused.row_totals(got, divide=True), total)
        expected /= total
        assert _same_bits(got, expected)
        squares = expected.copy()
        squares[np.arange(len(squares)), label] -= 1.0
        np.square(squares, out=squares)
        assert _same_bits(fused.square_error_rows(got.copy(), label), squares.sum(axis=1))
    # The softmax moments (row sums, division, the einsum means), where einsum adds as the library.
    from losslens.calibration_fit import _finite_part, _moments, library_moments_exact

    zz = _finite_part(z)
    p = np.exp(z - row_max(z))
    if library_moments_exact(k):
        got, expected = fused.softmax_moments(p.copy(), zz), _moments(p.copy(), zz)
        assert all(_same_bits(a, b) for a, b in zip(got, expected))


@needs_library
@pytest.mark.parametrize("factor, divide", [(1.0, False), (-1.0, False), (0.5, True)])
def test_the_shift_takes_row_maxs_maximum_with_signed_zeros_nan_and_ties(factor, divide):
    # The library takes two running maxima; a zero maximum (its sign is the first zero's) or a
    # NaN sends the row to the one-by-one maximum: every bit as calibration_fit.row_max's.
    from losslens.calibration_fit import row_max

    z = np.array([[-0.0, 0.0, -1.0, -2.0, -3.0], [0.0, -0.0, -1.0, -2.0, -3.0], [-1.0, -0.0, -2.0, 0.0, -4.0],
                  [np.nan, 1.0, 2.0, 3.0, 0.5], [1.0, 2.0, np.nan, 3.0, 2.0], [3.0, 2.0, 3.0, 1.0, 3.0],
                  [-5.0, -5.0, -5.0, -5.0, -5.0], [1.0, 4.0, 2.0, 4.0, -np.inf], [-np.inf, -np.inf, 2.0, 1.0, 7.0]])
    with np.errstate(invalid="ignore"):
        expected = z / factor if divide else factor * z
        top = row_max(expected)
        expected -= top
        got, got_top = fused.shifted_rows(z, factor, divide)
    assert _same_bits(got_top, top) and _same_bits(got, expected)


@needs_library
def test_the_moments_probe_turns_down_another_order_of_additions(monkeypatch):
    from losslens import calibration_fit

    def pairwise(p, zz):  # the same means, each row summed as np.sum sums it
        total = p.sum(axis=1, keepdims=True)
        p /= total
        mean = (p * zz).sum(axis=1)
        return total, mean, (p * (zz - mean[:, None]) ** 2).sum(axis=1)

    monkeypatch.setattr(calibration_fit, "_moments", pairwise)
    calibration_fit.library_moments_exact.cache_clear()
    try:
        assert not calibration_fit.library_moments_exact(10)
    finally:
        calibration_fit.library_moments_exact.cache_clear()


@needs_library
def test_the_fits_row_passes_leave_wide_matrices_and_bad_labels_to_numpy(monkeypatch):
    from losslens import calibration_fit

    # Above ROW_MAX_COLUMNS the fit's maximum is numpy's reduction: the library is not asked.
    z = _log_probabilities(calibration_fit.ROW_MAX_COLUMNS + 1, seed=1)
    monkeypatch.setattr(calibration_fit, "shifted_rows", lambda *a, **k: pytest.fail("library asked"))
    p, top = calibration_fit._shifted(z, 0.5)
    expected = 0.5 * z
    assert _same_bits(top, expected.max(axis=1, keepdims=True))
    assert _same_bits(p, expected - top)
    p = np.full((2, 3), 1 / 3)
    assert fused.square_error_rows(p, np.array([0, 3])) is None


# -- whole runs: the JSON with the library and without it -----------------------------------


def _json(args, fused_on: bool) -> bytes:
    from losslens.cli import app

    env = {"NO_COLOR": "1", "TERM": "dumb", fused.FUSED_ENV: "1" if fused_on else "0"}
    result = CliRunner().invoke(app, ["metrics", *map(str, args), "--json", "-"], env=env)
    assert result.exit_code == 0, result.stdout
    return result.stdout.encode()


def _digits_frame() -> pd.DataFrame:
    probs, y = _digits_probabilities()
    frame = pd.DataFrame(probs, columns=[f"p_{c}" for c in range(10)])
    frame["label"] = y
    rng = np.random.default_rng(3)
    frame["w"] = rng.uniform(0.5, 2.0, len(frame))
    frame["split"] = np.where(np.arange(len(frame)) % 3 == 0, "validation", "test")
    frame["region"] = rng.choice(["north", "south", "Zürich"], len(frame))
    return frame


def _case_files(tmp_path) -> dict[str, list]:
    frame = _digits_frame()
    probs = [f"p_{c}" for c in range(10)]
    frame.to_parquet(tmp_path / "digits.parquet")
    frame.astype({c: np.float32 for c in probs}).to_parquet(tmp_path / "digits_f32.parquet")
    off = frame.copy()
    off[probs] = off[probs] * np.random.default_rng(1).uniform(0.9, 1.1, (len(off), 1))
    off[probs] = off[probs].clip(upper=1.0)
    off.to_csv(tmp_path / "unnormalized.csv", index=False)
    listed = pd.DataFrame({"label": frame["label"], "probs": list(frame[probs].to_numpy())})
    listed.to_parquet(tmp_path / "listed.parquet")
    rng = np.random.default_rng(2)
    many = pd.DataFrame(rng.dirichlet(np.full(40, 0.2), 3000), columns=[f"p_{c}" for c in range(40)])
    many["label"] = rng.integers(0, 40, 3000)
    many.to_parquet(tmp_path / "forty_classes.parquet")
    return {
        "digits": [tmp_path / "digits.parquet"],
        "weights, splits and slices": [tmp_path / "digits.parquet", "--weight", "w", "--split", "split",
                                       "--by", "region"],
        "float32 columns": [tmp_path / "digits_f32.parquet"],
        "rows not summing to 1": [tmp_path / "unnormalized.csv"],
        "renormalized": [tmp_path / "unnormalized.csv", "--renormalize"],
        "a list column": [tmp_path / "listed.parquet"],
        "40 classes (sparse calibration bins)": [tmp_path / "forty_classes.parquet"],
    }


#: The bundled examples, with the options their README gives.
EXAMPLES = [["breast_cancer_binary.csv"], ["digits_multiclass.parquet"], ["iris_soft_targets.csv", "--targets", "t_"],
            ["wine_logits.csv"]]


@needs_library
@pytest.mark.parametrize("example", EXAMPLES, ids=lambda args: args[0])
def test_the_bundled_examples_give_byte_identical_json(example):
    path = Path(__file__).resolve().parents[1] / "example_data" / example[0]
    assert _json([path, *example[1:]], True) == _json([path, *example[1:]], False)


@needs_library
def test_every_layout_the_pass_serves_gives_byte_identical_json(tmp_path):
    for case, args in _case_files(tmp_path).items():
        assert _json(args, True) == _json(args, False), case


# -- the Brier rows and square sums: einsum's order of additions, checked on the machine --------


def _pairwise_brier(probs, label):
    """The same squares, each row summed as np.sum sums it (pairwise): another order than einsum's."""
    diff = probs.copy()
    diff[np.arange(len(probs)), label] -= 1.0
    return (diff * diff).sum(axis=1)


def _pairwise_square_sums(probs, w2=None):
    squares = probs * probs if w2 is None else w2[:, None] * probs * probs
    return np.ascontiguousarray(squares.T).sum(axis=1)  # each class's squares summed pairwise


@needs_library
@pytest.mark.parametrize("name, other_order", [("hard_label_brier", _pairwise_brier),
                                                ("square_sums", _pairwise_square_sums)])
def test_the_squares_probe_turns_down_another_order_of_additions(monkeypatch, name, other_order):
    # Where numpy's einsum adds in another order than the library (FMA on aarch64, another kernel
    # in a later numpy), the probe must say no, and numpy then computes both figures itself.
    monkeypatch.setattr(batch_figures, name, other_order)
    batch_figures.fused_squares_exact.cache_clear()
    try:
        assert not batch_figures.fused_squares_exact(10)
        assert not batch_figures.fused_squares_exact(3)
    finally:
        batch_figures.fused_squares_exact.cache_clear()


def _digits_batch():
    """The digits model's probabilities and labels, as one Arrow batch of a ten-class file and its layout."""
    from losslens.schema import PROBS, Layout

    probs, y = _digits_probabilities()
    table = pa.table({"label": y, **{f"p_{c}": probs[:, c] for c in range(10)}})
    layout = Layout(kind=PROBS, label="label", prediction_columns=tuple(f"p_{c}" for c in range(10)),
                    classes=tuple(str(c) for c in range(10)))
    return probs, y, table.to_batches()[0], layout


@needs_library
def test_the_scoring_pass_carries_the_brier_rows_where_the_probe_says_they_are_numpys():
    from losslens.batch import score_batch

    probs, y, batch, layout = _digits_batch()
    scored = score_batch(batch, layout, "digits", 0, n_bins=BINS)
    if not fused_squares_exact(10):
        assert scored.brier is None and scored.square_sums is None
        return
    assert _same_bits(scored.brier, hard_label_brier(probs, y))
    assert _same_bits(scored.square_sums, square_sums(probs))
    assert _same_bits(scored.top_k_hit, top_k_hits(probs, y, probs[np.arange(len(y)), y], 5))


@needs_library
def test_a_batch_whose_figures_all_came_from_the_pass_keeps_its_columns_not_a_matrix():
    # Once BLAS's order of adding the columns is learned for the batch's shape, a float64 batch
    # with unit weights takes every figure of the accumulate stage from the pass: it keeps the
    # columns, and whoever needs the rows after all (a split's subset, the comparisons, the
    # per-class bins' numpy path) has them from matrix(), the same values.
    from losslens.accumulate import Accumulator
    from losslens.batch import score_batch

    probs, y, batch, layout = _digits_batch()
    first = score_batch(batch, layout, "digits", 0, n_bins=BINS)  # learns the order
    assert first.probs is not None and first.prob_columns is None
    scored = score_batch(batch, layout, "digits", 0, n_bins=BINS)
    if not (fused_squares_exact(10) and batch_figures.known_sum_modes(len(y), 10) is not None):
        assert scored.probs is not None  # numpy adds some figure from the matrix here
        return
    assert scored.probs is None and len(scored.prob_columns) == 10 and scored.has_rows
    subset = scored.take(np.arange(0, len(y), 3))
    assert _same_bits(subset.matrix(), probs[::3]) and subset.prob_columns is None
    sums = [Accumulator.of(b, 10, BINS, class_calibration=True) for b in (first, scored)]
    for field in dataclasses.fields(Accumulator):  # every figure, from the matrix and from the columns alone
        a, b = (getattr(acc, field.name) for acc in sums)
        assert _same_bits(a, b) if isinstance(a, np.ndarray) else a == b, field.name
    assert _same_bits(scored.matrix(), probs) and scored.prob_columns is None  # stacked once, then kept
    assert scored.matrix() is scored.probs


@needs_library
def test_numpys_squares_give_the_same_json_where_the_probe_says_no(monkeypatch, tmp_path):
    import losslens.batch

    cases = _case_files(tmp_path)
    expected = {case: _json(args, True) for case, args in cases.items()}
    monkeypatch.setattr(losslens.batch, "fused_squares_exact", lambda k: False)
    for case, args in cases.items():
        assert _json(args, True) == expected[case], case


# -- the unit-weight column sums: BLAS's order of additions, learned on the machine ---------------


def _blocks_of_four(column: np.ndarray) -> float:
    """A column added as OpenBLAS's four-row kernel adds it: y + (((q0 + q1) + q2) + q3), then the
    last two rows as y + (q0 + q1) and the last one as y + q0 (plain Python floats: IEEE doubles)."""
    y, n, i = 0.0, len(column), 0
    values = [float(v) for v in column]
    while i + 4 <= n:
        y = y + (((values[i] + values[i + 1]) + values[i + 2]) + values[i + 3])
        i += 4
    if n - i >= 2:
        y = y + (values[i] + values[i + 1])
        i += 2
    if i < n:
        y = y + values[i]
    return y


def _running(column: np.ndarray) -> float:
    """A column added row by row into a running sum from 0, then added to y = 0."""
    s = 0.0
    for v in column:
        s = s + float(v)
    return 0.0 + s


@needs_library
@pytest.mark.parametrize("rows", [4096, 4097, 4098, 4099, 1027])
@pytest.mark.parametrize("k", [1, 5, 10, 13])
def test_the_pass_adds_each_column_in_the_order_of_its_mode(rows, k, four_rows):
    # A real model's rows, repeated to the length wanted: every column's sum in both orders,
    # from the copy of float64 and float32 columns and from a matrix, against plain Python.
    probs = np.resize(_matrix(10 if k == 10 else k), (rows, k))
    modes = np.where(np.arange(k) % 3 == 1, batch_figures.SUM_RUNNING, batch_figures.SUM_BLOCKS).astype(np.int8)
    expected = np.array([(_running if mode == batch_figures.SUM_RUNNING else _blocks_of_four)(probs[:, c])
                         for c, mode in enumerate(modes)])
    columns = [np.ascontiguousarray(probs[:, c]) for c in range(k)]
    assert _same_bits(fused.score_columns(columns, sum_modes=modes).column_sums, expected)
    assert _same_bits(fused.score_columns(columns, sum_modes=modes, matrix=False).column_sums, expected)
    assert _same_bits(fused.score_matrix(probs, sum_modes=modes).column_sums, expected)
    single = probs.astype(np.float32)
    widened = np.array([(_running if mode == batch_figures.SUM_RUNNING else _blocks_of_four)(single[:, c].astype(float))
                        for c, mode in enumerate(modes)])
    assert _same_bits(fused.score_columns([single[:, c].copy() for c in range(k)], sum_modes=modes).column_sums,
                      widened)


@needs_library
def test_the_sums_alone_are_the_passs_sums():
    probs = np.resize(_matrix(10), (4099, 10))
    modes = np.array([1, 2] * 5, dtype=np.int8)
    assert _same_bits(fused.column_sums(probs, modes), fused.score_matrix(probs, sum_modes=modes).column_sums)
    assert fused.column_sums(np.asfortranarray(probs), modes) is None  # not a C-ordered matrix: numpy's
    with pytest.raises(ValueError):
        fused.column_sums(probs, modes[:9])


def _learn(probs: np.ndarray) -> np.ndarray | None:
    batch_figures._SUM_MODES.pop(probs.shape, None)
    total = batch_figures.unit_column_sums(probs, np.ones(len(probs)))
    assert _same_bits(total, np.ones(len(probs)) @ probs)  # the first batch of a shape: BLAS's own
    return batch_figures.known_sum_modes(*probs.shape)


@needs_library
@pytest.mark.parametrize("rows", [20_000, 20_001, 20_002, 20_003, 190_650])
@pytest.mark.parametrize("k", [2, 5, 10, 20, 37])
def test_where_the_order_is_learned_the_pass_gives_blass_bits_on_other_rows_of_that_shape(rows, k):
    rng = np.random.default_rng(rows + k)
    modes = _learn(rng.dirichlet(np.full(k, 0.3), rows))
    if _this_projects_blas():
        # OpenBLAS splits the rows, not the columns, over its threads when there are four columns
        # or fewer: an order neither mode is, so BLAS keeps adding those; every other shape here
        # is learned.
        assert (modes is None) == (k <= 4)
    if modes is None:
        return
    for seed in range(3):
        other = rng.random((rows, k)) ** (seed + 1)
        taken = fused.score_columns([np.ascontiguousarray(other[:, c]) for c in range(k)], sum_modes=modes)
        assert _same_bits(taken.column_sums, np.ones(rows) @ other)


def _this_projects_blas() -> bool:
    """Whether numpy's BLAS is the one of issue #22's machines: numpy's own OpenBLAS with its
    SkylakeX kernels and two threads (two CPUs), whose order of additions the pass knows."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return False
    numpys = [info for info in threadpool_info() if info.get("internal_api") == "openblas"
              and "scipy_openblas" in str(info.get("filepath", "")) and "numpy" in str(info.get("filepath", ""))]
    return bool(numpys) and all(info.get("architecture") == "SkylakeX" and info.get("num_threads") == 2
                                for info in numpys)


@needs_library
def test_the_order_is_learned_for_ten_classes_on_this_projects_machines():
    # The machines of issue #22: OpenBLAS gives each of its two threads five columns, four added
    # in blocks of four rows and the fifth row by row. Elsewhere the order is learned, not assumed.
    if not _this_projects_blas():
        pytest.skip("another BLAS, kernel or thread count: whether it adds so is learned, not assumed")
    modes = _learn(np.random.default_rng(0).random((190_650, 10)))
    blocks, running = batch_figures.SUM_BLOCKS, batch_figures.SUM_RUNNING
    assert modes is not None and modes.tolist() == [blocks] * 4 + [running] + [blocks] * 4 + [running]


@needs_library
def test_a_blas_that_adds_otherwise_is_not_learned(monkeypatch):
    probs = np.random.default_rng(1).random((20_000, 10))
    total = np.ones(len(probs)) @ probs
    if batch_figures._learned_sum_modes(probs, total) is None:
        pytest.skip("this BLAS's order is not one the pass knows: nothing to turn down")
    # One column a last bit off on the real rows (a kernel adding in another order there), the
    # crafted rows summed alike by every order, or too few rows: no modes, BLAS keeps adding.
    off = total.copy()
    off[3] = np.nextafter(off[3], np.inf)
    assert batch_figures._learned_sum_modes(probs, off) is None
    monkeypatch.setattr(batch_figures, "HALF_ULP", 2.0 ** -52)
    assert batch_figures._learned_sum_modes(probs, total) is None
    monkeypatch.undo()
    assert batch_figures._learned_sum_modes(probs[:1000], np.ones(1000) @ probs[:1000]) is None
    # Nor is anything learned with the library off (it must not remember a "no" for later runs).
    monkeypatch.setenv(fused.FUSED_ENV, "0")
    batch_figures._SUM_MODES.pop(probs.shape, None)
    assert _same_bits(batch_figures.unit_column_sums(probs, np.ones(len(probs))), total)
    assert probs.shape not in batch_figures._SUM_MODES


@needs_library
def test_a_long_session_keeps_learning_its_newest_shapes(monkeypatch):
    # A notebook reading file after file: small batches take no room, and once the shapes kept
    # are many the oldest make way (one per file: its last batch), so that learning never stops.
    monkeypatch.setattr(batch_figures, "_SUM_MODES", {})
    probs = np.random.default_rng(2).random((20_000, 10))
    batch_figures.unit_column_sums(probs[:100], np.ones(100))
    assert batch_figures._SUM_MODES == {}
    for rows in range(5000, 5000 + batch_figures.SUM_MODES_MAX_SHAPES):
        batch_figures._SUM_MODES[(rows, 10)] = None
    batch_figures.unit_column_sums(probs, np.ones(len(probs)))
    assert len(batch_figures._SUM_MODES) == batch_figures.SUM_MODES_MAX_SHAPES
    assert (20_000, 10) in batch_figures._SUM_MODES and (5000, 10) not in batch_figures._SUM_MODES


@needs_library
def test_runs_whose_batches_the_pass_adds_give_byte_identical_json(tmp_path, monkeypatch):
    # Batches of at most 5,000 rows (a 16 MB batch is 190,000 rows of 10 classes), so that a file
    # of a real model's predictions (the digits, repeated 12 times) has several of one shape: the
    # first run teaches the pass BLAS's order for each shape, the second takes the column sums
    # of those batches from the pass; LOSSLENS_FUSED=0 has BLAS add every batch.
    from losslens import reading

    frame = pd.concat([_digits_frame()] * 12, ignore_index=True)
    frame.to_parquet(tmp_path / "digits12.parquet")
    frame.drop(columns=["w", "split", "region"]).to_csv(tmp_path / "digits12.csv", index=False)
    monkeypatch.setattr(reading, "BATCH_BYTES", 5000 * 8 * 11)
    for name in ("digits12.parquet", "digits12.csv"):
        batch_figures._SUM_MODES.clear()
        learning = _json([tmp_path / name], True)
        learned = [shape for shape, modes in batch_figures._SUM_MODES.items() if modes is not None]
        assert learning == _json([tmp_path / name], False), name
        assert learning == _json([tmp_path / name], True), name  # the learned shapes added in C
        if _this_projects_blas():
            assert learned, name  # this project's machines: BLAS's order is one the pass knows


def test_the_histogram_pass_counts_searchsorteds_bins():
    # The table of cells (exponent and first mantissa bits) with one comparison must give every
    # value searchsorted's bin: on, just below and just above each edge, at each cell's lowest
    # value, at 0, -0.0, subnormals, huge values, inf and NaN (after every edge, as numpy sorts it).
    from losslens.batch_figures import HIST_EDGES

    rng = np.random.default_rng(3)
    first, last = (int(b) >> fused.HISTOGRAM_SHIFT for b in HIST_EDGES[[0, -1]].view(np.uint64))
    cells = (np.arange(first - 2, last + 3, dtype=np.uint64) << np.uint64(fused.HISTOGRAM_SHIFT)).view(np.float64)
    values = np.r_[HIST_EDGES, np.nextafter(HIST_EDGES, 0), np.nextafter(HIST_EDGES, np.inf), cells,
                   np.nextafter(cells, 0), 0.0, -0.0, -1.0, 5e-324, 1e-310, 1e300, np.inf, np.nan,
                   10 ** rng.uniform(-20, 5, 50_000)]
    expected = np.bincount(np.searchsorted(HIST_EDGES, values, side="right"), minlength=len(HIST_EDGES) + 1)
    counts = fused.histogram_counts(values, HIST_EDGES)
    assert counts is not None and np.array_equal(counts, expected)
    assert counts[-1] >= 3 + 3  # 1e300, inf, NaN, and values above 1e3
    # A strided view is taken as its values.
    assert np.array_equal(fused.histogram_counts(values[::3], HIST_EDGES),
                          np.bincount(np.searchsorted(HIST_EDGES, values[::3], side="right"), minlength=len(HIST_EDGES) + 1))


def test_the_histogram_pass_leaves_edges_it_cannot_decide_to_numpy(monkeypatch):
    values = np.linspace(0.0, 2.0, 101)
    # Two edges strictly inside one cell [1, 1 + 2**-6): refused. One edge at a cell's lowest
    # value and the next inside it still decide.
    assert fused.histogram_counts(values, np.array([1.0 + 2**-10, 1.0 + 2**-9, 1.5])) is None
    shared = np.array([1.0, np.nextafter(1.0, 2.0), 1.5])
    assert np.array_equal(fused.histogram_counts(values, shared),
                          np.bincount(np.searchsorted(shared, values, side="right"), minlength=4))
    for edges in (np.array([0.0, 1.0]), np.array([-1.0, 1.0]), np.array([1.0, np.inf]), np.array([2.0, 1.0]), np.zeros(0)):
        assert fused.histogram_counts(values, edges) is None, edges
    assert fused.histogram_counts(values.astype(np.float32), np.array([0.5, 1.0])) is None
    assert np.array_equal(fused.histogram_counts(values, np.array([0.5, 1.0])), [25, 25, 51])
    monkeypatch.setenv(fused.FUSED_ENV, "0")
    assert fused.histogram_counts(values, np.array([0.5, 1.0])) is None
