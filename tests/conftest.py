"""Shared fixtures for the losslens test suite.

Fixtures
--------
write_table
    ``write_table(df, directory, fmt, stem="data")`` writes a pandas DataFrame as
    ``csv``, ``tsv``, ``csv.gz`` or ``parquet`` into ``directory`` and returns the path.
    Floats in the text formats are written with ``float_format="%.17g"`` so that every
    float64 survives the round trip exactly.
run_cli
    ``run_cli(*args, cwd=None)`` runs ``python -m losslens <args>`` as a real process and
    returns the :class:`subprocess.CompletedProcess` (text mode).
run_cli_json
    ``run_cli_json(*args, cwd=None)`` runs ``python -m losslens metrics <args> --json -``,
    asserts exit code 0, and returns the parsed JSON document. The JSON is parsed strictly:
    ``NaN``/``Infinity`` tokens (which are not JSON) make the test fail.

Session-scoped so that hypothesis tests may use them (they are stateless).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

#: Every input format losslens reads.
FORMATS = ("csv", "tsv", "csv.gz", "parquet")


def _write_table(df: pd.DataFrame, directory: Path | str, fmt: str, stem: str = "data") -> Path:
    """Write ``df`` (without its index) to ``directory/stem.fmt`` and return the path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{stem}.{fmt}"
    if fmt == "csv":
        df.to_csv(path, index=False, float_format="%.17g")
    elif fmt == "tsv":
        df.to_csv(path, index=False, sep="\t", float_format="%.17g")
    elif fmt == "csv.gz":
        df.to_csv(path, index=False, float_format="%.17g", compression="gzip")
    elif fmt == "parquet":
        df.to_parquet(path, index=False)
    else:  # pragma: no cover - a bug in the test itself
        raise ValueError(f"unknown format {fmt!r}")
    return path


def _reject_constant(token: str):
    raise ValueError(f"non-standard JSON constant {token!r} in losslens output")


_CLI_ENV = {**os.environ, "NO_COLOR": "1", "TERM": "dumb", "COLUMNS": "200"}


def _run_cli(*args, cwd: Path | str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "losslens", *[str(a) for a in args]],
        cwd=cwd,
        env=_CLI_ENV,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _run_cli_json(*args, cwd: Path | str | None = None) -> dict:
    proc = _run_cli("metrics", *args, "--json", "-", cwd=cwd)
    assert proc.returncode == 0, (
        f"losslens exited with {proc.returncode}\n--- stdout ---\n{proc.stdout}\n"
        f"--- stderr ---\n{proc.stderr}"
    )
    return json.loads(proc.stdout, parse_constant=_reject_constant)


@pytest.fixture(scope="session")
def write_table():
    """``write_table(df, directory, fmt, stem="data") -> Path`` (see module docstring)."""
    return _write_table


@pytest.fixture(scope="session")
def run_cli():
    """``run_cli(*args, cwd=None) -> CompletedProcess`` for ``python -m losslens``."""
    return _run_cli


@pytest.fixture(scope="session")
def run_cli_json():
    """``run_cli_json(*args, cwd=None) -> dict`` for ``losslens metrics ... --json -``."""
    return _run_cli_json
