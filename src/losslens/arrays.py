"""The notebook API: ``losslens.evaluate(y_true, y_prob)`` in scikit-learn's argument order.

Arrays are turned into a one-run table (a label column and one probability or logit column
per class, or one column for binary) and handed to the engine, so the numbers are the CLI's
on the same data. Columns are matched to classes **by name** when ``y_prob`` carries names
that name the labels (a pandas or polars DataFrame, a Series named after its class), by the
CLI's rule (:func:`losslens.schema.class_key`); unnamed arrays are positional. Files and
DataFrames with a label column still go straight to :func:`losslens.engine.evaluate`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Sequence

from .errors import InputError, UsageError
from .options import DEFAULT_WORST

#: Names of the columns built from arrays; the classes' columns are PROB_PREFIX + class.
LABEL_COLUMN = "label"
PROB_PREFIX = "p_"
LOGIT_PREFIX = "logit_"
POSITIVE_COLUMN = "y_prob"
POSITIVE_LOGIT_COLUMN = "y_logit"
WEIGHT_COLUMN = "__weight"
SPLIT_COLUMN = "__split"
ID_COLUMN = "__id"
#: Floats narrower than float32 that numpy or Arrow cannot hold (bfloat16) or that would
#: clip at their own coarse eps (float16): cast to float32, exactly.
NARROW_FLOATS = ("bfloat16", "float16")
#: scikit-learn's ``log_loss(..., labels=)`` is not losslens's ``classes=``: one line that says how.
SKLEARN_LABELS = (
    "labels= is scikit-learn's keyword; losslens calls it classes= and takes it in y_prob's column "
    "order, while scikit-learn takes y_prob's columns in sorted order whatever order labels= has: "
    "classes=sorted(labels) gives scikit-learn's number (a labels file goes with a file input: "
    "labels='labels.csv', id='id')"
)


def _module(value) -> str:
    return type(value).__module__.split(".")[0]


def _is_data(value) -> bool:
    """A file, folder, glob, list of paths, DataFrame or Arrow table: what the engine reads."""
    if isinstance(value, (str, os.PathLike)):
        return True
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, (str, os.PathLike)) for v in value):
        return True
    frame = _module(value) in ("pandas", "polars") and type(value).__name__ == "DataFrame"
    return frame or _module(value) == "pyarrow"


def _as_numpy(value, what: str):
    """``np.asarray`` of numpy, pandas, polars or anything with ``__array__`` (torch tensors), dtype kept."""
    import numpy as np

    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor that requires grad
        value = value.detach().cpu()
    try:
        array = np.asarray(value)
    except Exception as exc:  # noqa: BLE001 - any conversion failure is the caller's input
        raise InputError(f"{what}: cannot be read as an array ({type(exc).__name__}: {exc})") from None
    return array


def _plain(value) -> Any:
    """A numpy scalar as the plain Python value (``np.int64(3)`` → ``3``)."""
    return value.item() if hasattr(value, "item") and not isinstance(value, (str, bytes)) else value


@dataclass(frozen=True)
class Predictions:
    """``y_prob`` or ``logits`` as a float array, with the names its columns carry.

    Attributes
    ----------
    values : ndarray
        Shape (n,) or (n, k); float32 or float64 as given (narrower floats cast to float32).
    names : list or None
        The DataFrame's column names, or ``[name]`` of a named Series; None for arrays.
    default_names : bool
        The names are a library's default (pandas' RangeIndex 0..k-1, polars'
        ``column_0``...): they name the classes only when they are exactly the classes.
    cast_from : str or None
        ``"bfloat16"`` or ``"float16"`` when the values were cast to float32.
    what : str
        The argument's name for messages: ``"y_prob"`` or ``"logits"``.
    """

    values: Any
    names: list | None
    default_names: bool
    cast_from: str | None
    what: str


def predictions(value, what: str = "y_prob") -> Predictions:
    """Read ``y_prob`` (or ``logits``): numpy, pandas, polars, torch (any float dtype) or a list.

    A one-column frame is a named (n,) column, as scikit-learn takes an (n, 1) ``y_pred``.
    """
    import numpy as np

    names, default, cast_from = None, False, None
    module, kind = _module(value), type(value).__name__
    if module == "pandas" and kind == "DataFrame":
        import pandas as pd

        names = list(value.columns)
        default = isinstance(value.columns, pd.RangeIndex) and value.columns.start == 0 and value.columns.step == 1
    elif module == "polars" and kind == "DataFrame":
        names = list(value.columns)
        default = names == [f"column_{i}" for i in range(len(names))]
    elif module in ("pandas", "polars") and kind == "Series":
        # An unnamed pandas Series has name None, a polars one "".
        names = None if value.name is None or value.name == "" else [value.name]
    elif module == "torch" and str(getattr(value, "dtype", "")) in (f"torch.{t}" for t in NARROW_FLOATS):
        cast_from = str(value.dtype).removeprefix("torch.")
        value = value.detach().cpu().float()
    array = _as_numpy(value, what)
    if array.dtype == np.float16:
        cast_from, array = "float16", array.astype(np.float32)
    if not np.issubdtype(array.dtype, np.floating):
        try:
            array = array.astype(np.float64)
        except (TypeError, ValueError):
            raise InputError(f"{what}: holds non-numeric values; give an (n, k) array of "
                             f"{'logits' if what == 'logits' else 'probabilities'}") from None
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    return Predictions(array, names, default, cast_from, what)


def distinct_labels(labels) -> list:
    """The sorted distinct labels as plain Python values, as ``sklearn.metrics.log_loss`` finds them."""
    import numpy as np

    found = np.unique(labels) if labels.dtype != object else sorted(set(labels.tolist()), key=str)
    return [_plain(c) for c in found]


def column_classes(preds: Predictions, found: list, declared: list | None) -> tuple[list[str], list[int]]:
    """The classes in report order and, for each, the index of its column in ``preds.values``.

    By name when the columns name the classes (see :func:`_by_name`); otherwise column j is
    ``declared[j]``, or the j-th sorted label, as scikit-learn takes an array.
    """
    named = _by_name(preds, found, declared)
    if named is not None:
        return named
    k = preds.values.shape[1]
    if declared is None and k != len(found):
        raise InputError(
            f"{preds.what} has {k} columns but y_true has {len(found)} distinct labels; "
            f"give classes=[...], one per column of {preds.what}, in order"
        )
    if declared is not None and k != len(declared):
        raise InputError(f"{preds.what} has {k} columns but classes= lists {len(declared)}")
    return [str(c) for c in (declared if declared is not None else found)], list(range(k))


def _by_name(preds: Predictions, found: list, declared: list | None) -> tuple[list[str], list[int]] | None:
    """Classes and column indices from the column names, or None when the names name no class.

    Names compare as the CLI compares a column name with a label (:func:`~losslens.schema.class_key`:
    ``1`` is ``1.0`` and ``"1"``, True is 1), with the CLI's prefixes (``p_cat``) when only
    they make the names name classes. A library's default names (0..k-1) count only when
    they are exactly the classes, so ``DataFrame(model.predict_proba(X))`` stays positional
    for labels other than 0..k-1.
    """
    from .schema import _listing, class_key

    if preds.names is None:
        return None
    wanted = declared if declared is not None else found
    wanted_keys = [class_key(c) for c in wanted]
    names, keys, named = _name_keys(preds.names, {*wanted_keys, *(class_key(c) for c in found)})
    shown = f"{preds.what}'s columns {_listing(preds.names, 10)}"
    if preds.default_names:
        if sorted(keys) != sorted(wanted_keys):
            return None
        if declared is not None and keys != wanted_keys:
            raise UsageError(
                f"{shown} are default positions, but classes=[{_listing(declared, 10)}] orders the same "
                "names differently; name the columns (DataFrame(p, columns=classes)) or pass a plain array"
            )
    elif not named:
        return None  # names that name no class (x0, x1, ...): positional, as an array
    for i, key in enumerate(keys):
        if key in keys[:i]:
            raise InputError(f"{shown}: {names[keys.index(key)]!r} and {names[i]!r} are both class {names[i]!r}")
    if declared is not None:
        if sorted(keys) != sorted(wanted_keys):
            raise UsageError(
                f"{shown} and classes=[{_listing(declared, 10)}] disagree; name the columns after the classes, "
                "leave out classes= to take the columns' names, or pass a plain array to take classes= in order"
            )
        return [str(c) for c in declared], [keys.index(k) for k in wanted_keys]
    missing = [c for c in found if class_key(c) not in keys]
    if missing:
        raise InputError(
            f"y_true: label {str(missing[0])!r} has no column among {shown}; name the columns after the "
            f"classes (columns=model.classes_), or pass a plain array with classes= in its column order"
        )
    return [str(n) for n in names], list(range(len(names)))


def _name_keys(names: list, known: set) -> tuple[list, list, bool]:
    """The names (plain values), their class keys, and whether any of them is a known class.

    A name is tried as it is, then without the CLI's prefixes (``p_``, ``proba_``, ``logit_``):
    ``df[["p_stay", "p_churn"]]`` names its classes as a file's columns do.
    """
    from .schema import _strip_known_prefix, class_key

    names = [_plain(n) for n in names]
    keys = [class_key(n) for n in names]
    if set(keys) & known:
        return names, keys, True
    stripped = [_strip_known_prefix(n) if isinstance(n, str) else n for n in names]
    stripped_keys = [class_key(n) for n in stripped]
    if set(stripped_keys) & known:
        return stripped, stripped_keys, True
    return names, keys, False


def binary_classes(preds: Predictions, found: list, declared: list | None,
                   positive_label=None) -> tuple[list[str], int]:
    """The two classes of an (n,) ``y_prob`` and the index of the one it is the probability of.

    A Series named after a class is P(that class). Otherwise: ``positive_label``, the second
    of ``classes=[negative, positive]``, or the greater of two numeric labels (scikit-learn's
    ``pos_label``); two text labels have no natural order, and the CLI's rule refuses to guess.
    """
    from .schema import _listing, class_key

    two = declared if declared is not None else found
    n = preds.values.shape[0]
    if len(two) != 2:
        raise InputError(
            f"{preds.what} of shape ({n},) is P(positive) for two classes, but there are {len(two)}: "
            f"{[str(c) for c in two]}; give classes=[negative, positive] or an ({n}, k) {preds.what}"
        )
    names, keys = [str(c) for c in two], [class_key(c) for c in two]
    named, positive = None, None
    if preds.names and not preds.default_names:  # DataFrame(p1) has column 0: a position, not class 0
        (named,), (key,), matched = _name_keys(preds.names, {*keys, *(class_key(c) for c in found)})
        if matched and key not in keys:  # a label of y_true that classes= leaves out
            raise UsageError(
                f"{preds.what} is named {str(named)!r}, which classes=[{_listing(declared)}] does not list"
            )
        positive = keys.index(key) if matched else None
        _check_not_a_position(preds, named, positive, names, keys)
    if positive_label is not None:
        if class_key(positive_label) not in keys:
            raise InputError(f"positive_label={str(positive_label)!r} is not one of the classes {_listing(names)}")
        if positive is not None and keys[positive] != class_key(positive_label):
            raise UsageError(f"{preds.what} is named {str(named)!r} but positive_label={str(positive_label)!r}")
        return names, keys.index(class_key(positive_label))
    if positive is not None:
        return names, positive
    if declared is not None:
        return names, 1
    try:
        values = [float(k) for k in keys]
    except ValueError:
        a, b = names
        raise InputError(
            f"{preds.what} of shape ({n},) holds one probability, but the labels {a!r} and {b!r} have no "
            f"natural order: it could be P({a!r}) or P({b!r}); name it after its class "
            f"(pandas.Series(p, name={b!r})) or say positive_label={b!r} (scikit-learn takes the later in sorted order)"
        ) from None
    return names, values.index(max(values))


def _check_not_a_position(preds: Predictions, named, positive, names: list[str], keys: list[str]) -> None:
    """Refuse a Series whose integer name is one class by name and the other by position.

    ``pd.DataFrame(model.predict_proba(X))[1]`` is named 1: with labels 1 and 2 that is
    class 1 by name but column 1 (class 2) of ``predict_proba``. Labels 0 and 1 agree both ways.
    """
    if positive is None or isinstance(named, bool) or not isinstance(named, int) or named not in (0, 1):
        return
    try:
        by_position = sorted(range(2), key=lambda i: float(keys[i]))[named]
    except ValueError:
        return  # text labels: an integer name cannot be a position among them
    if by_position != positive:
        raise InputError(
            f"{preds.what} is named {named}, which is class {names[positive]!r} by name but column {named} "
            f"(class {names[by_position]!r}) of predict_proba by position; rename it after the class it is "
            f"the probability of: .rename({names[by_position]}) or .rename({names[positive]})"
        )


def evaluate(data, y_prob=None, *, classes: Sequence | None = None, sample_weight=None, name: str | None = None,
             logits=None, **options):
    """Evaluate predicted probabilities: arrays as scikit-learn takes them, or a file or table.

    Parameters
    ----------
    data : array-like, or str, path, list of paths, pandas or polars DataFrame, pyarrow.Table
        With ``y_prob`` (or ``logits``): the labels ``y_true``, shape (n,) (numpy, pandas,
        polars, a list, a torch tensor). Without: files or a table, read as ``losslens
        metrics`` reads them: classifier, token, sequence or lm-eval output, as it detects.
    y_prob : array-like, optional
        Shape (n, k). A pandas or polars DataFrame whose column names name the labels
        (``DataFrame(p, columns=model.classes_)``, any order) is matched **by name**, as the
        CLI matches a file's columns; otherwise column j is ``classes[j]``. Shape (n,): the
        probability of the class a Series is named after, else of the greater of two numeric
        labels (scikit-learn's ``pos_label``), or of ``positive_label``. float32 is kept;
        float16 and bfloat16 (torch) are cast to float32, exactly.
    classes : sequence, optional
        The classes in ``y_prob``'s column order. Default: the column names when they name
        the labels, else the sorted distinct labels of ``y_true`` (as
        ``sklearn.metrics.log_loss``). Column names that disagree with it are refused.
    sample_weight : array-like, optional
        One weight per example.
    name : str, optional
        The run's name (default ``"data"``, or the file stem).
    logits : array-like, optional
        Instead of ``y_prob``: logits, (n, k) or (n,) (log-odds), named or positional as
        ``y_prob``; scored by log-softmax in float64, never clipped. With a file,
        ``logits="logit_"`` names its columns instead.
    **options
        Further options of :class:`~losslens.options.Options` (``bins``, ``near_zero``,
        ...). With arrays, ``split`` and ``id`` may be arrays, ``by`` a dict of slice name to
        array, and ``positive_label`` the class an (n,) ``y_prob`` is the probability of.

    Returns
    -------
    Evaluation, LMEvaluation or LMEvalEvaluation
        Classifier runs, language-model runs or lm-eval tasks. A card in Jupyter; ``to_html()``
        and ``to_json()`` give (or, with a path, write) what ``losslens report`` writes.

    Raises
    ------
    InputError
        Shapes that do not agree, a label without a column, rows that are not probabilities;
        the message names the argument (and row, counted from 1).
    UsageError
        Names that disagree with ``classes``; ``labels=`` (scikit-learn's keyword: see
        :data:`SKLEARN_LABELS`).

    Notes
    -----
    The CLI's numbers: log loss equals ``sklearn.metrics.log_loss(y_true, y_prob,
    labels=classes)`` (clipped to [eps, 1 − eps], eps of float64, or float32's for float32).

    Examples
    --------
    >>> import losslens, pandas as pd
    >>> evaluation = losslens.evaluate([0, 1, 1], [[0.8, 0.2], [0.3, 0.7], [0.4, 0.6]])
    >>> round(evaluation.overall.log_loss, 6), list(evaluation.by_class)
    (0.363548, [0, 1])
    >>> frame = pd.DataFrame({"stay": [0.2, 0.7], "churn": [0.8, 0.3]})  # by name, any order
    >>> round(losslens.evaluate(["churn", "stay"], frame).overall.log_loss, 6)
    0.289909
    """
    from .engine import evaluate as evaluate_table

    y_prob, kind = _predictions_argument(y_prob, logits, options)
    if y_prob is None:
        if not _is_data(data):
            raise UsageError("give y_prob with y_true (losslens.evaluate(y_true, y_prob)), or a file or DataFrame")
        if classes is not None:
            options["classes"] = classes
        if sample_weight is not None:
            raise UsageError("sample_weight= goes with arrays; for a file or DataFrame name its column: weight='w'")
        from .notebook import evaluate_data

        return evaluate_data(data, name, options)
    table, table_options = arrays_table(data, y_prob, classes=classes, sample_weight=sample_weight, options=options,
                                        kind=kind)
    return evaluate_table(table, name=name or "data", **table_options)


def _predictions_argument(y_prob, logits, options: dict) -> tuple[Any, str]:
    """``(predictions, kind)`` from ``y_prob`` or an array ``logits=``; a file's ``logits="logit_"`` joins ``options``.

    ``labels=`` with arrays (or a list of labels) is scikit-learn's keyword, not a labels
    file: refused with the fix rather than taken as ``classes=``, whose order means the
    column order where scikit-learn's means sorted.
    """
    array_logits = logits is not None and not isinstance(logits, (str, os.PathLike))
    labels = options.get("labels")
    if labels is not None and (y_prob is not None or array_logits or not isinstance(labels, (str, os.PathLike))):
        raise UsageError(SKLEARN_LABELS)
    if not array_logits:
        if logits is not None:
            options["logits"] = logits
        return y_prob, "y_prob"
    if y_prob is not None:
        raise UsageError("give y_prob (probabilities) or logits=, not both")
    return logits, "logits"


def arrays_table(y_true, y_prob, *, classes=None, sample_weight=None, options: dict | None = None,
                 kind: str = "y_prob"):
    """The one-run Arrow table and options that :func:`evaluate` hands to the engine.

    ``kind`` is ``"y_prob"`` (probabilities) or ``"logits"``.

    Returns
    -------
    (pyarrow.Table, dict)
    """
    import numpy as np
    import pyarrow as pa

    options = dict(options or {})
    for key in ("label", "probs", "logits", "positive_prob", "positive_logit", "targets", "weight"):
        if key in options:
            raise UsageError(f"{key}= describes file columns; with arrays, losslens builds the columns itself")
    labels = _as_numpy(y_true, "y_true")
    preds = predictions(y_prob, kind)
    if labels.ndim != 1:
        raise InputError(f"y_true: expected shape (n,), got {labels.shape}")
    n = labels.shape[0]
    if preds.values.ndim not in (1, 2) or preds.values.shape[0] != n:
        raise InputError(
            f"{kind}: expected shape ({n},) or ({n}, k) to match y_true's {n} labels, got {preds.values.shape}"
        )
    if labels.dtype.kind in "fc" and np.isnan(labels).any():
        raise InputError(f"y_true, row {int(np.flatnonzero(np.isnan(labels))[0]) + 1}: missing label (NaN)")
    found = distinct_labels(labels)
    declared = None if classes is None else [_plain(c) for c in (classes.tolist() if hasattr(classes, "tolist")
                                                                  else classes)]
    positive_label = options.pop("positive_label", None)
    columns: dict[str, Any] = {LABEL_COLUMN: pa.array(labels.tolist() if labels.dtype == object else labels)}
    table_options: dict[str, Any] = {"label": LABEL_COLUMN}
    prediction_columns = _prediction_columns(preds, found, declared, positive_label, table_options)
    fields = [pa.field(LABEL_COLUMN, columns[LABEL_COLUMN].type)]
    # A cast from a narrower float is said on the field: the engine keeps float32's clipping
    # eps (the cast is exact) and widens the row-sum check to what that dtype can hold.
    from .layouts.classifier import CAST_FROM_KEY

    metadata = {CAST_FROM_KEY: preds.cast_from} if preds.cast_from else None
    for column, values in prediction_columns.items():
        columns[column] = pa.array(values)
        fields.append(pa.field(column, columns[column].type, metadata=metadata))
    extra = _extra_columns(options, n, sample_weight, set(columns))
    for column, values in extra.items():
        columns[column] = pa.array(values)
        fields.append(pa.field(column, columns[column].type))
    table_options.update({key: column for key, column in (("weight", WEIGHT_COLUMN), ("split", SPLIT_COLUMN),
                                                          ("id", ID_COLUMN)) if column in extra})
    by = options.pop("by", None)
    if by is not None:
        table_options["by"] = tuple(str(k) for k in by)
    table_options.update(options)
    return pa.Table.from_arrays(list(columns.values()), schema=pa.schema(fields)), table_options


def _prediction_columns(preds: Predictions, found, declared, positive_label, table_options: dict) -> dict:
    """The prediction columns to build, by name; fills the layout options in ``table_options``."""
    import numpy as np

    logits = preds.what == "logits"
    if preds.values.ndim == 2:
        if positive_label is not None:
            raise UsageError(f"positive_label= is for an (n,) {preds.what}; an (n, k) one has a column per class")
        names, order = column_classes(preds, found, declared)
        if len(set(names)) != len(names):
            raise InputError(f"classes: two classes with the same name in {names}")
        prefix = LOGIT_PREFIX if logits else PROB_PREFIX
        table_options.update({"logits" if logits else "probs": prefix, "classes": tuple(names)})
        return {prefix + c: np.ascontiguousarray(preds.values[:, j]) for c, j in zip(names, order)}
    names, positive = binary_classes(preds, found, declared, positive_label)
    column = POSITIVE_LOGIT_COLUMN if logits else POSITIVE_COLUMN
    table_options.update({"positive_logit" if logits else "positive_prob": column,
                          "positive_label": names[positive], "classes": tuple(names)})
    return {column: preds.values}


def _extra_columns(options: dict, n: int, sample_weight, taken: set) -> dict:
    """The weight, split, id and slice columns given as arrays (popped from ``options``)."""
    import numpy as np

    columns: dict[str, Any] = {}
    if sample_weight is not None:
        weights = _as_numpy(sample_weight, "sample_weight").astype(np.float64, copy=False)
        if weights.shape != (n,):
            raise InputError(f"sample_weight: expected shape ({n},), got {weights.shape}")
        columns[WEIGHT_COLUMN] = weights
    for key, column in (("split", SPLIT_COLUMN), ("id", ID_COLUMN)):
        value = options.pop(key, None)
        if value is None:
            continue
        if isinstance(value, str):
            raise UsageError(f"{key}={value!r}: with arrays, give {key} as an array of {n} values")
        array = _as_numpy(value, key)
        if array.shape != (n,):
            raise InputError(f"{key}: expected shape ({n},), got {array.shape}")
        columns[column] = [str(v) for v in array.tolist()]
    by = options.get("by")
    if by is not None:
        if not isinstance(by, dict):
            raise UsageError("by=: with arrays, give a dict of slice name to an array of values, e.g. by={'region': r}")
        for slice_name, values in by.items():
            array = _as_numpy(values, f"by[{slice_name!r}]")
            if array.shape != (n,):
                raise InputError(f"by[{slice_name!r}]: expected shape ({n},), got {array.shape}")
            if str(slice_name) in taken or str(slice_name) in columns:
                raise UsageError(f"by: slice name {slice_name!r} is taken; choose another")
            columns[str(slice_name)] = [str(v) for v in array.tolist()]
    return columns


def compare(reference, candidate, *, names: Sequence[str] | None = None, n_worst: int = DEFAULT_WORST, **options):
    """Compare a candidate with a reference: the change of log loss with its 95% interval.

    Parameters
    ----------
    reference, candidate : Evaluation, LMEvaluation, or data as :func:`evaluate` takes it
        Two classifier evaluations (compared unpaired: their examples are gone), or two files
        or DataFrames with an id column (``id="id"``), which are paired example by example.
        Token / sequence files and their evaluations are paired by document id; two lm-eval
        output folders task by task, by ``doc_id``.
    names : sequence of two str, optional
        Run names for data inputs (default: file stems).
    n_worst : int
        How many worst regressions a paired comparison lists.
    **options
        Options for evaluating data inputs.

    Returns
    -------
    losslens.comparison.Comparison, LMComparison or LMEvalEvaluation
        ``log_loss_delta`` (candidate − reference, negative is better),
        ``log_loss_delta_ci95``, ``paired``, ``share_improved``, ``verdict``; ``to_dict()``
        is the JSON's ``comparisons`` item. For lm-eval folders, the evaluation of both, whose
        ``comparisons`` hold one per task. Each shows a card of both runs and the delta in
        Jupyter; ``to_html()`` / ``to_json()`` give the page and JSON of the two runs.
    """
    from .comparison import LossCollector, compare_runs
    from .engine import evaluate_runs
    from .job import JobResult
    from .notebook import Notebook, compare_finished, language_model_job, with_job

    finished = [isinstance(x, Notebook) and hasattr(x, "runs") for x in (reference, candidate)]
    if all(finished):
        if options or names:
            raise UsageError("options and names apply to data inputs, not to finished evaluations")
        return compare_finished(reference, candidate, n_worst)
    if any(finished):
        raise UsageError("give two evaluations or two data inputs (files, DataFrames), not one of each")
    from .pipes import pipes_read_once

    # Detecting the kind reads a pipe's header: the evaluation must take the same copy.
    with pipes_read_once():
        job = language_model_job([reference, candidate], names, options)
        if job is not None:
            # lm-eval outputs compare task by task: the evaluation of both holds every comparison.
            return with_job(job.comparisons[0], job) if job.kind == "language_model" else job.evaluation
        collector = LossCollector()
        evaluation = evaluate_runs([reference, candidate], names=names, observers=[collector], **options)
    comparisons = compare_runs(evaluation, collector, n_worst)
    return with_job(comparisons[0], JobResult(evaluation, comparisons))
