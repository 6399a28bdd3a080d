"""The HTML report's building blocks: plain dataclasses of formatted strings and checked SVG.

Every section's view model (:mod:`~losslens.html.run`, :mod:`~losslens.html.comparisons`,
:mod:`~losslens.html.baseline`, :mod:`~losslens.html.gates`) is made of these, and the
templates only lay them out: a custom template never formats a number.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from markupsafe import Markup

from ..formatting import NAME_WIDTH, shorten, visible

class Name(str):
    """A name from the data shown shortened in a table cell; ``full`` is shown on hover."""

    full: str


def name_cell(text, limit: int = NAME_WIDTH) -> str:
    """A class, run, id or slice value for a table cell: visible, shortened, the whole on hover."""
    full = visible(text)
    short = shorten(full, limit)
    if short == str(text):
        return short
    cell = Name(short)
    cell.full = full
    return cell


#: Tables longer than this are cut (the JSON report has every row); keeps the page small
#: for 1,000 classes or slice values.
MAX_TABLE_ROWS = 100


@dataclass(frozen=True)
class Column:
    """A table column: its heading, an optional tooltip and whether it holds numbers."""

    label: str
    numeric: bool = True
    help: str = ""


@dataclass(frozen=True)
class Table:
    """A titled table of formatted cells; ``note`` says what was left out, if anything.

    ``row_classes``, when given, holds one CSS class name per row (``"fail"``,
    ``"regression"``, ``""``): fixed words chosen here, never user text, so that the
    template can flag a row without knowing what the cells mean.
    """

    key: str
    title: str
    columns: tuple[Column, ...]
    rows: tuple[tuple[str, ...], ...]
    caption: str = ""
    note: str = ""
    row_classes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Chart:
    """A chart: checked inline SVG markup and a caption on how to read it."""

    key: str
    title: str
    svg: Markup
    caption: str = ""
    #: Figures shown with the chart as (name, value) pairs, e.g. the Brier decomposition.
    facts: tuple[tuple[str, str], ...] = ()
    facts_caption: str = ""
    #: A table drawn in place of ``svg`` (the confusion matrix, html.many_classes.Heatmap).
    heatmap: object = None


@dataclass(frozen=True)
class Headline:
    """One headline figure with its unit, a line of context and its value per split.

    ``help`` is the figure's tooltip; ``more`` holds further lines, e.g. a bootstrap interval.
    """

    label: str
    #: Formatted, as every value on the page (see losslens.formatting).
    value: str
    unit: str
    detail: str
    splits: tuple[tuple[str, str], ...] = ()
    help: str = ""
    #: Further lines under ``detail``, e.g. a bootstrap interval and how it was made.
    more: tuple[str, ...] = ()


@dataclass(frozen=True)
class Notice:
    """A warning as shown: code, scope, the engine's message and our advice.

    Warnings with the same code are grouped: the first is shown in full and the others
    (the same finding in other splits or slices) are listed in ``more``, so that thirty
    slices with one problem do not push the numbers off the screen.
    """

    code: str
    scope: str
    message: str
    advice: str = ""
    more: tuple["Notice", ...] = ()


@dataclass(frozen=True)
class Guide:
    """This run's numbers for the "how to read this" section, already formatted."""

    soft_targets: bool
    n_classes: int
    ce_bits: str
    ce_nats: str
    perplexity: str
    label_entropy_bits: str
    label_entropy_nats: str
    kl_empirical_bits: str
    marginal_bits: str
    gain_bits: str
    gain_share: str
    uniform_bits: str
    target_entropy_bits: str = ""
    kl_bits: str = ""
    #: (lowest-loss split, its loss, highest-loss split, its loss) when splits exist.
    split_contrast: tuple[str, str, str, str] | None = None
    #: The log-loss split in words (formatting.fixable) and the fitted temperature; "" without one.
    fixable: str = ""
    temperature: str = ""
    #: "overconfident" (T > 1), "underconfident" (T < 1) or "" (T = 1 or none).
    confidence: str = ""
    #: Where T was fitted: "here", or "on the held-out splits" for a training split and the whole run.
    temperature_where: str = "here"
    #: The calibration figures with their bootstrap intervals in words (decision_text); "" without.
    calibration_intervals: str = ""


@dataclass(frozen=True)
class RunPage:
    """Everything shown for one run (one INPUT)."""

    index: int
    anchor: str
    name: str
    inputs: tuple[str, ...]
    n_examples: str
    weight_sum: str
    weighted: bool
    n_classes: int
    classes_preview: str
    layout: tuple[tuple[str, str], ...]
    notes: tuple[str, ...]
    warnings: tuple[Notice, ...]
    n_warnings: int
    headlines: tuple[Headline, ...]
    guide: Guide
    charts: tuple[Chart, ...]
    tables: tuple[Table, ...]
    #: This run against --baseline; None when no baseline was given.
    baseline: "BaselinePage | None" = None


@dataclass(frozen=True)
class GatesPage:
    """The quality gates: one verdict for the job and a row per gate and run.

    Built from :class:`losslens.gates.GateReport` by :func:`losslens.html.gates.gates_page`.
    """

    passed: bool
    #: One sentence: how many gate checks passed or failed, and what the exit code means.
    summary: str
    table: Table


@dataclass(frozen=True)
class BaselinePage:
    """One run against its run in the --baseline file.

    ``table`` is None when the file has no run to compare with (``summary`` says so).
    """

    source: str
    baseline_run: str
    n_regressions: int
    summary: str
    table: Table | None = None


@dataclass(frozen=True)
class ComparisonPage:
    """A candidate run against the reference run (the first), as :mod:`losslens.comparison` found it.

    ``verdict`` is ``better``, ``worse`` or ``no detectable change`` (whether the adjusted
    p-value of the change is below 0.05); ``facts`` are (what, value) lines of the summary.
    """

    anchor: str
    reference: str
    candidate: str
    verdict: str
    delta: str
    delta_ci95: str
    method: str
    facts: tuple[tuple[str, str], ...]
    note: str
    deltas: Table
    regressions: Table | None
    no_regressions: str = ""


@dataclass(frozen=True)
class ReportPage:
    """The whole report: header facts, gates, the comparison of runs (if several), each run."""

    title: str
    #: losslens's version and the JSON's format version, shown in the header and footer.
    version: str
    format_version: int
    generated_at: str
    command_line: str
    runs: tuple[RunPage, ...]
    comparison: Table | None
    n_warnings: int
    run_names: tuple[str, ...] = field(default_factory=tuple)
    gates: GatesPage | None = None
    runs_chart: Chart | None = None
    comparisons: tuple[ComparisonPage, ...] = ()
    #: The --baseline file, and each run's number of flagged regressions (run, anchor, count).
    baseline_source: str = ""
    baseline_runs: tuple[tuple[str, str, int | None], ...] = ()
    #: Language models (:mod:`losslens.html.lm`): one section per token / sequence run, the
    #: lm-eval tasks, and the paired comparison of checkpoints; empty for classifier jobs.
    lm_sections: tuple = ()
    lm_eval: object = None
    lm_checkpoints: object = None



def cut(rows: list, what: str) -> tuple[tuple, str]:
    """At most :data:`MAX_TABLE_ROWS` rows, and a note naming how many were left out."""
    if len(rows) <= MAX_TABLE_ROWS:
        return tuple(rows), ""
    return tuple(rows[:MAX_TABLE_ROWS]), (
        f"Showing {MAX_TABLE_ROWS} of {len(rows):,} {what}; the JSON report (--json) has them all."
    )

