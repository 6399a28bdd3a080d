"""The HTML report's content: one view model per section, assembled into a :class:`ReportPage`.

Pure: :func:`build_page` reads a finished job (:class:`~losslens.job.JobResult`) and returns a
:class:`~losslens.html.model.ReportPage` of strings (numbers already formatted), tables and
chart SVGs. Each section has its own module: :mod:`~losslens.html.run` (one run),
:mod:`~losslens.html.comparisons`, :mod:`~losslens.html.baseline` and
:mod:`~losslens.html.gates`. The templates only lay these out, so that a custom template
never has to format a number and every reporter reads the same analysis.

The comparisons of runs, the baseline deltas and the gate outcomes arrive finished (from
:mod:`losslens.comparison`, :mod:`losslens.baseline` and :mod:`losslens.gates`); the page only
formats them, so that the page, the terminal and the JSON can never disagree.
"""

from __future__ import annotations

from datetime import datetime

from .comparisons import comparison_page, runs_chart, runs_table
from .gates import gates_page
from .model import (
    BaselinePage, Chart, Column, ComparisonPage, GatesPage, Guide, Headline, Notice, ReportPage, RunPage, Table,
)
from .run import run_page

#: The page's building blocks are re-exported here: a custom template's author reads them in one place.
__all__ = ["build_page", "BaselinePage", "Chart", "Column", "ComparisonPage", "GatesPage", "Guide", "Headline",
           "Notice", "ReportPage", "RunPage", "Table"]


def build_page(
    job,
    *,
    generated_at: datetime,
    command_line: str,
    version: str,
    format_version: int,
    comparisons=(),
    baseline=None,
    gates=None,
) -> ReportPage:
    """Build the report's content from a finished evaluation.

    Parameters
    ----------
    job : losslens.job.JobResult or losslens.evaluation.Evaluation
        The job's result (runs, comparisons, baseline, gates); an Evaluation alone is
        taken with the ``comparisons``, ``baseline`` and ``gates`` given here.
    generated_at : datetime
        Timezone-aware time shown as the generation time; passed in so that a pinned
        time gives a byte-identical report.
    command_line : str
        How the report was made, shown in the footer.
    version : str
        losslens version shown in the header.
    format_version : int
        The JSON report's format version, shown in the footer.
    comparisons : sequence of losslens.comparison.Comparison, optional
        Each run after the first against the first, from :func:`losslens.comparison.compare_runs`.
    baseline : losslens.baseline.BaselineComparison, optional
        Every run against a ``--baseline`` file.
    gates : losslens.gates.GateReport, optional
        The outcome of ``--fail-if`` / ``--fail-on-warning``.

    Returns
    -------
    ReportPage

    Raises
    ------
    ValueError
        If ``generated_at`` has no timezone (a report time must be unambiguous).
    """
    if generated_at.tzinfo is None or generated_at.utcoffset() is None:
        raise ValueError("generated_at must be timezone-aware")
    if getattr(job, "kind", "classifier") != "classifier":
        from .lm import language_model_page
        from .trainer import trainer_page

        return (trainer_page if job.kind == "trainer" else language_model_page)(
            job, generated_at=_time(generated_at), command_line=command_line, version=version,
            format_version=format_version,
            gates_page=gates_page(job.gates) if job.gates is not None and job.gates.results else None)
    if hasattr(job, "evaluation"):
        evaluation, comparisons, baseline, gates = job.evaluation, job.comparisons, job.baseline, job.gates
    else:
        evaluation = job
    runs = tuple(run_page(run, i, baseline) for i, run in enumerate(evaluation.runs))
    names = tuple(run.name for run in evaluation.runs)
    several = len(evaluation.runs) > 1
    anchors = {run.name: run.anchor for run in runs}
    return ReportPage(
        title="losslens report: " + ", ".join(names),
        version=version,
        format_version=format_version,
        generated_at=_time(generated_at),
        command_line=command_line,
        runs=runs,
        comparison=runs_table(evaluation.runs) if several else None,
        n_warnings=sum(r.n_warnings for r in runs),
        run_names=names,
        gates=gates_page(gates) if gates is not None and gates.results else None,
        runs_chart=runs_chart(evaluation.runs) if several else None,
        comparisons=tuple(comparison_page(c, evaluation, i) for i, c in enumerate(comparisons)),
        baseline_source=baseline.source if baseline is not None else "",
        baseline_runs=tuple(
            (r.name, anchors[r.name], r.baseline.n_regressions if r.baseline.table is not None else None)
            for r in runs if r.baseline is not None
        ),
    )


def _time(moment: datetime) -> str:
    offset = moment.utcoffset()
    zone = "UTC" if offset is not None and offset.total_seconds() == 0 else moment.strftime("%z")
    return moment.strftime("%Y-%m-%d %H:%M:%S ") + zone
