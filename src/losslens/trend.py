"""Trends across nightly runs: many JSON documents written by losslens, night by night.

Pure apart from :func:`load_documents`, which reads the JSON files. :func:`build_trend`
orders the documents into nights, keeps every scope's metrics (whatever metrics a document
holds: classifier, language-model or many-class runs, lm-eval tasks as runs named
``<checkpoint>/<task>``; every kind and version is read by :mod:`losslens.json_documents`, the
reader ``--baseline`` uses) and finds ``trend_shift`` warnings; :class:`Trend` is what the
trend JSON, the trend page and the markdown summary read.

Definitions
-----------
Nights are ordered by the document's ``generated_at`` when every document has one (ties by
file name), else by the natural order of the file names (``night-2`` before ``night-10``;
ISO dates in names sort right). A night's label is its ``generated_at`` or its file stem.
A document that copies another (the same content, or the same runs with the same
``generated_at``) is skipped with a note naming it: it is no other night.

A night's log loss in a scope (the run, a split or a slice value) *shifts* when, with
``m`` the median log loss of the previous ``window`` nights that have the scope (all of
them when fewer; checked from the fourth such night on), ``h`` the half-width of the
night's 95% interval and ``H`` the median half-width of the earlier nights' intervals::

    |log loss − m| > h + H

A run without a log loss (an lm-eval rolling task) is followed by its bits per byte and
that interval instead (:meth:`Trend.loss_metric`).

The sum of half-widths is the usual test of two intervals overlapping; the medians make one
odd earlier night unable to move the expectation. A night without an interval (one example)
is not checked.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any, Sequence

from .catalog import CLASSIFIER, LOG_LOSS, metric, view
from .json_documents import document_runs, find_copies, natural_key, order_documents, read_json_document  # noqa: F401
from .formatting import interval, number

#: Version of the trend JSON written by :meth:`Trend.to_dict`. Change log:
#: 1 -- first version: nights (label, source, generated_at, runs), warnings, moved_slices.
#:      Compatible additions: "notes" (documents skipped as copies of another; nights placed
#:      by file name); lm-eval tasks as runs (named ``<checkpoint>/<task>``, with "task",
#:      "layout_kind" ``multiple_choice``, ``loglikelihood`` or ``sequences``).
TREND_FORMAT_VERSION = 1
#: The warning code of a night outside the range expected from the nights before it.
TREND_SHIFT = "trend_shift"
#: Nights before a night that set its expected range (``--window``).
DEFAULT_WINDOW = 7
#: Earlier nights needed before a night is checked: the fourth night is the first checked.
MIN_EARLIER = 3
# --------------------------------------------------------------------------- reading


def load_documents(paths: Sequence[str]) -> list[tuple[str, dict]]:
    """Read each JSON document as ``(path, document)``, in the order given.

    Documents of every kind (classifier, language model, lm-eval) and every format version
    losslens wrote are read, through the reader ``--baseline`` uses
    (:mod:`losslens.json_documents`).

    Raises
    ------
    InputError
        A file is missing, not JSON, or not a metrics document losslens can read; the
        message names the file.
    """
    documents = []
    for path in paths:
        document = read_json_document(path, str(path), "; give JSON written by losslens --json")
        check_document(document, str(path))
        documents.append((str(path), document))
    return documents


def check_document(document, source: str) -> None:
    """Check that ``document`` is a metrics document whose runs can be read.

    Raises
    ------
    InputError
        Naming ``source`` and what is wrong (see :func:`losslens.json_documents.document_runs`).
    """
    document_runs(document, source)


def _stem(source: str) -> str:
    """A file's name without ``.json``: the label of a night without ``generated_at``."""
    name = Path(source).name
    return name[:-5] if name.lower().endswith(".json") else Path(name).stem


# --------------------------------------------------------------------------- nights


def _is_number(value) -> bool:
    """An int or float, not a bool (JSON's true is no metric)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def scope_metrics(metrics: dict) -> dict[str, Any]:
    """The numeric metrics of one scope (numbers, nulls and ``[low, high]`` intervals).

    Generic on purpose: whatever metrics a document holds are kept, so that language-model
    and many-class documents trend as well as classifier ones.
    """
    kept: dict[str, Any] = {}
    for key, value in metrics.items():
        if value is None or _is_number(value):
            kept[key] = value
        elif (isinstance(value, list) and len(value) == 2 and key.endswith("ci95")
              and all(v is None or _is_number(v) for v in value)):
            kept[key] = list(value)
    return kept


def run_summary(run: dict) -> dict[str, Any]:
    """What a night keeps of one run (in :func:`losslens.json_documents.document_runs`' shape).

    Its name, its catalog layout (what its gates may read: a classifier's metrics, a token
    run's, an lm-eval task's), the metrics of every scope and the warnings.
    """
    return {
        "name": run["name"],
        **({"task": run["task"]} if run.get("task") else {}),  # lm-eval: nights' series by task
        "layout_kind": run["layout_kind"],
        "overall": scope_metrics(run["overall"]),
        "by_split": {str(k): scope_metrics(v) for k, v in run["by_split"].items() if isinstance(v, dict)},
        "by_slice": {
            str(column): {str(k): scope_metrics(v) for k, v in values.items() if isinstance(v, dict)}
            for column, values in run["by_slice"].items() if isinstance(values, dict)
        },
        "warnings": [
            {"code": str(w.get("code")), "scope": str(w.get("scope", "overall")), "message": str(w.get("message", ""))}
            for w in run["warnings"]
        ],
    }


@dataclass(frozen=True)
class Night:
    """One document: its label, file, generation time and runs (see :func:`run_summary`)."""

    label: str
    source: str
    generated_at: str | None
    runs: tuple[dict, ...]

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON: one item of ``nights``."""
        return {"label": self.label, "source": self.source, "generated_at": self.generated_at, "runs": list(self.runs)}


@dataclass(frozen=True)
class TrendWarning:
    """A warning about one night: a ``trend_shift`` or a warning of the night's own document."""

    code: str
    night: str
    run: str
    scope: str
    message: str
    value: float | None = None
    expected: tuple[float, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON: one item of ``warnings``."""
        return {
            "code": self.code, "night": self.night, "run": self.run, "scope": self.scope, "message": self.message,
            "value": self.value, "expected": list(self.expected) if self.expected else None,
        }


@dataclass(frozen=True)
class MovedSlice:
    """A slice value's log loss on the latest night against the median of its first nights."""

    run: str
    scope: str
    latest: float
    median_first: float
    n_first: int

    @property
    def change(self) -> float:
        """Latest minus the median of the first nights, nats (positive: got worse)."""
        return self.latest - self.median_first

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return {"run": self.run, "scope": self.scope, "latest": self.latest, "median_first": self.median_first,
                "n_first": self.n_first, "change": self.change}


@dataclass(frozen=True)
class Trend:
    """Nights in order, the run series across them, and the warnings found."""

    nights: tuple[Night, ...]
    window: int
    shifts: tuple[TrendWarning, ...]
    moved: tuple[MovedSlice, ...] = field(default_factory=tuple)
    notes: tuple[str, ...] = ()  # documents skipped as copies; how nights were ordered

    @property
    def single_run(self) -> bool:
        """Every night has one run: they form one series whatever the runs are named."""
        return all(len(n.runs) == 1 for n in self.nights)

    @cached_property
    def by_task(self) -> bool:
        """Every run is an lm-eval task and no night holds a task twice: a series is a task.

        Whatever the checkpoint folder or ``--name`` is called each night (a nightly job
        names runs by date), the task's nights form one series; with several checkpoints
        a night, runs are matched by their full names ``<checkpoint>/<task>``.
        """
        return not self.single_run and all(
            all(r.get("task") for r in n.runs) and len({r["task"] for r in n.runs}) == len(n.runs) for n in self.nights)

    def key_of(self, run: dict) -> str:
        """The series a night's run belongs to: ``""`` (one run a night), its task, or its name."""
        return "" if self.single_run else run["task"] if self.by_task else run["name"]

    @cached_property
    def _keys_by_name(self) -> dict[str, str]:
        return {r["name"]: self.key_of(r) for n in self.nights for r in n.runs}

    def key_of_name(self, name: str) -> str:
        """The series of the run called ``name`` on some night (a warning's or a moved slice's run)."""
        return self._keys_by_name.get(name, name)

    def run_keys(self) -> tuple[str, ...]:
        """The run series: ``("",)`` when every night has one run, else tasks or run names, first seen first."""
        if self.single_run:
            return ("",)
        return tuple(dict.fromkeys(self.key_of(run) for night in self.nights for run in night.runs))

    def run_of(self, night: Night, key: str) -> dict | None:
        """The night's run of series ``key`` (None when the night does not have it)."""
        if key == "":
            return night.runs[0] if night.runs else None
        return next((r for r in night.runs if self.key_of(r) == key), None)

    def scopes(self, key: str) -> tuple[str, ...]:
        """Every scope of a run series in first-seen order: overall, splits, then slices."""
        overall, splits, slices = ["overall"], {}, {}
        for night in self.nights:
            run = self.run_of(night, key)
            if run is None:
                continue
            for name in run["by_split"]:
                splits.setdefault(f"split={name}", None)
            for column, values in run["by_slice"].items():
                for value in values:
                    slices.setdefault(f"{column}={value}", None)
        return tuple(overall + list(splits) + list(slices))

    def loss_metric(self, key: str) -> str | None:
        """The loss this run series follows: the first of the catalog's ``trend_losses`` a night has.

        The log loss for classifier, token and multiple-choice runs; bits per byte for an
        lm-eval rolling task (no tokens counted, so no log loss); None when neither.
        """
        for entry in view("trend_losses"):
            if any(_finite(metric_of(self.run_of(n, key), "overall", entry.name)) for n in self.nights):
                return entry.name
        return None

    def series(self, key: str, scope: str, metric: str) -> list:
        """One value per night (None where the night lacks the run, scope or metric)."""
        return [metric_of(self.run_of(n, key), scope, metric) for n in self.nights]

    @property
    def warnings(self) -> tuple[TrendWarning, ...]:
        """Every night's warnings: the documents' own, then trend shifts, night by night."""
        own = [
            TrendWarning(w["code"], night.label, run["name"], w["scope"], w["message"])
            for night in self.nights for run in night.runs for w in run["warnings"]
        ]
        order = {n.label: i for i, n in enumerate(self.nights)}
        return tuple(sorted(own + list(self.shifts), key=lambda w: order[w.night]))

    def to_dict(self) -> dict[str, Any]:
        """The trend JSON document; NaN and infinities as null."""
        from .evaluation import json_safe

        return json_safe({
            "format_version": TREND_FORMAT_VERSION,
            "kind": "trend",
            "window": self.window,
            "nights": [n.to_dict() for n in self.nights],
            "warnings": [w.to_dict() for w in self.warnings],
            "moved_slices": [m.to_dict() for m in self.moved],
            "notes": list(self.notes),
        })


def nights_columns(runs) -> tuple:
    """The metrics of a trend's table of nights (page and markdown), for these night runs.

    The catalog's ``trend_nights``, its ``trend_calibration`` figures that some run has (the
    equal-mass ECE, RMS calibration error, temperature, calibration loss), then its ``trend_lm`` figures that some language-model run
    (an lm-eval task, a token file) has; a classifier's perplexity is its log loss again.
    """
    base = view("trend_nights")
    runs = list(runs)
    calibration = [e for e in view("trend_calibration") if any((r.get("overall") or {}).get(e.name) is not None
                                                              for r in runs)]
    runs = [r for r in runs if r.get("layout_kind", CLASSIFIER) != CLASSIFIER]
    extra = [e for e in view("trend_lm") if e.name not in {b.name for b in base}
             and any((r.get("overall") or {}).get(e.name) is not None for r in runs)]
    return (*base, *calibration, *extra)


def metric_of(run: dict | None, scope: str, metric: str):
    """A metric of one scope of a night's run summary; None when absent."""
    if run is None:
        return None
    if scope == "overall":
        metrics = run["overall"]
    elif scope.startswith("split="):
        metrics = run["by_split"].get(scope[len("split="):])
    else:
        column, _, value = scope.partition("=")
        metrics = run["by_slice"].get(column, {}).get(value)
    return None if metrics is None else metrics.get(metric)


def _half_width(ci) -> float | None:
    """Half the width of a ``[low, high]`` interval; None when it is missing or not finite."""
    if not isinstance(ci, list) or len(ci) != 2 or not all(_is_number(v) and math.isfinite(v) for v in ci):
        return None
    return (ci[1] - ci[0]) / 2


def _finite(value) -> bool:
    """A finite number."""
    return _is_number(value) and math.isfinite(value)


def find_shifts(trend: Trend) -> tuple[TrendWarning, ...]:
    """``trend_shift`` warnings for every run series and scope (see the module docstring).

    The loss checked is the series' :meth:`Trend.loss_metric`: the log loss, or bits per
    byte for a run that has no log loss (an lm-eval rolling task), with its 95% interval.
    """
    found = []
    for key in trend.run_keys():
        name = trend.loss_metric(key)
        if name is None:
            continue  # nothing with an interval to follow (an lm-eval loglikelihood task)
        label = metric(name).label
        for scope in trend.scopes(key):
            points = []  # (night, loss, half-width or None)
            for night in trend.nights:
                run = trend.run_of(night, key)
                loss = metric_of(run, scope, name)
                if _finite(loss):
                    points.append((night, run["name"], loss, _half_width(metric_of(run, scope, f"{name}_ci95"))))
            found += _scope_shifts(trend, points, scope, label)
    order = {n.label: i for i, n in enumerate(trend.nights)}
    return tuple(sorted(found, key=lambda w: order[w.night]))


def _scope_shifts(trend: Trend, points: list, scope: str, label: str) -> list[TrendWarning]:
    """The shifts of one scope's series of ``(night, run name, loss, half-width)``."""
    found = []
    for j in range(MIN_EARLIER, len(points)):
        night, run_name, loss, half = points[j]
        if half is None:
            continue
        earlier = points[max(0, j - trend.window):j]
        centre = statistics.median(p[2] for p in earlier)
        halves = [p[3] for p in earlier if p[3] is not None]
        allowed = half + (statistics.median(halves) if halves else 0.0)
        if abs(loss - centre) > allowed:
            direction = "above" if loss > centre else "below"
            found.append(TrendWarning(
                TREND_SHIFT, night.label, run_name, scope,
                f"{label} {number(loss)} is {direction} the range expected from the previous {len(earlier)} "
                f"nights, {interval((centre - allowed, centre + allowed))} (their median {number(centre)} ± "
                f"this night's 95% half-width {number(half)} + their median half-width {number(allowed - half)}); "
                "check what changed in the data or the model that night",
                loss, (centre - allowed, centre + allowed),
            ))
    return found


def moved_slices(trend: Trend, limit: int = 10) -> tuple[MovedSlice, ...]:
    """Slice values whose latest log loss is furthest from where they started.

    "Where they started" is the median of the first ``window`` nights that have the slice
    value (fewer when there are fewer earlier nights): a slice that crept up over months
    shows here as well as one that jumped last night. Values absent on the latest night,
    or with no earlier night, are left out.
    """
    moved = []
    last = trend.nights[-1]
    for key in trend.run_keys():
        run = trend.run_of(last, key)
        if run is None:
            continue
        for scope in trend.scopes(key):
            if scope == "overall" or scope.startswith("split="):
                continue
            values = trend.series(key, scope, LOG_LOSS)
            latest = values[-1]
            earlier = [v for v in values[:-1] if _finite(v)][: trend.window]
            if not _finite(latest) or not earlier:
                continue
            moved.append(MovedSlice(run["name"], scope, latest, statistics.median(earlier), len(earlier)))
    moved.sort(key=lambda m: (-abs(m.change), m.run, m.scope))
    return tuple(moved[:limit])


def build_trend(documents: Sequence[tuple[str, dict]], window: int = DEFAULT_WINDOW) -> Trend:
    """Order documents into nights, skip copies, and find what moved.

    Parameters
    ----------
    documents : sequence of (source, document)
        As :func:`load_documents` returns them: metrics documents of any kind and version.
    window : int
        How many previous nights set a night's expected range (at least 1).

    Returns
    -------
    Trend
        With a note for each document skipped as a copy of another
        (:func:`losslens.json_documents.find_copies`).

    Raises
    ------
    UsageError
        ``window`` below 1 or no documents.
    InputError
        A document that is not a metrics document, naming it.
    """
    from .errors import UsageError

    if window < 1:
        raise UsageError(f"--window must be at least 1, got {window}")
    if not documents:
        raise UsageError("no JSON documents given; e.g. losslens trend reports/*.json -o trend.html")
    runs = [[run_summary(r) for r in document_runs(document, source)] for source, document in documents]
    order, times, notes = order_documents(documents)
    skipped, copy_notes = find_copies(documents, order, times)
    nights, used = [], set()
    for i in order:
        if i in skipped:
            continue
        source, document = documents[i]
        stamp = document.get("generated_at") if times[i] is not None else None
        label = base = stamp if stamp else _stem(source)
        n = 2
        while label in used:  # two files with one stem (in different folders) stay two nights
            label, n = f"{base} ({n})", n + 1
        used.add(label)
        nights.append(Night(label, source, stamp, tuple(runs[i])))
    trend = Trend(tuple(nights), window, (), notes=tuple(notes + copy_notes))
    trend = replace(trend, shifts=find_shifts(trend))
    return replace(trend, moved=moved_slices(trend))


# --------------------------------------------------------------------------- gates


class _ScopeMetrics:
    """A scope's metrics as attributes, as :mod:`losslens.gates` reads them; absent ones are None."""

    def __init__(self, metrics: dict):
        self._metrics = metrics

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        return self._metrics.get(name)


@dataclass(frozen=True)
class _GateWarning:
    """A warning as :mod:`losslens.gates` reads one: code and scope."""

    code: str
    scope: str


@dataclass(frozen=True)
class _GateRun:
    """A night's run as :mod:`losslens.gates` reads a run evaluation."""

    name: str
    overall: _ScopeMetrics
    by_split: dict
    warnings: tuple
    layout_kind: str  # read by catalog.layout_of, so that gates accept the run's own metrics


@dataclass(frozen=True)
class _GateEvaluation:
    """The latest night's runs, as :mod:`losslens.gates` reads an evaluation."""

    runs: tuple


def parse_trend_gates(fail_if=(), fail_on_warning=()):
    """Parse gates as :func:`losslens.gates.parse_gates` does, also accepting ``trend_shift``."""
    from .gates import Gate, parse_gates, parse_warning_gate

    gates = list(parse_gates(fail_if, ()))
    for code in fail_on_warning or ():
        code = code.strip()
        gates.append(Gate(expression=f"warning {code}", code=code) if code == TREND_SHIFT else parse_warning_gate(code))
    return tuple(gates)


def latest_night_for_gates(trend: Trend) -> _GateEvaluation:
    """The latest night's runs, shaped as :func:`losslens.gates.check_gates` reads an evaluation.

    Gates look at the latest night only: a nightly trend job should fail for what happened
    tonight, not again every night for a shift months ago. Its warnings are the night's own
    and its trend shifts.
    """
    last = trend.nights[-1]
    runs = []
    for run in last.runs:
        warnings = [_GateWarning(w["code"], w["scope"]) for w in run["warnings"]]
        warnings += [_GateWarning(w.code, w.scope) for w in trend.shifts if w.night == last.label and w.run == run["name"]]
        runs.append(_GateRun(run["name"], _ScopeMetrics(run["overall"]),
                             {k: _ScopeMetrics(v) for k, v in run["by_split"].items()}, tuple(warnings),
                             run["layout_kind"]))
    return _GateEvaluation(tuple(runs))


def check_trend_gates(gates, trend: Trend):
    """Check ``--fail-if`` / ``--fail-on-warning`` gates on the latest night (see above).

    Returns
    -------
    losslens.gates.GateReport
        As for a metrics run; ``delta.`` gates are refused (a trend has no baseline).

    Raises
    ------
    UsageError
        A delta gate, or a scope the latest night's runs do not have.
    """
    from .errors import UsageError
    from .gates import check_gates

    for gate in gates:
        if gate.delta:
            raise UsageError(f"--fail-if {gate.expression!r}: delta gates need --baseline, which trend does not take")
    return check_gates(gates, latest_night_for_gates(trend))
