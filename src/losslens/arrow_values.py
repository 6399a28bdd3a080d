"""Arrow columns as numpy, and read batches cast to the types the engine asked for.

The lowest piece of reading: :func:`_numpy` views a numeric Arrow array's buffer without
pandas, and :func:`_cast` converts a read batch to the wanted types, naming the file, column
and row of a value that does not convert. Used by :mod:`losslens.reading` and by
the scoring stages (which need only :func:`_numpy`, not the readers).
"""

from __future__ import annotations

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
    import pyarrow.compute as pc

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
                text = pc.cast(column, pa.string())
                for i, value in enumerate(text.to_pylist()):
                    if value is not None and _parse_float(value) is None:
                        raise InputError(
                            f"{where(source.display, name, offset + i + 1)}: "
                            f"non-numeric value {value!r}"
                        )
                column = pa.array([_parse_float(v) for v in text.to_pylist()], pa.float64())
            else:
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
