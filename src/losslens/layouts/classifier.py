"""The classifier layout: one row per example, a label and per-class probabilities or logits.

Covers every classifier table (probabilities, logits, one-column binary, soft targets, list
columns; multiple-choice questions come here as logits, :mod:`losslens.lm.lm_eval`). Detection
is :func:`losslens.schema.detect_layout` with what only the data can say (the stored dtype's eps,
float32 written as text, a tensor cast from bfloat16); each batch is validated and scored by
:func:`losslens.batch.score_batch` (or column by column, :mod:`losslens.columnwise`), summed
into a :class:`~losslens.accumulate.RunAccumulator` and finished by
:func:`losslens.finish.run_evaluation_of`. The unit of its comparisons is the example, paired
by id (:mod:`losslens.comparison`).
"""

from __future__ import annotations

import os
from dataclasses import replace
from functools import partial
from itertools import accumulate
from typing import Iterator, Sequence

import pyarrow as pa

from ..accumulate import RunAccumulator
from ..arrow_values import dictionary_codes, plain_numpy
from ..batch import score_batch
from ..batch_figures import SPARSE_CALIBRATION_CLASSES
from ..bootstrap import ExampleCollector, bootstrap_intervals
from ..calibration_intervals import with_calibration_intervals
from ..calibration_sample import EQUAL_MASS_BINS, CalibrationSample, SampledRows, sample_for, with_calibration
from ..columnwise import NotProbabilities, can_score, score_row_group
from ..diagnostics import find_warnings
from ..errors import InputError, UsageError
from ..evaluation import Evaluation, RunEvaluation
from ..finish import run_evaluation_of
from ..list_columns import first_value, list_columns_of, value_type
from ..options import Options
from ..reading import (
    FrameSource,
    RowGroupColumns,
    Source,
    _numpy,
    _open_parquet,
    iter_batches,
    read_columns,
    read_schema,
    text_type,
)
from ..schema import FLOAT64_EPS, PROBS, Layout, detect_layout
from ..threads import thread_count
from ..tolerances import printed_with_float32_precision, with_float32_text_tolerance, with_input_dtype
from .plugin import LayoutPlugin, stream


class ClassifierLayout(LayoutPlugin):
    """The classifier tables (see the module docstring)."""

    kind = "classifier"
    unit = "example"
    dask = True
    observes_batches = True

    def check_options(self, options: Options, engine: str, n_inputs: int, observers: Sequence = ()) -> None:
        if engine != "dask":
            return
        if observers:
            # The only observers the command passes with dask: the per-example file.
            raise UsageError("--per-example needs --engine local (per-example values stay on the workers with dask)")
        if options.bootstrap:
            # The bootstrap resamples every example's loss, which stays on the workers here.
            raise UsageError("--bootstrap needs --engine local: it keeps every example's loss in memory")
        if options.labels:
            raise UsageError("--labels needs --engine local: the join is not distributed")

    def evaluate_run(self, plan, options: Options, observers: Sequence = ()) -> RunEvaluation:
        """One run: the layout, one streaming pass with the calibration sample (and the bootstrap's
        examples), finished with the equal-mass ECE, temperature split and calibration intervals."""
        sources = plan.sources
        layout = self.layout_of(sources, options)
        bound = [partial(o, plan.name, layout) for o in observers]
        collector = ExampleCollector() if options.bootstrap else None
        if collector is not None:
            bound.append(collector)
        sample = sample_for(layout)  # equal-mass ECE and the temperature split (bounded memory)
        counts = [rows_known(s) for s in sources]
        prepare = light = None
        if None not in counts:
            sample.expect_rows(sum(counts))
        if None not in counts and thread_count() > 1:
            # Each source's first example in the run: a worker knows where its batch is, so it
            # draws the batch's keys and copies its sampled examples itself (CalibrationSample.prepare).
            starts = dict(zip(map(id, sources), accumulate([0, *counts[:-1]])))
            # With the sample the only observer, what it took stands in for the batch, whose
            # arrays are freed in the worker: one batch more can then be read ahead in the same
            # memory (10M rows: wall ×0.955, peak 265 against 248 MiB; the README's thirteenth round).
            stand_in = not bound

            def prepare(source, scored):
                return sample.prepare(scored, starts[id(source)] + int(scored.rows[0]) - 1, stand_in)

            def light(parts) -> bool:
                return all(isinstance(observed, SampledRows) for observed, _ in parts)

        total = self.accumulate(sources, layout, options, [*bound, sample], prepare, light)
        run = finish(total, layout, plan.name, tuple(s.display for s in sources), options, sample)
        return with_bootstrap(run, collector, options) if collector is not None else run

    def layout_of(self, sources, options: Options) -> Layout:
        return layout_of(sources, options)

    def batches(self, sources, layout: Layout, options: Options):
        return scored_batches(sources, layout, options)

    def score(self, item, layout: Layout, options: Options, prepare=None) -> list:
        """The scored batches of one read ``(source, offset, batch)`` and each one's sums.

        ``prepare(source, scored)``, if given, is called with each non-empty scored batch (in
        this worker thread); what it returns goes to the observers in the batch's stead.
        """
        source, offset, batch = item
        parts = []
        for scored in _score(source, offset, batch, layout, options):
            observed = prepare(source, scored) if prepare is not None and scored.n else scored
            parts.append((observed, RunAccumulator.of(scored, layout.n_classes, options.bins, options.worst,
                                                      options.confident_error)))
        return parts

    def empty(self, layout: Layout, options: Options) -> RunAccumulator:
        return RunAccumulator.empty(layout.n_classes, options.bins, options.worst, layout.by)

    def accumulate(self, sources, layout: Layout, options: Options, observers: Sequence = (),
                   prepare=None, light=None) -> RunAccumulator:
        """One streaming pass (see :meth:`score` for ``prepare``, :func:`.plugin.stream` for ``light``),
        checked as a whole run."""
        total = super().accumulate(sources, layout, options, observers, light, prepare=prepare)
        check_run_total(total, sources, layout)
        return total

    def finish(self, total: RunAccumulator, layout: Layout, plan, options: Options) -> RunEvaluation:
        """A run summed without the example sample (the Dask engine's)."""
        return finish(total, layout, plan.name, tuple(s.display for s in plan.sources), options)

    def evaluation(self, runs: tuple, options: Options) -> Evaluation:
        return Evaluation(runs=runs)

    def collector(self, n_inputs: int):
        # Runs pair by id whether --id was given or an id column was detected; the collector
        # keeps nothing for runs without ids.
        if n_inputs < 2:
            return None
        from ..comparison import LossCollector

        return LossCollector()

    def compare(self, evaluation: Evaluation, collector, options: Options) -> tuple:
        if len(evaluation.runs) < 2:
            return ()  # as compare_runs returns, without loading the comparisons' modules (5 ms)
        from ..comparison import compare_runs

        return compare_runs(evaluation, collector, n_worst=options.worst, cluster=options.cluster,
                            n_bootstrap=options.bootstrap, seed=options.seed)

    # -- Dask: each file's partitions in file order, rows shifted by the earlier partitions ---
    def dask_types(self, source, layout: Layout) -> dict:
        return column_types(source, layout)

    def partitions(self, frames, sources, layout: Layout, options: Options) -> list:
        import dask

        return [dask.delayed(_partition_sum)(part, source.display, self.dask_types(source, layout), layout, options)
                for frame, source in zip(frames, sources) for part in frame.to_delayed()]

    def merge_partitions(self, results: list, sources, layout: Layout, options: Options) -> RunAccumulator:
        total = self.empty(layout, options)
        rows_before: dict[str, int] = {}
        # In file order: a partition's rows follow those of the earlier partitions of its file.
        for display, n_rows, part in results:
            offset = rows_before.get(display, 0)
            rows_before[display] = offset + n_rows
            if part is not None:
                total = total + _shift_rows(part, offset)
        check_run_total(total, sources, layout)
        return total

    def local_error(self, exc: InputError, sources, layout: Layout, options: Options) -> InputError:
        """The local engine's error for the file ``exc`` names, whose row is the file's own.

        A worker numbers rows from its partition's start; re-reading the file here stops at the
        same first bad value and names its row in the file.
        """
        message = str(exc)
        for source in sources:
            if message.startswith(source.display):
                try:
                    self.accumulate([source], layout, options)
                except InputError as local:
                    return local
        return exc


#: The classifier plugin.
CLASSIFIER = ClassifierLayout()


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


def _score(source, offset: int, batch, layout: Layout, options: Options) -> Iterator:
    """The scored batches of one read batch: itself, or a wide row group scored column by column."""
    # The scoring pass takes the dense per-class calibration bins (what Accumulator.of adds up);
    # above SPARSE_CALIBRATION_CLASSES classes the accumulate stage bins sparsely instead.
    bins = options.bins if layout.n_classes <= SPARSE_CALIBRATION_CLASSES else None
    if not isinstance(batch, RowGroupColumns):
        yield score_batch(batch, layout, source.display, offset, options.renormalize, bins)
        return
    try:
        yield score_row_group(batch, layout, source.display, offset, options.bins)
    except NotProbabilities:
        # Read it again in row slices: the row-wise check names the first bad value, row and
        # column, exactly as for any other file.
        for slice_offset, part in batch.batches():
            yield score_batch(part, layout, source.display, slice_offset, options.renormalize, bins)


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
        for _, batch in iter_batches(source, types, max_rows=rows):
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

    from ..schema import class_key

    seen: dict[str, tuple[object, str, int]] = {}
    for source in sources:
        for offset, batch in iter_batches(source, {column: text_type(source)}):
            values = batch.column(0)
            if values.null_count:
                row = int(np.flatnonzero(plain_numpy(values.is_null()))[0])
                raise InputError(f"{source.display}, column {column!r}, row {offset + row + 1}: missing (empty) label")
            codes, distinct = dictionary_codes(values)
            _, first = np.unique(codes, return_index=True)
            for index in sorted(first):
                value = distinct[int(codes[index])]
                if isinstance(value, str) and not value.strip():
                    continue  # reported with its row when the batch is scored
                seen.setdefault(class_key(value), (value, source.display, offset + int(index) + 1))
    return list(seen.values())


def _partition_sum(frame, display: str, types, layout: Layout, options: Options):
    """``(file, rows, RunAccumulator or None)`` of one Dask partition, its rows numbered from 1.

    Runs on a worker. The partition is converted to Arrow once and then streamed through the
    local engine's reading, scoring and accumulating code in batches of bounded size; whole-run
    checks come after the client merged the partitions.
    """
    table = pa.Table.from_pandas(frame, preserve_index=False)
    if table.num_rows == 0:
        return display, 0, None
    source = FrameSource(table, display=display)
    items = ((source, offset, batch) for offset, batch in iter_batches(source, types))
    score = partial(CLASSIFIER.score, layout=layout, options=options)
    return display, table.num_rows, stream(items, score, CLASSIFIER.empty(layout, options), CLASSIFIER.add)


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
