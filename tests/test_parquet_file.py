"""losslens.parquet_file: pyarrow's Parquet reader without pyarrow.parquet, read as pq.ParquetFile reads."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import pyarrow._parquet as parquet_extension
from losslens.parquet_file import ParquetFile, leaves_by_prefix, open_parquet


@pytest.fixture()
def mixed_file(tmp_path):
    """Three row groups of flat, list, struct and text columns, as a token or classifier file has them."""
    rng = np.random.default_rng(7)
    n = 2_500
    probs = rng.dirichlet(np.ones(4), n)
    lengths = rng.integers(0, 6, n)
    table = pa.table({
        "label": rng.integers(0, 4, n),
        **{f"p_{c}": probs[:, c] for c in range(4)},
        "token_logprobs": pa.array([list(-rng.exponential(1.0, k)) for k in lengths], pa.list_(pa.float64())),
        "meta": pa.array([{"source": f"doc {i}", "score": float(i)} for i in range(n)]),
        "text": [f"ex\u00e9mple {i}" for i in range(n)],
    })
    path = tmp_path / "preds.parquet"
    pq.write_table(table, path, row_group_size=1_000)
    return path


SELECTIONS = [None, ["p_2", "label"], ["token_logprobs"], ["meta"], ["meta.score", "text"], ["label", "p_0", "p_1",
                                                                                            "p_2", "p_3"]]


@pytest.mark.parametrize("columns", SELECTIONS)
def test_the_same_batches_and_tables_as_pq_parquetfile(mixed_file, columns):
    ours = open_parquet(mixed_file, 2**16)
    theirs = pq.ParquetFile(mixed_file, pre_buffer=False, buffer_size=2**16)
    assert isinstance(ours, ParquetFile)
    assert ours.schema_arrow.equals(theirs.schema_arrow)
    assert ours.metadata.num_rows == 2_500 and ours.metadata.num_row_groups == 3
    for row_groups in (None, [1, 2], [2, 0]):
        got = list(ours.iter_batches(batch_size=700, row_groups=row_groups, columns=columns, use_threads=False))
        want = list(theirs.iter_batches(batch_size=700, row_groups=row_groups, columns=columns, use_threads=False))
        assert [b.num_rows for b in got] == [b.num_rows for b in want]
        assert all(a.equals(b) for a, b in zip(got, want))
    assert ours.read_row_group(1, columns=columns).equals(theirs.read_row_group(1, columns=columns))
    assert ours.read_row_groups([0, 2], columns=columns, use_threads=False).equals(
        theirs.read_row_groups([0, 2], columns=columns, use_threads=False))


def test_a_name_selects_every_leaf_under_it():
    paths = [("label",), ("token_logprobs", "list", "element"), ("meta", "source"), ("meta", "score")]
    leaves = leaves_by_prefix(paths)
    assert leaves["label"] == [0]
    assert leaves["token_logprobs"] == leaves["token_logprobs.list"] == [1]
    assert leaves["meta"] == [2, 3] and leaves["meta.score"] == [3]
    assert "score" not in leaves


def test_bad_files_raise_what_pq_raises(tmp_path):
    text = tmp_path / "notes.parquet"
    text.write_text("label,p_0\n1,0.5\n", encoding="utf-8")
    with pytest.raises(pa.ArrowInvalid, match="magic bytes"):
        open_parquet(text, 2**16)
    with pytest.raises(FileNotFoundError):
        open_parquet(tmp_path / "missing.parquet", 2**16)


def test_batch_size_must_be_positive(mixed_file):
    with pytest.raises(ValueError, match="greater than zero"):
        open_parquet(mixed_file, 2**16).iter_batches(batch_size=0)


def test_another_pyarrow_gets_the_public_reader(mixed_file, monkeypatch):
    # A pyarrow whose extension module has no ParquetReader: pq.ParquetFile, the same batches.
    monkeypatch.delattr(parquet_extension, "ParquetReader")
    reader = open_parquet(mixed_file, 2**16)
    assert isinstance(reader, pq.ParquetFile)
    assert reader.read_row_group(0, columns=["label"]).num_rows == 1_000


def test_a_reader_with_other_arguments_gets_the_public_reader(mixed_file, monkeypatch):
    class OtherReader(parquet_extension.ParquetReader):
        def open(self, source, **kwargs):  # noqa: A003 - the extension's method name
            raise TypeError("open() got an unexpected keyword argument 'pre_buffer'")

    monkeypatch.setattr(parquet_extension, "ParquetReader", OtherReader)
    assert isinstance(open_parquet(mixed_file, 2**16), pq.ParquetFile)
