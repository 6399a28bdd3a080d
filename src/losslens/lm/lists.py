"""The list layout: one row per document, a list of token log-probs per row (Hugging Face ``datasets``).

:func:`flatten_batch` turns one record batch of such a file into one row per token (pyarrow's
``list_flatten`` / ``list_parent_indices``: the values are not copied row by row, and float32
stays float32), with the row's document id, split and slice values repeated on its tokens. The
result goes through the token layout's own validation (:func:`losslens.lm.convert.convert_batch`),
whose messages then name the file row and the token's position in its list.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..arrow_values import is_list_type
from ..errors import InputError, where
from .layout import LMLayout


@dataclass
class FlatBatch:
    """One record batch flattened to one row per token, and where each token came from."""

    batch: object  # pyarrow.RecordBatch with the columns of ``layout.flat()``
    offset: int  # data rows before this batch in its file
    rows: np.ndarray | None = None  # list layout: 1-based file row of each token
    items: np.ndarray | None = None  # list layout: 1-based position of each token in its row's list
    starts: np.ndarray | None = None  # the rows that begin a document (list layout: first items)
    empty: tuple = ()  # list layout: ids of the rows whose list is empty or null
    previous_key: object = None  # the last document id of the run's previous batch (None: none)


def flatten_batch(batch, layout: LMLayout, source: str, offset: int, first_row: int = 0) -> FlatBatch:
    """Flatten one record batch of a list layout.

    Parameters
    ----------
    batch : pyarrow.RecordBatch
        ``layout.columns``: list columns for the loss (and token, n_bytes, mask when present).
    layout : LMLayout
        A list layout (``layout.lists``).
    source : str
        The file, for messages.
    offset : int
        Data rows before this batch in the file.
    first_row : int
        Rows of the run before this file: with ``row_ids`` documents are numbered across the
        run's files, from 0.

    Returns
    -------
    FlatBatch

    Raises
    ------
    InputError
        A per-token column that is not a list in this file, or a row whose lists differ in length.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    losses = batch.column(layout.loss)
    per_token = [c for c in (layout.token, layout.n_bytes, layout.mask) if c is not None]
    for name in (layout.loss, *per_token):
        if not is_list_type(batch.column(name).type):
            raise InputError(f"{where(source, name)}: holds {batch.column(name).type} values, not a list per "
                             "row like the run's first file; every file of a run needs the same layout")
    for name in (layout.loss, *per_token):
        try:
            batch.column(name).validate()
        except pa.ArrowInvalid as exc:  # a reader's bug must not become a wrong number
            raise InputError(f"{where(source, name, offset + 1)}: the list column was read inconsistently "
                             f"({str(exc).splitlines()[0]}); write the file as Parquet") from None
    lengths = np.asarray(pc.list_value_length(losses).fill_null(0).to_numpy(zero_copy_only=False), np.int64)
    for name in per_token:
        other = np.asarray(pc.list_value_length(batch.column(name)).fill_null(0).to_numpy(zero_copy_only=False),
                           np.int64)
        wrong = other != lengths
        if wrong.any():
            i = int(np.flatnonzero(wrong)[0])
            raise InputError(f"{where(source, name, offset + i + 1)}: {other[i]} items but {lengths[i]} in "
                             f"{layout.loss!r}; a row's lists go together, one item per token")
    parents = np.asarray(pc.list_parent_indices(losses).to_numpy(zero_copy_only=False), np.int64)
    # Position of each token in its row's list: its index minus the index of its row's first token.
    firsts = np.concatenate([[0], np.cumsum(lengths)[:-1]]) if len(lengths) else np.zeros(0, np.int64)
    items = np.arange(len(parents), dtype=np.int64) - firsts[parents] + 1
    take = pa.array(parents, pa.int64())
    flat = layout.flat()
    columns = {}
    for name in flat.columns:
        if name == layout.document and layout.row_ids:
            columns[name] = pa.array(first_row + offset + parents, pa.int64())
        elif name in (layout.loss, *per_token):
            columns[name] = pc.list_flatten(batch.column(name))
        else:
            columns[name] = batch.column(name).take(take)
    no_tokens = np.flatnonzero(lengths == 0)
    if not len(no_tokens):
        empty = ()
    elif layout.row_ids:
        empty = tuple((first_row + offset + no_tokens).tolist())
    else:
        empty = tuple(v for v in batch.column(layout.document).take(pa.array(no_tokens)).to_pylist() if v is not None)
    return FlatBatch(pa.RecordBatch.from_pydict(columns), offset, rows=offset + parents + 1, items=items,
                     starts=items == 1, empty=empty)
