"""The notebook API: ``losslens.evaluate(y_true, y_prob)`` in scikit-learn's argument order.

Arrays are turned into a one-run table (a label column and one probability column per
class, or one P(positive) column for binary) and handed to the engine, so the numbers are
the CLI's on the same data. Files and DataFrames still go straight to
:func:`losslens.engine.evaluate`.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

from .errors import InputError, UsageError

#: Names of the columns built from arrays; the classes' columns are PROB_PREFIX + class.
LABEL_COLUMN = "label"
PROB_PREFIX = "p_"
POSITIVE_COLUMN = "y_prob"
WEIGHT_COLUMN = "__weight"
SPLIT_COLUMN = "__split"
ID_COLUMN = "__id"


def _is_data(value) -> bool:
    """A file, folder, glob, list of paths, DataFrame or Arrow table: what the engine reads."""
    if isinstance(value, (str, os.PathLike)):
        return True
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, (str, os.PathLike)) for v in value):
        return True
    module = type(value).__module__
    return (module.startswith("pandas") and type(value).__name__ == "DataFrame") or module.startswith("pyarrow")


def _as_numpy(value, what: str):
    """``np.asarray`` of numpy, pandas or anything with ``__array__`` (torch tensors), dtype kept."""
    import numpy as np

    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor that requires grad
        value = value.detach().cpu()
    try:
        array = np.asarray(value)
    except Exception as exc:  # noqa: BLE001 - any conversion failure is the caller's input
        raise InputError(f"{what}: cannot be read as an array ({type(exc).__name__}: {exc})") from None
    if array.dtype == object and what == "y_prob":
        raise InputError("y_prob: holds non-numeric values; give an (n, k) array of probabilities")
    return array


def _plain(value) -> Any:
    """A numpy scalar as the plain Python value (``np.int64(3)`` → ``3``)."""
    return value.item() if hasattr(value, "item") and not isinstance(value, (str, bytes)) else value


def evaluate(data, y_prob=None, *, classes: Sequence | None = None, sample_weight=None, name: str | None = None,
             **options):
    """Evaluate predicted probabilities: arrays as scikit-learn takes them, or a file or table.

    Parameters
    ----------
    data : array-like, or str, path, list of paths, pandas.DataFrame, pyarrow.Table
        With ``y_prob``: the true labels ``y_true``, shape (n,) (numpy, pandas, a list, a
        torch tensor: anything with ``__array__``). Without: the predictions as files or
        a table, read as ``losslens metrics`` reads them (see :func:`losslens.engine.evaluate`).
    y_prob : array-like, optional
        Shape (n, k): column j is the probability of ``classes[j]``; or shape (n,): the
        probability of the positive class (the greater of two labels, as in scikit-learn).
        float32 is kept as given (no rounding through float64 text).
    classes : sequence, optional
        The classes in ``y_prob``'s column order. Default: the sorted distinct labels of
        ``y_true``, as ``sklearn.metrics.log_loss`` takes them. Give it when ``y_prob`` has
        columns for classes that do not occur in ``y_true``.
    sample_weight : array-like, optional
        One weight per example.
    name : str, optional
        The run's name (default ``"data"``, or the file stem).
    **options
        Further options of :class:`~losslens.options.Options` (``bins``, ``max_slices``,
        ``near_zero``, ...). With arrays, ``split`` may be an array of split names, ``by``
        a dict of slice name to array, and ``id`` an array of example ids.

    Returns
    -------
    Evaluation
        ``_repr_html_`` shows a card in Jupyter; ``to_html(path)`` and ``to_json(path)``
        write what ``losslens report`` writes.

    Raises
    ------
    InputError
        Shapes that do not agree, a label without a column, rows that are not probabilities;
        the message names the argument (and row, counted from 1).

    Notes
    -----
    The same numbers as the CLI: log loss equals ``sklearn.metrics.log_loss(y_true,
    y_prob, labels=classes)`` (probabilities clipped to [eps, 1 − eps], eps of float64).

    Examples
    --------
    >>> import losslens
    >>> evaluation = losslens.evaluate([0, 1, 1], [[0.8, 0.2], [0.3, 0.7], [0.4, 0.6]])
    >>> round(evaluation.overall.log_loss, 6)
    0.363548
    >>> list(evaluation.by_class)
    [0, 1]
    """
    from .engine import evaluate as evaluate_table

    if y_prob is None:
        if not _is_data(data):
            raise UsageError("give y_prob with y_true (losslens.evaluate(y_true, y_prob)), or a file or DataFrame")
        if classes is not None:
            options["classes"] = classes
        if sample_weight is not None:
            raise UsageError("sample_weight= goes with arrays; for a file or DataFrame name its column: weight='w'")
        return evaluate_table(data, name=name, **options)
    table, table_options = arrays_table(data, y_prob, classes=classes, sample_weight=sample_weight, options=options)
    return evaluate_table(table, name=name or "data", **table_options)


def arrays_table(y_true, y_prob, *, classes=None, sample_weight=None, options: dict | None = None):
    """The one-run Arrow table and options that :func:`evaluate` hands to the engine.

    Returns
    -------
    (pyarrow.Table, dict)
    """
    import numpy as np
    import pyarrow as pa

    options = dict(options or {})
    labels = _as_numpy(y_true, "y_true")
    probs = _as_numpy(y_prob, "y_prob")
    if labels.ndim != 1:
        raise InputError(f"y_true: expected shape (n,), got {labels.shape}")
    n = labels.shape[0]
    if probs.ndim not in (1, 2) or probs.shape[0] != n:
        raise InputError(f"y_prob: expected shape ({n},) or ({n}, k) to match y_true's {n} labels, got {probs.shape}")
    if not np.issubdtype(probs.dtype, np.floating):
        probs = probs.astype(np.float64)
    if labels.dtype.kind in "fc" and np.isnan(labels).any():
        raise InputError(f"y_true, row {int(np.flatnonzero(np.isnan(labels))[0]) + 1}: missing label (NaN)")
    if classes is None:
        found = np.unique(labels) if labels.dtype != object else sorted(set(labels.tolist()), key=str)
        class_values = [_plain(c) for c in found]
        if probs.ndim == 2 and probs.shape[1] != len(class_values):
            raise InputError(
                f"y_prob has {probs.shape[1]} columns but y_true has {len(class_values)} distinct labels; "
                "give classes=[...] in y_prob's column order"
            )
    else:
        class_values = [_plain(c) for c in (classes.tolist() if hasattr(classes, "tolist") else classes)]
        if probs.ndim == 2 and probs.shape[1] != len(class_values):
            raise InputError(f"y_prob has {probs.shape[1]} columns but classes= lists {len(class_values)}")
    names = [str(c) for c in class_values]
    if len(set(names)) != len(names):
        raise InputError(f"classes: two classes with the same name in {names}")
    columns: dict[str, Any] = {LABEL_COLUMN: pa.array(labels.tolist() if labels.dtype == object else labels)}
    table_options: dict[str, Any] = {"label": LABEL_COLUMN}
    if probs.ndim == 2:
        for j, c in enumerate(names):
            columns[PROB_PREFIX + c] = pa.array(np.ascontiguousarray(probs[:, j]))
        table_options.update(probs=PROB_PREFIX, classes=tuple(names))
    else:
        if len(names) != 2:
            raise InputError(
                f"y_prob of shape ({n},) is P(positive) for two classes, but there are {len(names)}: {names}; "
                "give classes=[negative, positive] or an (n, k) y_prob"
            )
        columns[POSITIVE_COLUMN] = pa.array(probs)
        table_options.update(positive_prob=POSITIVE_COLUMN, positive_label=names[1], classes=tuple(names))
    if sample_weight is not None:
        weights = _as_numpy(sample_weight, "sample_weight").astype(np.float64, copy=False)
        if weights.shape != (n,):
            raise InputError(f"sample_weight: expected shape ({n},), got {weights.shape}")
        columns[WEIGHT_COLUMN] = pa.array(weights)
        table_options["weight"] = WEIGHT_COLUMN
    for key, column in (("split", SPLIT_COLUMN), ("id", ID_COLUMN)):
        value = options.pop(key, None)
        if value is None:
            continue
        if isinstance(value, str):
            raise UsageError(f"{key}={value!r}: with arrays, give {key} as an array of {n} values")
        array = _as_numpy(value, key)
        if array.shape != (n,):
            raise InputError(f"{key}: expected shape ({n},), got {array.shape}")
        columns[column] = pa.array([str(v) for v in array.tolist()])
        table_options[key] = column
    by = options.pop("by", None)
    if by is not None:
        if not isinstance(by, dict):
            raise UsageError("by=: with arrays, give a dict of slice name to an array of values, e.g. by={'region': r}")
        for slice_name, values in by.items():
            array = _as_numpy(values, f"by[{slice_name!r}]")
            if array.shape != (n,):
                raise InputError(f"by[{slice_name!r}]: expected shape ({n},), got {array.shape}")
            if str(slice_name) in columns:
                raise UsageError(f"by: slice name {slice_name!r} is taken; choose another")
            columns[str(slice_name)] = pa.array([str(v) for v in array.tolist()])
        table_options["by"] = tuple(str(k) for k in by)
    for key in ("label", "probs", "logits", "positive_prob", "positive_logit", "positive_label", "targets", "weight"):
        if key in options:
            raise UsageError(f"{key}= describes file columns; with arrays, losslens builds the columns itself")
    table_options.update(options)
    return pa.table(columns), table_options


def label_value(name: str):
    """A class name as the plain Python label it most likely was: ``"3"`` → 3, ``"True"`` → True.

    Class names are text everywhere (the JSON, the tables); this gives notebooks their
    labels' type back. Only canonical spellings convert (``"03"`` and ``"1e3"`` stay text).
    """
    if name in ("True", "False"):
        return name == "True"
    try:
        number = int(name)
    except ValueError:
        pass
    else:
        if str(number) == name:
            return number
    try:
        real = float(name)
    except ValueError:
        return name
    return real if repr(real) == name else name


def compare(reference, candidate, *, names: Sequence[str] | None = None, n_worst: int = 20, **options):
    """Compare a candidate with a reference: the change of log loss with its 95% interval.

    Parameters
    ----------
    reference, candidate : Evaluation, or data as :func:`evaluate` takes it
        Two evaluations (compared unpaired: their examples are gone), or two files or
        DataFrames with an id column (``id="id"``), which are paired example by example.
    names : sequence of two str, optional
        Run names for data inputs (default: file stems).
    n_worst : int
        How many worst regressions a paired comparison lists.
    **options
        Options for evaluating data inputs.

    Returns
    -------
    losslens.comparison.Comparison
        ``log_loss_delta`` (candidate − reference, negative is better),
        ``log_loss_delta_ci95``, ``paired``, ``share_improved``, ``verdict``; ``to_dict()``
        is the JSON's ``comparisons`` item.
    """
    from .comparison import LossCollector, compare_runs
    from .engine import evaluate_runs
    from .evaluation import Evaluation

    if isinstance(reference, Evaluation) and isinstance(candidate, Evaluation):
        if options or names:
            raise UsageError("options and names apply to data inputs, not to finished evaluations")
        runs = (reference.run, candidate.run)
        if runs[0].name == runs[1].name:
            from dataclasses import replace

            runs = (runs[0], replace(runs[1], name=runs[1].name + "-2"))
        return compare_runs(Evaluation(runs=runs), None, n_worst)[0]
    if isinstance(reference, Evaluation) or isinstance(candidate, Evaluation):
        raise UsageError("give two evaluations or two data inputs (files, DataFrames), not one of each")
    collector = LossCollector()
    evaluation = evaluate_runs([reference, candidate], names=names, observers=[collector], **options)
    return compare_runs(evaluation, collector, n_worst)[0]
