"""The report page: a JobResult in, one HTML string out.

Pure apart from reading templates (:mod:`losslens.html.templates`): :func:`render_report`
returns the page as a string and writes nothing, so the caller can write it whole or not at
all. The page holds aggregates only (metrics, histograms, the worst examples), never one row
per example, so its size does not grow with the number of rows. It computes no metric of its
own: comparisons, baseline deltas and gate outcomes are shown as given, so that the page
agrees with the terminal and the JSON.
"""

from __future__ import annotations

import os
from datetime import datetime

from ..errors import UsageError
from ..evaluation import FORMAT_VERSION
from ..version import __version__
from .page import build_page
from .templates import check_templates, make_environment, render_page

__all__ = ["render_report"]


def render_report(
    job,
    *,
    generated_at: datetime,
    command_line: str,
    template_dir: str | os.PathLike | None = None,
    comparisons=(),
    baseline=None,
    gates=None,
) -> str:
    """Render the self-contained HTML report of an evaluation.

    Parameters
    ----------
    job : losslens.job.JobResult or losslens.evaluation.Evaluation
        The job's result (:func:`losslens.run_job`): runs, comparisons, baseline and gates.
        An Evaluation alone is taken with the ``comparisons``, ``baseline`` and ``gates``
        keywords.
    generated_at : datetime
        Timezone-aware time printed as the generation time. Pinning it (the CLI honours
        ``--generated-at`` and ``SOURCE_DATE_EPOCH``) makes the output byte-identical
        for the same input.
    command_line : str
        How the report was made, printed in the footer.
    template_dir : str or path, optional
        A folder of templates searched before the built-in ones.
    comparisons : sequence of losslens.comparison.Comparison, optional
        Each run after the first against the first (:func:`losslens.comparison.compare_runs`):
        shown with a chart of the runs side by side, the change of log loss with its
        interval, and the examples that got worse the most.
    baseline : losslens.baseline.BaselineComparison, optional
        Every run against a ``--baseline`` file: a table of changes per run, regressions
        flagged.
    gates : losslens.gates.GateReport, optional
        The outcome of ``--fail-if`` / ``--fail-on-warning``: a pass/fail banner near the
        top and a row per gate and run.

    Returns
    -------
    str
        The whole page: CSS inlined, charts as inline SVG, no scripts, nothing fetched.

    Raises
    ------
    UsageError
        If ``generated_at`` is naive, ``template_dir`` is not a folder, or a template is
        missing or broken (syntax errors are found before any chart is drawn).

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> import pandas as pd, losslens
    >>> df = pd.DataFrame({"label": [1, 0], "p_0": [0.2, 0.7], "p_1": [0.8, 0.3]})
    >>> html = render_report(losslens.evaluate(df), command_line="losslens report data.csv",
    ...                      generated_at=datetime(2026, 1, 1, tzinfo=timezone.utc))
    >>> html.startswith("<!DOCTYPE html>")
    True
    """
    if generated_at.utcoffset() is None:
        raise UsageError("the report time must be timezone-aware, e.g. 2026-01-31T12:00:00+00:00")
    # Templates first, charts (the slow part) after: a bad --template-dir fails fast.
    environment = make_environment(template_dir)
    if template_dir is not None:  # the built-in templates compile (tests/test_html.py): not again each run
        check_templates(environment)
    page = build_page(
        job,
        generated_at=generated_at,
        command_line=command_line,
        version=__version__,
        format_version=FORMAT_VERSION,
        comparisons=tuple(comparisons or ()),
        baseline=baseline,
        gates=gates,
    )
    return render_page(page, environment)
