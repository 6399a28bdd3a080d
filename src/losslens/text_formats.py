"""Reading text prediction files: CSV and TSV, plain or gzipped.

Owns what only text files have: sniffing the separator and the decimal mark from the first
bytes, encodings (byte-order marks, UTF-16, Latin-1 spreadsheet exports), and finding the row
and value behind pyarrow's CSV errors. :mod:`losslens.reading` is the entry point that
dispatches here; like it, every failure becomes an :class:`~losslens.errors.InputError`.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
from typing import TYPE_CHECKING, Iterator, Sequence

import pyarrow as pa

from .errors import InputError, where

if TYPE_CHECKING:
    from .reading import ReadOptions, Source

#: Separators tried, in this order, when a .csv file's header holds no comma.
SNIFFED_SEPARATORS = (";", "\t", "|")
#: Bytes looked at to sniff the separator and decimal mark and to check the encoding.
SNIFF_BYTES = 64 * 1024
#: CSV block size handed to pyarrow; a block becomes one record batch. The streaming reader's
#: memory grows much faster than its block: reading a 10M-row CSV alone peaked at 450 MB with
#: 8 MB blocks and at 180 MB with 2 MB blocks, at the same speed.
CSV_BLOCK_BYTES = 2 * 2**20


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
    header = lines[0] if lines else ""
    notes = []
    delimiter = read.sep or ("\t" if source.format == "tsv" else ",")
    if read.sep is None and source.format == "csv" and "," not in header:
        found = next((c for c in SNIFFED_SEPARATORS if c in header), None)
        if found is not None:
            delimiter = found
            notes.append(f"separator {_sep_name(found)} (sniffed from the header; set --sep)")
    decimal = read.decimal or "."
    if read.decimal is None and delimiter != "," and _decimal_commas(lines[1:50], delimiter):
        decimal = ","
        notes.append("decimal commas (0,25 is 0.25; set --decimal)")
    return replace(source, encoding=encoding, delimiter=delimiter, decimal=decimal, notes=tuple(notes))


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
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise InputError(f"{source.display}: cannot read the file ({_first_line(exc)})") from None
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
        line = head.count(b"\n", 0, exc.start)
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
        stream = pa.input_stream(str(source.path), compression="detect")
        return pacsv.open_csv(
            stream,
            read_options=pacsv.ReadOptions(block_size=CSV_BLOCK_BYTES, encoding=source.encoding),
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
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise InputError(f"{source.display}: cannot read the file ({_first_line(exc)})") from None
    if b"\x00" in head and not _wide(source.encoding):
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
        for number, line in enumerate(raw):
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
