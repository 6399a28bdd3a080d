"""Comparing with an earlier job: deltas of every metric against a JSON losslens wrote before.

:func:`load_baseline` reads the file (the only I/O here); :func:`compare_with_baseline` is
pure. A current run is matched with the baseline run of the same name; when the baseline
holds a single run, every current run without a namesake is compared with it, because a
nightly job's file name (and so the default run name) often carries the date.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from .catalog import CLASSIFIER, better, layout_of, metric_names
from .errors import InputError
from .evaluation import FORMAT_VERSION, Evaluation, Metrics, RunEvaluation

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
        }


def read_json_document(path, shown: str, hint: str = ""):
    """The parsed JSON of a document losslens wrote earlier (a baseline, a night of a trend).

    Parameters
    ----------
    path : str or path
        The file.
    shown : str
        How messages name it (``--baseline old.json``, or the path alone).
    hint : str
        Added to the "not JSON" message: what the user should give instead.

    Raises
    ------
    InputError
        The file is missing, a folder, unreadable or not JSON; one line naming ``shown``.
    """
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        raise InputError(f"{shown}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{shown}: is a folder; give a JSON file written by losslens --json") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{shown}: cannot read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{shown}: not JSON ({exc.msg} at line {exc.lineno}){hint}") from None


def load_baseline(path: str) -> dict:
    """Read a JSON document written by ``losslens ... --json`` and check it is one.

    Raises
    ------
    InputError
        The file is missing, not JSON, or not a losslens document of a known format version.
    """
    document = read_json_document(path, f"--baseline {path}")
    if isinstance(document, dict) and "runs" not in document and isinstance(document.get("tasks"), list):
        document = {**document, "runs": _task_runs(document["tasks"])}
    if not isinstance(document, dict) or not isinstance(document.get("runs"), list) or "format_version" not in document:
        raise InputError(f"--baseline {path}: not a JSON report written by losslens (no format_version and runs)")
    version = document["format_version"]
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise InputError(
            f"--baseline {path}: format_version {version!r} is newer than this losslens reads "
            f"({FORMAT_VERSION}); upgrade losslens"
        )
    for i, run in enumerate(document["runs"]):
        if not isinstance(run, dict) or not isinstance(run.get("name"), str) or not isinstance(run.get("overall"), dict):
            raise InputError(f"--baseline {path}: runs[{i}] has no name or overall metrics")
    return document


def _task_runs(tasks: list) -> list:
    """The runs of an lm-eval job's JSON: each task, its lm-eval metrics over its inner run's overall."""
    runs = []
    for task in tasks:
        if not isinstance(task, dict):
            runs.append(task)  # reported as malformed below
            continue
        inner = task.get("classifier") or task.get("language_model") or {}
        overall = {**(inner.get("overall") or {}), **(task.get("metrics") or {})}
        runs.append({"name": task.get("name"), "overall": overall})
    return runs


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


def compare_with_baseline(evaluation: Evaluation, document: dict, source: str) -> BaselineComparison:
    """Match each current run with a baseline run and compute the deltas (see the module notes)."""
    by_name = {r["name"]: r for r in document["runs"]}
    only = document["runs"][0] if len(document["runs"]) == 1 else None
    runs, unmatched = [], []
    for run in evaluation.runs:
        match = by_name.get(run.name, only)
        if match is None:
            unmatched.append(run.name)
        else:
            runs.append(compare_run(run, match))
    return BaselineComparison(source=source, runs=tuple(runs), unmatched=tuple(unmatched))

