"""JSON-lines files as harnesses write them (lm-eval samples, vLLM completions): one record a line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

from ..errors import InputError


def json_lines(path: Path) -> Iterator[tuple[int, object]]:
    """``(line number, parsed value)`` of each non-blank line of ``path``, numbered from 1.

    Raises
    ------
    InputError
        A line that is not JSON (naming the file and line), or a file that cannot be read or is
        not UTF-8 (naming the file).
    """
    try:
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    value = json.loads(line)
                except ValueError as exc:
                    raise InputError(f"{path}, line {number}: not valid JSON ({exc})") from None
                yield number, value
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the file ({exc})") from None
