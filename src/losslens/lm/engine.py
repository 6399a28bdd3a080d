"""Run read → layout → convert → per-document sums → evaluation for token and sequence files.

Reading goes through :mod:`losslens.reading` (files, folders, globs, tables); everything after
that is pure. This is the seam the command line and job layer call:
:func:`evaluate_lm` for one run, :func:`evaluate_lm_runs` for several (with comparisons).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

from ..errors import InputError, UsageError
from ..reading import FrameSource, Source, iter_batches, read_columns
from .documents import DocumentAccumulator, DocumentTable, TooFragmented, convert_batch, min_k_of_fragments
from .evaluation import LMEvaluation, LMRunEvaluation, lm_run_evaluation
from .layout import LMLayout, detect_lm_layout
from .options import LMOptions


def evaluate_lm(data, *, name: str | None = None, **options) -> LMEvaluation:
    """Evaluate one language-model run: a token or a sequence file.

    Parameters
    ----------
    data : pandas.DataFrame, pyarrow.Table, str, path or list of paths
        One row per scored token (document id + log-prob or loss) or one row per document
        (summed loss + ``n_tokens``).
    name : str, optional
        The run's name; by default the file's stem.
    **options
        The fields of :class:`~losslens.lm.options.LMOptions` (``document``, ``logprob``,
        ``nll``, ``log_base``, ``token``, ``mask``, ``by``, ``min_k``, ``memorized_prob``,
        ``near_zero``, ...).

    Returns
    -------
    LMEvaluation

    Examples
    --------
    >>> import pandas as pd
    >>> tokens = pd.DataFrame({"doc_id": [0, 0, 1], "logprob": [-1.0, -2.0, -3.0],
    ...                        "token": ["a", "bc", "d"]})
    >>> run = evaluate_lm(tokens).runs[0]
    >>> run.overall.log_loss, run.overall.n_bytes
    (2.0, 4)
    """
    return evaluate_lm_runs([data], names=[name] if name else None, **options)


def evaluate_lm_runs(inputs: Sequence, names: Sequence[str] | None = None,
                     options: LMOptions | None = None, read=None, **option_values) -> LMEvaluation:
    """Evaluate several token / sequence runs with the same options; later runs are compared
    with the first, paired by document id.

    Parameters
    ----------
    inputs : sequence
        Each item is what :func:`evaluate_lm` takes as ``data``.
    names : sequence of str, optional
    options : LMOptions, optional
        Ready-made options; otherwise built from ``option_values``.
    read : losslens.options.Options, optional
        How to read the files: its ``encoding``, ``sep``, ``decimal`` and ``format``
        (the command line's reading options, which input-kind detection used too).

    Returns
    -------
    LMEvaluation
    """
    from ..engine import plan_runs

    if options is not None and option_values:
        raise UsageError("give either options= or option keywords, not both")
    opts = options if options is not None else LMOptions.from_kwargs(**option_values)
    runs = tuple(evaluate_lm_sources(plan.sources, opts, plan.name) for plan in plan_runs(inputs, names, read))
    from .compare import compare_lm_runs

    return LMEvaluation(runs=runs, comparisons=compare_lm_runs(runs))


def lm_layout_of(sources: Sequence[Source | FrameSource], options: LMOptions) -> LMLayout:
    """Detect a run's layout from its first source, and check every source has its columns."""
    first = sources[0]
    layout = detect_lm_layout(read_columns(first), options, first.display)
    for source in sources[1:]:
        present = set(read_columns(source))
        missing = [c for c in layout.columns if c not in present]
        if missing:
            raise InputError(f"{source.display}: column {missing[0]!r} not found; every file of a run "
                             f"needs the columns of the first ({first.display})")
    return layout


def token_batches(sources, layout: LMLayout):
    """Every validated batch of a run, in file order."""
    types = {c: None for c in layout.columns}
    for source in sources:
        for offset, batch in iter_batches(source, types):
            yield convert_batch(batch, layout, source.display, offset)


def sorted_batches(sources, layout: LMLayout):
    """The run's rows sorted by document (stable), after validating them in file order.

    For heavily non-contiguous files. Memory: the layout's columns of the whole run as stored
    (e.g. 16 bytes a token for int64 ids, float32 log-probs and int32 byte counts) plus 8 bytes
    a token of sort indices; the sorted rows are gathered a million at a time.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    types = {c: None for c in layout.columns}
    parts = []
    for source in sources:
        for offset, batch in iter_batches(source, types):
            convert_batch(batch, layout, source.display, offset)  # errors name the file's own row
            parts.append(batch)
    table = pa.Table.from_batches(parts)
    del parts
    order = pc.sort_indices(table, sort_keys=[(layout.document, "ascending")])
    step = 1 << 20  # gathered a slice at a time, so the sorted copy is never whole
    for start in range(0, len(order), step):
        part = table.take(order.slice(start, step)).combine_chunks()
        for batch in part.to_batches():
            yield convert_batch(batch, layout, "<sorted>", 0)


def document_table(sources, layout: LMLayout, options: LMOptions) -> DocumentTable:
    """One streaming pass into per-document sums; non-contiguous documents need more.

    A few fragmented documents: a second pass keeps only their losses. More than
    ``FRAGMENT_LIMIT``: the run is re-read and sorted by document (see :func:`sorted_batches`).
    """
    accumulator = DocumentAccumulator(layout, options.min_k, raise_when_fragmented=True)
    try:
        for batch in token_batches(sources, layout):
            accumulator.add(batch)
    except TooFragmented:
        accumulator = DocumentAccumulator(layout, options.min_k)
        for batch in sorted_batches(sources, layout):
            accumulator.add(batch)
        docs = accumulator.finish()
        return replace(docs, fragmented=frozenset(), sorted_by_document=True)
    docs = accumulator.finish()
    if docs.fragmented:
        tops = min_k_of_fragments(token_batches(sources, layout), layout, docs.fragmented, options.min_k)
        top_loss = docs.top_loss.copy()
        for key, value in tops.items():
            top_loss[accumulator.index[key]] = value
        docs = replace(docs, top_loss=top_loss)
    return docs


def evaluate_lm_sources(sources, options: LMOptions, name: str) -> LMRunEvaluation:
    """Evaluate one run given as resolved sources."""
    layout = lm_layout_of(sources, options)
    docs = document_table(sources, layout, options)
    if not docs.keys:
        raise InputError(f"{sources[0].display}: no scored token in the run; "
                         + (f"check the mask column {layout.mask!r}" if layout.mask else "the file has no data rows"))
    if docs.sorted_by_document:
        layout = replace(layout, notes=layout.notes + (
            "documents are not contiguous in the file: the run was sorted by document in memory "
            "(listed in document order)",))
    if docs.fragmented:
        layout = replace(layout, notes=layout.notes + (
            f"{len(docs.fragmented)} document(s) are not contiguous in the file: their Min-K% Prob came "
            "from a second pass holding their token losses in memory",))
    return lm_run_evaluation(docs, layout, options, name, tuple(s.display for s in sources))
