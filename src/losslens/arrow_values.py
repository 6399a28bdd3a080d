"""Arrow columns as numpy, and read batches cast to the types the engine asked for.

The lowest piece of reading: :func:`_numpy` views a numeric Arrow array's buffer without
pandas, and :func:`_cast` converts a read batch to the wanted types, naming the file, column
and row of a value that does not convert. Used by :mod:`losslens.reading` and by
the scoring stages (which need only :func:`_numpy`, not the readers).
"""

from __future__ import annotations

import sys

import numpy as np
import pyarrow as pa

from .errors import InputError, where
from .text_formats import _first_line, _parse_float


#: Arrow types whose values buffer is a numpy array of this dtype.
_NUMPY_TYPES = {
    pa.float64(): np.float64,
    pa.float32(): np.float32,
    pa.float16(): np.float16,
    pa.int64(): np.int64,
    pa.int32(): np.int32,
    pa.int16(): np.int16,
    pa.int8(): np.int8,
    pa.uint64(): np.uint64,
    pa.uint32(): np.uint32,
    pa.uint16(): np.uint16,
    pa.uint8(): np.uint8,
}


def _numpy(array: pa.Array) -> np.ndarray:
    """A numeric Arrow array as numpy: a read-only view of its buffer, nulls as NaN.

    ``Array.to_numpy`` imports pandas (about a second of start-up) even for plain numbers,
    so fixed-width numbers are read from the values buffer directly.
    """
    dtype = _NUMPY_TYPES.get(array.type)
    if dtype is None:
        return array.to_numpy(zero_copy_only=False)
    if len(array) == 0:
        return np.empty(0, dtype=dtype)
    values = np.frombuffer(array.buffers()[1], dtype=dtype, count=len(array) + array.offset)[array.offset:]
    if array.null_count:
        bits = np.frombuffer(array.buffers()[0], dtype=np.uint8)
        valid = np.unpackbits(bits, bitorder="little", count=len(array) + array.offset)[array.offset:]
        values = values.astype(np.float64)
        values[valid == 0] = np.nan
    return values


def plain_numpy(array) -> np.ndarray:
    """``array.to_numpy(zero_copy_only=False)``, without pyarrow's pandas import where it can.

    Numbers and booleans without nulls (what ``pyarrow.compute`` results and id columns mostly
    are) are read from their buffers, as ``to_numpy`` gives them; anything else goes to
    ``to_numpy`` (which imports pandas, about 0.2 s, once).
    """
    if isinstance(array, pa.ChunkedArray):
        if array.num_chunks == 0:
            return array.to_numpy()
        return np.concatenate([plain_numpy(chunk) for chunk in array.chunks])
    if array.null_count == 0:
        if array.type in _NUMPY_TYPES:
            return _numpy(array)
        if pa.types.is_boolean(array.type):
            if len(array) == 0:
                return np.empty(0, dtype=bool)
            bits = np.frombuffer(array.buffers()[1], dtype=np.uint8)
            unpacked = np.unpackbits(bits, bitorder="little", count=len(array) + array.offset)
            return unpacked[array.offset:].astype(bool)
    return array.to_numpy(zero_copy_only=False)


#: Most values :func:`dictionary_codes` encodes itself while ``pyarrow.compute`` is not loaded.
NUMPY_ENCODE_ROWS = 16_384
#: Longest string (in bytes) it encodes itself.
NUMPY_ENCODE_BYTES = 64


def dictionary_codes(column: pa.Array) -> tuple[np.ndarray, list]:
    """``column.dictionary_encode()`` as ``(codes, values)``: each value's code and the distinct
    values in order of first occurrence (Arrow's dictionary), the same codes and values.

    Arrow's kernel is in ``pyarrow.compute``, whose import builds a Python wrapper and docstring
    for each of its 300 functions: 26 ms, an eighth of a small file's whole run, for a label
    column of a few hundred values. Up to :data:`NUMPY_ENCODE_ROWS` integers, or strings of at
    most :data:`NUMPY_ENCODE_BYTES` bytes without NUL, with no null, are encoded here by one
    stable sort while ``pyarrow.compute`` is not loaded; anything else, and everything once it
    is (then its kernel is the faster: 1.3 against 11 ms for 65,536 strings), by Arrow.
    """
    small = len(column) <= NUMPY_ENCODE_ROWS and not column.null_count
    keys = _sort_keys(column) if small and not _compute_loaded() else None
    if keys is None:
        encoded = column.dictionary_encode()
        return plain_numpy(encoded.indices), encoded.dictionary.to_pylist()
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    starts = np.ones(len(keys), dtype=bool)
    starts[1:] = ordered[1:] != ordered[:-1]
    first = order[starts]  # each distinct value's first row (the sort is stable)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first)] = np.arange(len(first))  # codes numbered by first occurrence, as Arrow's
    codes = np.empty(len(keys), dtype=np.int64)
    codes[order] = rank[np.cumsum(starts) - 1]
    firsts = np.sort(first)
    if keys.dtype.kind == "S":
        return codes, [keys[i].decode("utf-8") for i in firsts]
    return codes, [int(keys[i]) for i in firsts]


def _compute_loaded() -> bool:
    return "pyarrow.compute" in sys.modules


def _sort_keys(column: pa.Array) -> np.ndarray | None:
    """The values of an integer or string column as sortable numpy keys, or None (not encoded here)."""
    if pa.types.is_integer(column.type):
        return np.asarray(_numpy(column))
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        return None
    if len(column) == 0:
        return np.empty(0, dtype="S1")
    buffers = column.buffers()
    width = np.int64 if pa.types.is_large_string(column.type) else np.int32
    offsets = np.frombuffer(buffers[1], dtype=width, count=len(column) + 1 + column.offset)[column.offset:]
    data = np.frombuffer(buffers[2], dtype=np.uint8) if buffers[2] is not None else np.empty(0, dtype=np.uint8)
    lengths = np.diff(offsets)
    longest = max(int(lengths.max()), 1)
    used = data[int(offsets[0]):int(offsets[-1])]
    # numpy's bytes type ends a value at its first NUL: "a" and "a\0" would be one key.
    if longest > NUMPY_ENCODE_BYTES or not used.all():
        return None
    columns = np.arange(longest)
    inside = columns < lengths[:, None]
    padded = np.zeros((len(column), longest), dtype=np.uint8)
    padded[inside] = data[(offsets[:-1, None] + columns)[inside]]
    return padded.view(f"S{longest}").ravel()


def int64_array(values) -> pa.Array:
    """A numpy integer vector as an Arrow int64 array: ``pa.array`` of numpy imports pandas."""
    data = np.ascontiguousarray(values, dtype=np.int64)
    return pa.Array.from_buffers(pa.int64(), len(data), [None, pa.py_buffer(data)])


def bool_array(values) -> pa.Array:
    """A numpy boolean vector as an Arrow boolean array (bits packed here: no pandas import)."""
    flags = np.asarray(values, dtype=bool)
    bits = np.packbits(flags, bitorder="little")
    return pa.Array.from_buffers(pa.bool_(), len(flags), [None, pa.py_buffer(bits)])


#: Arrow types read into a numpy block by :func:`_row_group_slices` (others are copied by Arrow).
_FIXED_WIDTH = {
    pa.float64(): "float64", pa.float32(): "float32", pa.int64(): "int64", pa.int32(): "int32",
    pa.int16(): "int16", pa.int8(): "int8", pa.uint64(): "uint64", pa.uint32(): "uint32",
    pa.uint16(): "uint16", pa.uint8(): "uint8",
}


def _cast(source, batch: pa.RecordBatch, types, offset: int) -> pa.RecordBatch:
    arrays = []
    for name, wanted in types.items():
        column = batch.column(name)
        if wanted is not None and column.type != wanted:
            if wanted == pa.float64() and column.type in _NARROW_FLOATS:
                # Kept as stored: scoring computes in float64 but takes its clipping eps and
                # row-sum tolerance from this dtype, as scikit-learn's log_loss does.
                pass
            elif pa.types.is_floating(wanted) and not (
                pa.types.is_integer(column.type)
                or pa.types.is_floating(column.type)
                or pa.types.is_boolean(column.type)
                or pa.types.is_decimal(column.type)
                or pa.types.is_null(column.type)
            ):
                # Strings that hold numbers are fine; find the first that does not.
                import pyarrow.compute as pc

                text = pc.cast(column, pa.string())
                for i, value in enumerate(text.to_pylist()):
                    if value is not None and _parse_float(value) is None:
                        raise InputError(
                            f"{where(source.display, name, offset + i + 1)}: "
                            f"non-numeric value {value!r}"
                        )
                column = pa.array([_parse_float(v) for v in text.to_pylist()], pa.float64())
            else:
                import pyarrow.compute as pc  # here only: its import takes 26 ms (see dictionary_codes)

                try:
                    column = pc.cast(column, wanted)
                except pa.ArrowException as exc:
                    raise InputError(
                        f"{where(source.display, name)}: cannot read values of type "
                        f"{column.type} as {wanted} ({_first_line(exc)})"
                    ) from None
        arrays.append(column)
    return pa.RecordBatch.from_arrays(arrays, names=list(types))


#: Float types read as stored rather than widened to float64 (see :func:`_cast`).
_NARROW_FLOATS = (pa.float32(), pa.float16())


def is_list_type(kind) -> bool:
    """Whether an Arrow type holds a list per row (list, large list or fixed-size list)."""
    return pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind)
