"""Tests for losslens.progress: a progress line only on a terminal and only after a second."""

from __future__ import annotations

import io

import pandas as pd

from losslens.engine import evaluate_runs
from losslens.progress import Progress


class Terminal(io.StringIO):
    """A text stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


class Clock:
    """A hand-moved monotonic clock."""

    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Batch:
    def __init__(self, n):
        self.n = n


def test_silent_when_not_a_terminal():
    stream, clock = io.StringIO(), Clock()
    progress = Progress(stream=stream, clock=clock)
    clock.now += 5
    with progress:
        progress("run", None, Batch(1000))
    assert stream.getvalue() == ""
    assert progress.rows == 1000


def test_silent_during_the_first_second():
    stream, clock = Terminal(), Clock()
    with Progress(stream=stream, clock=clock) as progress:
        clock.now += 0.9
        progress("run", None, Batch(1000))
    assert stream.getvalue() == ""


def test_rows_and_rate_after_a_second_then_cleared():
    stream, clock = Terminal(), Clock()
    progress = Progress(stream=stream, clock=clock)
    clock.now += 2.0
    progress("preds", None, Batch(3_000_000))
    assert stream.getvalue() == "\rpreds: 3,000,000 rows (1,500,000 rows/s)"
    progress.close()
    assert stream.getvalue().endswith("\r" + " " * len("preds: 3,000,000 rows (1,500,000 rows/s)") + "\r")


def test_redraws_at_most_every_interval_and_counts_per_run():
    stream, clock = Terminal(), Clock()
    progress = Progress(stream=stream, clock=clock, interval=0.5)
    clock.now += 1.5
    progress("a", None, Batch(10))
    progress("a", None, Batch(10))  # same instant: not redrawn
    assert stream.getvalue().count("\r") == 1
    clock.now += 0.5
    progress("b", None, Batch(5))
    last = stream.getvalue().rsplit("\r", 1)[1]
    assert last.startswith("b: 5 rows (12 rows/s)")  # 25 rows in 2 s, over both runs


def test_is_an_engine_observer():
    frame = pd.DataFrame({"label": [0, 1, 1, 0], "p_0": [0.8, 0.3, 0.1, 0.6], "p_1": [0.2, 0.7, 0.9, 0.4]})
    progress = Progress(stream=io.StringIO())
    evaluation = evaluate_runs([frame, frame], names=["x", "y"], observers=[progress])
    assert progress.rows == 8
    assert progress.run_name == "y" and progress.run_rows == 4
    assert evaluation.runs[1].overall.n_examples == 4


def test_a_run_name_from_the_data_cannot_move_the_cursor_or_wrap_the_line():
    stream, clock = Terminal(), Clock()
    progress = Progress(stream=stream, clock=clock)
    clock.now += 2.0
    progress("\x1b[2Jrun" + "x" * 200, None, Batch(10))
    assert stream.getvalue() == "\r\\x1b[2Jrun" + "x" * 19 + "…: 10 rows (5 rows/s)"
