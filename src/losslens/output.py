"""Writing reports: whole or not at all.

The only module besides the CLI that writes files. A report is rendered to a string first;
it is then written to a temporary file beside the target and renamed over it, so a reader
never sees half a report and an error leaves any earlier report untouched.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path


def write_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file and a rename; return the path."""
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    directory.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        # mkstemp creates the file 0600; a report is for sharing, so use the usual mode.
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, target)
    except BaseException:
        # Also on KeyboardInterrupt: never leave the temporary file behind.
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def json_text(document: dict) -> str:
    """Serialise a report document: stable key order, no NaN (the document has None)."""
    return json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def write_json(document: dict, destination: str) -> None:
    """Write JSON to a path, or to standard output when ``destination`` is ``-``."""
    text = json_text(document)
    if destination == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        write_atomic(destination, text)
