"""What the command-line fuzz tests share: the example budget, an in-process run, the checks.

``LOSSLENS_FUZZ_EXAMPLES`` is the whole fuzz run's budget (tests/test_fuzz*.py); each test takes
its :func:`share`. ``make fuzz`` sets 100 000; the default keeps CI short.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import signal
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

#: The whole fuzz run's examples (shared by tests/test_fuzz*.py). The default keeps CI short.
TOTAL = int(os.environ.get("LOSSLENS_FUZZ_EXAMPLES", "750"))
#: Seconds one example may take before it counts as a hang (generous: the machine may be loaded).
PER_EXAMPLE_LIMIT = 120
LN2 = math.log(2.0)
EPS64 = float(np.finfo(np.float64).eps)


def share(fraction: float) -> int:
    """This test's part of the run's examples (at least 20, so that CI still fuzzes each reader)."""
    return max(20, int(TOTAL * fraction))


def fuzz_settings(fraction: float):
    """Hypothesis settings for a test taking ``fraction`` of the run (derandomized when CI-sized)."""
    return settings(max_examples=share(fraction), deadline=None, derandomize=share(fraction) <= 1000,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])


def pick(rng: np.random.Generator, options):
    """One of ``options``, evenly (from the example's seed): hypothesis's own choices lean heavily
    towards the first, which it shrinks to."""
    return options[int(rng.integers(len(options)))]


class Hang(Exception):
    """An example ran past :data:`PER_EXAMPLE_LIMIT`."""


@contextlib.contextmanager
def time_limit(seconds: int):
    """Raise :class:`Hang` in the main thread after ``seconds`` (SIGALRM: costs nothing per example)."""
    def alarm(signum, frame):
        raise Hang(f"one example ran for more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@functools.lru_cache(maxsize=1)
def command():
    """The command line's click command, built once (typer rebuilds it on every invoke: a third of
    an example's time)."""
    import typer.main

    from losslens.cli import app

    return typer.main.get_command(app)


def run_metrics(path: Path, out: Path, *extra: str):
    """``losslens metrics PATH --json OUT --quiet`` in-process: (exit code, stdout, stderr)."""
    import typer.testing

    before = path.read_bytes()
    built, typer.testing._get_command = typer.testing._get_command, lambda app: command()
    try:
        with time_limit(PER_EXAMPLE_LIMIT):
            result = typer.testing.CliRunner().invoke(
                None, ["metrics", str(path), "--json", str(out), "--quiet", *extra],
                env={"NO_COLOR": "1", "TERM": "dumb", "COLUMNS": "200"})
    finally:
        typer.testing._get_command = built
    assert path.read_bytes() == before, "the input file was modified"
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception  # any other exception fails the example, with its traceback
    return result.exit_code, result.stdout, result.stderr


def refused(code: int, stderr: str, path: Path, out: Path, *names: str) -> str:
    """Check the refusal: exit 2, one line naming the file (and ``names`` where given), no output."""
    assert code == 2, f"exit code {code}: {stderr}"
    message = stderr.strip()
    assert message and "\n" not in message, f"not one line: {stderr!r}"
    assert path.name in message, f"the message does not name the file: {message}"
    for name in names:
        assert name in message, f"the message does not name {name!r}: {message}"
    assert "Traceback" not in message
    assert not out.exists(), "output written on error"
    return message


def close(value, expected) -> bool:
    # Sums in another order and log/exp from another library: agree to 1e-12, never bitwise.
    return value == pytest.approx(expected, rel=1e-12, abs=1e-300)
