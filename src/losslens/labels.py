"""Labels in a separate file, joined to the predictions on an id column (Kaggle style).

``losslens metrics preds.csv --labels truth.csv --id id`` reads ``truth.csv`` (id + label)
once into an Arrow table, checks that the ids pair up one to one with the predictions'
(a pass over the predictions' id column only), and then streams the predictions as usual,
each batch given its label column by a hash lookup (``pyarrow.compute.index_in``). Memory
is the labels' two columns, never a second copy of the predictions, and no Python object is
made per row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Sequence

import numpy as np
import pyarrow as pa

from .errors import InputError
from .options import DEFAULT_LABEL_COLUMNS, Options
from .reading import ReadOptions, Source, iter_batches, read_columns, read_schema, resolve, text_type

#: How many example ids an error message shows.
EXAMPLES = 3


@dataclass
class LabelTable:
    """The ids and labels of the labels file, and what the join found."""

    display: str
    id: str
    label: str
    ids: pa.Array
    values: pa.Array
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class JoinedSource:
    """A prediction file whose rows get their label from a :class:`LabelTable`.

    Read through :func:`losslens.reading.iter_batches` like any source; rows whose id has no
    label are dropped only with ``--allow-missing-labels`` (the join refuses them otherwise).
    """

    predictions: Source
    table: LabelTable
    #: For each prediction row, in file order, the row of its label in ``table`` (-1: none).
    positions: np.ndarray = field(compare=False, repr=False)
    allow_missing: bool = False

    @property
    def display(self) -> str:
        """The prediction file's name, for messages."""
        return self.predictions.display

    @property
    def format(self) -> str:
        """The prediction file's format."""
        return self.predictions.format

    @property
    def notes(self) -> tuple[str, ...]:
        """What was detected reading the prediction file."""
        return self.predictions.notes

    def schema(self) -> pa.Schema:
        """The prediction file's columns and the label column (replacing one of that name)."""
        own = read_schema(self.predictions)
        fields = [f for f in own if f.name != self.table.label]
        return pa.schema([*fields, pa.field(self.table.label, self.table.values.type)])

    def batches(self, types: dict) -> Iterator[tuple[int, pa.RecordBatch]]:
        """``(row_offset, batch)`` of the prediction file with the label column added."""
        import pyarrow.compute as pc

        label = self.table.label
        text = text_type(self.predictions)
        wanted = {name: (text if kind is None else kind) for name, kind in types.items() if name != label}
        if not wanted:  # only the label asked for: read the id, to count the rows
            wanted[self.table.id] = text
        for offset, batch in iter_batches(self.predictions, wanted):
            index = self.positions[offset: offset + batch.num_rows]
            if self.allow_missing:
                keep = index >= 0
                if not keep.all():
                    batch = batch.filter(pa.array(keep))
                    index = index[keep]
            labels = self.table.values.take(pa.array(index))
            if types.get(label) is not None and labels.type != types[label]:
                labels = pc.cast(labels, types[label])
            arrays = [labels if name == label else batch.column(name) for name in types]
            yield offset, pa.RecordBatch.from_arrays(arrays, names=list(types))


def join_labels(sources: Sequence[Source], options: Options) -> list[JoinedSource]:
    """Pair the prediction files of one run with ``options.labels`` on ``options.id``.

    Parameters
    ----------
    sources : sequence of Source
        The run's prediction files.
    options : Options
        ``labels`` (the labels file), ``id`` (the id column of both files), ``label``
        (the labels file's label column; default: the first of the usual label names, or
        its only column besides the id) and ``allow_missing_labels``.

    Returns
    -------
    list of JoinedSource

    Raises
    ------
    InputError
        An id is missing or repeated on either side (with counts and three example ids),
        or a column is not found.
    """
    import pyarrow.compute as pc

    read = ReadOptions(encoding=options.encoding, sep=options.sep, decimal=options.decimal)
    files = resolve(options.labels, read)
    columns = read_columns(files[0])
    id_column = options.id
    if id_column not in columns:
        raise InputError(
            f"{files[0].display}: id column {id_column!r} (from --id) not found in the labels file; "
            f"columns are: {', '.join(map(repr, columns))}"
        )
    label = _label_column(files[0].display, columns, id_column, options.label)
    ids, values = [], []
    for file in files:
        # Per file: a folder of labels may mix CSV and Parquet parts.
        for _, batch in iter_batches(file, {id_column: text_type(file), label: text_type(file)}):
            ids.append(_as_text(batch.column(0)))
            values.append(batch.column(1))
    ids = pa.chunked_array(ids, pa.string()).combine_chunks()
    values = pa.chunked_array(values).combine_chunks() if values else pa.array([], pa.string())
    display = options.labels
    _refuse_missing_ids(ids, display, id_column, 0)
    _refuse_duplicates(ids, display, id_column, "label")
    table = LabelTable(display=display, id=id_column, label=label, ids=ids, values=values)

    # One pass over the predictions' id column, one hash lookup per file: which label each
    # prediction row pairs with (-1: none). A lookup per batch would rebuild the hash table of
    # every label id for every batch.
    matched = np.zeros(len(ids), dtype=np.int64)
    unmatched, unmatched_examples, total = 0, [], 0
    positions = {}
    for source in sources:
        chunks = [batch.column(0) for _, batch in iter_batches(source, {id_column: text_type(source)})]
        column = _as_text(pa.chunked_array(chunks) if chunks else pa.array([], pa.string()))
        _refuse_missing_ids(column, source.display, id_column, 0)
        index = pc.index_in(column, value_set=ids)
        found = index.is_valid().to_numpy(zero_copy_only=False)
        position = index.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
        positions[source.display] = position
        total += len(position)
        if not found.all():
            unmatched += int((~found).sum())
            if len(unmatched_examples) < EXAMPLES:
                missing = column.filter(pa.array(~found)).slice(0, EXAMPLES).to_pylist()
                unmatched_examples += missing[: EXAMPLES - len(unmatched_examples)]
        matched += np.bincount(position[found], minlength=len(ids))
        del column, index, chunks
    shown = sources[0].display if len(sources) == 1 else f"{len(sources)} prediction files"
    repeated = np.flatnonzero(matched > 1)
    if repeated.size:
        examples = ids.take(pa.array(repeated[:EXAMPLES])).to_pylist()
        raise InputError(
            f"{shown}: {repeated.size} id(s) appear on more than one prediction row in column "
            f"{id_column!r} (e.g. {_ids(examples)}); each example needs one prediction row"
        )
    lonely = np.flatnonzero(matched == 0)
    if (unmatched or lonely.size) and not options.allow_missing_labels:
        parts = []
        if unmatched:
            parts.append(
                f"{unmatched} of {total} prediction rows have no label in {display} "
                f"(e.g. ids {_ids(unmatched_examples)})"
            )
        if lonely.size:
            examples = ids.take(pa.array(lonely[:EXAMPLES])).to_pylist()
            parts.append(
                f"{lonely.size} of {len(ids)} labels have no prediction (e.g. ids {_ids(examples)})"
            )
        raise InputError(
            f"{shown}: joining on {id_column!r}, " + " and ".join(parts)
            + "; score only the ids found in both with --allow-missing-labels"
        )
    note = f"labels from {display}, column {label!r}, joined on {id_column!r}"
    if unmatched or lonely.size:
        note += (
            f"; dropped {unmatched} prediction row(s) without a label and {lonely.size} "
            "label(s) without a prediction (--allow-missing-labels)"
        )
    table.notes.append(note)
    return [JoinedSource(s, table, positions[s.display], options.allow_missing_labels) for s in sources]


def _label_column(display: str, columns: Sequence[str], id_column: str, given: str | None) -> str:
    if given is not None:
        if given not in columns:
            raise InputError(
                f"{display}: label column {given!r} (from --label) not found in the labels file; "
                f"columns are: {', '.join(map(repr, columns))}"
            )
        return given
    found = next((c for c in DEFAULT_LABEL_COLUMNS if c in columns), None)
    if found is None:
        others = [c for c in columns if c != id_column]
        if len(others) == 1:
            return others[0]
        raise InputError(
            f"{display}: no label column in the labels file; looked for "
            f"{', '.join(DEFAULT_LABEL_COLUMNS)} among the columns {', '.join(map(repr, columns))}. "
            "Name it with --label COL"
        )
    return found


def _as_text(column: pa.Array) -> pa.Array:
    """Ids compared as text, so that 7 in a Parquet file pairs with "7" in a CSV file."""
    import pyarrow.compute as pc

    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    if pa.types.is_floating(column.type):
        # 7.0 pairs with 7: a float id column is usually an integer one with missing values.
        whole = pc.equal(pc.floor(column), column)
        if pc.all(whole).as_py():
            column = pc.cast(column, pa.int64())
    return column if pa.types.is_string(column.type) else pc.cast(column, pa.string())


def _refuse_missing_ids(ids: pa.Array, display: str, id_column: str, offset: int) -> None:
    """Refuse a null or blank id, naming its row (``offset`` rows come before ``ids``)."""
    import pyarrow.compute as pc

    missing = ids.is_null()
    if pa.types.is_string(ids.type):
        missing = pc.or_(missing, pc.equal(pc.utf8_trim_whitespace(ids), ""))
    if len(ids) and pc.any(missing).as_py():
        row = int(np.flatnonzero(missing.to_numpy(zero_copy_only=False))[0]) + 1 + offset
        raise InputError(f"{display}, column {id_column!r}, row {row}: missing (empty) id")


def _refuse_duplicates(ids: pa.Array, display: str, id_column: str, what: str) -> None:
    import pyarrow.compute as pc

    counts = pc.value_counts(ids)
    repeated = counts.filter(pc.greater(counts.field("counts"), 1))
    if len(repeated):
        examples = repeated.field("values").slice(0, EXAMPLES).to_pylist()
        raise InputError(
            f"{display}: {len(repeated)} id(s) appear more than once in column {id_column!r} "
            f"(e.g. {_ids(examples)}); each example needs one {what}"
        )


def _ids(values) -> str:
    return ", ".join(repr(v) for v in values)
