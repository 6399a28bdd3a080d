"""Run read → layout → convert → per-document sums → evaluation for token and sequence files.

Reading goes through :mod:`losslens.reading` (files, folders, globs, tables); everything after
that is pure. This is the seam the command line and job layer call:
:func:`evaluate_lm` for one run, :func:`evaluate_lm_runs` for several (with comparisons).
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from typing import Sequence

import numpy as np

import losslens.lm.token_bytes as token_bytes

from ..arrow_values import bool_array, int64_array, plain_numpy
from ..errors import InputError, UsageError
from ..reading import FrameSource, Source, iter_batches, read_columns, read_schema
from ..threads import ordered_map
from .convert import START, Places, convert_batch, run_starts
from .documents import DocumentAccumulator, DocumentTable, TooFragmented, min_k_of_fragments, token_histogram
from .evaluation import LMEvaluation, LMRunEvaluation, lm_run_evaluation
from .layout import LMLayout, detect_lm_layout
from .lists import FlatBatch, flatten_batch, is_list_type
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
    if opts.reference:
        from .contamination import with_reference

        runs = with_reference(runs, reference_run(opts.reference, opts, read))
    from .compare import compare_lm_runs

    return LMEvaluation(runs=runs, comparisons=compare_lm_runs(runs))


def lm_layout_of(sources: Sequence[Source | FrameSource], options: LMOptions) -> LMLayout:
    """Detect a run's layout from its first source, and check every source has its columns.

    The header gives the columns (and, from the schema, whether the loss holds a list per row);
    with token strings and no ``n_bytes`` the first batch tells how they count bytes
    (:func:`losslens.lm.token_bytes.detect_convention`), applied to the whole run.
    """
    first = sources[0]
    schema = read_schema(first)
    lists = [f.name for f in schema if is_list_type(f.type)]
    layout = detect_lm_layout(read_columns(first, schema), options, first.display, lists)
    for source in sources[1:]:
        present = set(read_columns(source))
        missing = [c for c in layout.columns if c not in present]
        if missing:
            raise InputError(f"{source.display}: column {missing[0]!r} not found; every file of a run "
                             f"needs the columns of the first ({first.display})")
    if layout.token is not None and layout.token_bytes is None:
        batch = next((b for _, b in flat_batches(sources[:1], layout, first_only=True)), None)
        tokens = None if batch is None else batch.batch.column(layout.token)
        if tokens is not None and not _is_text(tokens.type):
            return replace(layout, token=None, notes=layout.notes + (
                f"column {layout.token!r} holds {tokens.type} values, not token text: no bytes per token "
                "(add an 'n_bytes' column for bits per byte)",))
        convention = token_bytes.UTF8 if tokens is None else token_bytes.detect_convention(tokens)
        layout = replace(layout, token_bytes=convention, notes=layout.notes + (
            token_bytes.describe(convention, layout.token, None),))
    return layout


def _is_text(kind) -> bool:
    import pyarrow as pa

    return (pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_null(kind)
            or pa.types.is_string_view(kind))


def flat_batches(sources, layout: LMLayout, first_only: bool = False):
    """``(source, FlatBatch)`` for every record batch of a run, one row per token, in file order.

    A token layout's batches are already flat; a list layout's are flattened
    (:func:`losslens.lm.lists.flatten_batch`). ``first_only``: the first batch only.
    """
    types = {c: None for c in layout.columns}
    first_row = 0
    seen: list = []  # documents met so far: a document begins where its id first appears
    for source in sources:
        rows = 0
        for offset, batch in iter_batches(source, types):
            rows = offset + batch.num_rows
            if layout.lists:
                flat = flatten_batch(batch, layout, source.display, offset, first_row)
                candidates = np.flatnonzero(flat.starts)
            else:
                flat = FlatBatch(batch, offset)
                candidates = run_starts(batch.column(layout.document))
            flat.starts = _first_appearances(flat.batch.column(layout.document), candidates, seen)
            yield source, flat
            if first_only:
                return
        first_row += rows


def _first_appearances(documents, candidates: np.ndarray, seen: list) -> np.ndarray:
    """True at the rows among ``candidates`` whose document is not in ``seen`` (then added).

    A document's first token is its first row in the run, also when its rows come back after
    other documents: a null log-prob or SentencePiece's dummy '▁' is its first token's only.
    ``seen`` holds the ids met so far as Arrow arrays (vectorised: one hash lookup per batch).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    out = np.zeros(len(documents), dtype=bool)
    if documents.null_count or not len(candidates):
        return out  # a missing id is reported by convert_batch
    ids = documents.take(int64_array(candidates))
    codes = np.asarray(plain_numpy(ids.dictionary_encode().indices))
    fresh = np.zeros(len(ids), dtype=bool)
    fresh[np.unique(codes, return_index=True)[1]] = True  # a document's first run in this batch
    known = [k for k in seen if k.type == ids.type]
    if known:
        fresh &= ~np.asarray(plain_numpy(pc.is_in(ids, value_set=pa.concat_arrays(known))),
                             dtype=bool)
    if len(known) < len(seen):  # ids of another type in an earlier file: compared as Python values
        earlier = {v for k in seen if k.type != ids.type for v in k.to_pylist()}
        fresh &= np.array([v not in earlier for v in ids.to_pylist()], dtype=bool)
    seen.append(ids.filter(bool_array(fresh)))
    out[candidates[fresh]] = True
    return out


def _convert(source, flat, layout: LMLayout, any_null: bool = False):
    """Validate one flat batch (messages name the file's own row)."""
    if flat.rows is None:
        return convert_batch(flat.batch, layout, source.display, flat.offset, starts=flat.starts, any_null=any_null)
    places = Places(source.display, flat.offset, flat.rows, flat.items)
    converted = convert_batch(flat.batch, layout.flat(), source.display, 0, places=places, starts=flat.starts,
                              any_null=any_null)
    return replace(converted, empty=flat.empty) if flat.empty else converted


def token_batches(sources, layout: LMLayout):
    """Every validated batch of a run, in file order.

    Each batch is validated (and its token-loss histogram counted) in a worker thread while
    this one reads the next and the caller adds the previous up; the batches come back in file
    order, so the first bad value is the one a single thread would name.
    """
    yield from ordered_map(partial(_convert_counted, layout=layout), flat_batches(sources, layout))


def _convert_counted(item, layout: LMLayout):
    """:func:`_convert` of one ``(source, flat batch)``, with its token-loss histogram."""
    source, flat = item
    batch = _convert(source, flat, layout)
    if layout.kind == "sequences":
        return batch
    values = batch.nll if batch.scored is None else batch.nll[batch.scored]
    return replace(batch, histogram=token_histogram(values))


def sorted_batches(sources, layout: LMLayout):
    """The run's rows sorted by document (stable), after validating them in file order.

    For heavily non-contiguous files. Memory: the layout's columns of the whole run as stored
    (e.g. 16 bytes a token for int64 ids, float32 log-probs and int32 byte counts) plus 8 bytes
    a token of sort indices; the sorted rows are gathered a million at a time. Null log-probs
    found valid in file order (a document's first token) stay unscored after the sort.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    parts, lost, empty = [], None, ()
    for source, flat in flat_batches(sources, layout):
        checked = _convert(source, flat, layout)  # errors name the file's own row
        lost = lost or checked.bytes_lost  # and so does the note on token text that loses bytes
        empty += checked.empty  # list rows without tokens: not in the flat rows to sort
        parts.append(flat.batch)
    table = pa.Table.from_batches(parts)
    del parts
    flat_layout = layout.flat()
    order = pc.sort_indices(table, sort_keys=[(flat_layout.document, "ascending")])
    step = 1 << 20  # gathered a slice at a time, so the sorted copy is never whole
    previous = START
    for start in range(0, len(order), step):
        part = table.take(order.slice(start, step)).combine_chunks()
        for batch in part.to_batches():
            if batch.num_rows:
                converted = convert_batch(batch, flat_layout, "<sorted>", 0, previous, any_null=True)
                yield replace(converted, bytes_lost=converted.bytes_lost and lost, empty=empty)
                empty = ()
                previous = batch.column(flat_layout.document)[-1].as_py()


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
        top_loss, z_low, compressed = docs.top_loss.copy(), docs.z_low.copy(), docs.zlib.copy()
        for key, (top, low, size) in tops.items():
            i = accumulator.index[key]
            top_loss[i], z_low[i], compressed[i] = top, low, size
        docs = replace(docs, top_loss=top_loss, z_low=z_low, zlib=compressed)
    return docs


def run_layout(layout: LMLayout, docs: DocumentTable) -> LMLayout:
    """The layout with what reading the run found: null first tokens, token text that loses bytes."""
    notes = layout.notes
    if docs.bytes_lost:
        said = token_bytes.describe(layout.token_bytes, layout.token, layout.n_bytes) if layout.token_bytes else None
        notes = tuple(n for n in notes if n != said) + (
            token_bytes.describe(token_bytes.LOSSY, layout.token, None) + f" (first at {docs.bytes_lost})",)
        layout = replace(layout, token_bytes=token_bytes.LOSSY)
    if docs.null_first:
        notes += (f"{docs.null_first} document(s) begin with a token whose log-prob is null (nothing "
                  "predicts a document's first token: the Hugging Face / vLLM convention): that token is "
                  "not scored and its bytes are not counted",)
    return replace(layout, notes=notes)


def evaluate_lm_sources(sources, options: LMOptions, name: str) -> LMRunEvaluation:
    """Evaluate one run given as resolved sources."""
    layout = lm_layout_of(sources, options)
    docs = document_table(sources, layout, options)
    if not docs.keys:
        raise InputError(f"{sources[0].display}: no scored token in the run; "
                         + (f"check the mask column {layout.mask!r}" if layout.mask else "the file has no data rows"))
    layout = run_layout(layout, docs)
    if docs.sorted_by_document:
        layout = replace(layout, notes=layout.notes + (
            "documents are not contiguous in the file: the run was sorted by document in memory "
            "(listed in document order)",))
    if docs.fragmented:
        layout = replace(layout, notes=layout.notes + (
            f"{len(docs.fragmented)} document(s) are not contiguous in the file: their Min-K% Prob came "
            "from a second pass holding their token losses in memory",))
    return lm_run_evaluation(docs, layout, options, name, tuple(s.display for s in sources))


def reference_run(path: str, options, read=None):
    """Evaluate ``--reference FILE`` as a run of its own (same options, no reference of its own)."""
    from ..engine import plan_runs

    try:
        plan = plan_runs([path], None, read)[0]
        # Slices are not needed of the reference (and its file need not have the slice columns).
        return evaluate_lm_sources(plan.sources, replace(options, reference=None, by=()), f"reference ({plan.name})")
    except InputError as exc:
        raise InputError(f"--reference: {exc}") from None
