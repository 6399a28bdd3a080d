"""Quality gates: ``--fail-if "[delta.][scope.]metric OP number"`` and ``--fail-on-warning CODE``.

Pure. :func:`parse_gate` turns the text into a :class:`Gate` (syntax and metric names are
checked at once, before any data is read); :func:`check_gates` validates scopes against the
finished evaluation and returns one :class:`GateResult` per gate and run. A gate *fails*
when its condition holds: ``--fail-if "log_loss > 0.35"`` fails a run whose log loss is
above 0.35 and passes at exactly 0.35.

Every run is checked against every gate. A value that is undefined (NaN, a split missing
from the baseline) fails its gate: a job should not pass because a number could not be
computed.
"""

from __future__ import annotations

import math
import operator
import re
from dataclasses import dataclass
from typing import Any

from .catalog import LOG_LOSS, layout_of, metric, metric_names, scope_value
from .errors import UsageError
from .evaluation import Evaluation

OPERATORS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}
#: ``[delta.][scope.]metric OP number [significant]``; the scope may itself contain dots.
_GATE = re.compile(r"^\s*(?P<left>[^<>=\s][^<>=]*?)\s*(?P<op>>=|<=|>|<)\s*(?P<number>\S+)"
                   r"(?:\s+(?P<significant>significant))?\s*$")
#: The metrics a ``significant`` delta gate can test: the paired test is on the log-loss delta.
SIGNIFICANT_METRICS = (LOG_LOSS,)


def known_metrics() -> tuple[str, ...]:
    """Metric names a gate may use: the catalog's single-number metrics."""
    return metric_names()


def known_warning_codes() -> tuple[str, ...]:
    """Warning codes ``--fail-on-warning`` accepts (besides ``any``)."""
    from .diagnostics import WARNING_CODES
    from .lm.options import LM_WARNING_CODES

    return WARNING_CODES + tuple(c for c in LM_WARNING_CODES if c not in WARNING_CODES)


@dataclass(frozen=True)
class Gate:
    """A parsed ``--fail-if`` expression (``code`` set instead for ``--fail-on-warning``)."""

    expression: str
    metric: str | None = None
    scope: str | None = None  # a split name; None for overall
    op: str | None = None
    threshold: float | None = None
    delta: bool = False
    code: str | None = None
    significant: bool = False  # delta gates: fail only when the adjusted p-value is below 0.05

    @property
    def scope_name(self) -> str:
        """``overall`` or the split name."""
        return self.scope or "overall"


@dataclass(frozen=True)
class GateResult:
    """The outcome of one gate for one run: ``pass``, ``fail`` or ``undefined`` (which fails)."""

    gate: Gate
    run: str
    value: float | None
    outcome: str
    detail: str = ""

    @property
    def failed(self) -> bool:
        """Whether this result fails the job."""
        return self.outcome != "pass"

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON."""
        g = self.gate
        data: dict[str, Any] = {"expression": g.expression, "run": self.run}
        if g.code is not None:
            data.update(kind="warning", code=g.code)
        else:
            data.update(kind="delta" if g.delta else "metric", scope=g.scope_name, metric=g.metric,
                        op=g.op, threshold=g.threshold)
            if g.significant:
                data["significant"] = True  # fails only with an adjusted p-value below 0.05
        data.update(value=self.value, outcome=self.outcome, failed=self.failed, detail=self.detail)
        return data


@dataclass(frozen=True)
class GateReport:
    """Every gate's results; ``passed`` when none failed."""

    results: tuple[GateResult, ...]

    @property
    def passed(self) -> bool:
        """True when no result failed (also when there are no gates)."""
        return not any(r.failed for r in self.results)

    @property
    def failures(self) -> tuple[GateResult, ...]:
        """The results that failed."""
        return tuple(r for r in self.results if r.failed)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON: the ``gates`` section."""
        return {"passed": self.passed, "n_failed": len(self.failures), "results": [r.to_dict() for r in self.results]}


def parse_gate(text: str) -> Gate:
    """Parse one ``--fail-if`` expression.

    Parameters
    ----------
    text : str
        ``[delta.][scope.]metric OP number`` with OP one of ``> >= < <=``, e.g.
        ``"log_loss > 0.35"``, ``"validation.accuracy < 0.9"``, ``"delta.log_loss > 0.01"``;
        ``"delta.log_loss > 0 significant"`` fails only when the paired change is also
        significant (Benjamini–Hochberg adjusted p-value below 0.05).

    Returns
    -------
    Gate

    Raises
    ------
    UsageError
        Bad syntax, a threshold that is not a finite number, or an unknown metric (the
        message lists the known ones).

    Examples
    --------
    >>> parse_gate("validation.accuracy < 0.9")
    Gate(expression='validation.accuracy < 0.9', metric='accuracy', scope='validation', op='<', threshold=0.9, delta=False, code=None, significant=False)
    """
    match = _GATE.match(text)
    if not match:
        raise UsageError(
            f"--fail-if {text!r}: expected '[scope.]metric OP number' with OP one of > >= < <=, "
            "e.g. 'log_loss > 0.35' or 'validation.accuracy < 0.9'"
        )
    try:
        threshold = float(match["number"])
    except ValueError:
        threshold = math.nan
    if not math.isfinite(threshold):
        raise UsageError(f"--fail-if {text!r}: {match['number']!r} is not a finite number")
    parts = match["left"].strip().split(".")
    delta = len(parts) > 1 and parts[0] == "delta"
    if delta:
        parts = parts[1:]
    metric, scope = parts[-1], ".".join(parts[:-1]) or None
    if scope == "overall":
        scope = None  # spelled out: the same as no scope
    if metric not in known_metrics():
        raise UsageError(
            f"--fail-if {text!r}: unknown metric {metric!r}; known metrics: {', '.join(known_metrics())}"
        )
    significant = bool(match["significant"])
    if significant and not (delta and scope is None and metric in SIGNIFICANT_METRICS):
        raise UsageError(f"--fail-if {text!r}: 'significant' applies to 'delta.log_loss' (the paired test "
                         "of the comparisons), e.g. 'delta.log_loss > 0 significant'")
    return Gate(expression=text.strip(), metric=metric, scope=scope, op=match["op"], threshold=threshold, delta=delta,
                significant=significant)


def parse_warning_gate(code: str) -> Gate:
    """Parse one ``--fail-on-warning`` value: a known warning code or ``any``."""
    code = code.strip()
    known = known_warning_codes()
    if code != "any" and code not in known:
        raise UsageError(f"--fail-on-warning {code!r}: unknown warning code; known: any, {', '.join(known)}")
    return Gate(expression=f"warning {code}", code=code)


def parse_gates(fail_if=(), fail_on_warning=()) -> tuple[Gate, ...]:
    """Parse every gate given, in order: ``--fail-if`` first, then ``--fail-on-warning``."""
    return tuple(parse_gate(t) for t in fail_if or ()) + tuple(parse_warning_gate(c) for c in fail_on_warning or ())


def validate_gates(gates, evaluation: Evaluation, baseline=None, comparisons=()) -> None:
    """Check that every gate's scope exists in every run and that delta gates have something to compare with.

    Raises
    ------
    UsageError
        Naming the unknown scope and the known ones, or asking for ``--baseline``.
    """
    for gate in gates:
        if gate.code is not None:
            continue
        if gate.delta and baseline is None and not comparisons:
            raise UsageError(f"--fail-if {gate.expression!r}: a delta gate needs --baseline PREVIOUS.json "
                             "or several inputs (each later run is compared with the first)")
        if gate.significant and baseline is not None:
            raise UsageError(f"--fail-if {gate.expression!r}: 'significant' needs paired runs (several inputs "
                             "with ids), not --baseline: a baseline JSON has no per-example losses to test")
        layouts = sorted({layout_of(run) for run in evaluation.runs})
        if layouts and not any(layout in metric(gate.metric).layouts for layout in layouts):
            # lm-eval jobs mix layouts: a gate applies to the runs that have its metric.
            kinds = " and ".join(layout.replace("_", " ") for layout in layouts)
            names = sorted({m for layout in layouts for m in metric_names(layout)}, key=metric_names().index)
            raise UsageError(f"--fail-if {gate.expression!r}: {kinds} runs have no {gate.metric}; "
                             f"their metrics: {', '.join(names)}")
        for run in evaluation.runs:
            if gate.scope is not None and gate.scope not in run.by_split:
                known = ", ".join(["(none: overall)", *run.by_split]) if run.by_split else "none (the run has no split column)"
                raise UsageError(
                    f"--fail-if {gate.expression!r}: unknown scope {gate.scope!r} in run {run.name!r}; "
                    f"known scopes: {known}"
                )
            if metric(gate.metric).soft_only and getattr(run.overall, gate.metric) is None:
                raise UsageError(f"--fail-if {gate.expression!r}: {gate.metric} is only defined with soft targets (--targets)")


def _outcome(gate: Gate, run: str, value: float | None, missing: str) -> GateResult:
    if value is None or not math.isfinite(value):
        return GateResult(gate, run, None, "undefined", missing or "the value is undefined")
    holds = OPERATORS[gate.op](value, gate.threshold)
    return GateResult(gate, run, value, "fail" if holds else "pass")


def _comparison_outcome(gate: Gate, comparison) -> GateResult:
    """A delta gate on one comparison (a later run against the first): the paired log-loss delta,
    or the whole-run change of another metric; ``significant`` also needs adjusted p < 0.05."""
    if gate.metric == LOG_LOSS:
        value = comparison.log_loss_delta
    else:
        value = (getattr(comparison, "metric_deltas", None) or {}).get(gate.metric)
    result = _outcome(gate, comparison.candidate, value, f"no {gate.metric} change against {comparison.reference!r}")
    if not gate.significant or result.outcome != "fail":
        return result
    from .comparison import ALPHA

    p = comparison.log_loss_delta_p_value_adjusted
    if p is not None and p < ALPHA:
        return GateResult(gate, comparison.candidate, value, "fail", f"adjusted p = {p:.3g} against {comparison.reference!r}")
    shown = "undefined" if p is None else f"{p:.3g}"
    return GateResult(gate, comparison.candidate, value, "pass", f"not significant: adjusted p = {shown}")


def check_gates(gates, evaluation: Evaluation, baseline=None, comparisons=()) -> GateReport:
    """Evaluate every gate against every run (and the baseline for ``delta.`` gates).

    Parameters
    ----------
    gates : sequence of Gate
        From :func:`parse_gates`.
    evaluation : Evaluation
        The finished runs.
    baseline : losslens.baseline.BaselineComparison, optional
        What delta gates compare with, when given.
    comparisons : sequence of Comparison, optional
        Without a baseline, delta gates check each later run against the first (the job's
        comparisons); ``significant`` gates read their adjusted p-values.

    Returns
    -------
    GateReport
    """
    validate_gates(gates, evaluation, baseline, comparisons)
    results = []
    for gate in gates:
        if gate.delta and baseline is None:
            results += [_comparison_outcome(gate, c) for c in comparisons]
            continue
        for run in evaluation.runs:
            if gate.code is None and layout_of(run) not in metric(gate.metric).layouts:
                continue  # an lm-eval task of another type (validate_gates checked some run has it)
            if gate.code is not None:
                hits = [w for w in run.warnings if gate.code in ("any", w.code)]
                detail = ", ".join(sorted({f"{w.code} [{w.scope}]" for w in hits}))
                results.append(GateResult(gate, run.name, float(len(hits)), "fail" if hits else "pass", detail))
            elif gate.delta:
                compared = baseline.run(run.name)
                deltas = compared.scope(gate.scope) if compared else None
                if compared is None:
                    results.append(_outcome(gate, run.name, None, "the baseline has no run to compare with"))
                elif deltas is None:
                    results.append(_outcome(gate, run.name, None, f"the baseline has no split {gate.scope!r}"))
                else:
                    d = deltas.get(gate.metric)
                    results.append(_outcome(gate, run.name, d.delta if d else None, "the metric is undefined now or in the baseline"))
            else:
                metrics = run.overall if gate.scope is None else run.by_split[gate.scope]
                value = scope_value(run, metrics, gate.metric)
                results.append(_outcome(gate, run.name, None if value is None else float(value), ""))
    return GateReport(tuple(results))

