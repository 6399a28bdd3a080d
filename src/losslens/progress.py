"""A progress line on the terminal (rows read, rows per second) for long evaluations.

It is an engine observer (see :func:`losslens.engine.evaluate_runs`): called with every
scored batch, it counts rows and, when standard error is a terminal and the evaluation has
already taken more than a second, redraws one line on standard error. It writes nothing
otherwise, so pipes, log files and tests see no control characters, and short runs do not
flicker. When the job's number of rows is known before reading (:func:`known_rows`: Parquet
files say it in their metadata), the line also shows the share done and the time left.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Callable, Sequence, TextIO

from .formatting import plural, shorten, width

#: Seconds before the first line is drawn: quick runs show nothing.
DELAY = 1.0
#: Seconds between redraws.
INTERVAL = 0.2


class Progress:
    """Count scored rows and show them, with their rate, on a terminal.

    Parameters
    ----------
    stream : file, optional
        Where to draw; standard error by default. Nothing is drawn unless
        ``stream.isatty()``.
    delay, interval : float
        Seconds before the first line, and between redraws.
    clock : callable
        Monotonic seconds; replaceable in tests.
    total : int, optional
        Rows the whole job will score (every run), when known before reading
        (:func:`known_rows`); the line then shows the share done and the time left.

    Examples
    --------
    >>> import io
    >>> progress = Progress(stream=io.StringIO())   # not a terminal: stays silent
    >>> with progress:
    ...     progress("run", None, type("Batch", (), {"n": 10})())
    >>> progress.rows
    10
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        delay: float = DELAY,
        interval: float = INTERVAL,
        clock: Callable[[], float] = time.monotonic,
        total: int | None = None,
    ):
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = _isatty(self.stream)
        self.delay = delay
        self.interval = interval
        self.clock = clock
        self.total = total if total else None
        self.started = clock()
        self.rows = 0
        self.run_rows = 0
        self.run_name: str | None = None
        self._drawn_at: float | None = None
        self._width = 0

    def __call__(self, run_name: str, layout, scored_batch) -> None:
        """Count the rows of one scored batch; redraw if it is time (the observer hook)."""
        if run_name != self.run_name:
            self.run_name, self.run_rows = run_name, 0
        self.rows += scored_batch.n
        self.run_rows += scored_batch.n
        if not self.enabled:
            return
        now = self.clock()
        if now - self.started < self.delay:
            return
        if self._drawn_at is not None and now - self._drawn_at < self.interval:
            return
        self._draw(now)

    def _draw(self, now: float) -> None:
        elapsed = max(now - self.started, 1e-9)
        # The run name comes from a file name or --name: visible and short, so that the line
        # neither moves the cursor nor wraps (a wrapped line cannot be redrawn with \r).
        text = f"{shorten(self.run_name, 30)}: {plural(self.run_rows, 'row')} ({self.rows / elapsed:,.0f} rows/s)"
        if self.total and self.rows:
            done = min(self.rows / self.total, 1.0)
            # The rate so far, held for the rows left: rows cost about the same all through a file.
            left = elapsed * max(self.total - self.rows, 0) / self.rows
            text += f" {done:.0%}, {clock_time(left)} left"
        # Pad over the previous, possibly longer, line instead of relying on terminal codes.
        self.stream.write("\r" + text + " " * max(self._width - width(text), 0))
        self.stream.flush()
        self._width = width(text)
        self._drawn_at = now

    def close(self) -> None:
        """Clear the line, if one was drawn, so that the summary starts on a clean line."""
        if self._drawn_at is not None:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
            self._drawn_at = None

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def clock_time(seconds: float) -> str:
    """Seconds as ``m:ss``, or ``h:mm:ss`` from an hour on (rounded up: never "0:00 left" too soon).

    >>> clock_time(9.2), clock_time(75), clock_time(3 * 3600 + 62)
    ('0:10', '1:15', '3:01:02')
    """
    whole = int(-(-seconds // 1))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def known_rows(inputs: Sequence) -> int | None:
    """Rows the inputs hold, when every input says it without being read: Parquet metadata.

    None for anything else (CSV and JSON lines must be read to count their rows; standard
    input and named pipes can be read once only, so they are not even opened here).
    """
    from .parquet_file import open_parquet
    from .reading import PARQUET_BUFFER_BYTES, resolve

    total = 0
    for item in inputs:
        if not isinstance(item, (str, os.PathLike)) or os.fspath(item) == "-":
            return None
        path = Path(os.fspath(item))
        if path.exists() and not (path.is_file() or path.is_dir()):
            return None  # a FIFO or device: never opened twice
        try:
            sources = resolve(path) if path.is_dir() or not path.exists() else None
            files = [s.path for s in sources] if sources is not None else [path]
            if not all(f.is_file() and f.name.lower().endswith(".parquet") for f in files):
                return None
            total += sum(open_parquet(f, PARQUET_BUFFER_BYTES).metadata.num_rows for f in files)
        except Exception:  # noqa: BLE001 - any trouble is the run's to report, not the progress line's
            return None
    return total or None


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
