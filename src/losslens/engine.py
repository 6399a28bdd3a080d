"""The one function that runs read → schema → batch → accumulate → evaluation for a run.

Reading happens here through :mod:`losslens.reading`; everything it calls after that is
pure. Reporters (terminal, JSON, HTML) take the :class:`~losslens.evaluation.Evaluation`
this returns and compute nothing of their own.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Iterator, Sequence

import pyarrow as pa

from .accumulate import RunAccumulator
from .arrow_values import plain_numpy
from .batch import score_batch
from .bootstrap import ExampleCollector, bootstrap_intervals
from .calibration_intervals import with_calibration_intervals
from .calibration_sample import EQUAL_MASS_BINS, CalibrationSample, sample_for, with_calibration
from .diagnostics import find_warnings
from .errors import InputError, UsageError
from .evaluation import Evaluation, RunEvaluation
from .finish import run_evaluation_of
from .options import Options
from .columnwise import NotProbabilities, can_score, score_row_group
from .list_columns import first_value, list_columns_of, value_type
from .pipes import pipes_read_once
from .reading import (
    FORMATS,
    FrameSource,
    ReadOptions,
    RowGroupColumns,
    Source,
    _numpy,
    iter_batches,
    read_columns,
    read_schema,
    _open_parquet,
    resolve,
    text_type,
)
from .schema import (
    FLOAT64_EPS,
    PROBS,
    Layout,
    detect_layout,
)
from .threads import ordered_map
from .tolerances import printed_with_float32_precision, with_float32_text_tolerance, with_input_dtype


def evaluate(data, *, name: str | None = None, **options) -> Evaluation:
    """Evaluate one run of predictions.

    Parameters
    ----------
    data : pandas or polars DataFrame, pyarrow.Table, str, path, or list of paths
        The predictions: a table, or files (CSV, TSV, plain or ``.gz``/``.bz2``/``.xz``/``.zst``, Parquet,
        JSON lines, Arrow IPC / Feather), folders of parts or glob patterns that together
        make up one run.
    name : str, optional
        The run's name; by default the file's stem (or ``"data"`` for a table).
    **options
        The layout and computation options of :class:`~losslens.options.Options`, with the
        command line's names: ``label``, ``probs``, ``logits``, ``positive_prob``,
        ``positive_logit``, ``positive_label``, ``targets``, ``classes``, ``id``,
        ``weight``, ``split``, ``by``, ``renormalize``, ``bins``, ``worst``; reading:
        ``encoding``, ``sep``, ``decimal``, ``format``; labels in another file:
        ``labels`` (with ``id``) and ``allow_missing_labels``.

    Returns
    -------
    Evaluation
        With one run; ``.to_dict()`` gives the JSON document.

    Raises
    ------
    InputError
        The data cannot be evaluated; the message names file, column and row.
    UsageError
        The options are contradictory or unknown.

    Examples
    --------
    >>> import pandas as pd, losslens
    >>> df = pd.DataFrame({"label": [1, 1, 0, 0], "p_0": [0.2, 0.1, 0.7, 0.6],
    ...                    "p_1": [0.8, 0.9, 0.3, 0.4]})
    >>> round(losslens.evaluate(df).overall.log_loss, 6)
    0.299723
    """
    return evaluate_runs([data], names=[name] if name else None, **options)


def evaluate_runs(
    inputs: Sequence,
    names: Sequence[str] | None = None,
    observers: Sequence = (),
    options: Options | None = None,
    **option_values,
) -> Evaluation:
    """Evaluate several runs with the same options, one per item of ``inputs``.

    Parameters
    ----------
    inputs : sequence
        Each item is what :func:`evaluate` takes as ``data``.
    names : sequence of str, optional
        One name per input; defaults to file stems, made unique.
    observers : sequence of callables, optional
        Each is called as ``observer(run_name, layout, scored_batch)`` for every scored
        batch, in file order: the hook for consumers of per-example values (the
        per-example file, paired comparisons, the bootstrap). Observers must not keep the
        batch's arrays unless they mean to hold the data in memory.
    options : Options, optional
        Ready-made options (as the command line builds them); otherwise they are built
        from ``option_values``.
    **option_values
        As for :func:`evaluate`.

    Returns
    -------
    Evaluation
    """
    if options is not None and option_values:
        raise UsageError("give either options= or option keywords, not both")
    opts = options if options is not None else Options.from_kwargs(**option_values)
    with pipes_read_once():  # a pipe given as input and as labels, or as labels of each run
        runs = tuple(evaluate_sources(plan.sources, opts, plan.name, observers) for plan in plan_runs(inputs, names, opts))
    return Evaluation(runs=runs)


@dataclass(frozen=True)
class RunPlan:
    """One run to evaluate: its name and the sources (files or an in-memory table) it reads."""

    name: str
    sources: tuple


def plan_runs(inputs: Sequence, names: Sequence[str] | None = None,
              options: Options | None = None) -> list[RunPlan]:
    """Resolve each input to its sources and name the runs; the one entry point of every engine.

    Parameters
    ----------
    inputs : sequence
        Paths, folders, glob patterns, lists of those, pandas DataFrames or Arrow tables.
    names : sequence of str, optional
        One name per input; default: the file stem (or the folder or pattern), made unique.
    options : Options, optional
        How to read the files (encoding, separator, format, a labels file to join).

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
    sources = [resolve_sources(item, options) for item in inputs]
    names = list(names) if names else _default_names(inputs, sources)
    return [RunPlan(name, tuple(srcs)) for name, srcs in zip(names, sources)]


def evaluate_sources(
    sources: Sequence[Source | FrameSource], options: Options, name: str, observers: Sequence = ()
) -> RunEvaluation:
    """Evaluate one run given as resolved sources (files or an in-memory table)."""
    layout = layout_of(sources, options)
    bound = [partial(o, name, layout) for o in observers]
    collector = ExampleCollector() if options.bootstrap else None
    if collector is not None:
        bound.append(collector)
    sample = sample_for(layout)  # equal-mass ECE and the temperature split (bounded memory)
    counts = [rows_known(s) for s in sources]
    if None not in counts:
        sample.expect_rows(sum(counts))
    accumulator = accumulate(sources, layout, options, [*bound, sample])
    run = finish(accumulator, layout, name, tuple(s.display for s in sources), options, sample)
    return with_bootstrap(run, collector, options) if collector is not None else run


def with_bootstrap(run: RunEvaluation, collector: ExampleCollector, options: Options) -> RunEvaluation:
    """Add percentile bootstrap intervals to the overall and per-split metrics."""
    loss, weight, correct, confidence = collector.arrays()
    splits = collector.split_values()

    def intervals(mask=slice(None)):
        return bootstrap_intervals(
            loss[mask], weight[mask], correct[mask], confidence[mask],
            options.bins, options.bootstrap, options.seed,
        )

    by_split = {
        name: replace(metrics, bootstrap=intervals(splits == name))
        for name, metrics in run.by_split.items()
    }
    return replace(run, overall=replace(run.overall, bootstrap=intervals()), by_split=by_split)


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


def layout_of(sources: Sequence[Source | FrameSource], options: Options) -> Layout:
    """Detect a run's layout from its first source's header, and check every source has it.

    The clipping eps and row-sum tolerance follow the prediction columns' stored dtype
    (float32 input gets float32's, as scikit-learn's ``log_loss``); what reading detected
    (separator, decimal commas, the label join) joins the layout's notes.
    """
    import numpy as np

    first = sources[0]
    schema = read_schema(first)
    columns = read_columns(first, schema)
    if options.labels and options.label is None:
        options = replace(options, label=first.table.label)
    numeric = [f.name for f in schema if pa.types.is_integer(f.type) or pa.types.is_floating(f.type)]
    sampled: dict = {}  # layout detection and the float32-text check look at the same rows

    def sample(cols):
        if tuple(cols) not in sampled:
            sampled[tuple(cols)] = _first_rows(first, cols)
        return sampled[tuple(cols)]

    layout = detect_layout(
        columns, options, first.display, scan_labels=lambda col: _distinct_labels(sources, col),
        numeric_columns=numeric, sample=sample,
        list_info=list_columns_of(schema, lambda column: first_value(first, column)),
    )
    kinds = [value_type(schema.field(c).type) for c in layout.prediction_columns]
    if all(pa.types.is_floating(k) for k in kinds):  # text columns of a CSV are read as float64
        layout = with_input_dtype(layout, [np.dtype(k.to_pandas_dtype()) for k in kinds])
    if _is_text(first) and layout.kind == PROBS and layout.eps == FLOAT64_EPS and not layout.from_list:
        # Text keeps no dtype; float32 probabilities written as text sum to 1 only within
        # float32's rounding, which float64's tolerance calls unnormalized.
        values = sample(layout.prediction_columns)
        if values is not None and printed_with_float32_precision(values.ravel(order="F")):
            layout = with_float32_text_tolerance(layout)
    if isinstance(first, FrameSource):
        layout = with_cast_tolerance(layout, schema)
    read_notes = [n for s in sources[:1] for n in getattr(s, "notes", ())]
    if options.labels:
        read_notes += first.table.notes
    if read_notes:
        layout = replace(layout, notes=(*layout.notes, *read_notes))
    wanted = layout.columns()
    for source in sources[1:]:
        present = set(read_columns(source))
        missing = [c for c in wanted if c not in present]
        if missing:
            raise InputError(
                f"{source.display}: column {missing[0]!r} not found; every file of a run needs "
                f"the columns of the first ({first.display})"
            )
    return layout


#: Field metadata of an in-memory prediction column cast to float32 from a narrower float
#: (``losslens.evaluate`` with a bfloat16 or float16 tensor): the dtype's name.
CAST_FROM_KEY = "losslens.cast_from"
#: Machine epsilon of the narrow floats cast to float32 (numpy has no bfloat16).
NARROW_FLOAT_EPS = {"float16": 2.0**-10, "bfloat16": 2.0**-7}


def with_cast_tolerance(layout: Layout, schema: pa.Schema) -> Layout:
    """``layout`` with the row-sum tolerance of the dtype its columns were cast from, and a note.

    The cast to float32 is exact, so clipping keeps float32's eps; but a softmax computed in
    bfloat16 sums to 1 only within bfloat16's rounding, which float32's tolerance would call
    unnormalized on nearly every row. The tolerance is ``sqrt(eps)`` of that dtype, as
    :func:`~losslens.tolerances.with_input_dtype` takes it for stored dtypes.
    """
    import math

    metadata = [schema.field(c).metadata or {} for c in layout.prediction_columns]
    cast = {m.get(CAST_FROM_KEY.encode(), b"").decode() for m in metadata} - {""}
    if not cast:
        return layout
    dtype = max(cast, key=NARROW_FLOAT_EPS.__getitem__)
    tolerance = max(layout.row_sum_tolerance, math.sqrt(NARROW_FLOAT_EPS[dtype]))
    note = (f"{dtype} values cast to float32 (exactly): clipped at float32's eps, row sums checked "
            f"with {dtype}'s tolerance ({tolerance:.2g})")
    return replace(layout, row_sum_tolerance=tolerance, notes=(*layout.notes, note))


def accumulate(sources, layout: Layout, options: Options, observers: Sequence = ()) -> RunAccumulator:
    """One streaming pass over every batch of a run, summed into a :class:`RunAccumulator`.

    Each observer is called with every scored batch (see :func:`evaluate_runs`).
    """
    total = sum_batches(scored_batches(sources, layout, options), layout, options, observers)
    check_run_total(total, sources, layout)
    return total


def sum_batches(batches, layout: Layout, options: Options, observers: Sequence = ()) -> RunAccumulator:
    """Score and sum ``(source, row_offset, record_batch)`` triples into one accumulator.

    The per-batch step of every engine: the local one runs it over a whole run, the Dask
    one over each partition. Whole-run checks are left to :func:`check_run_total`.
    """
    total = RunAccumulator.empty(layout.n_classes, options.bins, options.worst, layout.by)
    # Batches are scored and summed in worker threads while this thread reads the next one and
    # runs the observers; the sums are merged here in reading order, exactly as one thread would.
    for parts in ordered_map(partial(_score_and_sum, layout=layout, options=options), batches):
        for scored, part in parts:
            for observer in observers:
                observer(scored)
            total = total + part
        # Let this batch go before the next is read: otherwise the loop's names keep it alive
        # beside the two in flight.
        parts = scored = part = None
    return total


def _score_and_sum(item, layout: Layout, options: Options) -> list:
    """The scored batches of one read ``(source, offset, batch)`` and each one's sums."""
    source, offset, batch = item
    return [
        (scored, RunAccumulator.of(scored, layout.n_classes, options.bins, options.worst, options.confident_error))
        for scored in _score(source, offset, batch, layout, options)
    ]


def _score(source, offset: int, batch, layout: Layout, options: Options) -> Iterator:
    """The scored batches of one read batch: itself, or a wide row group scored column by column."""
    if not isinstance(batch, RowGroupColumns):
        yield score_batch(batch, layout, source.display, offset, options.renormalize)
        return
    try:
        yield score_row_group(batch, layout, source.display, offset, options.bins)
    except NotProbabilities:
        # Read it again in row slices: the row-wise check names the first bad value, row and
        # column, exactly as for any other file.
        for slice_offset, part in batch.batches():
            yield score_batch(part, layout, source.display, slice_offset, options.renormalize)


def rows_known(source) -> int | None:
    """The number of data rows of an in-memory table or a Parquet file (from its footer), else None.

    Text, JSON and Arrow streams, pipes and joined labels are not counted (None): the answer
    must be known without reading the rows.
    """
    if isinstance(source, FrameSource):
        return source.table.num_rows
    if isinstance(source, Source) and source.format == "parquet" and os.path.isfile(source.path):
        return _open_parquet(source).metadata.num_rows
    return None


def check_run_total(total: RunAccumulator, sources, layout: Layout) -> None:
    """Whole-run checks that no single batch can make: some rows, and some positive weight."""
    if total.overall.n_examples == 0:
        shown = sources[0].display if len(sources) == 1 else f"{len(sources)} files"
        raise InputError(f"{shown}: no data rows (only a header)")
    if layout.weight and total.overall.weight_sum <= 0:
        raise InputError(
            f"{sources[0].display}, column {layout.weight!r}: weights sum to zero; "
            "at least one example needs a positive weight"
        )


def finish(
    accumulator: RunAccumulator, layout: Layout, name: str, inputs: tuple[str, ...], options: Options,
    sample: CalibrationSample | None = None,
) -> RunEvaluation:
    """Finish accumulated sums into a run evaluation with its warnings.

    Shared by every engine (local and Dask): only how the accumulator was summed differs. With
    the run's ``sample`` (the local engine), the equal-mass ECE and temperature split are added.
    """
    run = run_evaluation_of(accumulator, layout, name, inputs, options.max_slices)
    if sample is not None:
        run = with_calibration_intervals(with_calibration(run, sample), sample, EQUAL_MASS_BINS)
    else:  # the Dask engine: the examples stay on the workers
        run = replace(run, layout=replace(layout, notes=(*layout.notes, NO_SAMPLE_NOTE)))
    return replace(run, warnings=find_warnings(run, options))


#: Said by a run finished without the example sample (``--engine dask``).
NO_SAMPLE_NOTE = ("ece_equal_mass and the temperature split not computed: they need a sample of the examples, "
                  "which --engine local keeps")


def scored_batches(
    sources, layout: Layout, options: Options | None = None
) -> Iterator[tuple[Source | FrameSource, int, pa.RecordBatch]]:
    """``(source, row_offset, batch)`` for every batch of every source, in order.

    With ``options`` that allow it (see :func:`losslens.columnwise.can_score`), a wide
    Parquet row group comes whole, as a :class:`~losslens.reading.RowGroupColumns`.
    """
    whole = layout.prediction_columns if options is not None and can_score(layout, options.renormalize) else ()
    for source in sources:
        types = column_types(source, layout)
        for offset, batch in iter_batches(source, types, whole_row_groups=whole):
            yield source, offset, batch


def column_types(source, layout: Layout) -> dict[str, pa.DataType | None]:
    """The Arrow type each column must be read as (None: keep the stored type)."""
    text = text_type(source)
    types: dict[str, pa.DataType | None] = {}
    for column in layout.columns():
        types[column] = text
    for column in layout.float_columns:
        types[column] = pa.float64()
    return types


#: Values of the first batch looked at by :func:`_first_rows` (the check costs about
#: 2 µs a value: 15 ms here).
PRECISION_SAMPLE_VALUES = 8192


def _is_text(source) -> bool:
    return isinstance(source, Source) and source.format in ("csv", "tsv", "jsonl")


def _first_rows(source, columns: Sequence[str]):
    """The first rows of ``columns`` (about PRECISION_SAMPLE_VALUES values) as an n×k float64
    array, or None when a column holds text that is not a number.
    """
    import numpy as np

    columns = tuple(columns)
    if not columns:
        return np.empty((0, 0))
    rows = max(1, PRECISION_SAMPLE_VALUES // len(columns))
    types = {c: pa.float64() for c in columns}
    try:
        for _, batch in iter_batches(source, types):
            part = batch.slice(0, rows)
            # reading._numpy, not Array.to_numpy: that imports pandas, half a second of start-up.
            return np.column_stack([_numpy(part.column(c)).astype(np.float64, copy=False) for c in columns])
    except (InputError, pa.ArrowException):  # text, or a list column
        return None
    return np.empty((0, len(columns)))


def _distinct_labels(sources, column: str) -> list[tuple[object, str, int]]:
    """First occurrence ``(value, file, row)`` of each label value over all sources.

    Needed only by the one-column binary layout, whose two classes are not in the header.
    """
    import numpy as np

    from .schema import class_key

    seen: dict[str, tuple[object, str, int]] = {}
    for source in sources:
        for offset, batch in iter_batches(source, {column: text_type(source)}):
            values = batch.column(0)
            if values.null_count:
                row = int(np.flatnonzero(plain_numpy(values.is_null()))[0])
                raise InputError(f"{source.display}, column {column!r}, row {offset + row + 1}: missing (empty) label")
            encoded = values.dictionary_encode()
            codes = plain_numpy(encoded.indices)
            _, first = np.unique(codes, return_index=True)
            for index in sorted(first):
                value = encoded.dictionary[int(codes[index])].as_py()
                if isinstance(value, str) and not value.strip():
                    continue  # reported with its row when the batch is scored
                seen.setdefault(class_key(value), (value, source.display, offset + int(index) + 1))
    return list(seen.values())


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
