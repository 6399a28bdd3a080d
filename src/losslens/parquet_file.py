"""Opening a local Parquet file without ``import pyarrow.parquet`` (15 ms of every Parquet run).

``pyarrow.parquet`` imports ``pyarrow.fs``, which loads the S3, GCS, Azure and HDFS filesystems
and Python's ``ssl``: 15 ms on the 2-core machine of issue #22, 3% of a 1M-row ``losslens
metrics``. losslens reads local files by path, and ``pq.ParquetFile`` is a thin layer over the
extension module it imports, ``pyarrow._parquet`` (1 ms). :func:`open_parquet` opens the file with
that module's reader and :class:`ParquetFile` offers the few calls of ``pq.ParquetFile`` that
losslens makes, with the same arguments, doing what ``pq.ParquetFile`` does for them (a column
name selects every leaf under it, as there): the same batches, bit for bit.

Where the extension module does not have that reader (another pyarrow), ``pq.ParquetFile``
itself is used.
"""

from __future__ import annotations

import os
from collections import defaultdict
from typing import Iterable, Sequence


def open_parquet(path: str | os.PathLike, buffer_size: int):
    """Open a local Parquet file for reading, as ``pq.ParquetFile(path, pre_buffer=False, buffer_size=...)``.

    Parameters
    ----------
    path : str or path-like
        A local file.
    buffer_size : int
        Read buffer of each column (pyarrow's ``buffer_size``).

    Returns
    -------
    ParquetFile or pyarrow.parquet.ParquetFile
        Either has ``metadata``, ``schema_arrow``, ``iter_batches``, ``read_row_group`` and
        ``read_row_groups`` with ``pq.ParquetFile``'s arguments.

    Raises
    ------
    pyarrow.ArrowException, OSError
        As ``pq.ParquetFile`` raises them (not a Parquet file, no such file).
    """
    try:
        from pyarrow._parquet import ParquetReader
    except ImportError:  # a pyarrow without it: its public reader
        ParquetReader = None
    if ParquetReader is not None and hasattr(ParquetReader, "column_paths"):
        try:
            return ParquetFile(ParquetReader, path, buffer_size)
        except TypeError:  # a reader whose open() takes other arguments: the public one
            pass
    import pyarrow.parquet as pq

    return pq.ParquetFile(path, pre_buffer=False, buffer_size=buffer_size)


class ParquetFile:
    """The reading calls of ``pq.ParquetFile`` on ``pyarrow._parquet.ParquetReader`` alone.

    Attributes
    ----------
    metadata : pyarrow.parquet.FileMetaData
        The file's footer (row groups, their rows and columns' sizes).
    schema_arrow : pyarrow.Schema
        The file's schema as Arrow types.
    """

    def __init__(self, reader_type, path: str | os.PathLike, buffer_size: int):
        self.reader = reader_type()
        # Read each column through a small buffer, not pre-buffered whole (see reading.py).
        self.reader.open(os.fspath(path), use_memory_map=False, buffer_size=buffer_size, pre_buffer=False)
        self.metadata = self.reader.metadata
        self.schema_arrow = self.reader.schema_arrow
        self._leaves = leaves_by_prefix(self.reader.column_paths)

    def _indices(self, columns: Sequence[str] | None):
        if columns is None:
            return None
        return [index for name in columns for index in self._leaves.get(name, ())]

    def iter_batches(self, batch_size: int = 65536, row_groups: Iterable[int] | None = None,
                     columns: Sequence[str] | None = None, use_threads: bool = True):
        """Record batches of at most ``batch_size`` rows of ``row_groups`` (all: None), in order."""
        if batch_size <= 0:
            raise ValueError("batch_size must be greater than zero")
        if row_groups is None:
            row_groups = range(self.metadata.num_row_groups)
        return self.reader.iter_batches(batch_size, row_groups=row_groups, column_indices=self._indices(columns),
                                        use_threads=use_threads)

    def read_row_group(self, i: int, columns: Sequence[str] | None = None, use_threads: bool = True):
        """Row group ``i`` as a table of ``columns``."""
        return self.reader.read_row_group(i, column_indices=self._indices(columns), use_threads=use_threads)

    def read_row_groups(self, row_groups: Sequence[int], columns: Sequence[str] | None = None,
                        use_threads: bool = True):
        """Row groups ``row_groups`` as one table of ``columns``."""
        return self.reader.read_row_groups(row_groups, column_indices=self._indices(columns),
                                           use_threads=use_threads)


def leaves_by_prefix(column_paths: Sequence[Sequence[str]]) -> dict[str, list[int]]:
    """The leaf columns each dotted prefix selects (``a`` and ``a.b`` both select leaf ``a.b.c``).

    ``pq.ParquetFile``'s own mapping from a column name to the file's leaf columns, so that a
    list column (``a`` stored as ``a.list.element``) is read whole.
    """
    leaves: dict[str, list[int]] = defaultdict(list)
    for index, path in enumerate(column_paths):
        key = path[0]
        leaves[key].append(index)
        for part in path[1:]:
            key = f"{key}.{part}"
            leaves[key].append(index)
    return dict(leaves)
