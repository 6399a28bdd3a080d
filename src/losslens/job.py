"""One job: evaluate the inputs, compare the runs, check the baseline and the gates.

:func:`run_job` is what the command line runs and what a library user calls to get
everything the command computes; it returns a :class:`JobResult`, the one object every
reporter reads (terminal, HTML, JSON via :meth:`JobResult.to_dict`, and later markdown and
the notebook card). It writes nothing: outputs are the writers' job (:mod:`losslens.output`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from typing import Any, Sequence

from .errors import UsageError
from .options import Options


@dataclass(frozen=True)
class JobOptions:
    """What a job does beyond reading and scoring (those are :class:`~losslens.options.Options`).

    Attributes
    ----------
    names : tuple of str, optional
        One run name per input (default: the file stems).
    engine : str
        ``local`` (stream in this process) or ``dask``.
    scheduler : str, optional
        A ``dask.distributed`` scheduler address (``engine="dask"``).
    baseline : str, optional
        A JSON report written earlier, to compare every metric with.
    fail_if, fail_on_warning : tuple of str
        Gates: ``[delta.][scope.]metric OP number`` expressions and warning codes.
    """

    names: tuple[str, ...] | None = None
    engine: str = "local"
    scheduler: str | None = None
    baseline: str | None = None
    fail_if: tuple[str, ...] = ()
    fail_on_warning: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("names", "fail_if", "fail_on_warning"):
            value = getattr(self, name)
            if isinstance(value, str):
                object.__setattr__(self, name, (value,))
            elif value is not None:
                object.__setattr__(self, name, tuple(value))
        if self.engine not in ("local", "dask"):
            raise UsageError(f"--engine must be 'local' or 'dask', got {self.engine!r}")


@dataclass(frozen=True)
class JobResult:
    """Everything a job found: the runs, their comparisons, the baseline and the gates.

    Attributes
    ----------
    evaluation : losslens.evaluation.Evaluation, LMEvaluation or LMEvalEvaluation
        Every run's metrics and warnings: classifier runs, language-model token / sequence
        runs (:class:`losslens.lm.evaluation.LMEvaluation`) or lm-evaluation-harness tasks
        (:class:`losslens.lm.lm_eval.LMEvalEvaluation`); :attr:`kind` says which.
    comparisons : tuple of losslens.comparison.Comparison (or losslens.lm.compare.LMComparison)
        Each run after the first against the first (empty for one run); for lm-eval
        checkpoints, each later folder's task against the first folder's.
    baseline : losslens.baseline.BaselineComparison or None
        Every run against ``--baseline``, when given.
    gates : losslens.gates.GateReport or None
        The outcome of ``--fail-if`` / ``--fail-on-warning``, when given.
    """

    evaluation: Any
    comparisons: tuple = ()
    baseline: Any = None
    gates: Any = None
    options: JobOptions = field(default_factory=JobOptions)

    @property
    def kind(self) -> str:
        """``classifier``, ``language_model`` (token / sequence files) or ``lm_eval`` (lm-eval samples)."""
        return getattr(self.evaluation, "kind", "classifier")

    @property
    def runs(self):
        """The evaluated runs (lm-eval: tasks), in input order."""
        return self.evaluation.runs

    @property
    def warnings(self) -> tuple:
        """Every run's warnings as ``(run name, warning)`` pairs."""
        return tuple((run.name, w) for run in self.evaluation.runs for w in run.warnings)

    @property
    def passed(self) -> bool:
        """True unless a gate failed (also when there are no gates)."""
        return self.gates is None or self.gates.passed

    def to_dict(self, generated_at: datetime | None = None) -> dict[str, Any]:
        """The JSON document (format_version 3, one shape for every kind: :mod:`losslens.document`).

        ``generated_at`` (a pinned time, see :func:`pinned_time`) is written after
        ``format_version``; without it the document has no time, so that the same input
        gives the same bytes.
        """
        from .document import job_document
        from .formatting import iso_time

        return job_document(self.evaluation, self.comparisons, self.baseline, self.gates,
                            iso_time(generated_at) if generated_at is not None else None)


def split_options(values: dict) -> tuple[Options, JobOptions]:
    """Sort flat option values (as the command line and config files give them) into the two kinds.

    Keys that are neither (``json_path``, ``quiet``, ...) are the caller's and are ignored;
    None means "not given".
    """
    def given(names):
        return {k: v for k, v in values.items() if k in names and v is not None}

    evaluation = given({f.name for f in fields(Options)})
    job = given({f.name for f in fields(JobOptions)} | {"name"})
    if "name" in job:
        job["names"] = job.pop("name") or None
    evaluation["by"] = tuple(evaluation.get("by") or ())
    return Options(**evaluation), JobOptions(**job)


def run_job(inputs: Sequence, options: Options | None = None, job: JobOptions | None = None,
            *, observers: Sequence = (), **option_values) -> JobResult:
    """Evaluate ``inputs`` (one run each), compare the runs, check the baseline and the gates.

    Parameters
    ----------
    inputs : sequence
        Paths, folders, glob patterns or DataFrames; each item is one run. Their kind
        (classifier tables, token / sequence files, harness logs, Trainer states) is
        recognised by header or path (:func:`losslens.lm.detect.input_kind`); each kind is a
        layout plugin (:mod:`losslens.layouts`) over the same engine.
    options : Options, optional
        How to read and score, for every kind (default: built from ``option_values``).
    job : JobOptions, optional
        Names, engine, baseline and gates (default: built from ``option_values``).
    observers : sequence of callables, optional
        Engine observers called with every scored batch (a progress line, the per-example
        file); local engine, classifier inputs only.
    **option_values
        Flat keywords of any kind, as on the command line: ``id="id"``,
        ``fail_if=["log_loss > 0.3"]``, ``names=["old", "new"]``, ``min_k=0.2``.

    Returns
    -------
    JobResult

    Raises
    ------
    UsageError, InputError
        Bad gates, a bad baseline file or bad input, before any output exists.

    Examples
    --------
    >>> import pandas as pd
    >>> a = pd.DataFrame({"id": [1, 2, 3], "label": [1, 0, 1], "y_prob": [0.9, 0.2, 0.6]})
    >>> b = a.assign(y_prob=[0.8, 0.4, 0.7])
    >>> result = run_job([a, b], names=["old", "new"], fail_if=["log_loss > 0.5"])
    >>> result.comparisons[0].paired, result.passed
    (True, True)
    """
    from .pipes import pipes_read_once

    # Inputs are resolved to learn their kind and again to be read: a pipe is read once.
    with pipes_read_once():
        return _run_job(inputs, options, job, observers=observers, **option_values)


def _run_job(inputs: Sequence, options: Options | None = None, job: JobOptions | None = None,
             *, observers: Sequence = (), **option_values) -> JobResult:
    """:func:`run_job` once its inputs' pipes are read once."""
    from .engine import evaluate_job
    from .gates import check_gates, parse_gates
    from .lm.detect import input_kind
    from .plans import read_options

    if option_values:
        if options is not None or job is not None:
            raise UsageError("give either options=/job= or option keywords, not both")
        if "names" in option_values:
            option_values["name"] = option_values.pop("names")
        unknown = set(option_values) - {f.name for f in fields(Options)} - {f.name for f in fields(JobOptions)} - {"name"}
        if unknown:
            raise UsageError(f"unknown option(s) {', '.join(sorted(unknown))}")
        options, job = split_options(option_values)
    options = options or Options()
    job = job or JobOptions()
    # Everything that can be refused without reading the data is refused first.
    gates = parse_gates(job.fail_if, job.fail_on_warning)
    previous = None
    if job.baseline:  # the baseline reader (every document version and kind) loads only when asked
        from .baseline import load_baseline

        previous = load_baseline(job.baseline)
    kind = input_kind(inputs, forced=options.columns_given, read=read_options(options))
    evaluation, comparisons = evaluate_job(kind, inputs, options, job.names, observers, job.engine, job.scheduler)
    baseline = _compared_with_baseline(evaluation, previous, job.baseline)
    report = check_gates(gates, evaluation, baseline, comparisons) if gates else None
    return JobResult(evaluation, tuple(comparisons), baseline, report, job)


def _compared_with_baseline(evaluation, previous, path):
    """Every run against the ``--baseline`` document (None without one)."""
    if not previous:
        return None
    from .baseline import compare_with_baseline

    return compare_with_baseline(evaluation, previous, path)


def pinned_time(value: str | datetime | None = None) -> datetime | None:
    """The time a user pinned: ``value`` (``--generated-at``), else ``SOURCE_DATE_EPOCH``; None if neither.

    Reports show it, and the JSON carries it as ``generated_at`` so that ``losslens trend``
    can order nights; an unpinned run's JSON has no time, and the same input gives the same bytes.

    Raises
    ------
    UsageError
        ``value`` is not an ISO time, or ``SOURCE_DATE_EPOCH`` not a whole number of seconds.

    Examples
    --------
    >>> pinned_time("2026-03-01T04:30:00Z").isoformat()
    '2026-03-01T04:30:00+00:00'
    """
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if value:
        text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value  # Python 3.10 takes no "Z"
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise UsageError(f"--generated-at {value!r} is not an ISO time such as 2026-01-31T12:00:00Z") from None
        return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch:
        try:
            return datetime.fromtimestamp(int(epoch), tz=timezone.utc)
        except ValueError:
            raise UsageError(f"SOURCE_DATE_EPOCH={epoch!r} is not a whole number of seconds") from None
    return None


def resolve_generated_at(value: str | datetime | None = None) -> datetime:
    """The report time: the pinned time (:func:`pinned_time`), else now (UTC, whole seconds)."""
    return pinned_time(value) or datetime.now(timezone.utc).replace(microsecond=0)
