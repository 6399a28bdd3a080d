"""Reading prediction files as a stream of Arrow record batches.

This is one of the two modules with input I/O (the other is the CLI). It knows file formats,
paths, globs and folders; it knows nothing of labels or probabilities beyond the Arrow types
the schema stage asks for. Every failure becomes an :class:`~losslens.errors.InputError` that
names the file and, where the format lets us find it, the column and row.
"""

from __future__ import annotations

import csv
import glob
import gzip
import io
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import pyarrow as pa

from .errors import InputError, where

#: File endings we read, longest first so that ``.csv.gz`` wins over ``.gz``.
FORMATS = {
    ".csv.gz": "csv",
    ".tsv.gz": "tsv",
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
}

#: Target size of one batch in memory. Rows per batch follow from the number of columns,
#: so that 1,000-class files do not make batches 100 times larger than 10-class ones.
#: Scoring makes a handful of n×k temporaries per batch; at 32 MB a 10-class file peaked at
#: 470 MB, at 16 MB at 320 MB, with no measurable change in speed.
BATCH_BYTES = 16 * 2**20
#: CSV block size handed to pyarrow; a block becomes one record batch. The streaming reader's
#: memory grows much faster than its block: reading a 10M-row CSV alone peaked at 450 MB with
#: 8 MB blocks and at 180 MB with 2 MB blocks, at the same speed.
CSV_BLOCK_BYTES = 2 * 2**20
#: Read buffer of each Parquet column; bounds memory whatever the row-group size.
PARQUET_BUFFER_BYTES = 2**20


@dataclass(frozen=True)
class Source:
    """One file to read: where it is, what to call it in messages, and its format."""

    path: Path
    display: str
    format: str


@dataclass(frozen=True)
class FrameSource:
    """An in-memory table given to the library instead of a path."""

    table: pa.Table
    display: str = "<DataFrame>"
    format: str = "arrow"


def file_format(path: Path) -> str | None:
    """Return ``"csv"``, ``"tsv"`` or ``"parquet"`` from the file name, or None if unsupported."""
    name = path.name.lower()
    for ending, fmt in FORMATS.items():
        if name.endswith(ending):
            return fmt
    return None


def resolve(spec: str | os.PathLike) -> list[Source]:
    """Expand one input (a file, a folder of parts, or a glob) into the files it names.

    Parameters
    ----------
    spec : str or path
        A file path, a folder (read recursively: every supported file inside, sorted by
        path), or a glob pattern such as ``"preds/part-*.parquet"``.

    Returns
    -------
    list of Source
        At least one file, in a stable (sorted) order.
    """
    text = os.fspath(spec)
    path = Path(text)
    if path.is_dir():
        files = sorted(
            p
            for p in path.rglob("*")
            if p.is_file() and file_format(p) and not p.name.startswith((".", "_"))
        )
        if not files:
            raise InputError(
                f"{text}: folder holds no .csv, .tsv, .csv.gz or .parquet files"
            )
    elif path.exists():
        files = [path]
    elif any(ch in text for ch in "*?["):
        files = sorted(Path(p) for p in glob.glob(text, recursive=True) if Path(p).is_file())
        if not files:
            raise InputError(f"{text}: no file matches this pattern")
    else:
        raise InputError(f"{text}: no such file or folder")

    sources = []
    for file in files:
        fmt = file_format(file)
        if fmt is None:
            raise InputError(
                f"{file}: unsupported file type; losslens reads "
                ".csv, .tsv, .csv.gz, .tsv.gz and .parquet files"
            )
        sources.append(Source(path=file, display=str(file), format=fmt))
    return sources


def read_columns(source: Source | FrameSource) -> list[str]:
    """Return the column names of a source (its header), checking they are usable."""
    if isinstance(source, FrameSource):
        names = source.table.schema.names
    elif source.format == "parquet":
        names = _open_parquet(source).schema_arrow.names
    else:
        names = _open_csv(source, {}, None).schema.names
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InputError(
            f"{source.display}: duplicate column name(s) {', '.join(map(repr, duplicates))}; "
            "every column needs a unique name"
        )
    return list(names)


def iter_batches(
    source: Source | FrameSource,
    types: dict[str, pa.DataType],
) -> Iterator[tuple[int, pa.RecordBatch]]:
    """Yield ``(row_offset, batch)`` for the given columns of one source, in file order.

    Parameters
    ----------
    source : Source or FrameSource
        What to read.
    types : dict
        The columns to read and the Arrow type each must have (None: as stored). A value
        that cannot be converted is reported with its file, column and row.

    Yields
    ------
    row_offset : int
        Number of data rows before this batch in the source (0 for the first batch).
    batch : pyarrow.RecordBatch
        The columns named in ``types``, in that order, with those types.
    """
    rows_per_batch = max(1024, BATCH_BYTES // (8 * max(1, len(types))))
    if isinstance(source, FrameSource):
        table = source.table.select(list(types))
        yield from _cast_batches(source, table.to_batches(max_chunksize=rows_per_batch), types)
    elif source.format == "parquet":
        yield from _iter_parquet(source, types, rows_per_batch)
    else:
        yield from _iter_csv(source, types)


def _open_parquet(source: Source):
    import pyarrow.parquet as pq

    try:
        # Read each column chunk through a small buffer rather than whole: with pyarrow's
        # pre-buffering a 10M-row file peaked at 1.3 GB and read four times slower.
        return pq.ParquetFile(source.path, pre_buffer=False, buffer_size=PARQUET_BUFFER_BYTES)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"{source.display}: not a readable Parquet file ({_first_line(exc)})") from None


def _iter_parquet(source: Source, types, rows_per_batch):
    parquet = _open_parquet(source)
    missing = [c for c in types if c not in parquet.schema_arrow.names]
    if missing:
        raise InputError(f"{where(source.display, missing[0])}: column not found in this file")
    try:
        batches = _parquet_batches(parquet, list(types), rows_per_batch, types)
        yield from _cast_batches(source, batches, types)
    except (pa.ArrowException, OSError) as exc:
        if isinstance(exc, pa.ArrowInvalid) and "cast" in str(exc).lower():
            raise
        raise InputError(f"{source.display}: corrupt Parquet data ({_first_line(exc)})") from None


#: A row group whose selected columns take more than this once decoded is read in row slices
#: (see :func:`_row_group_slices`). pyarrow decodes a page of every column before it can give
#: the first row, and a writer's page is about 1 MB, so a 200,000 × 1,000 float32 row group
#: written in one piece peaked at 3.2 GB through ``iter_batches`` whatever its batch size.
PARQUET_SLICE_BYTES = 160 * 2**20


def _parquet_batches(parquet, columns: list[str], rows_per_batch: int, types=None):
    """Record batches of every row group in order: narrow runs of groups streamed, wide ones sliced.

    ``types`` (column -> wanted Arrow type or None) lets the sliced path hand out float32
    columns as the float64 asked for, converted a block at a time rather than cast column by column.
    """
    metadata = parquet.metadata
    narrow: list[int] = []
    for group in range(metadata.num_row_groups):
        if _decoded_bytes(parquet, group, columns) <= PARQUET_SLICE_BYTES:
            narrow.append(group)
            continue
        if narrow:
            yield from parquet.iter_batches(batch_size=rows_per_batch, row_groups=narrow, columns=columns)
            narrow = []
        yield from _row_group_slices(parquet, group, columns, rows_per_batch, types or {})
    if narrow:
        yield from parquet.iter_batches(batch_size=rows_per_batch, row_groups=narrow, columns=columns)


def _decoded_bytes(parquet, group: int, columns: list[str]) -> int:
    """Memory the row group's ``columns`` take as Arrow arrays (fixed-width exactly, others estimated)."""
    metadata = parquet.metadata.row_group(group)
    schema = parquet.schema_arrow
    paths = {metadata.column(j).path_in_schema: j for j in range(metadata.num_columns)}
    total = 0
    for name in columns:
        kind = schema.field(name).type
        try:
            total += metadata.num_rows * kind.bit_width // 8
        except ValueError:  # variable width (strings): their encoded size is the estimate
            j = paths.get(name)
            total += metadata.column(j).total_uncompressed_size if j is not None else 0
    return total


def _row_group_slices(parquet, group: int, columns: list[str], rows_per_batch: int, types: dict):
    """Batches of one wide row group in bounded memory: one pass over its columns per row slice.

    Each pass decodes one column at a time and keeps a copy of the slice's rows only, so peak
    memory is one slice (at most ``PARQUET_SLICE_BYTES``) plus one decoded column, at the
    price of decoding the row group once per slice (five times for 800 MB of float32).
    Fixed-width columns without nulls are copied into one numpy block per type and slice:
    a thousand small allocations per pass fragmented the allocator until the resident size
    was twice the slice, while one large block goes back to the system when freed.
    """
    import numpy as np

    n = parquet.metadata.row_group(group).num_rows
    passes = max(1, -(-_decoded_bytes(parquet, group, columns) // PARQUET_SLICE_BYTES))
    slice_rows = -(-n // passes)
    schema = parquet.schema_arrow
    dtypes = {name: _FIXED_WIDTH.get(schema.field(name).type) for name in columns}
    # Float columns wanted as float64 are converted here, one numpy copy per batch and type,
    # instead of one Arrow cast per column and batch (96,000 casts, 8 s, at 1,000 classes).
    widen = {name for name, dtype in dtypes.items() if dtype == "float32" and types.get(name) == pa.float64()}
    for start in range(0, n, slice_rows):
        length = min(slice_rows, n - start)
        blocks, others = _read_slice(parquet, group, columns, dtypes, start, length)
        for offset in range(0, length, rows_per_batch):
            yield _batch_of(blocks, others, columns, dtypes, widen, offset, min(rows_per_batch, length - offset))
        # Freed before the next pass decodes, or two slices would be alive at once.
        del blocks, others


def _batch_of(blocks, others, columns, dtypes, widen, offset, rows) -> pa.RecordBatch:
    """Rows ``offset`` to ``offset + rows`` of a slice as a record batch (zero-copy unless widened)."""
    arrays, position, widened = [], {}, {}
    for name in columns:
        dtype = dtypes[name]
        if name in others:
            arrays.append(others[name].slice(offset, rows))
            continue
        block, row_of = blocks[dtype]
        if name in widen:
            if dtype not in widened:
                widened[dtype] = block[:, offset:offset + rows].astype("float64")
            arrays.append(pa.array(widened[dtype][row_of[name]]))
        else:
            arrays.append(pa.array(block[row_of[name], offset:offset + rows]))
    return pa.RecordBatch.from_arrays(arrays, names=columns)


def _read_slice(parquet, group: int, columns: list[str], dtypes: dict, start: int, length: int):
    """Rows ``start`` to ``start + length`` of a row group's ``columns``, read column by column.

    Returns ``blocks`` (numpy dtype -> (block with one row per column, column -> row)) for
    fixed-width columns without nulls, and ``others`` (column -> Arrow array copy) for the
    rest. A function of its own so that no local view of a block outlives the slice.
    """
    import numpy as np

    blocks, others = {}, {}
    for dtype in set(dtypes.values()) - {None}:
        width = sum(1 for d in dtypes.values() if d == dtype)
        blocks[dtype] = (np.empty((width, length), dtype=dtype), {})
    for name in columns:
        part = parquet.read_row_group(group, columns=[name], use_threads=False).column(0).slice(start, length)
        dtype = dtypes[name]
        if dtype is not None and part.null_count == 0:
            block, row_of = blocks[dtype]
            row = block[len(row_of)]
            row_of[name] = len(row_of)
            position = 0
            for chunk in part.chunks:
                values = np.frombuffer(chunk.buffers()[1], dtype=dtype, count=chunk.offset + len(chunk))
                row[position:position + len(chunk)] = values[chunk.offset:]
                position += len(chunk)
        else:
            # Strings, or numbers with nulls: an Arrow copy of the slice (concat_arrays copies).
            others[name] = pa.concat_arrays(part.chunks)
    return blocks, others


#: Arrow types read into a numpy block by :func:`_row_group_slices` (others are copied by Arrow).
_FIXED_WIDTH = {
    pa.float64(): "float64", pa.float32(): "float32", pa.int64(): "int64", pa.int32(): "int32",
    pa.int16(): "int16", pa.int8(): "int8", pa.uint64(): "uint64", pa.uint32(): "uint32",
    pa.uint16(): "uint16", pa.uint8(): "uint8",
}


def _cast_batches(source, batches, types) -> Iterator[tuple[int, pa.RecordBatch]]:
    """Cast each batch to the requested types, naming the first value that will not convert."""
    offset = 0
    for batch in batches:
        if any(t is not None and t != batch.schema.field(n).type for n, t in types.items()):
            batch = _cast(source, batch, types, offset)
        yield offset, batch
        offset += batch.num_rows


def _cast(source, batch: pa.RecordBatch, types, offset: int) -> pa.RecordBatch:
    import pyarrow.compute as pc

    arrays = []
    for name, wanted in types.items():
        column = batch.column(name)
        if wanted is not None and column.type != wanted:
            if pa.types.is_floating(wanted) and not (
                pa.types.is_integer(column.type)
                or pa.types.is_floating(column.type)
                or pa.types.is_boolean(column.type)
                or pa.types.is_decimal(column.type)
                or pa.types.is_null(column.type)
            ):
                # Strings that hold numbers are fine; find the first that does not.
                text = pc.cast(column, pa.string())
                for i, value in enumerate(text.to_pylist()):
                    if value is not None and _parse_float(value) is None:
                        raise InputError(
                            f"{where(source.display, name, offset + i + 1)}: "
                            f"non-numeric value {value!r}"
                        )
                column = pa.array([_parse_float(v) for v in text.to_pylist()], pa.float64())
            else:
                try:
                    column = pc.cast(column, wanted)
                except pa.ArrowException as exc:
                    raise InputError(
                        f"{where(source.display, name)}: cannot read values of type "
                        f"{column.type} as {wanted} ({_first_line(exc)})"
                    ) from None
        arrays.append(column)
    return pa.RecordBatch.from_arrays(arrays, names=list(types))


def _parse_float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _open_csv(source: Source, types: dict[str, pa.DataType], include: Sequence[str] | None):
    import pyarrow.csv as pacsv

    _reject_binary(source)
    delimiter = "\t" if source.format == "tsv" else ","
    try:
        stream = pa.input_stream(str(source.path), compression="detect")
        return pacsv.open_csv(
            stream,
            read_options=pacsv.ReadOptions(block_size=CSV_BLOCK_BYTES),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types={n: t for n, t in types.items() if t is not None},
                include_columns=list(include) if include is not None else None,
                # An empty label must stay visible as "" so that we can report it.
                strings_can_be_null=False,
            ),
        )
    except (pa.ArrowException, OSError) as exc:
        # open_csv already reads the first block, so conversion errors can surface here.
        raise _csv_error(source, exc, types) from None


def _iter_csv(source: Source, types):
    reader = _open_csv(source, types, include=list(types))
    offset = 0
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            return
        except (pa.ArrowException, OSError) as exc:
            raise _csv_error(source, exc, types) from None
        yield offset, batch.select(list(types))
        offset += batch.num_rows


def _reject_binary(source: Source) -> None:
    """Refuse files that are plainly not text, before pyarrow reports something obscure."""
    try:
        with _open_text_bytes(source) as handle:
            head = handle.read(8192)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise InputError(f"{source.display}: cannot read the file ({_first_line(exc)})") from None
    if b"\x00" in head:
        raise InputError(f"{source.display}: binary data, not a {source.format.upper()} text file")
    if not head.strip():
        raise InputError(f"{source.display}: the file is empty")


def _open_text_bytes(source: Source):
    if source.path.name.lower().endswith(".gz"):
        return gzip.open(source.path, "rb")
    return open(source.path, "rb")


_CONVERSION = re.compile(r"In CSV column #(\d+): .*conversion error to (\w+)")


def _csv_error(source: Source, exc: Exception, types=None) -> InputError:
    """Turn a pyarrow CSV error into a message with the row and value we find ourselves."""
    message = _first_line(exc)
    if "Empty CSV file" in message:
        return InputError(f"{source.display}: the file is empty")
    if "zlib" in message or "gzip" in message.lower():
        return InputError(f"{source.display}: not a valid gzip file ({message})")
    if "Expected" in message and "columns" in message:
        return _locate_ragged_row(source) or InputError(f"{source.display}: {message}")
    if _CONVERSION.search(message) and types:
        numeric = [c for c, t in types.items() if t is not None and pa.types.is_floating(t)]
        located = _locate_bad_value(source, numeric)
        if located:
            return located
    if "UTF8" in message or "utf8" in message.lower():
        return InputError(f"{source.display}: not UTF-8 text ({message})")
    return InputError(f"{source.display}: cannot read as {source.format.upper()} ({message})")


def _csv_rows(source: Source) -> Iterator[list[str]]:
    delimiter = "\t" if source.format == "tsv" else ","
    with _open_text_bytes(source) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="")
        yield from csv.reader(text, delimiter=delimiter)


def _locate_ragged_row(source: Source) -> InputError | None:
    # Slow path, taken only on error: pyarrow does not say which row is ragged.
    rows = _csv_rows(source)
    header = next(rows, [])
    for number, row in enumerate(rows, start=1):
        if row and len(row) != len(header):
            return InputError(
                f"{where(source.display, row=number)}: has {len(row)} fields, "
                f"the header has {len(header)}"
            )
    return None


def _locate_bad_value(source: Source, columns: Sequence[str]) -> InputError | None:
    """Find the first non-numeric cell of ``columns``, scanning rows in file order."""
    rows = _csv_rows(source)
    header = next(rows, [])
    wanted = [(header.index(c), c) for c in columns if c in header]
    for number, row in enumerate(rows, start=1):
        for index, column in wanted:
            if index < len(row) and row[index].strip() and _parse_float(row[index]) is None:
                return InputError(
                    f"{where(source.display, column, number)}: non-numeric value {row[index]!r}"
                )
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
