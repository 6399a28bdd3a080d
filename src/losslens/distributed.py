"""``--engine dask``: the same accumulators, mapped over the partitions of Dask dataframes.

Nothing here computes a number of its own. Each partition of a ``dask.dataframe`` (read with
``dask.dataframe.read_parquet`` or ``read_csv``) is turned into an Arrow table and summed by
the very code the local engine uses (:func:`losslens.reading.iter_batches`,
:func:`losslens.batch.score_batch`, :class:`losslens.accumulate.RunAccumulator`); the client
merges the partitions' accumulators with ``+`` and finishes them with
:func:`losslens.engine.finish`. So every number equals the local engine's up to the order of
floating-point additions.

Notes
-----
Each file is read as its own Dask dataframe, so every partition belongs to one known file.
A partition scores its rows as rows ``1..n``; the client, which receives the partitions in
file order together with their row counts, shifts the row numbers of the worst examples by
the rows of the earlier partitions of the same file. The worst-examples table therefore
names the same file and row as the local engine.

Input errors are found on the workers, where row numbers are partition-relative. When one
occurs, the client re-reads the failing file with the local engine, which stops at the same
first bad value and names its true row; the message is then the local engine's, word for
word.

Dask is an optional dependency (``pip install "losslens[dask]"``); this module imports it
only inside :func:`evaluate_runs_dask`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

from .errors import InputError, UsageError

#: The message when Dask is not installed; the command line prints it as the error.
MISSING_DASK = "--engine dask needs the dask extra: pip install 'losslens[dask]'"

#: Byte size of a CSV block read as one Dask partition (Dask's own default is 64 MB).
CSV_BLOCKSIZE = 64 * 2**20

#: Values pandas reads as missing in numeric columns, as pyarrow's CSV reader does, so that a
#: missing probability is reported as such by both engines. Text columns keep every value.
_NUMERIC_NA = ["", "NA", "N/A", "NaN", "nan", "-nan", "NULL", "null", "None", "#N/A", "n/a", "-NaN"]


def evaluate_runs_dask(
    inputs: Sequence[str],
    names: Sequence[str] | None,
    options,
    scheduler: str | None = None,
):
    """Evaluate each input as a run on a Dask cluster; the result equals the local engine's.

    Parameters
    ----------
    inputs : sequence of str
        Files, folders of parts or glob patterns; each item is one run, as on the command
        line.
    names : sequence of str or None
        One name per input; by default the file stems, made unique.
    options : losslens.options.Options
        Layout and computation options, as for the local engine.
    scheduler : str, optional
        Address of a running ``dask.distributed`` scheduler (``tcp://host:8786``). Without
        it a ``LocalCluster`` is started for the duration of the call and closed after.

    Returns
    -------
    losslens.evaluation.Evaluation

    Raises
    ------
    UsageError
        Dask is not installed, or the options are inconsistent.
    InputError
        An input cannot be evaluated; the message is the local engine's (file, column, row).

    Notes
    -----
    The layout is detected once, on the client, from each run's first file. Every file must
    be readable by the workers under the same path as on the client (a shared file system or
    object store).
    """
    if options.bootstrap:
        # The bootstrap resamples every example's loss, which stays on the workers here.
        raise UsageError("--bootstrap needs --engine local: it keeps every example's loss in memory")
    if options.labels:
        raise UsageError("--labels needs --engine local: the join is not distributed")
    try:
        import dask  # noqa: F401
        import dask.dataframe  # noqa: F401
        import distributed
    except ImportError:
        raise UsageError(MISSING_DASK) from None

    import losslens.engine as engine
    from .evaluation import Evaluation

    plans = engine.plan_runs(inputs, names, options)
    for source in (s for plan in plans for s in plan.sources):
        if getattr(source, "format", None) not in ("csv", "tsv", "parquet") or source.display == "<stdin>":
            raise UsageError(
                f"{source.display}: --engine dask reads CSV, TSV and Parquet files; "
                "use --engine local for this input"
            )
        if _unreadable_by_pandas(source):
            raise UsageError(
                f"{source.display}: --engine dask reads .zst files only with the zstandard module; "
                "use --engine local for this input"
            )
    layouts = [engine.layout_of(plan.sources, options) for plan in plans]

    with DaskClient(distributed, scheduler) as client:
        runs = []
        for plan, layout in zip(plans, layouts):
            total = _accumulate_run(client, plan.sources, layout, options)
            runs.append(engine.finish(total, layout, plan.name, tuple(s.display for s in plan.sources), options))
    return Evaluation(runs=tuple(runs))


class DaskClient:
    """A ``distributed.Client`` to ``scheduler``, or to a fresh ``LocalCluster`` closed on exit."""

    def __init__(self, distributed, scheduler: str | None):
        self.distributed = distributed
        self.scheduler = scheduler
        self.cluster = self.client = None

    def __enter__(self):
        if self.scheduler:
            try:
                self.client = self.distributed.Client(self.scheduler, timeout="30s")
            except (OSError, TimeoutError) as exc:
                raise UsageError(f"--scheduler {self.scheduler}: cannot connect ({exc})") from None
        else:
            # Any free port for the dashboard: a second cluster on the machine must not fight for 8787.
            self.cluster = self.distributed.LocalCluster(dashboard_address=":0")
            self.client = self.distributed.Client(self.cluster)
        return self.client

    def __exit__(self, *exc_info):
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def _accumulate_run(client, sources, layout, options):
    """Sum one run over the partitions of its files on the cluster, merging on the client."""
    import dask

    from .accumulate import RunAccumulator
    from .engine import check_run_total, column_types

    tasks, owners = [], []
    for source in sources:
        types = column_types(source, layout)
        frame = dask_dataframe(source, types)
        for part in frame.to_delayed():
            tasks.append(dask.delayed(_partition_sum)(part, source.display, types, layout, options))
            owners.append(source)
    try:
        results = client.gather(client.compute(tasks))
    except InputError as exc:
        raise _local_error(exc, sources, layout, options) from None

    total = RunAccumulator.empty(layout.n_classes, options.bins, options.worst, layout.by)
    rows_before: dict[str, int] = {}
    # In file order: a partition's rows follow those of the earlier partitions of its file.
    for source, (n_rows, part) in zip(owners, results):
        offset = rows_before.get(source.display, 0)
        rows_before[source.display] = offset + n_rows
        if part is not None:
            total = total + _shift_rows(part, offset)
    check_run_total(total, sources, layout)
    return total


def _unreadable_by_pandas(source) -> bool:
    """A .zst file without the ``zstandard`` module, which pandas needs to read it."""
    from .text_formats import compression_of

    if compression_of(getattr(source, "path", "")) != "zstd":
        return False
    try:
        import zstandard  # noqa: F401
    except ImportError:
        return True
    return False


def dask_dataframe(source, types):
    """A Dask dataframe of the ``types`` columns of one file, one partition per block."""
    import dask.dataframe as dd
    import pyarrow as pa

    from .text_formats import compression_of

    columns = list(types)
    if source.format == "parquet":
        # Arrow-backed columns keep the stored types and nulls, as the local reader sees them.
        return dd.read_parquet(str(source.path), columns=columns, dtype_backend="pyarrow")
    numeric = [c for c, t in types.items() if t is not None and pa.types.is_floating(t)]
    return dd.read_csv(
        str(source.path),
        sep=source.delimiter,
        decimal=source.decimal,
        encoding=source.encoding,
        usecols=columns,
        dtype={c: ("float64" if c in numeric else "string") for c in columns},
        # Like the local reader: text is kept as written (an empty label is reported as such);
        # numeric cells that mean "missing" become NaN and are reported as missing.
        keep_default_na=False,
        na_values={c: _NUMERIC_NA for c in numeric},
        # Compressed files cannot be split into byte blocks.
        blocksize=None if compression_of(source.path) else CSV_BLOCKSIZE,
        skiprows=source.skip_rows,  # Excel's `sep=;` first line
        compression="infer",
    )


def _partition_sum(frame, display: str, types, layout, options):
    """``(rows, RunAccumulator or None)`` of one partition, its rows numbered from 1.

    Runs on a worker. The partition is converted to Arrow once and then streamed through the
    local engine's reading, scoring and accumulating code in batches of bounded size.
    """
    import pyarrow as pa

    from .reading import FrameSource

    table = pa.Table.from_pandas(frame, preserve_index=False)
    if table.num_rows == 0:
        return 0, None
    return table.num_rows, _sum_batches(FrameSource(table, display=display), types, layout, options)


def _sum_batches(source, types, layout, options):
    """The engine's per-batch step over one partition (whole-run checks come after merging)."""
    from .engine import sum_batches
    from .reading import iter_batches

    return sum_batches(((source, offset, batch) for offset, batch in iter_batches(source, types)), layout, options)


def _shift_rows(acc, offset: int):
    """``acc`` with the row numbers of its kept worst examples moved ``offset`` rows down."""
    if offset == 0:
        return acc

    def shift(part):
        return replace(part, worst=tuple(replace(e, row=e.row + offset) for e in part.worst))

    return replace(
        acc,
        overall=shift(acc.overall),
        by_split={k: shift(a) for k, a in acc.by_split.items()},
        by_slice={c: {k: shift(a) for k, a in vals.items()} for c, vals in acc.by_slice.items()},
    )


def _local_error(exc: InputError, sources, layout, options) -> InputError:
    """The local engine's error for the file ``exc`` names, whose row is the file's own.

    A worker numbers rows from its partition's start; re-reading the file here stops at the
    same first bad value and names its row in the file.
    """
    from .engine import accumulate

    message = str(exc)
    for source in sources:
        if message.startswith(source.display):
            try:
                accumulate([source], layout, options)
            except InputError as local:
                return local
    return exc
