"""The clipping eps and row-sum tolerance of a run's prediction columns, from their dtype.

A float32 array (PyTorch's softmax) is clipped with float32's eps and its rows checked with
float32's tolerance, as ``sklearn.metrics.log_loss`` takes both from the array it is given;
text written from float32 values keeps float64's eps but float32's row-sum tolerance.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Sequence

from .schema import FLOAT32_EPS, FLOAT64_EPS, Layout


def with_input_dtype(layout: Layout, dtypes: Sequence) -> Layout:
    """``layout`` with the clipping eps and row-sum tolerance of its prediction columns' dtype.

    Parameters
    ----------
    layout : Layout
        A detected layout (float64 tolerances).
    dtypes : sequence of numpy dtypes
        The stored dtype of each prediction column.

    Returns
    -------
    Layout
        With ``eps`` the machine epsilon of the columns' common dtype when that is a float
        narrower than float64 (float32 from PyTorch), ``row_sum_tolerance`` its square root,
        as ``sklearn.metrics.log_loss`` takes them from the array it is given.
    """
    import numpy as np

    if not dtypes:
        return layout
    common = np.result_type(*dtypes)
    if not np.issubdtype(common, np.floating) or np.finfo(common).eps <= FLOAT64_EPS:
        return layout
    eps = float(np.finfo(common).eps)
    return replace(layout, eps=eps, row_sum_tolerance=math.sqrt(eps))


#: Text whose probabilities carry float32's precision gets float32's row-sum tolerance only
#: when at least this share of them is printed with 7 or more significant digits, as a
#: float32 array written by ``DataFrame.to_csv`` is: hand-typed short decimals (0.25, 0.7)
#: also fit in float32 and keep float64's tolerance.
FLOAT32_TEXT_LONG_SHARE = 0.1
FLOAT32_TEXT_NOTE = (
    "row sums checked with float32's tolerance ({tolerance:.2g}): the probabilities were written "
    "from float32 values, as DataFrame.to_csv writes a float32 array (clipping keeps float64's eps)"
)


def printed_with_float32_precision(values) -> bool:
    """Whether numbers read from text were written from float32 values.

    True when every finite value is a float32 value up to the rounding of its own last
    printed digit, and a fair share of them (:data:`FLOAT32_TEXT_LONG_SHARE`) have 7 or more
    significant digits, as machine-written numbers do. ``DataFrame.to_csv`` writes a float32
    array as float32's shortest decimals and ``to_json`` with 10 decimals: both pass. Text
    written from float64 values is about 1e-8 (relative) away from the nearest float32, far
    more than its last digit: it fails, as do hand-typed short decimals (0.25, 0.7).

    Parameters
    ----------
    values : ndarray of float64
        Parsed prediction values (a sample of the file).

    Returns
    -------
    bool
    """
    import numpy as np

    x = np.asarray(values, dtype=np.float64).ravel()
    x = x[np.isfinite(x) & (x != 0)]
    if x.size == 0:
        return False
    if x.size > 256 and not printed_with_float32_precision(x[:256]):
        return False  # float64 text fails at once; the string work is the cost
    shortest = x.astype(str)  # numpy prints the shortest decimal that reads back the same
    mantissa = np.char.partition(shortest, "e")[:, 0]
    digits = np.char.str_len(np.char.lstrip(np.char.replace(np.char.replace(mantissa, ".", ""), "-", ""), "0"))
    # Half a unit of the last printed digit: the rounding the writer may have done.
    last_digit = 0.5 * 10.0 ** (np.floor(np.log10(np.abs(x))) - digits + 1)
    with np.errstate(over="ignore", under="ignore"):
        off = np.abs(x - x.astype(np.float32).astype(np.float64))
    return bool(np.all(off <= last_digit * (1 + 1e-6)) and np.mean(digits >= 7) >= FLOAT32_TEXT_LONG_SHARE)


def with_float32_text_tolerance(layout: Layout) -> Layout:
    """``layout`` with float32's row-sum tolerance and a note saying why (see :func:`printed_with_float32_precision`)."""
    tolerance = math.sqrt(FLOAT32_EPS)
    return replace(
        layout, row_sum_tolerance=tolerance, notes=(*layout.notes, FLOAT32_TEXT_NOTE.format(tolerance=tolerance))
    )
