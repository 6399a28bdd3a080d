"""The two classes, and the positive one, of a one-column binary layout.

The positive class must be explicit; guessing it gives a wrong log loss without a word.
"""

from __future__ import annotations

from typing import Iterable

from .errors import InputError, UsageError
from .not_predictions import regression_message
from .options import Options
from .class_names import class_key, is_number as _is_number, listing as _listing

#: Label pairs whose positive class is not a matter of opinion (as keys of :func:`class_key`).
_ORDERED_BINARY_LABELS = ({"0", "1"}, {"-1", "1"})


def _order(names: Iterable[str]) -> list[str]:
    """Sort class names numerically when all are numbers, else as text (binary layouts only)."""
    names = list(names)
    try:
        return sorted(names, key=lambda n: float(class_key(n)))
    except ValueError:
        return sorted(names)


def binary_classes(options: Options, label, scan_labels, source, notes, column, named=None):
    """Find the two classes and the positive one for a one-column binary layout.

    The positive class must be explicit: labels 0/1, False/True or -1/1 (the greater is
    positive, as scikit-learn's ``pos_label``), a column named after the class
    (``p_churn``), or ``--positive-label``. Otherwise the one column could be the
    probability of either label, and guessing gives a wrong log loss without a word.
    """
    if options.classes is not None:
        names = list(options.classes)
        if len(names) != 2:
            raise UsageError(
                f"--classes lists {len(names)} class{'es' if len(names) != 1 else ''}, but a one-column "
                "binary layout has exactly 2"
            )
    else:
        if scan_labels is None or label is None:
            raise UsageError("a one-column binary layout needs a label column or --classes")
        seen: dict[str, str] = {}
        scanned = scan_labels(label)
        for value, file, row in scanned:
            seen.setdefault(class_key(value), str(value))
            if len(seen) > 2:

                raise InputError(regression_message(label, scanned) or
                    f"{file}, column {label!r}, row {row}: label {str(value)!r} is a third class "
                    f"(after {_listing(list(seen.values())[:2])}), but a one-column binary layout "
                    "has exactly 2 classes; give one probability column per class (--probs) instead"
                )
        if len(seen) < 2:
            only = next(iter(seen), None)
            if only in ("0", "1"):
                seen.setdefault("0", "0")
                seen.setdefault("1", "1")
                notes.append("only one class occurs in the labels; the other assumed to be "
                             f"{'1' if only == '0' else '0'} (declare both with --classes)")
            else:
                raise InputError(
                    f"{source}: column {label!r} holds only one class; declare both with --classes A,B"
                )
        names = list(seen.values())
    if len({class_key(n) for n in names}) != 2:
        raise UsageError(f"--classes must name two different classes, got {', '.join(names)}")
    names = _order(names)
    keys = [class_key(n) for n in names]
    if options.positive_label is not None:
        if class_key(options.positive_label) not in keys:
            raise InputError(
                f"{source}: --positive-label {options.positive_label!r} is not one of the classes "
                f"{_listing(names)}"
            )
        positive = keys.index(class_key(options.positive_label))
    elif named is not None:
        if class_key(named) not in keys:
            raise InputError(
                f"{source}: column {column!r} is for class {named!r}, which is not one of the "
                f"labels {_listing(names)}; name the positive class with --positive-label"
            )
        positive = keys.index(class_key(named))
    elif set(keys) in _ORDERED_BINARY_LABELS:
        positive = 1  # the greater label, as scikit-learn's pos_label default
        notes.append(f"positive class {names[1]!r} (the greater label; set --positive-label)")
    elif all(_is_number(k) for k in keys):
        # Numbers have an order, and scikit-learn's log_loss takes a 1-d y_pred as P(greater
        # label); but 1/2 codings (R's factor levels, survey answers) are as often P(1).
        raise InputError(
            f"{source}, column {column!r}: one probability for the labels {names[0]} and {names[1]} "
            f"could be P({names[0]}) or P({names[1]}); scikit-learn's log_loss takes it as "
            f"P({names[1]}), the greater label, but nothing in the file says so; say which with "
            f"--positive-label {names[1]} (or --positive-label {names[0]})"
        )
    else:
        raise InputError(
            f"{source}: column {column!r} holds one probability, but the labels {names[0]!r} and "
            f"{names[1]!r} have no natural order, so it could be P({names[0]!r}) or "
            f"P({names[1]!r}); say which with --positive-label {names[1]} "
            f"(or --positive-label {names[0]})"
        )
    return tuple(names), positive
