"""Predictions stored as one list per row (the Hugging Face ``datasets`` layout).

A column ``probs`` (or ``logits``) holding a list or fixed-size list of floats per row is the
probability (logit) layout with the classes in list order. The class names come from
``--classes``, a ``classes``/``label_names`` list column, or the Parquet file's Hugging Face
metadata (the ``ClassLabel`` names of the label column, whose values are then class indices).
Each batch is flattened to an n×k matrix by Arrow, without a Python loop per row; float32
values are widened exactly and keep float32's eps and tolerance.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import pyarrow as pa

from .errors import InputError, UsageError
from .reading import _numpy

#: List columns read as probabilities / logits when no other layout matched.
PROB_LIST_NAMES = ("probs", "probabilities", "proba", "probas", "predict_proba", "pred_probs",
                   "predictions", "prediction", "scores", "y_prob", "y_proba")
LOGIT_LIST_NAMES = ("logits", "logit", "pred_logits")
#: List columns whose first row names the classes in list order.
CLASS_NAME_COLUMNS = ("classes", "label_names", "class_names")


@dataclass(frozen=True)
class ListColumns:
    """What the schema says about list columns.

    Attributes
    ----------
    sizes : dict
        Each list-of-floats column: its fixed size, or None for variable-length lists.
    names : dict
        ``{label column: class names}`` from the file's Hugging Face ``ClassLabel`` metadata.
    first_value : callable or None
        ``first_value(column)`` is the first row's value of a column (a class-names list).
    lists : frozenset
        Every list, struct or map column, of floats or not (a list label is multilabel).
    """

    sizes: dict = field(default_factory=dict)
    names: dict = field(default_factory=dict)
    first_value: Callable[[str], object] | None = None
    lists: frozenset = frozenset()


def is_float_list(kind: pa.DataType) -> bool:
    """Whether an Arrow type is a list, large list or fixed-size list of floats."""
    return _is_list(kind) and pa.types.is_floating(kind.value_type)


def value_type(kind: pa.DataType) -> pa.DataType:
    """The element type of a list type; any other type as it is."""
    return kind.value_type if _is_list(kind) else kind


def _is_list(kind: pa.DataType) -> bool:
    return pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind)


def list_columns_of(schema: pa.Schema, first_value: Callable[[str], object] | None = None) -> ListColumns:
    """The list-of-floats columns of a schema and the class names in its metadata."""
    sizes = {f.name: (f.type.list_size if pa.types.is_fixed_size_list(f.type) else None)
             for f in schema if is_float_list(f.type)}
    lists = frozenset(f.name for f in schema if pa.types.is_nested(f.type))
    return ListColumns(sizes, _huggingface_names(schema.metadata or {}), first_value, lists)


def refuse_list_label(label: str | None, columns: Sequence[str], info: ListColumns | None, source: str) -> None:
    """Refuse a label column that holds a list per row: several labels a row is multilabel."""
    if info is None or label not in info.lists:
        return
    import shlex

    from .options import DEFAULT_PROB_PREFIXES

    column, name = next(((c, c[len(p):]) for p in DEFAULT_PROB_PREFIXES for c in columns
                         if c.startswith(p) and len(c) > len(p)), ("p_<class>", "<class>"))
    raise InputError(
        f"{source}, column {label!r}: a list of labels per row looks multilabel, but losslens scores "
        f"one class per row; multilabel: one run per label, e.g. with a 0/1 column is_{name} (1 where "
        f"{name} is among the labels): losslens metrics {shlex.quote(source)} --label is_{name} "
        f"--positive-prob {column}"
    )


def _huggingface_names(metadata: dict) -> dict:
    """``{column: names}`` of the ``ClassLabel`` features in a ``datasets`` Parquet file."""
    raw = metadata.get(b"huggingface")
    if raw is None:
        return {}
    try:
        features = json.loads(raw).get("info", {}).get("features", {})
    except (ValueError, AttributeError):
        return {}
    found = {}
    for name, feature in (features.items() if isinstance(features, dict) else ()):
        if isinstance(feature, dict) and feature.get("_type") == "ClassLabel" and feature.get("names"):
            found[name] = tuple(str(n) for n in feature["names"])
    return found


def find_list_prediction(columns: Sequence[str], options, info: ListColumns | None) -> tuple[str, str] | None:
    """``(kind, column)`` of a list prediction column, from ``--probs COL`` / ``--logits COL`` or its name."""
    from .class_names import LOGITS, PROBS

    if info is None or not info.sizes:
        return None
    for spec, kind in ((options.probs, PROBS), (options.logits, LOGITS)):
        if spec is not None:
            return (kind, spec) if spec in info.sizes else None
    if options.positive_prob or options.positive_logit:
        return None
    for names, kind in ((LOGIT_LIST_NAMES, LOGITS), (PROB_LIST_NAMES, PROBS)):
        column = next((c for c in columns if c.lower() in names and c in info.sizes), None)
        if column is not None:
            return kind, column
    return None


def list_classes(kind: str, column: str, label: str | None, options, info: ListColumns, source: str,
                 scan_labels, notes: list) -> tuple[tuple[str, ...], bool]:
    """The class names of a list column, and whether the labels are class indices.

    From ``--classes``, a class-names column, the label's ``ClassLabel`` metadata, or (for
    integer labels) the positions 0..k-1. Labels are indices when the names came from the
    metadata, or when they are integers in range and name none of the classes.
    """
    from .class_names import class_key, listing as _listing

    size = info.sizes[column]
    names, origin = _declared_names(label, options, info, source)
    labels = None
    if names is None:
        if size is None:
            size = _first_length(column, info, source)
        labels = [v for v, _, _ in scan_labels(label)] if label is not None and scan_labels else []
        if not all(isinstance(v, int) or class_key(v).isdigit() for v in labels):
            raise InputError(
                f"{source}, column {column!r}: a list per row names no classes, and the labels "
                f"{_listing(labels[:3])} are not positions in it; name the classes in list order "
                "with --classes A,B,..."
            )
        names, origin = tuple(str(j) for j in range(size)), "positions in the list"
    if size is not None and size != len(names):
        raise InputError(
            f"{source}, column {column!r}: lists of {size} values, but {len(names)} classes "
            f"({origin}: {_listing(names, 10)})"
        )
    by_index = origin == "the file's ClassLabel metadata"
    if not by_index and origin != "positions in the list" and label is not None and scan_labels:
        labels = [v for v, _, _ in scan_labels(label)]
        keys = {class_key(n) for n in names}
        by_index = bool(labels) and not any(class_key(v) in keys for v in labels) and all(
            class_key(v).isdigit() and int(class_key(v)) < len(names) for v in labels)
    notes.append(f"{kind} from the list column {column!r}, classes from {origin}"
                 + (": the labels are positions in that list" if by_index else ""))
    return names, by_index


def _declared_names(label, options, info: ListColumns, source):
    """Class names and where they came from, or ``(None, None)``."""
    if options.classes is not None:
        return tuple(options.classes), "--classes"
    for column in CLASS_NAME_COLUMNS:
        if info.first_value is not None:
            value = info.first_value(column)
            if isinstance(value, list) and value:
                return tuple(str(v) for v in value), f"the column {column!r}"
    if label is not None and label in info.names:
        return info.names[label], "the file's ClassLabel metadata"
    return None, None


def _first_length(column: str, info: ListColumns, source: str) -> int:
    value = info.first_value(column) if info.first_value is not None else None
    if not isinstance(value, list):
        raise UsageError(f"{source}, column {column!r}: name the classes in list order with --classes A,B,...")
    return len(value)


def first_value(source, column: str):
    """The first row's value of ``column`` in ``source`` (as Python), or None."""
    from .reading import iter_batches, read_schema

    if column not in read_schema(source).names:
        return None
    for _, batch in iter_batches(source, {column: None}):
        if batch.num_rows:
            return batch.column(0)[0].as_py()
    return None


def list_matrix(array: pa.Array, k: int, fail) -> np.ndarray:
    """An n×k float64 matrix of a list column's rows, refusing rows of another length.

    ``fail(index, message)`` raises naming the row.
    """
    import pyarrow.compute as pc

    if array.null_count:
        fail(int(np.flatnonzero(array.is_null().to_numpy(zero_copy_only=False))[0]), "missing (null) list")
    n = len(array)
    if not pa.types.is_fixed_size_list(array.type):
        lengths = _numpy(pc.list_value_length(array))
        wrong = np.flatnonzero(lengths != k)
        if wrong.size:
            fail(int(wrong[0]), f"a list of {int(lengths[wrong[0]])} values, but there are {k} classes")
    elif array.type.list_size != k:
        fail(0, f"lists of {array.type.list_size} values, but there are {k} classes")
    # flatten() honours the array's offset (a sliced batch); .values would not.
    return _numpy(array.flatten()).astype(np.float64, copy=False).reshape(n, k)
