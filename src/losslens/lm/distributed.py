"""Language-model token / sequence runs on Dask: the same accumulators over hash-partitioned documents.

Min-K% needs each document's tokens together, so the run's rows are shuffled by document id
(``DataFrame.shuffle(on=document)``): every document then lives in exactly one partition.
Each partition is sorted by document and summed on a worker by the local engine's code
(:func:`losslens.lm.engine.document_table`); the client concatenates the per-document tables
(disjoint by construction), adds the token-level sums and finishes with
:func:`losslens.lm.evaluation.lm_run_evaluation`. Numbers equal the local engine's up to the order
of floating-point additions; documents are listed in id order. An input error found on a worker is
reported as the local engine reports it, by re-reading the run locally.

Dask is optional (``pip install "losslens[dask]"``) and imported only inside
:func:`evaluate_lm_dask`.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import InputError, UsageError
from .documents import DocumentTable
from .options import LMOptions
from ..catalog import N_BYTES, N_TOKENS, N_WORDS


def evaluate_lm_dask(inputs: Sequence, names: Sequence[str] | None = None, options: LMOptions | None = None,
                     scheduler: str | None = None, read=None, **option_values):
    """Evaluate token / sequence runs on a Dask cluster (see the module docstring).

    Parameters
    ----------
    inputs : sequence of str
        Files, folders or globs; each item one run.
    names : sequence of str, optional
    options : LMOptions, optional
    scheduler : str, optional
        Address of a running ``dask.distributed`` scheduler; without it a ``LocalCluster`` is
        started for the call.
    read : losslens.options.Options, optional
        How to read the files (``encoding``, ``sep``, ``decimal``, ``format``).

    Returns
    -------
    LMEvaluation
    """
    try:
        import dask
        import dask.dataframe as dd
        import distributed
    except ImportError:
        from ..distributed import MISSING_DASK

        raise UsageError(MISSING_DASK) from None
    import pyarrow as pa

    from ..distributed import DaskClient, dask_dataframe
    from ..engine import plan_runs
    from .compare import compare_lm_runs
    from .engine import evaluate_lm_sources, lm_layout_of, run_layout
    from .evaluation import LMEvaluation, lm_run_evaluation

    opts = options if options is not None else LMOptions.from_kwargs(**option_values)
    runs = []
    with DaskClient(distributed, scheduler) as client:
        for plan in plan_runs(inputs, names, read):
            srcs, name = plan.sources, plan.name
            layout = lm_layout_of(srcs, opts)
            if layout.lists:
                raise UsageError(f"{srcs[0].display}: --engine dask reads one row per token; a file with a list "
                                 "of token log-probs per row is read by the local engine (drop --engine dask)")
            numeric = {layout.loss, layout.n_tokens, layout.n_bytes, layout.n_words, layout.mask} - {None}
            types = {c: (pa.float64() if c in numeric else None) for c in layout.columns}
            frame = dd.concat([dask_dataframe(s, types) for s in srcs]) if len(srcs) > 1 else dask_dataframe(srcs[0], types)
            shuffled = frame.shuffle(on=layout.document)
            tasks = [dask.delayed(_partition_documents)(part, layout, opts) for part in shuffled.to_delayed()]
            try:
                tables = client.gather(client.compute(tasks))
            except InputError:
                evaluate_lm_sources(srcs, opts, name)  # raises the local engine's message (file, row)
                raise
            docs = merge_document_tables([t for t in tables if t is not None], layout)
            if not docs.keys:
                raise InputError(f"{srcs[0].display}: no scored token in the run")
            runs.append(lm_run_evaluation(docs, run_layout(layout, docs), opts, name, tuple(s.display for s in srcs)))
    runs = tuple(runs)
    return LMEvaluation(runs=runs, comparisons=compare_lm_runs(runs))


def _partition_documents(frame, layout, options) -> DocumentTable | None:
    """Per-document table of one partition (runs on a worker)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from ..reading import FrameSource
    from .engine import document_table

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
