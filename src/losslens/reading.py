"""Reading prediction files as a stream of Arrow record batches.

This is the entry point of input I/O (with the CLI): it knows file formats, paths, globs and
folders, reads Parquet, Arrow IPC and JSON lines itself and hands CSV/TSV text to
:mod:`losslens.text_formats`. It knows nothing of labels or probabilities beyond the Arrow
types the schema stage asks for. Every failure becomes an :class:`~losslens.errors.InputError`
that names the file and, where the format lets us find it, the column and row.
"""

from __future__ import annotations

import glob
import os
from collections import Counter
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import pyarrow as pa

# _numpy is re-exported: the rooms below read it from reading.
from .arrow_values import _FIXED_WIDTH, _NUMPY_TYPES, _cast, _numpy  # noqa: F401
from .errors import InputError, where
from .parquet_file import open_parquet
from .pipes import read_pipe, read_stdin
from .sources import (  # noqa: F401  (re-exported: the rooms below read these from reading)
    FORMAT_LIST,
    FORMAT_NAMES,
    FORMATS,
    STDIN,
    FrameSource,
    ReadOptions,
    Source,
    file_format,
)
from .text_formats import (
    CSV_BLOCK_BYTES,
    EXCEL_ENDINGS,
    _first_line,
    _iter_csv,
    _open_csv,
    _sep_name,
    _sep_option,
    _stream_batches,
    _text_settings,
    excel_refusal,
)

#: Target size of one batch in memory. Rows per batch follow from the number of columns,
#: so that 1,000-class files do not make batches 100 times larger than 10-class ones.
#: Scoring makes a handful of n×k temporaries per batch; at 32 MB a 10-class file peaked at
#: 470 MB, at 16 MB at 320 MB, with no measurable change in speed.
BATCH_BYTES = 16 * 2**20
#: Read buffer of each Parquet column, bounding memory whatever the row-group size (64 KB: as fast as 1 MB, 20 MB less).
PARQUET_BUFFER_BYTES = 2**16


def resolve(spec: str | os.PathLike, read: ReadOptions | None = None) -> list[Source]:
    """Expand one input (a file, a folder of parts, or a glob) into the files it names.

    Parameters
    ----------
    spec : str or path
        A file path, a folder (read recursively: every supported file inside, sorted by
        path), a glob pattern such as ``"preds/part-*.parquet"``, or ``"-"`` for standard
        input (copied to a temporary file as it arrives, so memory stays bounded). A named
        pipe or ``/dev/fd/N`` (bash's ``<(command)``) is read as standard input is (see
        :mod:`losslens.pipes`).
    read : ReadOptions, optional
        Encoding, separator, decimal mark and format; detected where not given.

    Returns
    -------
    list of Source
        At least one file, in a stable (sorted) order.
    """
    read = read or ReadOptions()
    text = os.fspath(spec)
    if text == STDIN:
        return [read_stdin(read)]
    path = Path(text)
    if path.is_dir():
        files = sorted(
            p
            for p in path.rglob("*")
            if p.is_file() and file_format(p) and not p.name.startswith((".", "_"))
        )
        if not files:
            raise InputError(f"{text}: folder holds no {FORMAT_LIST} files")
    elif path.exists():
        if not path.is_file():  # a named pipe, `<(command)` (/dev/fd/N), a terminal
            return [read_pipe(path, text, read)]
        files = [path]
    elif any(ch in text for ch in "*?["):
        files = sorted(Path(p) for p in glob.glob(text, recursive=True) if Path(p).is_file())
        if not files:
            raise InputError(f"{text}: no file matches this pattern")
    else:
        raise InputError(f"{text}: no such file or folder")

    sources = []
    for file in files:
        if file.name.lower().endswith(EXCEL_ENDINGS):
            raise excel_refusal(str(file), file)
        fmt = file_format(file) or read.format
        if fmt is None:
            raise InputError(
                f"{file}: unsupported file type; losslens reads {FORMAT_LIST} files "
                "(or say which with --format)"
            )
        sources.append(_text_settings(Source(path=file, display=str(file), format=fmt), read))
    return sources


def text_type(source) -> pa.DataType | None:
    """The type to read a non-numeric column of ``source`` as: text for CSV/TSV, else as stored.

    CSV types are inferred per block, so a label column that looks numeric in the first block
    and holds "cat" later would fail; text is read as text throughout.
    """
    return pa.string() if isinstance(source, Source) and source.format in ("csv", "tsv") else None


def read_columns(source: Source | FrameSource, schema: pa.Schema | None = None) -> list[str]:
    """Return the column names of a source (its header), checking they are usable.

    ``schema`` is the source's :func:`read_schema`, when the caller has it already.
    """
    names = (schema if schema is not None else read_schema(source)).names
    if len(names) == 1 and getattr(source, "format", None) in ("csv", "tsv"):
        # Sniffing did not find the separator (say a quoted header that holds a comma).
        found = next((c for c in (";", "\t", "|", ",") if c in names[0] and c != source.delimiter), None)
        if found is not None:
            raise InputError(
                f"{source.display}: the header is one column {names[0]!r}; the file looks "
                f"{_sep_name(found)}-separated: read it with --sep {_sep_option(found)}"
            )
    # One pass with a Counter: names.count per name was O(k²), seconds at 10,000 classes.
    duplicates = sorted(n for n, times in Counter(names).items() if times > 1)
    if duplicates:
        raise InputError(
            f"{source.display}: duplicate column name(s) {', '.join(map(repr, duplicates))}; "
            "every column needs a unique name"
        )
    return list(names)


def read_schema(source: Source | FrameSource) -> pa.Schema:
    """Return the Arrow schema of a source: its column names and (stored or inferred) types."""
    if isinstance(source, FrameSource):
        return source.table.schema
    if hasattr(source, "table") and hasattr(source, "predictions"):  # labels.JoinedSource
        return source.schema()
    if source.format == "parquet":
        return _open_parquet(source).schema_arrow
    if source.format == "jsonl":
        return _open_json(source).schema
    if source.format == "arrow":
        return _open_ipc(source).schema
    return _open_csv(source, {}, None).schema


def iter_batches(
    source: Source | FrameSource,
    types: dict[str, pa.DataType],
    whole_row_groups: Sequence[str] = (),
    max_rows: int | None = None,
) -> Iterator[tuple[int, "pa.RecordBatch | RowGroupColumns"]]:
    """Yield ``(row_offset, batch)`` for the given columns of one source, in file order.

    Parameters
    ----------
    source : Source or FrameSource
        What to read.
    types : dict
        The columns to read and the Arrow type each must have (None: as stored). A value
        that cannot be converted is reported with its file, column and row.
    whole_row_groups : sequence of str
        Columns the caller can score column by column (the prediction columns). When given,
        a Parquet row group too wide to decode at once is handed out as one
        :class:`RowGroupColumns` instead of row slices (see :data:`WHOLE_GROUP_MAX_ROWS`).
    max_rows : int, optional
        Batches of at most this many rows (Parquet, Arrow IPC and tables): a caller that looks
        at the first rows only (layout detection) need not decode a whole batch of 16 MB.

    Yields
    ------
    row_offset : int
        Number of data rows before this batch in the source (0 for the first batch).
    batch : pyarrow.RecordBatch or RowGroupColumns
        The columns named in ``types``, in that order, with those types.
    """
    rows_per_batch = max(1024, BATCH_BYTES // (8 * max(1, len(types))))
    if max_rows is not None:
        rows_per_batch = max(1, min(rows_per_batch, max_rows))
    if hasattr(source, "table") and hasattr(source, "predictions"):  # labels.JoinedSource
        yield from source.batches(types)
    elif isinstance(source, FrameSource):
        table = source.table.select(list(types))
        yield from _cast_batches(source, table.to_batches(max_chunksize=rows_per_batch), types)
    elif source.format == "parquet":
        yield from _iter_parquet(source, types, rows_per_batch, tuple(whole_row_groups))
    elif source.format == "jsonl":
        yield from _iter_json(source, types)
    elif source.format == "arrow":
        yield from _iter_ipc(source, types, rows_per_batch)
    else:
        yield from _iter_csv(source, types)


def _require_columns(source: Source, present, types) -> None:
    """Refuse a file that lacks one of the columns asked for, naming the first missing one."""
    missing = [c for c in types if c not in present]
    if missing:
        raise InputError(f"{where(source.display, missing[0])}: column not found in this file")


def _open_json(source: Source):
    import pyarrow.json as pajson

    read_options = pajson.ReadOptions(block_size=CSV_BLOCK_BYTES)
    try:
        reader = pajson.open_json(str(source.path), read_options=read_options)
        if any(pa.types.is_list(f.type) and not pa.types.is_null(f.type.value_type) for f in reader.schema):
            # pyarrow 26 infers a list whose first item is null (a document's first token
            # log-prob, as Hugging Face writes it) into offsets past its values: wrong numbers.
            # Read again with the inferred types given, which parses such lists right.
            reader = pajson.open_json(str(source.path), read_options=read_options,
                                      parse_options=pajson.ParseOptions(explicit_schema=reader.schema))
        return reader
    except (pa.ArrowException, OSError) as exc:
        raise _json_error(source, exc) from None


def _json_error(source: Source, exc: BaseException) -> InputError:
    message = _first_line(exc)
    if "Empty" in message or "empty" in message:
        return InputError(f"{source.display}: the file is empty")
    return InputError(f"{source.display}: cannot read as JSON lines ({message})")


def _iter_json(source: Source, types):
    reader = _open_json(source)
    _require_columns(source, reader.schema.names, types)
    batches = _stream_batches(reader, types, lambda exc: _json_error(source, exc))
    yield from _cast_batches(source, batches, types)


class _IpcFile:
    """An Arrow IPC file or stream (memory-mapped), with its schema and record batches."""

    def __init__(self, source: Source):
        self.source = source
        self.map = pa.memory_map(str(source.path))
        try:
            self.reader = pa.ipc.open_file(self.map)
            self.stream = False
        except pa.ArrowException:
            self.map.seek(0)
            try:
                self.reader = pa.ipc.open_stream(self.map)
                self.stream = True
            except pa.ArrowException as exc:
                raise InputError(
                    f"{source.display}: not an Arrow IPC (Feather v2) file or stream ({_first_line(exc)})"
                ) from None
        self.schema = self.reader.schema

    def batches(self):
        if self.stream:
            yield from self.reader
        else:
            for i in range(self.reader.num_record_batches):
                yield self.reader.get_batch(i)


def _open_ipc(source: Source) -> _IpcFile:
    try:
        return _IpcFile(source)
    except OSError as exc:
        raise InputError(f"{source.display}: cannot read the file ({_first_line(exc)})") from None


def _iter_ipc(source: Source, types, rows_per_batch):
    ipc = _open_ipc(source)
    _require_columns(source, ipc.schema.names, types)

    def batches():
        # Zero-copy slices of the mapped batches: memory stays bounded by the batch budget.
        try:
            for batch in ipc.batches():
                batch = batch.select(list(types))
                for start in range(0, batch.num_rows, rows_per_batch):
                    yield batch.slice(start, rows_per_batch)
        except pa.ArrowException as exc:
            raise InputError(f"{source.display}: corrupt Arrow data ({_first_line(exc)})") from None

    yield from _cast_batches(source, batches(), types)


def _open_parquet(source: Source):
    try:
        # Read each column chunk through a small buffer rather than whole: with pyarrow's
        # pre-buffering a 10M-row file peaked at 1.3 GB and read four times slower.
        return open_parquet(source.path, PARQUET_BUFFER_BYTES)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"{source.display}: not a readable Parquet file ({_first_line(exc)})") from None


def _iter_parquet(source: Source, types, rows_per_batch, whole_row_groups=()):
    parquet = _open_parquet(source)
    _require_columns(source, parquet.schema_arrow.names, types)
    schema = parquet.schema_arrow
    if not all(schema.field(c).type in _NUMPY_TYPES for c in whole_row_groups):
        whole_row_groups = ()  # text or decimal prediction columns: read (and cast) in row slices
    if any(pa.types.is_nested(schema.field(c).type) for c in types) and parquet.metadata.num_rows:
        # A list per row (a document's token log-probs): batches sized by the rows' bytes, not 8 a cell.
        widths = _Widths(parquet, list(types))
        groups = range(parquet.metadata.num_row_groups)
        per_row = sum(widths.decoded_bytes(g) for g in groups) / parquet.metadata.num_rows
        rows_per_batch = max(1, min(rows_per_batch, int(BATCH_BYTES // max(per_row, 1.0))))
    try:
        batches = _parquet_batches(parquet, list(types), rows_per_batch, types, whole_row_groups)
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


#: A wide row group of at most this many rows is handed out whole to a caller that scores
#: column by column (``whole_row_groups``): its per-row state (p(true), row sum, maximum,
#: Brier sum, top five, ids...) takes about 150 bytes a row, 75 MB here. Longer groups are
#: read in row slices, whose memory does not grow with rows.
WHOLE_GROUP_MAX_ROWS = 500_000
#: Columns per block, at most and at least: each row's top five are merged with a whole block
#: wherever it holds a value above the row's fifth, nearly every row for wide blocks (200-column
#: blocks of 20,000-row groups spent twice as long merging as 20-column ones); every block costs
#: one merge (a 480,000 × 300 group took a third longer in 2-column blocks).
BLOCK_MAX_COLUMNS = 32
BLOCK_MIN_COLUMNS = 8
#: With at least this many prediction columns every row group (of at most
#: WHOLE_GROUP_MAX_ROWS) is scored column by column, however narrow: row by row, the n × k
#: matrices of a 1,000-class file made ten 20,000-row groups take 10 s and 540 MB.
WHOLE_GROUP_MIN_COLUMNS = 64
#: Consecutive such row groups are scored together up to this many rows, so that a file
#: written in small groups is not decoded and scored in thousands of small blocks (a hundred
#: 2,000-row groups of 1,000 classes took twice as long one by one).
WHOLE_RUN_ROWS = 262_144
#: Prediction columns of a whole row group are handed out in float64 blocks of about this size
#: (more for long groups); scoring makes two or three temporaries of a block. At 32 MB a
#: 200,000 × 1,000 file peaked at 311 MB; at 8 MB at 198 MB, 10% faster.
COLUMN_BLOCK_BYTES = 8 * 2**20


def _parquet_batches(parquet, columns: list[str], rows_per_batch: int, types=None, whole_row_groups=()):
    """Record batches of every row group in order: narrow runs of groups streamed, wide ones sliced.

    ``types`` (column -> wanted Arrow type or None) lets the sliced path hand out float32 columns
    as float64, a block at a time; with ``whole_row_groups`` a short wide group is one :class:`RowGroupColumns`.
    """
    metadata = parquet.metadata
    widths = _Widths(parquet, columns)
    narrow: list[int] = []
    run: list[int] = []  # consecutive groups to be handed out as one RowGroupColumns
    run_rows = 0
    many_columns = len(whole_row_groups) >= WHOLE_GROUP_MIN_COLUMNS
    # In this thread alone, not Arrow's too (the workers keep both CPUs busy): 10M rows 278 -> 253 MiB.
    def narrow_batches(row_groups):
        return parquet.iter_batches(batch_size=rows_per_batch, row_groups=row_groups, columns=columns, use_threads=False)
    for group in range(metadata.num_row_groups):
        rows = metadata.row_group(group).num_rows
        wide = widths.decoded_bytes(group) > PARQUET_SLICE_BYTES
        whole = bool(whole_row_groups) and (wide or many_columns) and rows <= WHOLE_GROUP_MAX_ROWS
        if run and not (whole and run_rows + rows <= WHOLE_RUN_ROWS):
            yield RowGroupColumns(parquet, run, columns, rows_per_batch, types or {})
            run, run_rows = [], 0
        if not (whole or wide):
            narrow.append(group)
            continue
        if narrow:
            yield from narrow_batches(row_groups=narrow)
            narrow = []
        if whole:
            run.append(group)
            run_rows += rows
        else:
            yield from _row_group_slices(parquet, group, columns, rows_per_batch, types or {})
    if run:
        yield RowGroupColumns(parquet, run, columns, rows_per_batch, types or {})
    if narrow:
        yield from narrow_batches(row_groups=narrow)


class _Widths:
    """Decoded size of the selected columns of each row group, from the file's metadata."""

    def __init__(self, parquet, columns: list[str]):
        self.parquet, self.columns = parquet, columns
        schema = parquet.schema_arrow
        self.fixed_bytes_per_row = 0
        self.variable: list[str] = []
        for name in columns:
            try:
                self.fixed_bytes_per_row += schema.field(name).type.bit_width // 8
            except ValueError:  # variable width (strings): their encoded size is the estimate
                self.variable.append(name)

    def decoded_bytes(self, group: int) -> int:
        metadata = self.parquet.metadata.row_group(group)
        total = metadata.num_rows * self.fixed_bytes_per_row
        if self.variable:
            paths = {metadata.column(j).path_in_schema: j for j in range(metadata.num_columns)}
            for name in self.variable:
                # A list column is stored as its leaf ('logprobs.list.element').
                for path, j in paths.items():
                    if path == name or path.startswith(name + "."):
                        total += metadata.column(j).total_uncompressed_size
        return total


def _decoded_bytes(parquet, group: int, columns: list[str]) -> int:
    """Memory the row group's ``columns`` take as Arrow arrays (fixed-width exactly, others estimated)."""
    return _Widths(parquet, columns).decoded_bytes(group)


def _row_group_slices(parquet, group: int, columns: list[str], rows_per_batch: int, types: dict):
    """Batches of one wide row group in bounded memory: one pass over its columns per row slice.

    Each pass decodes one column at a time and keeps a copy of the slice's rows only, so peak
    memory is one slice (at most ``PARQUET_SLICE_BYTES``) plus one decoded column, at the
    price of decoding the row group once per slice (five times for 800 MB of float32).
    Fixed-width columns without nulls are copied into one numpy block per type and slice:
    a thousand small allocations per pass fragmented the allocator until the resident size
    was twice the slice, while one large block goes back to the system when freed.
    """

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
    arrays, widened = [], {}
    for name in columns:
        dtype = dtypes[name]
        if name in others:
            arrays.append(others[name].slice(offset, rows))
            continue
        block, row_of = blocks[dtype]
        if name in widen:
            if dtype not in widened:
                with np.errstate(invalid="ignore"):  # a null's slot holds any bits; its validity says so later
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
                row[position:position + len(chunk)] = _numpy(chunk)
                position += len(chunk)
        else:
            # Strings, or numbers with nulls: an Arrow copy of the slice (concat_arrays copies).
            others[name] = pa.concat_arrays(part.chunks)
    return blocks, others


class RowGroupColumns:
    """Parquet row groups (one wide one, or a run of short ones) handed out whole, to be scored column by column.

    Decoding a column chunk is all or nothing, so a row group read in row slices is decoded
    once per slice. This handle instead gives the group's small columns (label, weight, id,
    split, slices) as one record batch, and its prediction columns as float64 blocks of a
    few columns each, each column decoded once (see :mod:`losslens.columnwise`).
    :func:`_cast_batches` sets ``source`` and ``row_offset`` when it passes the
    handle on.
    """

    def __init__(self, parquet, groups: list[int], columns, rows_per_batch: int, types: dict):
        self.parquet, self.groups = parquet, list(groups)
        self.columns, self.rows_per_batch, self.types = list(columns), rows_per_batch, types
        self.num_rows = sum(parquet.metadata.row_group(g).num_rows for g in self.groups)
        self.source = None
        self.row_offset = 0

    def read_columns(self, names) -> pa.RecordBatch:
        """The named columns of the whole group, with the types asked for."""
        table = self.parquet.read_row_groups(self.groups, columns=list(names), use_threads=False)
        batch = pa.RecordBatch.from_arrays([c.combine_chunks() for c in table.columns], names=list(names))
        wanted = {name: self.types.get(name) for name in names}
        if any(t is not None and t != batch.schema.field(n).type for n, t in wanted.items()):
            batch = _cast(self.source, batch, wanted, self.row_offset)
        return batch

    def float_blocks(self, names, block_bytes: int = COLUMN_BLOCK_BYTES):
        """``(first, block)``: float64 blocks of ``names`` in order, Fortran order, nulls as NaN.

        The next block is decoded in a background thread while the caller scores this one
        (pyarrow and most numpy loops release the GIL), so decoding costs little wall time;
        at most three blocks are alive at once.
        """
        from concurrent.futures import ThreadPoolExecutor

        n = self.num_rows
        width = min(BLOCK_MAX_COLUMNS, max(BLOCK_MIN_COLUMNS, block_bytes // (8 * max(1, n))))
        names = list(names)
        starts = list(range(0, len(names), width))
        if not starts:
            return
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="losslens-decode") as pool:
            pending = pool.submit(self._block, names, starts[0], width)
            for following in [*starts[1:], None]:
                block = pending.result()
                pending = pool.submit(self._block, names, following, width) if following is not None else None
                yield block
                del block

    def _block(self, names, first: int, width: int):
        """Decode ``names[first:first + width]`` into one float64 block (Fortran order)."""
        part = names[first:first + width]
        # Threads decode the block's columns side by side (two cores: a third less time).
        table = self.parquet.read_row_groups(self.groups, columns=part, use_threads=True)
        block = np.empty((self.num_rows, len(part)), order="F")
        for j, column in enumerate(table.columns):
            _fill_float64(block[:, j], column)
        return first, block

    def batches(self):
        """The group as ordinary ``(row_offset, batch)`` row slices (to name a bad value)."""
        def slices():
            for group in self.groups:
                yield from _row_group_slices(self.parquet, group, self.columns, self.rows_per_batch, self.types)

        for offset, batch in _cast_batches(self.source, slices(), self.types):
            yield self.row_offset + offset, batch


def _fill_float64(out, column: pa.ChunkedArray) -> None:
    """Copy a fixed-width numeric column into the float64 vector ``out``, nulls as NaN."""
    position = 0
    for chunk in column.chunks:
        out[position:position + len(chunk)] = _numpy(chunk)
        position += len(chunk)


def _cast_batches(source, batches, types) -> Iterator[tuple[int, pa.RecordBatch]]:
    """Cast each batch to the requested types, naming the first value that will not convert."""
    offset = 0
    for batch in batches:
        if isinstance(batch, RowGroupColumns):
            batch.source, batch.row_offset = source, offset
            yield offset, batch
            offset += batch.num_rows
            continue
        if any(t is not None and t != batch.schema.field(n).type for n, t in types.items()):
            batch = _cast(source, batch, types, offset)
        yield offset, batch
        offset += batch.num_rows
