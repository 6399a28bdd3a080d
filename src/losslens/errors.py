"""Errors that losslens reports to the user as one line, never as a traceback."""

from __future__ import annotations


class LosslensError(Exception):
    """Base class of every error losslens turns into a one-line message and exit code 2."""


class InputError(LosslensError):
    """The input data cannot be evaluated: a file, column, row or value is wrong.

    The message names the file, the column and, where it applies, the first offending row
    (1-based, counting data rows after the header) and value.
    """


class UsageError(LosslensError):
    """The options contradict each other or name something that does not exist."""


def where(source: str | None, column: str | None = None, row: int | None = None) -> str:
    """Format the ``file, column 'c', row n`` prefix of an error message."""
    parts = [source if source is not None else "<data>"]
    if column is not None:
        parts.append(f"column {column!r}")
    if row is not None:
        parts.append(f"row {row}")
    return ", ".join(parts)
