"""What an input is before it is read: its format, how to read its text, where it came from.

The bottom of the reading rooms: ``reading`` (files, folders, globs, batches), ``text_formats``
(CSV/TSV) and ``pipes`` (standard input, FIFOs) all describe inputs with these types, so they
live below all three and every import points one way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import UsageError

if TYPE_CHECKING:
    import pyarrow as pa

#: Compressed text files, by the ending after ``.csv``/``.tsv``: the codec that reads them.
#: gzip, bzip2 and zstd are decompressed by pyarrow (outside the GIL); xz, which pyarrow does
#: not read, by Python's ``lzma``.
COMPRESSIONS = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz", ".zst": "zstd"}
#: File endings we read, longest first so that ``.csv.gz`` wins over ``.gz``.
FORMATS = {
    **{f".{text}{ending}": text for text in ("csv", "tsv") for ending in COMPRESSIONS},
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".feather": "arrow",
    ".arrow": "arrow",
    ".ipc": "arrow",
}
#: The names ``--format`` accepts (for standard input, or a file without a known ending).
FORMAT_NAMES = ("csv", "tsv", "parquet", "jsonl", "arrow")
#: How the supported files are listed in messages and help.
FORMAT_LIST = ".csv, .tsv (plain or .gz/.bz2/.xz/.zst), .parquet, .jsonl/.ndjson and .feather/.arrow/.ipc"
STDIN = "-"

@dataclass(frozen=True)
class ReadOptions:
    """How to read text files, from ``--encoding``, ``--sep``, ``--decimal`` and ``--format``.

    None means "detect": UTF-8 (with or without a byte-order mark); the separator of the
    format, or for a .csv file whose header holds no comma the one it does hold (``;``, tab,
    ``|``); a decimal comma when the separator is not a comma and the numbers are written
    ``0,25``; the format from the file's ending (CSV for standard input).
    """

    encoding: str | None = None
    sep: str | None = None
    decimal: str | None = None
    format: str | None = None

    def __post_init__(self) -> None:
        if self.sep is not None:
            sep = {"\\t": "\t", "tab": "\t", "TAB": "\t"}.get(self.sep, self.sep)
            if len(sep) != 1:
                raise UsageError(f"--sep must be one character (or '\\t' for tab), got {self.sep!r}")
            object.__setattr__(self, "sep", sep)
        if self.decimal is not None and self.decimal not in (".", ","):
            raise UsageError(f"--decimal must be '.' or ',', got {self.decimal!r}")
        if self.format is not None and self.format not in FORMAT_NAMES:
            raise UsageError(f"--format must be one of {', '.join(FORMAT_NAMES)}, got {self.format!r}")
        if self.encoding is not None:
            import codecs

            try:
                codecs.lookup(self.encoding)
            except LookupError:
                raise UsageError(
                    f"--encoding {self.encoding!r} is not an encoding Python knows "
                    "(e.g. utf-8, latin-1, cp1252)"
                ) from None


@dataclass(frozen=True)
class Source:
    """One file to read: where it is, what to call it in messages, and its format.

    For text formats also the encoding, separator and decimal mark to read it with, and
    ``notes`` saying which of them were detected rather than given.
    """

    path: Path
    display: str
    format: str
    encoding: str = "utf-8"
    delimiter: str = ","
    decimal: str = "."
    notes: tuple[str, ...] = ()
    #: Lines before the header: 1 for Excel's ``sep=;`` first line.
    skip_rows: int = 0


@dataclass(frozen=True)
class FrameSource:
    """An in-memory table given to the library instead of a path."""

    table: pa.Table
    display: str = "<DataFrame>"
    format: str = "arrow"


def file_format(path: Path) -> str | None:
    """Return the format (one of :data:`FORMAT_NAMES`) from the file name, or None."""
    name = path.name.lower()
    for ending, fmt in FORMATS.items():
        if name.endswith(ending):
            return fmt
    return None
