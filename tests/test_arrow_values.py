"""losslens.arrow_values.dictionary_codes: Arrow's dictionary encoding, in numpy for small columns."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from losslens import arrow_values
from losslens.arrow_values import NUMPY_ENCODE_BYTES, NUMPY_ENCODE_ROWS, dictionary_codes

SORT_KEYS = arrow_values._sort_keys


@pytest.fixture()
def numpy_path(monkeypatch):
    """As in a command that has not loaded pyarrow.compute (this test process has)."""
    monkeypatch.setattr(arrow_values, "_compute_loaded", lambda: False)
    sorted_by_numpy = []
    keys = arrow_values._sort_keys
    monkeypatch.setattr(arrow_values, "_sort_keys", lambda c: sorted_by_numpy.append(len(c)) or keys(c))
    return sorted_by_numpy


def arrows(column: pa.Array):
    encoded = column.dictionary_encode()
    return encoded.indices.to_numpy(zero_copy_only=False), encoded.dictionary.to_pylist()


def labels_of_a_real_file():
    """The label and id columns of scikit-learn's breast cancer and wine data, as CSV reads them."""
    from sklearn.datasets import load_breast_cancer, load_wine

    cancer = load_breast_cancer()
    names = [str(cancer.target_names[t]) for t in cancer.target]
    wine = load_wine()
    return [pa.array(names), pa.array(cancer.target.astype(np.int64)), pa.array(wine.target.astype(np.int8)),
            pa.array([f"bc-{i:04d}" for i in range(len(names))]), pa.array([f"wine {c}" for c in wine.target])]


ODD = [
    pa.array(["b", "a", "b", "", "ab", "a", "", "abc", "é", "ü", "e\u0301", "a"]),
    pa.array(["x" * NUMPY_ENCODE_BYTES, "x" * (NUMPY_ENCODE_BYTES - 1), "x"], pa.large_string()),
    pa.array([-3, 7, -3, 0, 2**40, 7, -(2**62)], pa.int64()),
    pa.array([250, 3, 3, 0], pa.uint8()),
    pa.array([2**64 - 1, 1, 2**64 - 1], pa.uint64()),
    pa.array([], pa.string()),
    pa.array([], pa.int32()),
]


@pytest.mark.parametrize("column", labels_of_a_real_file() + ODD, ids=lambda c: str(c.type))
def test_the_codes_and_values_are_arrows(column, numpy_path):
    codes, values = dictionary_codes(column)
    want_codes, want_values = arrows(column)
    np.testing.assert_array_equal(codes, want_codes)
    assert values == want_values and [type(v) for v in values] == [type(v) for v in want_values]
    assert numpy_path == [len(column)]  # encoded here, not by Arrow


def test_a_slice_is_encoded_from_its_own_values(numpy_path):
    column = pa.array([f"label {i % 7}" for i in range(500)])[123:321]
    codes, values = dictionary_codes(column)
    want_codes, want_values = arrows(column)
    np.testing.assert_array_equal(codes, want_codes)
    assert values == want_values


@pytest.mark.parametrize("column", [
    pa.array(["a", "a\x00", "a"]),  # NUL: numpy's bytes would make "a" and "a\0" one value
    pa.array(["x" * (NUMPY_ENCODE_BYTES + 1), "y"]),  # long strings
    pa.array([f"v{i % 3}" for i in range(NUMPY_ENCODE_ROWS + 1)]),  # many values: Arrow's kernel is faster
    pa.array([1.5, -0.0, 0.0, np.nan]),  # floats: Arrow's equality of -0.0 and NaN is its own
    pa.array([True, False, True]),
], ids=["nul", "long", "many", "float", "bool"])
def test_what_numpy_would_get_wrong_or_slow_goes_to_arrow(column, numpy_path):
    codes, values = dictionary_codes(column)
    want_codes, want_values = arrows(column)
    np.testing.assert_array_equal(codes, want_codes)
    assert values == want_values or (np.isnan(values[-1]) and values[:-1] == want_values[:-1])
    if len(column) > NUMPY_ENCODE_ROWS:
        assert numpy_path == []  # not even looked at
    else:
        assert numpy_path == [len(column)] and SORT_KEYS(column) is None  # looked at, and declined


def test_once_pyarrow_compute_is_loaded_arrow_encodes(monkeypatch):
    monkeypatch.setattr(arrow_values, "_sort_keys", lambda c: pytest.fail("encoded in numpy"))
    codes, values = dictionary_codes(pa.array(["b", "a", "b"]))  # pyarrow.compute is loaded here
    assert codes.tolist() == [0, 1, 0] and values == ["b", "a"]


@pytest.mark.parametrize("column", [
    pa.array(["train", "", "test", "(missing)", "train", "vålid", ""]),
    pa.array(["a", "b"], pa.large_string()),
    pa.array(["x", None, ""]),  # a null: Arrow's way
    pa.array([0, 1, 1, 0]),  # not text: Arrow's cast
    pa.array([0.5, np.nan, 0.5]),
], ids=["text", "large", "null", "int", "float"])
def test_split_and_slice_values_and_ids_are_the_same_either_way(column, monkeypatch):
    from losslens.batch import _strings, scope_values

    by_arrow = scope_values(column), _strings(column) if not column.null_count else None
    monkeypatch.setattr(arrow_values, "_compute_loaded", lambda: False)
    by_numpy = scope_values(column), _strings(column) if not column.null_count else None
    for got, want in zip(by_numpy, by_arrow):
        if want is not None:
            assert got.dtype == want.dtype == object and got.tolist() == want.tolist()
    if column.to_pylist()[:2] == ["train", ""]:
        assert by_numpy[0].tolist() == ["train", "(missing)", "test", '"(missing)"', "train", "vålid", "(missing)"]
