"""Deciding, once per run, what each column means.

Pure: works on column names, options and (for the one-column binary layout) the distinct
label values. Columns are matched to classes **by name**, never by position, and every guess
is written into :attr:`Layout.notes` so that the user is told what was detected.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable, Iterable, Sequence

from .binary_classes import binary_classes
from .errors import InputError, UsageError
from .feature_columns import SAMPLE_MAX_COLUMNS, Evidence, choose_class_columns, explaining_column
from .list_columns import find_list_prediction, list_classes, refuse_list_label
from .not_predictions import multilabel_message, regression_message
from .options import (
    DEFAULT_ID_COLUMNS,
    DEFAULT_LABEL_COLUMNS,
    DEFAULT_LOGIT_PREFIXES,
    DEFAULT_POSITIVE_PROB_COLUMNS,
    DEFAULT_PROB_PREFIXES,
    DEFAULT_SPLIT_COLUMN,
    Options,
    split_list,
)

from .class_names import (  # noqa: F401  (re-exported: schema.class_key etc. are used across the package)
    FLOAT32_EPS,
    FLOAT64_EPS,
    LOGITS,
    POSITIVE_LOGIT,
    POSITIVE_PROB,
    PROBS,
    class_key,
    is_number as _is_number,
    listing as _listing,
)


@dataclass(frozen=True)
class Layout:
    """What each column of a run's files means.

    Attributes
    ----------
    kind : str
        ``"probabilities"``, ``"logits"``, ``"positive_prob"`` or ``"positive_logit"``.
    classes : tuple of str
        Class names in report order: the order of the prediction columns in the file (as a
        model's ``classes_`` and ``predict_proba`` give it), or of ``--classes``. The two
        classes of a one-column binary layout are in numeric, else alphabetical, order.
    prediction_columns : tuple of str
        One column per class for probabilities and logits, in class order; one column for
        the one-column binary layouts.
    label : str or None
        The label column; None when soft targets are given instead.
    target_columns : tuple of str or None
        Soft targets: one column per class (a class without one has target 0), or None.
    positive_index : int or None
        For one-column binary layouts, the index of the positive class in ``classes``.
    notes : tuple of str
        What was detected rather than given, in words for the user.
    eps : float
        Probabilities are clipped to ``[eps, 1 - eps]``; ``eps`` is the machine epsilon of the
        prediction columns' dtype (float32's for float32 columns), as scikit-learn's
        ``log_loss`` does for the same array.
    row_sum_tolerance : float
        Relative tolerance of the row-sum check, ``sqrt(eps)`` as scikit-learn's.
    neg_inf_padding : bool
        Logit rows may hold −inf for classes the row does not have (probability exactly 0),
        as a multiple-choice question with fewer choices than the widest is padded. Never
        detected from a file (a −inf in a user's logit column stays an error); only
        :mod:`losslens.lm.lm_eval` sets it.
    row_sums_off_by : str or None
        The one prediction column without which the first rows that do not sum to 1 do
        (a feature column scored as a class): the warning names it.
    from_list : bool
        The one prediction column holds a list of k values per row (class order).
    labels_are_indices : bool
        Labels are positions in ``classes`` (Hugging Face ``ClassLabel`` values), not names.
    """

    kind: str
    classes: tuple[str, ...]
    prediction_columns: tuple[str, ...]
    label: str | None = None
    target_columns: tuple[str | None, ...] | None = None
    positive_index: int | None = None
    id: str | None = None
    weight: str | None = None
    split: str | None = None
    by: tuple[str, ...] = ()
    cluster: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
    eps: float = FLOAT64_EPS
    row_sum_tolerance: float = math.sqrt(FLOAT64_EPS)
    neg_inf_padding: bool = False
    row_sums_off_by: str | None = None
    from_list: bool = False
    labels_are_indices: bool = False

    @property
    def n_classes(self) -> int:
        """Number of classes."""
        return len(self.classes)

    @property
    def class_columns(self) -> tuple[str, ...]:
        """One name per class for messages: the column, or ``probs[j]`` for a list column."""
        if self.from_list:
            return tuple(f"{self.prediction_columns[0]}[{j}]" for j in range(self.n_classes))
        return self.prediction_columns

    @property
    def float_columns(self) -> tuple[str, ...]:
        """The columns read as float64 (a list column is read as stored)."""
        wanted = () if self.from_list else self.prediction_columns
        return (*wanted, *(c for c in self.target_columns or () if c), *((self.weight,) if self.weight else ()))

    @cached_property
    def class_index(self) -> dict[str, int]:
        """Map from class identity (see :func:`class_key`) to position in ``classes``.

        Computed once per layout (every batch maps its labels through it: rebuilding it per
        batch cost a second at 1,000 classes). Do not modify the returned dict.
        """
        return {class_key(name): i for i, name in enumerate(self.classes)}

    def columns(self) -> list[str]:
        """Every column this layout reads, each once, in a stable order."""
        wanted = [self.label, *self.prediction_columns, *(self.target_columns or ())]
        wanted += [self.id, self.weight, self.split, *self.by, self.cluster]
        # dict.fromkeys keeps the first of each in order; a list's `in` made this O(k²),
        # about a second per call at 10,000 classes.
        return [name for name in dict.fromkeys(wanted) if name is not None]

    def to_dict(self) -> dict:
        """The layout as plain data for the JSON report."""
        return {
            "kind": self.kind,
            "label": self.label,
            "classes": list(self.classes),
            "prediction_columns": (
                dict(zip(self.classes, self.class_columns))
                if self.kind in (PROBS, LOGITS)
                else {self.classes[self.positive_index]: self.prediction_columns[0]}
            ),
            "target_columns": (
                dict(zip(self.classes, self.target_columns)) if self.target_columns else None
            ),
            "positive_class": (
                self.classes[self.positive_index] if self.positive_index is not None else None
            ),
            "id": self.id,
            "weight": self.weight,
            "split": self.split,
            "by": list(self.by),
            "notes": list(self.notes),
            "eps": self.eps,
            "row_sum_tolerance": self.row_sum_tolerance,
        }


def detect_layout(
    columns: Sequence[str],
    options: Options,
    source: str,
    scan_labels: Callable[[str], list] | None = None,
    numeric_columns: Iterable[str] | None = None,
    sample: Callable[[Sequence[str]], object] | None = None,
    list_info=None,
) -> Layout:
    """Decide the layout of a run from its header and the options.

    Parameters
    ----------
    columns : sequence of str
        The header of the run's first file.
    options : Options
        Explicit choices; each overrides the matching detection.
    source : str
        The file name used in error messages.
    scan_labels : callable, optional
        ``scan_labels(label_column)`` returns ``(value, file, row)`` for the first occurrence
        of each distinct label value of the whole run.
        Called only for the one-column binary layout when the two classes are not declared,
        and to look for columns named after the classes when no other layout matched.
    numeric_columns : iterable of str, optional
        The columns stored as numbers; only those can be columns named after the classes.
    sample : callable, optional
        ``sample(columns)`` returns the first rows of those columns as an n×k float64 array
        (None if they are not numbers): tells feature columns (``p_value``) from classes.
    list_info : ListColumns, optional
        The list-of-floats columns and metadata class names (see :mod:`losslens.list_columns`).

    Returns
    -------
    Layout
    """
    notes: list[str] = []
    present = set(columns)
    if numeric_columns is not None:
        numeric_columns = set(numeric_columns)
    if scan_labels is not None:
        scan_labels = _once(scan_labels)
    for flag, name in (("--id", options.id), ("--weight", options.weight), ("--split", options.split),
                       ("--cluster", options.cluster), *(("--by", b) for b in options.by)):
        _require(name, flag, columns, source)

    targets = _class_columns(columns, options.targets, "--targets", source) if options.targets else None
    label = _label_column(columns, options, source, sample, notes) if targets is None else None
    if targets is not None and options.label:
        raise UsageError("--label and --targets cannot be used together: targets replace the label")

    reserved = {options.id, options.weight, options.split, *options.by, options.cluster,
                *DEFAULT_ID_COLUMNS, DEFAULT_SPLIT_COLUMN} - {None}

    refuse_list_label(label, columns, list_info, source)
    listed = find_list_prediction(columns, options, list_info)
    labels_are_indices = False
    if listed is not None:  # one list column holds every class's probability or logit
        kind, column = listed
        layout_classes, labels_are_indices = list_classes(
            kind, column, label, options, list_info, source, scan_labels, notes)
        prediction_columns, positive_index, off_by = (column,), None, None
    else:
        kind, layout_classes, prediction_columns, positive_index, off_by = _column_layout(
            columns, options, source, notes, label, scan_labels, numeric_columns, reserved, sample
        )
    target_columns = _target_columns(targets, layout_classes, source) if targets is not None else None

    split, example_id = _split_and_id(options, present, notes)
    return Layout(
        kind=kind, classes=layout_classes, prediction_columns=prediction_columns, label=label,
        target_columns=target_columns, positive_index=positive_index, id=example_id, weight=options.weight,
        split=split, by=tuple(options.by), cluster=options.cluster, notes=tuple(notes),
        row_sums_off_by=off_by, from_list=listed is not None, labels_are_indices=labels_are_indices,
    )


def _split_and_id(options: Options, present: set, notes: list[str]) -> tuple[str | None, str | None]:
    """The split and id columns: as given, else the default names when present (said in notes)."""
    split = options.split
    if split is None and DEFAULT_SPLIT_COLUMN in present:
        split = DEFAULT_SPLIT_COLUMN
        notes.append(f"split column {split!r}")
    example_id = options.id
    if example_id is None:
        example_id = next((c for c in DEFAULT_ID_COLUMNS if c in present), None)
        if example_id is not None:
            notes.append(f"id column {example_id!r} (names the worst examples, pairs runs)")
    return split, example_id


def _require(column: str | None, flag: str, columns: Sequence[str], source: str) -> str | None:
    """``column`` (named by ``flag``) if the header has it; an error naming the columns if not."""
    if column is not None and column not in columns:
        raise InputError(
            f"{source}: column {column!r} (from {flag}) not found; "
            f"columns are: {_listing(columns)}"
        )
    return column


def _label_column(columns: Sequence[str], options: Options, source: str, sample, notes: list[str]) -> str:
    """The label column: ``--label``, else the first default name present (said in a note)."""
    label = _require(options.label, "--label", columns, source)
    if label is not None:
        return label
    label = next((c for c in DEFAULT_LABEL_COLUMNS if c in set(columns)), None)
    if label is None:
        multilabel = multilabel_message(source, columns, sample)
        if multilabel:
            raise InputError(multilabel)
        raise InputError(
            f"{source}: no label column; looked for {', '.join(DEFAULT_LABEL_COLUMNS)} "
            f"among the columns {_listing(columns)}. Name it with --label COL "
            "(or give soft targets with --targets PREFIX)"
        )
    notes.append(f"label column {label!r}")
    return label


def _target_columns(targets: dict, layout_classes, source: str) -> tuple:
    """The ``--targets`` column of each class, in the classes' order (None where a class has none)."""
    keys = {class_key(c): c for c in layout_classes}
    for name, column in targets.items():
        if class_key(name) not in keys:
            raise InputError(
                f"{source}: target column {column!r} is for class {name!r}, which has no "
                f"prediction column; classes are {_listing(layout_classes)}"
            )
    by_key = {class_key(n): col for n, col in targets.items()}
    return tuple(by_key.get(class_key(c)) for c in layout_classes)


def _column_layout(columns, options: Options, source, notes, label, scan_labels, numeric_columns,
                   reserved, sample):
    """``(kind, classes, prediction columns, positive index, row_sums_off_by)`` of a run whose
    predictions are one column per class, or one column for a binary problem."""

    evidence = Evidence(label, scan_labels, sample)
    kind, prediction = _prediction_columns(
        columns, options, source, notes, label, scan_labels, numeric_columns, reserved, evidence
    )
    if kind in (PROBS, LOGITS):
        # "p_1" and "p_01" (or "p_1.0") would both be class 1: refuse rather than let one win.
        _check_unique_classes(prediction, source)
        # The order of the columns in the file, as a model's classes_ and predict_proba give it.
        names = list(prediction)
        if options.classes is not None:
            names = _declared_order(prediction, options.classes, source)
        layout_classes = tuple(names)
        prediction_columns = tuple(prediction[n] for n in names)
        positive_index = None
        off_by = explaining_column(sample(prediction_columns), prediction_columns) if (
            kind == PROBS and sample is not None and len(prediction_columns) < SAMPLE_MAX_COLUMNS) else None
    else:
        named = None
        if isinstance(prediction, tuple):  # a lone p_<class> column: P(that class)
            named, prediction = prediction
        layout_classes, positive_index = binary_classes(
            options, label, scan_labels, source, notes, prediction, named
        )
        prediction_columns = (prediction,)
        off_by = None
    return kind, layout_classes, prediction_columns, positive_index, off_by


def _prediction_columns(columns, options: Options, source, notes, label, scan_labels=None,
                        numeric=None, reserved=(), evidence=None):
    """Return ``(kind, {class: column})``, or ``(kind, column)`` for one-column layouts.

    A lone probability column for one class (``p_churn``) gives
    ``(POSITIVE_PROB, (class, column))``: it is P(that class) of a binary problem.
    Prefix-matched columns named after no label (``p_value``) are left out when the data
    shows they are no probabilities (see :mod:`losslens.feature_columns`).
    """
    present = set(columns)
    if options.probs:
        matched = _class_columns(columns, options.probs, "--probs", source)
        if len(matched) == 1:
            return POSITIVE_PROB, next(iter(matched.items()))
        return PROBS, matched
    if options.logits:
        return LOGITS, _class_columns(columns, options.logits, "--logits", source)
    for flag, column, kind in (
        ("--positive-prob", options.positive_prob, POSITIVE_PROB),
        ("--positive-logit", options.positive_logit, POSITIVE_LOGIT),
    ):
        if column:
            if column not in present:
                raise InputError(
                    f"{source}: column {column!r} (from {flag}) not found; "
                    f"columns are: {_listing(columns)}"
                )
            return kind, column

    found = {}
    for prefix in DEFAULT_PROB_PREFIXES:
        # The longest prefix claims its columns first: prob_of_cat is class "cat", not "of_cat".
        claimed = {c for cols in found.values() for c in cols.values()}
        matched = _by_prefix([c for c in columns if c not in claimed], prefix)
        if matched:
            found[prefix] = matched
    logits = _by_prefix(columns, DEFAULT_LOGIT_PREFIXES[0])
    if found:

        prefix, matched = choose_class_columns(found, evidence, source, notes)
        if len(matched) == 1:
            name, column = next(iter(matched.items()))
            notes.append(f"one-column binary layout: {column!r} is P({name!r})")
            return POSITIVE_PROB, (name, column)
        note = f"probabilities from columns {prefix}<class> for {len(matched)} classes"
        if logits:
            note += "; logit_ columns ignored (use --logits logit_ to score those instead)"
        notes.append(note)
        return PROBS, matched
    if logits:
        notes.append(f"logits from columns logit_<class> for {len(logits)} classes")
        return LOGITS, logits
    single = next((c for c in DEFAULT_POSITIVE_PROB_COLUMNS if c in present and c != label), None)
    if single is not None:
        notes.append(f"one-column binary layout: {single!r} is P(positive class)")
        return POSITIVE_PROB, single
    bare = _bare_class_columns(columns, label, scan_labels, numeric, reserved)
    if bare:
        notes.append(
            f"probabilities from columns named after the classes ({_listing(bare.values(), 10)}), "
            "as DataFrame(model.predict_proba(X), columns=model.classes_) writes them"
        )
        return PROBS, bare
    if label is not None and scan_labels is not None:

        regression = regression_message(label, scan_labels(label))
        if regression:
            raise InputError(regression)
    raise InputError(
        f"{source}: no prediction columns; looked for probability columns "
        f"({', '.join(p + '<class>' for p in DEFAULT_PROB_PREFIXES)}), logit columns (logit_<class>) "
        f"and one-column binary scores ({', '.join(DEFAULT_POSITIVE_PROB_COLUMNS)}) among "
        f"the columns {_listing(columns)}. Name them with --probs, --logits, "
        "--positive-prob or --positive-logit"
    )


def _bare_class_columns(columns, label, scan_labels, numeric, reserved) -> dict[str, str]:
    """Columns named after the classes themselves, if every label value has a numeric one.

    Numeric-named columns that no label uses (a class absent from this file, with
    ``columns=clf.classes_``) join them when the labels are numbers too. Empty if not.
    """
    if label is None or scan_labels is None:
        return {}
    candidates = [
        c for c in columns
        if c != label and c not in reserved and (numeric is None or c in numeric)
    ]
    by_key = {class_key(c): c for c in candidates}
    if not by_key:
        return {}
    labels = {class_key(value) for value, _, _ in scan_labels(label)}
    if not labels or not labels <= set(by_key):
        return {}
    numbers = all(_is_number(k) for k in labels)
    return {
        c: c for c in candidates
        if class_key(c) in labels or (numbers and _is_number(class_key(c)))
    }



def _class_columns(columns, spec: str, flag: str, source) -> dict[str, str]:
    """Resolve ``--probs``-style values: a prefix (``p_``) or a comma list of columns."""
    present = set(columns)
    if "," in spec or spec in present:
        mapping = {}
        for column in split_list(spec):
            if column not in present:
                raise InputError(
                    f"{source}: column {column!r} (from {flag}) not found; "
                    f"columns are: {_listing(columns)}"
                )
            mapping[_strip_known_prefix(column)] = column
        _check_unique_classes(mapping, source)
        return mapping
    matched = _by_prefix(columns, spec)
    if not matched:
        raise InputError(
            f"{source}: no column starts with {spec!r} (from {flag}); columns are: {_listing(columns)}"
        )
    return matched


def _by_prefix(columns, prefix: str) -> dict[str, str]:
    mapping = {c[len(prefix):]: c for c in columns if c.startswith(prefix) and len(c) > len(prefix)}
    return mapping


def _check_unique_classes(mapping: dict[str, str], source) -> None:
    seen: dict[str, str] = {}
    for name, column in mapping.items():
        key = class_key(name)
        if key in seen:
            raise InputError(
                f"{source}: columns {seen[key]!r} and {column!r} are both for class {name!r}"
            )
        seen[key] = column


def _strip_known_prefix(column: str) -> str:
    for prefix in (*DEFAULT_PROB_PREFIXES, *DEFAULT_LOGIT_PREFIXES):
        if column.startswith(prefix) and len(column) > len(prefix):
            return column[len(prefix):]
    return column


def _declared_order(prediction: dict[str, str], declared: Sequence[str], source) -> list[str]:
    """Order the prediction columns' classes as ``--classes`` lists them, checking both agree."""
    by_key = {class_key(n): n for n in prediction}
    ordered = []
    for name in declared:
        if class_key(name) not in by_key:
            raise InputError(
                f"{source}: class {name!r} (from --classes) has no prediction column; "
                f"columns cover {_listing(prediction)}"
            )
        ordered.append(by_key[class_key(name)])
    extra = [n for n in prediction if class_key(n) not in {class_key(d) for d in declared}]
    if extra:
        raise InputError(
            f"{source}: column {prediction[extra[0]]!r} is for class {extra[0]!r}, "
            "which --classes does not list"
        )
    return ordered


def _once(scan_labels: Callable[[str], list]) -> Callable[[str], list]:
    """``scan_labels`` remembered per column: each call is a pass over the run's labels."""
    seen: dict[str, list] = {}

    def scan(column: str) -> list:
        if column not in seen:
            seen[column] = list(scan_labels(column))
        return seen[column]

    return scan


