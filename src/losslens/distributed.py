"""``--engine dask``: the one Dask engine, over any layout plugin that has partitions.

Nothing here computes a number of its own. Each file of a run is read as a Dask dataframe
(``dask.dataframe.read_parquet`` or ``read_csv``, the plugin saying each column's type); the
plugin maps its partitions to delayed sums computed on the workers by the very code the local
engine uses (:meth:`losslens.layouts.plugin.LayoutPlugin.partitions`), and the client merges
them in a fixed order and finishes the run (:meth:`~losslens.layouts.plugin.LayoutPlugin.merge_partitions`).
So every number equals the local engine's up to the order of floating-point additions.

- Classifier tables (:mod:`losslens.layouts.classifier`): each file's partitions in file order;
  a partition scores its rows as rows ``1..n`` and the client shifts the row numbers of the
  worst examples by the rows of the earlier partitions of the same file, so the worst-examples
  table names the same file and row as the local engine.
- Token and sequence files (:mod:`losslens.layouts.tokens`): Min-K% needs each document's tokens
  together, so the run's rows are shuffled by document id; each partition is sorted by document
  and summed, and the client concatenates the per-document tables (disjoint by construction),
  documents listed in id order.

Input errors are found on the workers, where row numbers are partition-relative. When one
occurs, the client re-reads the run with the local engine, which stops at the same first bad
value and names its true row; the message is then the local engine's, word for word.

Dask is an optional dependency (``pip install "losslens[dask]"``); this module imports it
only inside :func:`evaluate_dask`.
"""

from __future__ import annotations

from typing import Sequence

from .errors import InputError, UsageError

#: The message when Dask is not installed; the command line prints it as the error.
MISSING_DASK = "--engine dask needs the dask extra: pip install 'losslens[dask]'"

#: Byte size of a CSV block read as one Dask partition (Dask's own default is 64 MB).
CSV_BLOCKSIZE = 64 * 2**20

#: Values pandas reads as missing in numeric columns, as pyarrow's CSV reader does, so that a
#: missing probability is reported as such by both engines. Text columns keep every value.
_NUMERIC_NA = ["", "NA", "N/A", "NaN", "nan", "-nan", "NULL", "null", "None", "#N/A", "n/a", "-NaN"]


def evaluate_dask(plugin, inputs: Sequence[str], names: Sequence[str] | None, options, scheduler: str | None = None):
    """Evaluate each input as a run of ``plugin`` on a Dask cluster; the result equals the local engine's.

    Parameters
    ----------
    plugin : losslens.layouts.plugin.LayoutPlugin
        The kind of input (one with ``dask = True``), whose ``check_options`` the caller ran: it
        refuses ``--engine dask`` for a kind without partitions.
    inputs : sequence of str
        Files, folders of parts or glob patterns; each item is one run, as on the command line.
    names : sequence of str or None
        One name per input; by default the file stems, made unique.
    options : losslens.options.Options
        Layout and computation options, as for the local engine.
    scheduler : str, optional
        Address of a running ``dask.distributed`` scheduler (``tcp://host:8786``). Without
        it a ``LocalCluster`` is started for the duration of the call and closed after.

    Returns
    -------
    The plugin's evaluation (:meth:`~losslens.layouts.plugin.LayoutPlugin.evaluation`).

    Raises
    ------
    UsageError
        Dask is not installed, or an input is not a CSV, TSV or Parquet file.
    InputError
        An input cannot be evaluated; the message is the local engine's (file, column, row).

    Notes
    -----
    The layout is detected once, on the client, from each run's first file, before the cluster
    starts. Every file must be readable by the workers under the same path as on the client (a
    shared file system or object store).
    """
    try:
        import dask  # noqa: F401
        import dask.dataframe  # noqa: F401
        import distributed
    except ImportError:
        raise UsageError(MISSING_DASK) from None

    plans = plugin.plan(inputs, names, options)
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
    layouts = [plugin.layout_of(plan.sources, options) for plan in plans]

    runs = []
    with DaskClient(distributed, scheduler) as client:
        for plan, layout in zip(plans, layouts):
            frames = [dask_dataframe(s, plugin.dask_types(s, layout)) for s in plan.sources]
            tasks = plugin.partitions(frames, plan.sources, layout, options)
            try:
                results = client.gather(client.compute(tasks))
            except InputError as exc:
                raise plugin.local_error(exc, plan.sources, layout, options) from None
            total = plugin.merge_partitions(list(results), plan.sources, layout, options)
            runs.append(plugin.finish_partitions(total, layout, plan, options))
    return plugin.evaluation(tuple(runs), options)


def evaluate_runs_dask(inputs: Sequence[str], names: Sequence[str] | None, options, scheduler: str | None = None,
                       kind: str = "classifier"):
    """:func:`evaluate_dask` of the plugin of ``kind``, after its option checks (the Python API).

    Returns
    -------
    The kind's evaluation (:class:`losslens.evaluation.Evaluation` for classifier tables,
    :class:`losslens.lm.evaluation.LMEvaluation` for token and sequence files).
    """
    from .layouts import plugin_for

    plugin = plugin_for(kind)
    plugin.check_options(options, "dask", len(inputs))
    return evaluate_dask(plugin, inputs, names, options, scheduler)


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
