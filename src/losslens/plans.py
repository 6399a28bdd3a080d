"""Inputs -> runs: each input resolved to its sources (files, folders, globs, tables) and named.

The first step of every engine and every layout: :func:`plan_runs` says which sources make up
each run and what the run is called; nothing is read beyond the file listings (and, with
``--labels``, the labels file joined to each prediction file).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import pyarrow as pa

from .errors import InputError, UsageError
from .options import Options
from .reading import FORMATS, FrameSource, ReadOptions, Source, resolve


@dataclass(frozen=True)
class RunPlan:
    """One run to evaluate: its name and the sources (files or an in-memory table) it reads."""

    name: str
    sources: tuple


def plan_runs(inputs: Sequence, names: Sequence[str] | None = None,
              options: Options | None = None, join_labels: bool = True) -> list[RunPlan]:
    """Resolve each input to its sources and name the runs; the one entry point of every engine.

    Parameters
    ----------
    inputs : sequence
        Paths, folders, glob patterns, lists of those, pandas DataFrames or Arrow tables.
    names : sequence of str, optional
        One name per input; default: the file stem (or the folder or pattern), made unique.
    options : Options, optional
        How to read the files (encoding, separator, format, a labels file to join).
    join_labels : bool
        Whether ``options.labels`` is joined to the files (a classifier's ``--labels``); the
        language-model layouts read only how to read the text.

    Returns
    -------
    list of RunPlan

    Raises
    ------
    UsageError
        When the number of names differs from the number of inputs, or an input is empty.
    """
    if names is not None and len(names) != len(inputs):
        raise UsageError(f"{len(names)} --name value(s) for {len(inputs)} input(s); give one per input")
    options = options if options is not None else Options()
    sources = [resolve_sources(item, options) if join_labels else _sources(item, read_options(options))
               for item in inputs]
    names = list(names) if names else _default_names(inputs, sources)
    return [RunPlan(name, tuple(srcs)) for name, srcs in zip(names, sources)]


def read_options(options: Options):
    """How to read the text of the inputs: ``--encoding``, ``--sep``, ``--decimal``, ``--format``."""
    return ReadOptions(encoding=options.encoding, sep=options.sep, decimal=options.decimal, format=options.format)


def resolve_sources(item, options: Options) -> list:
    """The sources of one input, read with the options' encoding, separator and format.

    With ``--labels``, each prediction file is paired with the labels file on ``--id``
    (see :mod:`losslens.labels`).
    """
    sources = _sources(item, read_options(options))
    if options.labels:
        from .labels import join_labels

        if any(isinstance(s, FrameSource) for s in sources):
            raise UsageError("--labels joins prediction files; add the labels to the DataFrame instead")
        sources = join_labels(sources, options)
    return sources


def _sources(item, read=None) -> list[Source | FrameSource]:
    if isinstance(item, (str, os.PathLike)):
        return resolve(item, read)
    if isinstance(item, (list, tuple)):
        if not item:
            raise UsageError("an empty list of inputs")
        return [s for part in item for s in _sources(part, read)]
    if isinstance(item, pa.Table):
        return [FrameSource(item)]
    if isinstance(item, pa.RecordBatch):
        return [FrameSource(pa.Table.from_batches([item]))]
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is a dependency
        pd = None
    if pd is not None and isinstance(item, pd.DataFrame):
        frame = item.copy(deep=False)
        frame.columns = [str(c) for c in frame.columns]
        if frame.columns.duplicated().any():
            dup = frame.columns[frame.columns.duplicated()][0]
            raise InputError(f"<DataFrame>: duplicate column name {dup!r}")
        return [FrameSource(pa.Table.from_pandas(frame, preserve_index=False))]
    if type(item).__module__.split(".")[0] == "polars" and type(item).__name__ == "DataFrame":
        return _sources(item.to_arrow(), read)
    raise UsageError(f"cannot evaluate an object of type {type(item).__name__}; give a DataFrame or path(s)")


def _default_names(inputs, sources) -> list[str]:
    bases = []
    for item, srcs in zip(inputs, sources):
        if isinstance(item, (str, os.PathLike)) and len(srcs) == 1:
            bases.append(_stem(Path(srcs[0].display)))
        elif isinstance(item, (str, os.PathLike)):
            bases.append(_pattern_name(Path(os.fspath(item))))
        else:
            bases.append("data")
    return unique_names(bases)


def unique_names(bases: Sequence[str]) -> list[str]:
    """The names, a repeated one made unique with ``-2``, ``-3``, ... (``step/out``, ``step/out-2``)."""
    names: list[str] = []
    for base in bases:
        name, i = base, 2
        while name in names:
            name, i = f"{base}-{i}", i + 1
        names.append(name)
    return names


def _pattern_name(path: Path) -> str:
    """A run name for a folder or glob: ``parts/*.parquet`` -> ``parts``, ``preds-*.csv`` -> ``preds``."""
    name = path.name
    fixed = name
    for wildcard in "*?[":
        fixed = fixed.split(wildcard)[0]
    if fixed != name:
        fixed = fixed.rstrip("-_. ")
    return fixed or path.parent.name or "data"


def _stem(path: Path) -> str:
    name = path.name
    for ending in FORMATS:  # longest first: x.csv.gz -> x
        if name.lower().endswith(ending):
            return name[: -len(ending)]
    return path.stem
