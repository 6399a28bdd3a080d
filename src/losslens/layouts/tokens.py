"""The language-model layouts: token files (one row per scored token) and sequence files (one row
per document with its summed loss), also as list columns (a list of token log-probs per row).

A sequence file is a token file whose documents come summed, so both share this plugin: the
same detection (:func:`losslens.lm.layout.detect_lm_layout`), batch validation
(:func:`losslens.lm.convert.convert_batch`), per-document sums
(:class:`losslens.lm.documents.DocumentAccumulator`) and finish
(:func:`losslens.lm.evaluation.lm_run_evaluation`). The unit of its comparisons is the
document, paired by id (:mod:`losslens.lm.compare`); its own sections are the memorised and
worst documents and the contamination scores.

Log-probabilities are never clipped: a token's loss is its ``-logprob`` as given.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from typing import Sequence

import numpy as np

import losslens.lm.token_bytes as token_bytes

from ..arrow_values import bool_array, int64_array, is_list_type, plain_numpy
from ..batch_figures import loss_histogram
from ..catalog import N_BYTES, N_TOKENS, N_WORDS
from ..errors import InputError, UsageError
from ..lm.convert import START, Places, convert_batch, run_starts
from ..lm.documents import (
    DocumentAccumulator,
    DocumentTable,
    TooFragmented,
    document_runs,
    ids_at,
    min_k_of_fragments,
)
from ..lm.evaluation import LMEvaluation, LMRunEvaluation, lm_run_evaluation
from ..lm.layout import LMLayout, detect_lm_layout
from ..lm.lists import FlatBatch, flatten_batch
from ..options import Options
from ..reading import FrameSource, Source, iter_batches, read_columns, read_schema
from ..threads import ordered_map
from .plugin import LayoutPlugin, stream


class TokensLayout(LayoutPlugin):
    """Token and sequence files (see the module docstring)."""

    kind = "language_model"
    unit = "document"
    dask = True

    def check_options(self, options: Options, engine: str, n_inputs: int, observers: Sequence = ()) -> None:
        refuse_single_bootstrap(options, n_inputs)
        if options.cluster:
            raise UsageError("--cluster is for classifier files and lm-eval samples (doc.FIELD); token and "
                             "sequence runs already take documents as the units of their intervals")
        if options.reference and engine == "dask":
            raise UsageError("--reference compares the documents of token and sequence files read locally: "
                             "drop --engine dask")

    def plan(self, inputs: Sequence, names, options: Options) -> list:
        from ..plans import plan_runs

        # Only how to read the text: the classifier's --labels join is not theirs.
        return plan_runs(inputs, names, options, join_labels=False)

    def layout_of(self, sources, options: Options) -> LMLayout:
        return lm_layout_of(sources, options)

    def accumulate(self, sources, layout: LMLayout, options: Options, observers: Sequence = ()) -> DocumentTable:
        return document_table(sources, layout, options)

    def finish(self, docs: DocumentTable, layout: LMLayout, plan, options: Options) -> LMRunEvaluation:
        return finish(docs, layout, plan.name, plan.sources, options)

    def evaluation(self, runs: tuple, options: Options) -> LMEvaluation:
        from ..lm.compare import compare_lm_runs

        if options.reference:
            from ..lm.contamination import with_reference

            runs = with_reference(runs, reference_run(options.reference, options))
        return LMEvaluation(runs=runs, comparisons=compare_lm_runs(runs, options.bootstrap, options.seed))

    # -- Dask: rows shuffled by document, so each document lives in one partition ------------
    def dask_types(self, source, layout: LMLayout) -> dict:
        import pyarrow as pa

        numeric = {layout.loss, layout.n_tokens, layout.n_bytes, layout.n_words, layout.mask} - {None}
        return {c: (pa.float64() if c in numeric else None) for c in layout.columns}

    def partitions(self, frames, sources, layout: LMLayout, options: Options) -> list:
        import dask
        import dask.dataframe as dd

        if layout.lists:
            raise UsageError(f"{sources[0].display}: --engine dask reads one row per token; a file with a list "
                             "of token log-probs per row is read by the local engine (drop --engine dask)")
        frame = dd.concat(frames) if len(frames) > 1 else frames[0]
        shuffled = frame.shuffle(on=layout.document)
        return [dask.delayed(_partition_documents)(part, layout, options) for part in shuffled.to_delayed()]

    def merge_partitions(self, results: list, sources, layout: LMLayout, options: Options) -> DocumentTable:
        docs = merge_document_tables([t for t in results if t is not None], layout)
        if not docs.keys:
            raise InputError(f"{sources[0].display}: no scored token in the run")
        return docs

    def finish_partitions(self, docs: DocumentTable, layout: LMLayout, plan, options: Options) -> LMRunEvaluation:
        return lm_run_evaluation(docs, run_layout(layout, docs), options, plan.name,
                                 tuple(s.display for s in plan.sources))

    def local_error(self, exc: InputError, sources, layout: LMLayout, options: Options) -> InputError:
        try:
            self.accumulate(sources, layout, options)  # raises the local engine's message (file, row)
        except InputError as local:
            return local
        return exc


#: The token / sequence plugin.
TOKENS = TokensLayout()


def refuse_single_bootstrap(options: Options, n_inputs: int) -> None:
    """``--bootstrap`` with one language-model input: its intervals come from per-document sums."""
    if options.bootstrap and n_inputs < 2:
        raise UsageError("--bootstrap is for classifier files and for comparisons: one language-model input's "
                         "intervals come from per-document sums already; give two or more inputs to compare")


def lm_layout_of(sources: Sequence[Source | FrameSource], options: Options) -> LMLayout:
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
    previous_key = None  # the last document id of the batch before (None: none yet)
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
            documents = flat.batch.column(layout.document)
            flat.starts = _first_appearances(documents, candidates, seen)
            flat.previous_key = previous_key
            if len(documents):
                previous_key = ids_at(documents, np.array([len(documents) - 1]))[0]
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


def _convert_counted(item, layout: LMLayout, min_k: float | None = None):
    """:func:`_convert` of one ``(source, flat batch)``, with its token-loss histogram and, given
    ``min_k``, its documents and their Min-K% scores (:func:`losslens.lm.documents.document_runs`).

    Runs in a worker thread: the partial sorts of Min-K% are the costly part of a token batch.
    """
    source, flat = item
    batch = _convert(source, flat, layout)
    if layout.kind == "sequences":
        return batch
    values = batch.nll if batch.scored is None else batch.nll[batch.scored]
    runs = document_runs(batch, min_k, flat.previous_key) if min_k is not None and len(batch.nll) else None
    return replace(batch, histogram=loss_histogram(values), runs=runs)


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


def document_table(sources, layout: LMLayout, options: Options) -> DocumentTable:
    """One streaming pass into per-document sums; non-contiguous documents need more.

    A few fragmented documents: a second pass keeps only their losses. More than
    ``FRAGMENT_LIMIT``: the run is re-read and sorted by document (see :func:`sorted_batches`).
    """
    accumulator = DocumentAccumulator(layout, options.min_k, raise_when_fragmented=True)
    try:
        # Each batch validated (and its token-loss histogram counted) in a worker thread, added
        # up here in file order: the first bad value is the one a single thread would name.
        stream(flat_batches(sources, layout), partial(_scored_pair, layout=layout, min_k=options.min_k), accumulator,
               _add_batch)
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


def finish(docs: DocumentTable, layout: LMLayout, name: str, sources, options: Options) -> LMRunEvaluation:
    """One run's per-document sums -> its evaluation, with what reading found in its layout notes."""
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


def reference_run(path: str, options: Options):
    """Evaluate ``--reference FILE`` as a run of its own (same options, no reference of its own)."""
    from ..plans import plan_runs

    try:
        plan = plan_runs([path], None, options, join_labels=False)[0]
        # Slices are not needed of the reference (and its file need not have the slice columns).
        return TOKENS.evaluate_run(replace(plan, name=f"reference ({plan.name})"), replace(options, reference=None, by=()))
    except InputError as exc:
        raise InputError(f"--reference: {exc}") from None


def _scored_pair(item, layout: LMLayout, min_k: float) -> list:
    """:func:`_convert_counted` as the stream's ``[(scored, part)]``: the batch is its own part."""
    batch = _convert_counted(item, layout, min_k)
    return [(batch, batch)]


def _add_batch(accumulator: DocumentAccumulator, batch) -> DocumentAccumulator:
    accumulator.add(batch)
    return accumulator


def _partition_documents(frame, layout, options) -> DocumentTable | None:
    """Per-document table of one partition (runs on a worker)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    table = pa.Table.from_pandas(frame, preserve_index=False)
    if table.num_rows == 0:
        return None
    # Stable sort by document: the partition's documents become contiguous, file order kept inside.
    table = table.take(pc.sort_indices(table, sort_keys=[(layout.document, "ascending")]))
    return document_table([FrameSource(table, display="<partition>")], layout, options)


def merge_document_tables(tables: Sequence[DocumentTable], layout) -> DocumentTable:
    """Concatenate per-partition tables of disjoint documents, in document-id order."""
    from ..accumulate import HIST_EDGES

    keys = [k for t in tables for k in t.keys]
    order = sorted(range(len(keys)), key=lambda i: (str(type(keys[i])), keys[i]))

    def joined(name):
        parts = [getattr(t, name) for t in tables]
        if not parts or any(p is None for p in parts):
            return None
        return np.concatenate(parts)[order] if keys else np.zeros(0)

    def tuples(values):
        flat = [v for t in values for v in t]
        return tuple(flat[i] for i in order)

    unigrams: dict = {}
    for t in tables:
        for text, n in t.unigrams.items():
            unigrams[text] = unigrams.get(text, 0) + n
    empty = set().union(*(t.empty for t in tables)) - set(keys) if tables else set()
    return DocumentTable(
        keys=tuple(keys[i] for i in order),
        nll=joined("nll") if keys else np.zeros(0),
        n_tokens=joined(N_TOKENS),
        n_bytes=joined(N_BYTES),
        n_words=joined(N_WORDS),
        top_loss=joined("top_loss") if keys else np.zeros(0),
        split=tuples([t.split for t in tables]) if tables and tables[0].split is not None else None,
        slices={c: tuples([t.slices[c] for t in tables]) for c in layout.by},
        snippets=tuples([t.snippets for t in tables]),
        fragmented=frozenset(),
        empty=tuple(sorted(empty, key=str)),
        token_sum=sum(t.token_sum for t in tables),
        token_sum_sq=sum(t.token_sum_sq for t in tables),
        token_count=sum(t.token_count for t in tables),
        histogram=sum((t.histogram for t in tables), np.zeros(len(HIST_EDGES) + 1, np.int64)),
        unigrams=unigrams,
        bytes_lost=next((t.bytes_lost for t in tables if t.bytes_lost), None),
        null_first=sum(t.null_first for t in tables),
        rank1=joined("rank1"),
        z_low=joined("z_low"),
        zlib=joined("zlib"),
    )

