"""A batch's label column as class indices: the scoring stage's first step (see :mod:`losslens.batch`).

Pure: label values map to positions in ``layout.classes`` by name (:func:`losslens.schema.class_key`),
integer labels through a table (or as they are, when each is its own index), Hugging Face
``ClassLabel`` positions checked to be positions. A label without a class is reported with its
first row through the caller's ``fail``.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from .arrow_values import _numpy, dictionary_codes
from .not_predictions import continuous_labels, multi_hot_label
from .schema import Layout, class_key


def label_indices(column: pa.Array, layout: Layout, fail) -> np.ndarray:
    """Map a batch's label values to class indices by name, one Python call per distinct value.

    ``fail(column, row_index, message)`` raises the input error of a missing label or one
    without a prediction column (with a hint when the labels look like regression or multilabel).
    """
    if column.null_count:
        first = int(np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))[0])
        fail(layout.label, first, "missing (empty) label")
    if layout.labels_are_indices:
        return _label_positions(column, layout, fail)
    if pa.types.is_signed_integer(column.type) and len(column):
        labels = _small_integer_labels(_numpy(column), layout)
        if labels is not None:
            return labels
    if pa.types.is_dictionary(column.type):
        codes, values = _numpy(column.indices), column.dictionary.to_pylist()
    else:
        codes, values = dictionary_codes(column)
    index = layout.class_index
    lookup = np.empty(len(values), dtype=np.int64)
    for i, value in enumerate(values):
        if isinstance(value, str) and not value.strip():
            fail(layout.label, np.flatnonzero(codes == i)[0], "missing (empty) label")
        key = class_key(value)
        if key not in index:
            where_first = np.flatnonzero(codes == i)[0]
            known = ", ".join(repr(c) for c in layout.classes[:20])
            fail(
                layout.label,
                where_first,
                f"label {value!r} has no prediction column (classes with columns: {known})"
                + _label_hint(value, values),
            )
        lookup[i] = index[key]
    return lookup[codes]


def _label_hint(value, values) -> str:
    """What a label without a class says about the file: regression or multilabel, or ""."""
    if continuous_labels(values):
        return "; the labels look like regression (continuous values): losslens scores class probabilities"
    return multi_hot_label(value) or ""


def _label_positions(column: pa.Array, layout: Layout, fail) -> np.ndarray:
    """Labels that are positions in ``layout.classes`` (Hugging Face ``ClassLabel`` values)."""
    values = _numpy(column) if len(column) else np.empty(0, dtype=np.int64)
    bad = np.flatnonzero(~((values >= 0) & (values < layout.n_classes) & (values == np.floor(values))))
    if bad.size:
        shown = f"{values[bad[0]]:g}" if np.issubdtype(values.dtype, np.floating) else str(int(values[bad[0]]))
        unlabelled = " (datasets writes -1 for an example without a label: leave those rows out)" if shown == "-1" else ""
        fail(layout.label, bad[0], f"label {shown} is not a class position (0 to {layout.n_classes - 1}){unlabelled}")
    return values.astype(np.int64)


#: Widest range of integer labels mapped through a lookup table rather than a hash.
_INTEGER_LABEL_RANGE = 1 << 16


def _small_integer_labels(values: np.ndarray, layout: Layout) -> np.ndarray | None:
    """Class indices of integer labels through a table indexed by value, or None to fall back.

    The common case (labels 0..k-1) then needs neither a hash table nor ``pyarrow.compute``
    (26 ms to import; see :func:`losslens.arrow_values.dictionary_codes`). A label without a class gives None, so that the
    general path reports it with its first row.
    """
    lo, hi = int(values.min()), int(values.max())
    if hi - lo >= _INTEGER_LABEL_RANGE:
        return None
    index = layout.class_index
    if hi - lo < len(index) and all(index.get(class_key(v)) == v for v in range(lo, hi + 1)):
        # Each value in range is its own class index (labels 0..k-1 in column order): no table.
        return values.astype(np.int64)
    shifted = values - lo
    table = np.full(hi - lo + 1, -1, dtype=np.int64)
    for offset in np.flatnonzero(np.bincount(shifted)):
        key = class_key(int(offset) + lo)
        if key not in index:
            return None
        table[offset] = index[key]
    return table[shifted]
