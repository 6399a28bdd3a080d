"""Reading text prediction files: CSV and TSV, plain or compressed (gzip, bzip2, xz, zstd).

Owns what only text files have: compression (by the file's ending), sniffing the separator
and the decimal mark from the first bytes, Excel's ``sep=;`` first line, encodings (byte-order
marks, UTF-16, Latin-1 spreadsheet exports), and finding the row and value behind pyarrow's
CSV errors. :mod:`losslens.reading` is the entry point that
dispatches here; like it, every failure becomes an :class:`~losslens.errors.InputError`.
"""

from __future__ import annotations

import csv
import io
import json
import re
import sys
from typing import Iterator, Sequence

import pyarrow as pa

from .errors import InputError, where

from .sources import COMPRESSIONS, ReadOptions, Source

#: Separators tried, in this order, when a .csv file's header holds no comma.
SNIFFED_SEPARATORS = (";", "\t", "|")
#: Bytes looked at to sniff the separator and decimal mark and to check the encoding.
SNIFF_BYTES = 64 * 1024
#: CSV block size handed to pyarrow; a block becomes one record batch. The streaming reader's
#: memory grows much faster than its block: reading a 10M-row CSV alone peaked at 450 MB with
#: 8 MB blocks and at 180 MB with 2 MB blocks, at the same speed.
CSV_BLOCK_BYTES = 2 * 2**20
#: The first bytes of each compressed format, to recognise a pipe's contents (no name). bzip2's
#: "BZh" could start a CSV header, so its block size digit and first block's magic must follow.
COMPRESSION_MAGIC = {
    ".gz": re.compile(rb"\A\x1f\x8b"), ".bz2": re.compile(rb"\ABZh[1-9]1AY&SY"),
    ".xz": re.compile(rb"\A\xfd7zXZ\x00"), ".zst": re.compile(rb"\A\x28\xb5\x2f\xfd"),
}
#: Spreadsheet workbooks: refused with the command that converts them (see :func:`excel_refusal`).
EXCEL_ENDINGS = (".xlsx", ".xlsm", ".xls")
#: The first bytes of a workbook: .xlsx/.xlsm are zip files, .xls an OLE2 compound file.
EXCEL_MAGIC = (b"PK\x03\x04", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1")
#: Excel's first line naming the separator (``sep=;``), written on request and honoured by Excel.
_EXCEL_SEP_LINE = re.compile(r'^"?sep=(.)"?$', re.IGNORECASE)


def _read_errors() -> tuple:
    """What a broken compressed file raises as it is read.

    Asked in ``except`` clauses, which Python evaluates only when something was raised:
    :mod:`lzma` is imported only to open an .xz file (0.75 ms of start-up otherwise), and
    its error can only have been raised once it was.
    """
    lzma = sys.modules.get("lzma")
    return (OSError, EOFError, pa.ArrowException) + ((lzma.LZMAError,) if lzma is not None else ())


def _text_settings(source: Source, read: ReadOptions) -> Source:
    """``source`` with the encoding, separator and decimal mark to read it with.

    Detects what ``read`` leaves open from the first bytes of the file (see
    :class:`ReadOptions`), and refuses a file whose first bytes are not in its encoding.
    """
    from dataclasses import replace

    if source.format not in ("csv", "tsv"):
        return source
    encoding = read.encoding or "utf-8"
    head = _head_text(source, encoding, explicit=read.encoding is not None)
    lines = head.splitlines()
    notes = []
    delimiter = read.sep or ("\t" if source.format == "tsv" else ",")
    skip = 0
    excel = _EXCEL_SEP_LINE.match(lines[0]) if lines else None
    if excel:
        # `sep=;` is not the header: Excel reads it as the separator and skips it; so do we.
        skip, lines = 1, lines[1:]
        if read.sep is None:
            delimiter = excel.group(1)
            notes.append(f"separator {_sep_name(delimiter)} (from the file's Excel 'sep=' first line, skipped)")
    header = lines[0] if lines else ""
    if read.sep is None and not excel and source.format == "csv" and "," not in header:
        found = next((c for c in SNIFFED_SEPARATORS if c in header), None)
        if found is not None:
            delimiter = found
            notes.append(f"separator {_sep_name(found)} (sniffed from the header; set --sep)")
    decimal = read.decimal or "."
    if read.decimal is None and delimiter != "," and _decimal_commas(lines[1:50], delimiter):
        decimal = ","
        notes.append("decimal commas (0,25 is 0.25; set --decimal)")
    return replace(source, encoding=encoding, delimiter=delimiter, decimal=decimal, notes=tuple(notes),
                   skip_rows=skip)


def _sep_option(sep: str) -> str:
    return {"\t": "'\\t'", ";": "';'", "|": "'|'", ",": "','"}[sep]


def _sep_name(sep: str) -> str:
    return {"\t": "tab", ";": "';'", "|": "'|'", ",": "','"}.get(sep, repr(sep))


_DECIMAL_COMMA = re.compile(r"^\s*[-+]?\d+,\d+([eE][-+]?\d+)?\s*$")
_DECIMAL_POINT = re.compile(r"^\s*[-+]?\d*\.\d+([eE][-+]?\d+)?\s*$")


def _decimal_commas(lines: Sequence[str], delimiter: str) -> bool:
    """Whether numbers in these data lines are written with a decimal comma (and none with a point)."""
    cells = [cell.strip('"') for line in lines for cell in line.split(delimiter)]
    return any(_DECIMAL_COMMA.match(c) for c in cells) and not any(_DECIMAL_POINT.match(c) for c in cells)


def _head_text(source: Source, encoding: str, explicit: bool) -> str:
    """The first bytes of a text file, decoded; a clear error if they are not in ``encoding``."""
    try:
        with _open_text_bytes(source) as handle:
            head = handle.read(SNIFF_BYTES)
    except _read_errors() as exc:
        raise _read_error(source, exc) from None
    if head.startswith(EXCEL_MAGIC):
        # Named by what the user gave (a pipe's copy is gone when we exit).
        raise excel_refusal(source.display, "book.xlsx" if source.display == "<stdin>" else source.display)
    packed = compressed_as(head)
    if packed is not None and compression_of(source.path) is None:
        raise InputError(
            f"{source.display}: compressed ({packed} data) but not named so; rename it to end "
            f"in .{source.format}{packed}, or decompress it"
        )
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) and not explicit:
        # Excel's "Unicode text" export: UTF-16 with a byte-order mark.
        raise InputError(f"{source.display}: UTF-16 text, not UTF-8; read it with --encoding utf-16")
    if b"\x00" in head[:8192] and not _wide(encoding):
        raise InputError(f"{source.display}: binary data, not a {source.format.upper()} text file")
    if head.startswith(b"\xef\xbb\xbf") and encoding.lower().replace("_", "-") in ("utf-8", "utf8"):
        head = head[3:]  # Excel's "CSV UTF-8" starts with a byte-order mark
    try:
        return head.decode(encoding)
    except UnicodeDecodeError as exc:
        if exc.start >= len(head) - 4:  # a character cut in two by the end of the sample
            return head[: exc.start].decode(encoding, errors="replace")
        first = head.split(b"\n", 1)[0].rstrip(b"\r").decode("latin-1")
        line = head.count(b"\n", 0, exc.start) - (1 if _EXCEL_SEP_LINE.match(first) else 0)
        place = "the header" if line == 0 else f"row {line}"
        hint = (
            "it is probably Latin-1 or Windows-1252 (a spreadsheet export): read it with "
            "--encoding latin-1 or --encoding cp1252"
            if not explicit
            else "give the file's encoding with --encoding"
        )
        raise InputError(
            f"{source.display}: not {_encoding_name(encoding)} text (byte 0x{head[exc.start]:02x} in {place}); {hint}"
        ) from None




def _open_csv(source: Source, types: dict[str, pa.DataType], include: Sequence[str] | None):
    import pyarrow.csv as pacsv

    _reject_binary(source)
    try:
        return pacsv.open_csv(
            _arrow_stream(source),
            read_options=pacsv.ReadOptions(
                block_size=CSV_BLOCK_BYTES, encoding=source.encoding, skip_rows=source.skip_rows
            ),
            parse_options=pacsv.ParseOptions(delimiter=source.delimiter, newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types={n: t for n, t in types.items() if t is not None},
                include_columns=list(include) if include is not None else None,
                # An empty label must stay visible as "" so that we can report it.
                strings_can_be_null=False,
                decimal_point=source.decimal,
            ),
        )
    except (pa.ArrowException, OSError) as exc:
        # open_csv already reads the first block, so conversion errors can surface here.
        raise _csv_error(source, exc, types) from None


def _iter_csv(source: Source, types):
    reader = _open_csv(source, types, include=list(types))
    offset = 0
    for batch in _stream_batches(reader, types, lambda exc: _csv_error(source, exc, types)):
        yield offset, batch
        offset += batch.num_rows


def _stream_batches(reader, types, error) -> Iterator[pa.RecordBatch]:
    """The record batches of a pyarrow streaming reader (CSV or JSON lines), ``types``' columns only.

    A read error part-way through becomes the :class:`InputError` that ``error(exc)`` returns.
    """
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            return
        except (pa.ArrowException, OSError) as exc:
            raise error(exc) from None
        yield batch.select(list(types))


def _reject_binary(source: Source) -> None:
    """Refuse files that are plainly not text, before pyarrow reports something obscure."""
    try:
        with _open_text_bytes(source) as handle:
            head = handle.read(8192)
    except _read_errors() as exc:
        raise _read_error(source, exc) from None
    if b"\x00" in head and not _wide(source.encoding):
        raise InputError(f"{source.display}: binary data, not a {source.format.upper()} text file")
    if not head.strip():
        raise InputError(f"{source.display}: the file is empty")


def compressed_as(head: bytes) -> str | None:
    """The ending (``.gz``, ``.bz2``, ...) of the compression these first bytes start, or None."""
    return next((ending for ending, magic in COMPRESSION_MAGIC.items() if magic.match(head)), None)


def compression_of(path) -> str | None:
    """The codec of a compressed text file (one of :data:`COMPRESSIONS`' values), from its name."""
    name = str(path).lower()
    return next((codec for ending, codec in COMPRESSIONS.items() if name.endswith(ending)), None)


def _open_text_bytes(source: Source):
    """The file's bytes, decompressed, as a Python binary file (lines, ``read``, ``with``)."""
    codec = compression_of(source.path)
    if codec == "xz":
        import lzma

        return lzma.open(source.path, "rb")
    if codec is not None:
        return io.BufferedReader(pa.CompressedInputStream(pa.OSFile(str(source.path)), codec))
    return open(source.path, "rb")


def _arrow_stream(source: Source):
    """The file's bytes, decompressed, as the pyarrow input stream its CSV reader takes."""
    codec = compression_of(source.path)
    if codec == "xz":
        import lzma

        return pa.input_stream(lzma.open(source.path, "rb"))
    return pa.input_stream(str(source.path), compression=codec)


def _read_error(source: Source, exc: BaseException) -> InputError:
    """The message for a file that cannot be read (or decompressed) at all."""
    codec = compression_of(source.path)
    if codec is not None:
        kind = {"gzip": "gzip", "bz2": "bzip2", "xz": "xz", "zstd": "zstd"}[codec]
        return InputError(f"{source.display}: not a valid {kind} file ({_first_line(exc)})")
    return InputError(f"{source.display}: cannot read the file ({_first_line(exc)})")


def excel_refusal(display: str, path) -> InputError:
    """Refuse a spreadsheet workbook, with the one command that converts it to CSV."""
    from pathlib import Path

    path = Path(path)
    target = path.with_suffix(".csv")
    if target == path:  # a workbook named .csv: do not suggest writing over it
        target = path.with_name(f"{path.stem}-sheet1.csv")
    import shlex

    code = f"import pandas as pd; pd.read_excel({json.dumps(str(path))}).to_csv({json.dumps(str(target))}, index=False)"
    return InputError(
        f"{display}: an Excel workbook, not a text file; losslens reads CSV: convert the first sheet with "
        f"python -c {shlex.quote(code)}"
    )


_CONVERSION = re.compile(r"In CSV column #(\d+): .*conversion error to (\w+)")


def _csv_error(source: Source, exc: Exception, types=None) -> InputError:
    """Turn a pyarrow CSV error into a message with the row and value we find ourselves."""
    message = _first_line(exc)
    if "Empty CSV file" in message:
        return InputError(f"{source.display}: the file is empty")
    if compression_of(source.path) and any(w in message.lower() for w in ("zlib", "gzip", "bz2", "zstd", "lzma", "decompress")):
        return _read_error(source, exc)
    if "Expected" in message and "columns" in message:
        return _locate_ragged_row(source) or InputError(f"{source.display}: {message}")
    if _CONVERSION.search(message) and types:
        numeric = [c for c, t in types.items() if t is not None and pa.types.is_floating(t)]
        located = _locate_bad_value(source, numeric)
        if located:
            return located
    if "UTF8" in message or "utf8" in message.lower() or isinstance(exc, UnicodeDecodeError):
        located = _locate_bad_bytes(source)
        if located:
            return located
        return InputError(
            f"{source.display}: not {_encoding_name(source.encoding)} text ({message}); "
            "give the file's encoding with --encoding (e.g. latin-1, cp1252)"
        )
    return InputError(f"{source.display}: cannot read as {source.format.upper()} ({message})")


def _csv_rows(source: Source) -> Iterator[list[str]]:
    with _open_text_bytes(source) as raw:
        text = io.TextIOWrapper(raw, encoding=source.encoding, errors="replace", newline="")
        for _ in range(source.skip_rows):  # Excel's `sep=` line
            text.readline()
        rows = csv.reader(text, delimiter=source.delimiter)
        header = next(rows, None)
        if header is None:
            return
        if header and header[0].startswith("\ufeff"):
            header[0] = header[0][1:]
        yield header
        yield from rows


def _locate_bad_bytes(source: Source) -> InputError | None:
    """Find the first line that is not in the source's encoding (slow path, only on error)."""
    with _open_text_bytes(source) as raw:
        for number, line in enumerate(raw, start=-source.skip_rows):
            try:
                line.decode(source.encoding)
            except UnicodeDecodeError as exc:
                place = "the header" if number == 0 else f"row {number}"
                return InputError(
                    f"{source.display}: not {_encoding_name(source.encoding)} text "
                    f"(byte 0x{line[exc.start]:02x} in {place}); give the file's encoding with "
                    "--encoding (e.g. latin-1, cp1252)"
                )
    return None


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
            if index >= len(row):
                continue
            cell = row[index].replace(",", ".") if source.decimal == "," else row[index]
            if cell.strip() and _parse_float(cell) is None:
                return InputError(
                    f"{where(source.display, column, number)}: non-numeric value {row[index]!r}"
                    + _number_hint(source, row[index])
                )
    return None


def _number_hint(source: Source, value: str) -> str:
    """What to try when a cell is not a number but looks like one written another way."""
    if source.decimal == "." and _DECIMAL_COMMA.match(value):
        return "; if the file uses decimal commas, read it with --decimal ','" + (
            " --sep ';'" if source.delimiter == "," else ""
        )
    if source.decimal == "," and _DECIMAL_POINT.match(value):
        return "; the file mixes decimal points and commas: set --decimal '.' or --decimal ','"
    return ""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def _encoding_name(encoding: str) -> str:
    return "UTF-8" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding


def _wide(encoding: str) -> bool:
    """Whether text in this encoding has NUL bytes (UTF-16, UTF-32), so NUL does not mean binary."""
    return encoding.lower().replace("_", "-").startswith(("utf-16", "utf-32", "utf16", "utf32"))


def _parse_float(text: str | None) -> float | None:
    if text is None:  # a missing cell of a text column stays missing (reported as such later)
        return None
    try:
        return float(text)
    except ValueError:
        return None
