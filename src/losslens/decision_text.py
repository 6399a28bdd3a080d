"""Plain-text clauses for the figures that decide between runs and for the calibration intervals.

Shared by the terminal, the markdown summary and the HTML page (which escape them as they do
any text), so that a comparison's Brier, p(gold) and bits-per-byte deltas and a run's calibration
intervals read the same everywhere. Each function takes plain JSON data: a comparison's dict
(:meth:`losslens.comparison.Comparison.to_dict`, or :attr:`PairedTests.deltas`) or a scope's values.
"""

from __future__ import annotations

from .formatting import interval, p_value, signed, signed_interval, value
from .catalog import BITS_PER_BYTE_DELTA, BRIER_SCORE_DELTA, COMPARISON_FIELDS, P_GOLD_DELTA, VIEWS, metric

#: The paired deltas beyond log loss and accuracy, in the order they are printed.
DELTA_NAMES = (BRIER_SCORE_DELTA, P_GOLD_DELTA, BITS_PER_BYTE_DELTA)
_COMPARISON = {m.name: m for m in COMPARISON_FIELDS}

#: The calibration figures with a bootstrap interval, in the order they are printed.
CALIBRATION_NAMES = VIEWS["calibration_intervals"]


def delta_clauses(values: dict | None) -> list[str]:
    """One clause per paired delta present: ``Δ Brier -0.0123 (95% CI -0.0201 to -0.0045, p = 0.0021)``.

    Examples
    --------
    >>> delta_clauses({"p_gold_delta": 0.05, "p_gold_delta_ci95": [0.01, 0.09], "p_gold_delta_p_value": 0.013})
    ['Δ p(gold) +0.0500 (95% CI +0.0100 to +0.0900, p = 0.013)']
    """
    return [f"{label} {figure}" for label, figure in delta_parts(values)]


def delta_parts(values: dict | None) -> list[tuple[str, str]]:
    """:func:`delta_clauses` as ``(label, figure)`` pairs (the page's list of facts)."""
    out = []
    for name in DELTA_NAMES:
        if not values or values.get(name) is None:
            continue
        entry = _COMPARISON[name]
        unit = f" {entry.unit}" if entry.unit else ""
        ci = values.get(f"{name}_ci95")
        detail = f"95% CI {signed_interval(ci)}, " if ci else ""
        out.append((entry.label, f"{signed(values[name])}{unit} ({detail}{p_value(values.get(f'{name}_p_value'))})"))
    return out


def bootstrap_clauses(boot: dict | None) -> list[str]:
    """The paired bootstrap's interval and p-value of each further delta: ``Δ Brier +a to +b, p = …``."""
    return [f"{_COMPARISON[name].label} {signed_interval(boot[f'{name}_ci95'])}, {p_value(boot.get(f'{name}_p_value'))}"
            for name in DELTA_NAMES if boot and boot.get(f"{name}_ci95") is not None]


def calibration_intervals(scope) -> str:
    """A scope's calibration figures with their 95% bootstrap intervals, or "" when it has none.

    ``scope`` is a :class:`losslens.evaluation.Metrics` or its JSON dict.

    Examples
    --------
    >>> calibration_intervals({"ece_equal_mass": 0.04, "ece_equal_mass_ci95": [0.03, 0.05]})
    'ECE equal-mass 0.0400 (95% CI 0.0300–0.0500)'
    """
    def get(name):
        return scope.get(name) if isinstance(scope, dict) else getattr(scope, name, None)

    parts = [f"{metric(name).label} {value(name, get(name))} (95% CI {interval(get(f'{name}_ci95'))})"
             for name in CALIBRATION_NAMES if get(f"{name}_ci95") is not None and get(name) is not None]
    return "; ".join(parts)
