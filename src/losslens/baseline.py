"""Comparing with an earlier job: deltas of every metric against a JSON losslens wrote before.

:func:`load_baseline` reads the file (the only I/O here); :func:`compare_with_baseline` is
pure. A current run is matched with the baseline run of the same name; when no run has a
namesake, lm-eval runs (``<checkpoint>/<task>``) are matched by task, because a baseline
from another checkpoint's folder names every run differently; when the baseline holds a
single run, every current run without a match is compared with it, because a nightly job's
file name (and so the default run name) often carries the date.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .catalog import CLASSIFIER, better, layout_of, metric_names
from .json_documents import document_runs, read_json_document
from .evaluation import Evaluation, Metrics, RunEvaluation

#: Which direction is better comes from the catalog (:func:`losslens.catalog.better`). A
#: change in the worse direction is flagged as a regression when it exceeds this share of
#: the baseline value (or any change from a baseline of 0). Gates (``delta.METRIC``) are the
#: precise tool; the flag only draws the eye.
REGRESSION_TOLERANCE = 0.01
#: ... and this absolute amount: a KL of 2e-8 bits becoming 4e-5 is a large relative change
#: and no regression anyone should act on.
REGRESSION_FLOOR = 1e-3


@dataclass(frozen=True)
class MetricDelta:
    """One metric of one scope, now and in the baseline."""

    metric: str
    baseline: float | None
    current: float | None
    direction: str | None  # "lower" or "higher" is better; None for counts and entropies of the data

    @property
    def delta(self) -> float | None:
        """Current minus baseline; None when either is undefined."""
        if self.baseline is None or self.current is None:
            return None
        value = self.current - self.baseline
        return value if math.isfinite(value) else None

    @property
    def regression(self) -> bool:
        """Whether the metric got worse by more than :data:`REGRESSION_TOLERANCE` (relative)
        and :data:`REGRESSION_FLOOR` (absolute)."""
        delta = self.delta
        if delta is None or self.direction is None:
            return False
        worse = delta if self.direction == "lower" else -delta
        return worse > max(REGRESSION_TOLERANCE * abs(self.baseline), REGRESSION_FLOOR)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return {
            "baseline": self.baseline,
            "current": self.current,
            "delta": self.delta,
            "better": self.direction,
            "regression": self.regression,
        }


@dataclass(frozen=True)
class RunBaseline:
    """A current run against its baseline run: deltas overall and for each split in both."""

    run: str
    baseline_run: str
    overall: tuple[MetricDelta, ...]
    by_split: dict[str, tuple[MetricDelta, ...]]

    def scope(self, split: str | None) -> dict[str, MetricDelta] | None:
        """The deltas of one scope by metric name (None: overall); None if a side lacks the split."""
        deltas = self.overall if split is None else self.by_split.get(split)
        return None if deltas is None else {d.metric: d for d in deltas}

    @property
    def regressions(self) -> list[tuple[str, MetricDelta]]:
        """``(scope, delta)`` for every flagged regression, overall first."""
        found = [("overall", d) for d in self.overall if d.regression]
        for split, deltas in self.by_split.items():
            found += [(split, d) for d in deltas if d.regression]
        return found

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return {
            "run": self.run,
            "baseline_run": self.baseline_run,
            "n_regressions": len(self.regressions),
            "overall": {d.metric: d.to_dict() for d in self.overall},
            "by_split": {s: {d.metric: d.to_dict() for d in ds} for s, ds in self.by_split.items()},
        }


@dataclass(frozen=True)
class BaselineComparison:
    """Every current run against the baseline file; runs with no baseline are listed."""

    source: str
    runs: tuple[RunBaseline, ...]
    unmatched: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()  # how runs were matched when not by name

    @property
    def tolerance(self) -> float:
        """The relative change in the worse direction flagged as a regression."""
        return REGRESSION_TOLERANCE

    @property
    def floor(self) -> float:
        """The absolute change below which nothing is flagged."""
        return REGRESSION_FLOOR

    def run(self, name: str) -> RunBaseline | None:
        """The comparison of the current run ``name``, or None when it had no baseline run."""
        return next((r for r in self.runs if r.run == name), None)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON: the ``baseline`` section."""
        return {
            "source": self.source,
            "runs": [r.to_dict() for r in self.runs],
            "unmatched_runs": list(self.unmatched),
            "n_regressions": sum(len(r.regressions) for r in self.runs),
            "notes": list(self.notes),
        }


def load_baseline(path: str) -> dict:
    """Read a JSON document written by ``losslens ... --json`` (any kind, any version) for ``--baseline``.

    Returns
    -------
    dict
        The document with its ``runs`` in the one shape :func:`losslens.json_documents.document_runs`
        gives: classifier, language-model and lm-eval documents alike.

    Raises
    ------
    InputError
        The file is missing, not JSON, or not a losslens metrics document; one line naming it.
    """
    shown = f"--baseline {path}"
    document = read_json_document(path, shown, "; give a JSON file written by losslens --json")
    return {**document, "runs": document_runs(document, shown)}


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def metric_deltas(current: Metrics, baseline: dict, layout: str = CLASSIFIER) -> tuple[MetricDelta, ...]:
    """Deltas of every numeric metric of ``current`` (a run of ``layout``) against the baseline's JSON metrics."""
    out = []
    for name in metric_names(layout):
        value = getattr(current, name, None)
        if value is None and name not in baseline:
            continue  # soft-target metrics, absent on both sides
        out.append(MetricDelta(name, _number(baseline.get(name)), _number(value), better(name)))
    return tuple(out)


def compare_run(run: RunEvaluation, baseline_run: dict) -> RunBaseline:
    """Deltas of one run overall and for every split present in both."""
    splits = baseline_run.get("by_split") or {}
    return RunBaseline(
        run=run.name,
        baseline_run=baseline_run["name"],
        overall=metric_deltas(run.overall, baseline_run["overall"], layout_of(run)),
        by_split={s: metric_deltas(m, splits[s], layout_of(run))
                  for s, m in run.by_split.items() if isinstance(splits.get(s), dict)},
    )


def _task_matches(evaluation: Evaluation, runs: list[dict]) -> tuple[dict[str, dict], list[str]]:
    """lm-eval runs matched by task name when no current run has a namesake in the baseline.

    Another checkpoint's folder gives every run another ``<folder>/`` prefix, so no full name
    matches; the tasks still do. A task the baseline holds more than once (several
    checkpoints) is ambiguous and left unmatched. Returns the matches by current run name
    and the notes that say so.
    """
    names = {r["name"] for r in runs}
    if any(run.name in names for run in evaluation.runs):
        return {}, []
    by_task: dict[str, list[dict]] = {}
    for r in runs:
        if r.get("task"):
            by_task.setdefault(r["task"], []).append(r)
    matches, ambiguous = {}, []
    for run in evaluation.runs:
        found = by_task.get(getattr(run, "task", None) or "", [])
        if len(found) == 1:
            matches[run.name] = found[0]
        elif found:
            ambiguous.append(run.name)
    notes = []
    if matches:
        first = next(iter(matches))
        notes.append(f"no run of the baseline has the name of a run of this job: {len(matches)} lm-eval run(s) "
                     f"matched by task name instead, e.g. {first} with {matches[first]['name']}")
    if ambiguous:
        notes.append(f"{', '.join(ambiguous)}: the baseline holds this task for several checkpoints; "
                     "not compared (give a baseline of one checkpoint)")
    return matches, notes


def compare_with_baseline(evaluation: Evaluation, document: dict, source: str) -> BaselineComparison:
    """Match each current run with a baseline run and compute the deltas (see the module notes).

    ``document`` is what :func:`load_baseline` returns. A run is matched by name; when no run
    matches by name, lm-eval runs are matched by task (:func:`_task_matches`); otherwise a
    baseline of a single run is compared with every run, unless both are lm-eval runs of
    different tasks.
    """
    runs = document["runs"]
    by_name = {r["name"]: r for r in runs}
    by_task, notes = _task_matches(evaluation, runs)
    only = runs[0] if len(runs) == 1 else None
    matched, unmatched = [], []
    for run in evaluation.runs:
        match = by_name.get(run.name) or by_task.get(run.name) or only
        task = getattr(run, "task", None)
        if match is only and match is not None and task and match.get("task") and match["task"] != task:
            match = None  # one lm-eval task's numbers say nothing about another's
        if match is None:
            unmatched.append(run.name)
        else:
            matched.append(compare_run(run, match))
    return BaselineComparison(source=source, runs=tuple(matched), unmatched=tuple(unmatched), notes=tuple(notes))
