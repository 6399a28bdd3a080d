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
            *, observers: Sequence = (), lm_options=None, **option_values) -> JobResult:
    """Evaluate ``inputs`` (one run each), compare the runs, check the baseline and the gates.

    Parameters
    ----------
    inputs : sequence
        Paths, folders, glob patterns or DataFrames; each item is one run.
    options : Options, optional
        How to read and score (default: built from ``option_values``).
    job : JobOptions, optional
        Names, engine, baseline and gates (default: built from ``option_values``).
    observers : sequence of callables, optional
        Engine observers called with every scored batch (a progress line, the per-example
        file); local engine, classifier inputs only.
    lm_options : losslens.lm.options.LMOptions, optional
        How to read language-model token / sequence files (default: from ``option_values``
        and ``options``). Token files, sequence files and lm-eval samples are recognised by
        their header or path (see :func:`losslens.lm.detect.input_kind`).
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
        return _run_job(inputs, options, job, observers=observers, lm_options=lm_options, **option_values)


def _run_job(inputs: Sequence, options: Options | None = None, job: JobOptions | None = None,
             *, observers: Sequence = (), lm_options=None, **option_values) -> JobResult:
    """:func:`run_job` once its inputs' pipes are read once."""
    from .comparison import LossCollector, compare_runs
    from .gates import check_gates, parse_gates

    if option_values:
        if options is not None or job is not None:
            raise UsageError("give either options=/job= or option keywords, not both")
        if "names" in option_values:
            option_values["name"] = option_values.pop("names")
        from .lm.options import LM_ONLY_OPTIONS, lm_options_of

        lm_values = {k: option_values.pop(k) for k in LM_ONLY_OPTIONS if k in option_values}
        unknown = set(option_values) - {f.name for f in fields(Options)} - {f.name for f in fields(JobOptions)} - {"name"}
        if unknown:
            raise UsageError(f"unknown option(s) {', '.join(sorted(unknown))}")
        options, job = split_options(option_values)
        if lm_options is None:
            lm_options = lm_options_of(lm_values, options)
    options = options or Options()
    job = job or JobOptions()
    # Everything that can be refused without reading the data is refused first.
    gates = parse_gates(job.fail_if, job.fail_on_warning)
    previous = None
    if job.baseline:  # the baseline reader (every document version and kind) loads only when asked
        from .baseline import load_baseline

        previous = load_baseline(job.baseline)
    from .lm.detect import input_kind

    from .engine import read_options

    kind = input_kind(inputs, forced=lm_options is not None and lm_options.columns_given, read=read_options(options))
    if kind != "classifier":
        from .lm.options import lm_options_of

        return _run_language_model_job(inputs, kind, options, job, lm_options or lm_options_of({}, options),
                                       gates, previous)
    observers = list(observers)
    collector = None
    if job.engine == "dask":
        if observers:
            # The only observers the command passes with dask: the per-example file.
            raise UsageError("--per-example needs --engine local (per-example values stay on the workers with dask)")
        from .distributed import evaluate_runs_dask

        evaluation = evaluate_runs_dask(inputs, names=job.names, options=options, scheduler=job.scheduler)
    else:
        from .engine import evaluate_runs

        # Runs pair by id whether --id was given or an id column was detected; the
        # collector keeps nothing for runs without ids.
        if len(inputs) > 1:
            collector = LossCollector()
            observers.append(collector)
        evaluation = evaluate_runs(inputs, names=job.names, options=options, observers=observers)
    comparisons = compare_runs(evaluation, collector, n_worst=options.worst, cluster=options.cluster,
                               n_bootstrap=options.bootstrap, seed=options.seed)
    baseline = _compared_with_baseline(evaluation, previous, job.baseline)
    report = check_gates(gates, evaluation, baseline, comparisons) if gates else None
    return JobResult(evaluation, comparisons, baseline, report, job)


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


def _run_language_model_job(inputs: Sequence, kind: str, options: Options, job: JobOptions, lm_options,
                            gates: tuple, previous: dict | None) -> JobResult:
    """:func:`run_job` for token / sequence files and lm-eval samples (see :mod:`losslens.lm`).

    Engine observers are not called: the per-example file of these runs is one row per
    document, written by the caller from the result (:func:`losslens.lm.export.per_document_rows`).
    """
    from .gates import check_gates

    if kind == "trainer":
        # Logged loss curves: nothing to stream or pair (see losslens.lm.trainer_run).
        from .lm.trainer_run import evaluate_trainer, refuse_options

        refuse_options(options.by, options.cluster, options.bootstrap, job.engine, lm_options.reference)
        evaluation = evaluate_trainer(list(inputs), names=job.names)
        baseline = _compared_with_baseline(evaluation, previous, job.baseline)
        return JobResult(evaluation, (), baseline, check_gates(gates, evaluation, baseline, ()) if gates else None, job)
    if options.bootstrap and len(inputs) < 2:
        raise UsageError("--bootstrap is for classifier files and for comparisons: one language-model input's "
                         "intervals come from per-document sums already; give two or more inputs to compare")
    if options.cluster and kind != "lm_eval":
        raise UsageError("--cluster is for classifier files and lm-eval samples (doc.FIELD); token and "
                         "sequence runs already take documents as the units of their intervals")
    # Only how to read the text: the classifier's other options (a --labels join) are not theirs.
    read = Options(encoding=options.encoding, sep=options.sep, decimal=options.decimal, format=options.format)
    if lm_options.reference and (kind == "lm_eval" or job.engine == "dask"):
        raise UsageError("--reference compares the documents of token and sequence files read locally"
                         + (": drop --engine dask" if kind != "lm_eval" else "; lm-eval samples have no per-token "
                            "log-probs to score documents with"))
    if kind == "lm_eval":
        if job.engine == "dask":
            raise UsageError("--engine dask reads token and sequence files; lm-eval samples files are "
                             "small and read locally: drop --engine dask")
        from .lm.lm_eval import evaluate_lm_eval

        evaluation = evaluate_lm_eval(list(inputs), names=job.names, cluster=options.cluster,
                                      n_bootstrap=options.bootstrap, seed=options.seed, by=options.by,
                                      document=lm_options.document)
    elif job.engine == "dask":
        from .lm.distributed import evaluate_lm_dask

        evaluation = evaluate_lm_dask(inputs, names=job.names, options=lm_options, scheduler=job.scheduler, read=read)
    else:
        from .lm.engine import evaluate_lm_runs

        evaluation = evaluate_lm_runs(inputs, names=job.names, options=lm_options, read=read)
    if options.bootstrap and kind != "lm_eval":
        from dataclasses import replace

        from .lm.compare import compare_lm_runs

        # The runs' own intervals come from per-document sums; the bootstrap is the comparisons'.
        evaluation = replace(evaluation, comparisons=compare_lm_runs(evaluation.runs, options.bootstrap, options.seed))
    baseline = _compared_with_baseline(evaluation, previous, job.baseline)
    report = check_gates(gates, evaluation, baseline, evaluation.comparisons) if gates else None
    return JobResult(evaluation, tuple(evaluation.comparisons), baseline, report, job)
