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

    Ids are compared as text; when that leaves rows unpaired and every id on both sides is a
    number (``1``, ``1.0``, `` 7``, ``0001``), with no two alike as numbers on either side,
    they are compared as numbers instead, and a layout note says so.

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
        no id pairs up at all (with examples from both sides, even with
        ``allow_missing_labels``), or a column is not found.
    """
    table = _read_labels(options)
    shown = sources[0].display if len(sources) == 1 else f"{len(sources)} prediction files"
    match = _match(sources, table, _text_key)
    numeric = None
    if match.unmatched or match.lonely.size:
        numeric, ambiguous = _numeric_match(sources, table)
        if numeric is not None and numeric.found > match.found:
            match = numeric
        else:
            numeric = None
            match.ambiguous = ambiguous
    repeated = np.flatnonzero(match.matched > 1)
    if repeated.size:
        examples = table.ids.take(pa.array(repeated[:EXAMPLES])).to_pylist()
        raise InputError(
            f"{shown}: {repeated.size} id(s) appear on more than one prediction row in column "
            f"{table.id!r} (e.g. {_ids(examples)}); each example needs one prediction row"
        )
    if match.total and not len(table.ids):
        raise InputError(f"{table.display}: the labels file has no rows (column {table.id!r} is empty)")
    if match.total and not match.found:
        # Nothing pairs up: --allow-missing-labels would drop every row, so it is no advice.
        raise InputError(
            f"{shown}: joining on {table.id!r}, no prediction id matched a label id of {table.display} "
            f"(prediction ids {_ids(match.unmatched_ids.slice(0, EXAMPLES).to_pylist())}; "
            f"label ids {_ids(table.ids.slice(0, EXAMPLES).to_pylist())}); "
            + (_format_hint(match, table, shown) or f"check that --id {table.id} names the same ids in both files")
        )
    if (match.unmatched or match.lonely.size) and not options.allow_missing_labels:
        raise InputError(_missing_message(match, table, shown))
    note = f"labels from {table.display}, column {table.label!r}, joined on {table.id!r}"
    if numeric is not None:
        pred, label = numeric.example or ("", "")
        note += f", matched as numbers ({pred!r} in {shown} is {label!r} in {table.display})"
    if match.unmatched or match.lonely.size:
        note += (
            f"; dropped {match.unmatched} prediction row(s) without a label and {match.lonely.size} "
            "label(s) without a prediction (--allow-missing-labels)"
        )
    table.notes.append(note)
    return [JoinedSource(s, table, match.positions[s.display], options.allow_missing_labels) for s in sources]


def _read_labels(options: Options) -> LabelTable:
    """The labels file's ids (as text, none missing or repeated) and labels."""
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
    return LabelTable(display=display, id=id_column, label=label, ids=ids, values=values)


@dataclass
class _Match:
    """Which label each prediction row pairs with, under one way of comparing ids."""

    #: Prediction file -> for each row, the row of its label in the table (-1: none).
    positions: dict
    #: For each label, how many prediction rows pair with it.
    matched: np.ndarray
    total: int
    unmatched: int
    #: Prediction ids without a label (the first :data:`HINT_IDS`), for messages.
    unmatched_ids: pa.Array
    #: A prediction id and the label id it paired with although written differently.
    example: tuple | None = None
    #: Why numbers could not be compared (two ids alike as numbers), for messages.
    ambiguous: str | None = None

    @property
    def found(self) -> int:
        return self.total - self.unmatched

    @property
    def lonely(self) -> np.ndarray:
        """Rows of the labels no prediction pairs with."""
        return np.flatnonzero(self.matched == 0)


#: How many unpaired prediction ids are kept to look for ids written another way.
HINT_IDS = 10_000


def _match(sources: Sequence[Source], table: LabelTable, key) -> _Match:
    """Pair every prediction row with a label by ``key(id)``, one hash lookup per file.

    A lookup per batch would rebuild the hash table of every label id for every batch.
    """
    import pyarrow.compute as pc

    keys = key(table.ids)
    matched = np.zeros(len(keys), dtype=np.int64)
    positions, unmatched, total, lost, example = {}, 0, 0, [], None
    for source in sources:
        column = _prediction_ids(source, table.id)
        index = pc.index_in(key(column), value_set=keys)
        found = index.is_valid().to_numpy(zero_copy_only=False)
        position = index.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
        positions[source.display] = position
        total += len(position)
        if not found.all():
            unmatched += int((~found).sum())
            if sum(map(len, lost)) < HINT_IDS:
                lost.append(column.filter(pa.array(~found)).slice(0, HINT_IDS))
        if key is not _text_key and example is None and found.any():
            paired = column.filter(pa.array(found))
            differs = pc.not_equal(paired, table.ids.take(pa.array(position[found])))
            if pc.any(differs).as_py():
                first = int(np.flatnonzero(differs.to_numpy(zero_copy_only=False))[0])
                example = (paired[first].as_py(), table.ids[int(position[found][first])].as_py())
        matched += np.bincount(position[found], minlength=len(keys))
    lost_ids = pa.chunked_array(lost, pa.string()).combine_chunks() if lost else pa.array([], pa.string())
    return _Match(positions, matched, total, unmatched, lost_ids, example)


def _prediction_ids(source: Source, id_column: str) -> pa.Array:
    """The id column of one prediction file, as text, none missing."""
    chunks = [batch.column(0) for _, batch in iter_batches(source, {id_column: text_type(source)})]
    column = _as_text(pa.chunked_array(chunks) if chunks else pa.array([], pa.string()))
    _refuse_missing_ids(column, source.display, id_column, 0)
    return column


def _numeric_match(sources: Sequence[Source], table: LabelTable) -> tuple[_Match | None, str | None]:
    """The ids paired as numbers, or None and (if that is why) which ids are alike as numbers.

    Only when every id on both sides is a number and no two on one side are the same number:
    otherwise "1" and "1.0" in one file would make the pairing depend on which came first.
    """
    import pyarrow.compute as pc

    sides = [(table.display, table.ids)] + [(s.display, _prediction_ids(s, table.id)) for s in sources]
    for display, ids in sides:
        keys = _number_key(ids)
        if keys.null_count:
            return None, None
        counts = pc.value_counts(keys)
        repeated = counts.filter(pc.greater(counts.field("counts"), 1))
        if len(repeated):
            same = ids.filter(pc.equal(keys, repeated.field("values")[0])).slice(0, 2).to_pylist()
            return None, f"{_ids(same)} are the same number in {display}"
    if len(sources) > 1:  # the same number in two prediction files
        keys = pa.chunked_array([_number_key(ids) for _, ids in sides[1:]]).combine_chunks()
        if len(pc.unique(keys)) < len(keys):
            return None, "the prediction files share ids written differently"
    return _match(sources, table, _number_key), None


def _missing_message(match: _Match, table: LabelTable, shown: str) -> str:
    """Some ids pair up and some do not: the counts, examples, and what to do."""
    parts = []
    if match.unmatched:
        parts.append(
            f"{match.unmatched} of {match.total} prediction rows have no label in {table.display} "
            f"(e.g. ids {_ids(match.unmatched_ids.slice(0, EXAMPLES).to_pylist())})"
        )
    if match.lonely.size:
        examples = table.ids.take(pa.array(match.lonely[:EXAMPLES])).to_pylist()
        parts.append(f"{match.lonely.size} of {len(table.ids)} labels have no prediction (e.g. ids {_ids(examples)})")
    hint = _format_hint(match, table, shown)
    return (
        f"{shown}: joining on {table.id!r}, " + " and ".join(parts)
        + (f"; {hint}, or" if hint else ";") + " score only the ids found in both with --allow-missing-labels"
    )


def _format_hint(match: _Match, table: LabelTable, shown: str) -> str | None:
    """Say so when unpaired ids on both sides are the same but for their writing (spaces, case, 1.0)."""
    import pyarrow.compute as pc

    lonely = table.ids.take(pa.array(match.lonely))
    if not len(lonely) or not len(match.unmatched_ids):
        return None
    index = pc.index_in(_loose_key(match.unmatched_ids), value_set=_loose_key(lonely))
    if not index.is_valid().to_numpy(zero_copy_only=False).any():
        return None
    first = int(np.flatnonzero(index.is_valid().to_numpy(zero_copy_only=False))[0])
    pred, label = match.unmatched_ids[first].as_py(), lonely[index[first].as_py()].as_py()
    why = f" and cannot be paired as numbers ({match.ambiguous})" if match.ambiguous else ""
    return (
        f"the ids differ in format{why}: {pred!r} in {shown} is {label!r} in {table.display}; "
        "write them the same way in both files"
    )


_NUMBER = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"


def _text_key(ids: pa.Array) -> pa.Array:
    """Ids compared as written."""
    return ids


def _number_key(ids: pa.Array) -> pa.Array:
    """Each id as the text of its number (null for an id that is no number): 1.0, " 7", 0001 -> 1, 7, 1.

    Integers are kept exact, however long, by trimming their text; other numbers that are
    whole (within 2**53) become that integer, the rest the shortest text of their float.
    """
    import pyarrow.compute as pc

    text = pc.utf8_trim_whitespace(ids)
    number = pc.match_substring_regex(text, _NUMBER)
    integer = pc.match_substring_regex(text, r"^[+-]?[0-9]+$")
    digits = pc.replace_substring_regex(pc.replace_substring_regex(text, r"^\+", ""), r"^(-?)0*([0-9])", r"\1\2")
    values = pc.cast(pc.if_else(number, text, "0"), pa.float64())
    whole = pc.and_(pc.equal(pc.floor(values), values), pc.less_equal(pc.abs(values), 2.0**53))
    as_integer = pc.cast(pc.cast(pc.if_else(whole, values, 0.0), pa.int64()), pa.string())
    key = pc.if_else(integer, digits, pc.if_else(whole, as_integer, pc.cast(values, pa.string())))
    return pc.if_else(number, key, pa.scalar(None, pa.string()))


def _loose_key(ids: pa.Array) -> pa.Array:
    """Ids as numbers where they are, else trimmed and lower-cased: to spot ids written another way."""
    import pyarrow.compute as pc

    return pc.coalesce(_number_key(ids), pc.utf8_lower(pc.utf8_trim_whitespace(ids)))


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
