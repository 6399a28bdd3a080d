"""Inputs that can be read only once: standard input, named pipes, bash's ``<(command)``.

Every reader needs to read its input more than once (the header, the labels of a binary
file, the rows; once more to locate a bad value), and a job looks at an input more than
once (its kind, its layout, each run's labels file). A pipe is therefore copied to a
temporary file as it arrives (memory stays bounded), once per job: the second open of a
FIFO whose writer has gone would wait forever, and a cron job must never hang on its input.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Iterator

from .errors import InputError
from .sources import ReadOptions, Source, file_format
from .text_formats import _text_settings, compressed_as, compression_of

#: Pipes read in the current job, by (device, inode): (copy, format its first bytes show).
#: Every stage that looks at an input (the kind of job, the layout, each run's labels file)
#: resolves it anew; within :func:`pipes_read_once` a pipe is read once and each later stage
#: gets the copy. Outside, each resolve reads the pipe (a later job reads what is written then).
_PIPES: ContextVar[dict | None] = ContextVar("losslens_pipes", default=None)


@contextmanager
def pipes_read_once() -> Iterator[None]:
    """Within this block, a pipe resolved again is not read again but taken from its copy.

    A job resolves its inputs more than once (to know their kind, then to read them; a
    labels file once per run), and a pipe can be read only once: the second open of a FIFO
    whose writer has gone would wait forever. Nested blocks share the outermost one's copies.
    """
    if _PIPES.get() is not None:
        yield
        return
    token = _PIPES.set({})
    try:
        yield
    finally:
        _PIPES.reset(token)


def read_pipe(path: Path, display: str, read: ReadOptions) -> Source:
    """A named pipe, ``/dev/fd/N`` or character device, copied once to a temporary file.

    The format comes from the name (``in.csv.gz``), else ``--format``, else the first bytes
    (Parquet, Arrow, JSON lines), else CSV, as for standard input.
    """
    import stat

    info = os.stat(path)
    if not (stat.S_ISFIFO(info.st_mode) or stat.S_ISCHR(info.st_mode)):
        raise InputError(f"{display}: not a file, folder or pipe that losslens can read")
    seen = _PIPES.get()
    key = (info.st_dev, info.st_ino)
    if seen is not None and key in seen:
        copy, sniffed = seen[key]
    else:
        with open(path, "rb") as stream:
            copy, sniffed = _spool(stream, path.name)
        if seen is not None:
            seen[key] = (copy, sniffed)
    fmt = file_format(path) or read.format or sniffed or "csv"
    return _text_settings(Source(path=copy, display=display, format=fmt), read)


def read_stdin(read: ReadOptions) -> Source:
    """Standard input, copied to a temporary file as it arrives (CSV unless ``--format`` or its first bytes say)."""
    copy, sniffed = _spool(sys.stdin.buffer, "stdin")
    return _text_settings(Source(path=copy, display="<stdin>", format=read.format or sniffed or "csv"), read)


def _spool(stream, name: str) -> tuple[Path, str | None]:
    """Copy a stream to a temporary file in blocks: its path, and the format its first bytes show.

    The copy is deleted when the process ends. A compressed stream's copy gets the ending of its
    compression (recognised by its magic bytes, as a file is by its name), so that it is read
    like a ``.csv.gz`` file; Parquet, Arrow and JSON lines are recognised by their first bytes.
    """
    import atexit
    import shutil
    import tempfile

    folder = tempfile.mkdtemp(prefix="losslens-stdin-")
    atexit.register(shutil.rmtree, folder, True)
    path = Path(folder) / (name if name and not name.startswith(".") else "stdin")
    with open(path, "wb") as out:
        shutil.copyfileobj(stream, out, 2**20)
    with open(path, "rb") as copy:
        head = copy.read(16)
    ending = compressed_as(head)
    if ending is not None and compression_of(path) is None:
        path = path.rename(path.with_name(path.name + ending))
    sniffed = None
    if head.startswith(b"PAR1"):
        sniffed = "parquet"
    elif head.startswith((b"ARROW1", b"\xff\xff\xff\xff")):
        sniffed = "arrow"
    elif head.lstrip().startswith(b"{"):
        sniffed = "jsonl"
    return path, sniffed
