"""The trend page: nights side by side, from a :class:`~losslens.trend.Trend`.

Two layers as for the report: :func:`build_trend_page` makes plain dataclasses (numbers
formatted, charts as checked SVG from :mod:`losslens.html.trend_charts`) and
:func:`render_trend` fills ``templates/trend.html``, which includes the report's
``style.css`` and macros. Pure: returns a string; the caller writes it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime

import losslens.html.trend_charts as trend_charts

from ..catalog import CLASSIFIER, LOG_LOSS, view
from ..errors import UsageError
from ..formatting import change, count, iso_time
from ..formatting import value as format_value
from ..trend import nights_columns
from .gates import gates_page
from .model import Chart, Column, GatesPage, Table

#: The template of the trend page.
TREND_TEMPLATE = "trend.html"
#: Rows of the nights and warnings tables (latest first); the JSON has every one.
MAX_TABLE_ROWS = 60
#: Run series charted; scopes charted per run; slices in the "moved most" chart.
MAX_RUNS = 6
MAX_SPLITS = 6
MAX_MOVED = 6


def _panel_title(metric) -> str:
    """A small multiple's title from the catalog: the label and which way is better (the caption says more).

    Half-width panels leave room for little more.
    """
    return metric.label + (f" ({metric.better} is better)" if metric.better else "")


@dataclass(frozen=True)
class TrendPage:
    """Everything on the trend page, ready to lay out."""

    title: str
    version: str
    format_version: int
    generated_at: str
    command_line: str
    n_nights: int
    first: str
    last: str
    window: int
    summary: str
    n_shifts: int
    charts: tuple[Chart, ...]
    tables: tuple[Table, ...]
    gates: GatesPage | None = None
    notes: tuple[str, ...] = ()  # documents skipped as copies, how the nights were ordered


def _run_title(trend, key: str, run_name: str) -> str:
    """How a chart title names a run series."""
    return "the run" if key == "" else f"run {run_name}"


def _band_series(trend, key: str, scope: str, name: str = LOG_LOSS):
    """(loss, interval lows, interval highs) per night of one scope; ``name`` is the loss."""
    return (
        trend.series(key, scope, name),
        [ci[0] if isinstance(ci, list) else None for ci in trend.series(key, scope, f"{name}_ci95")],
        [ci[1] if isinstance(ci, list) else None for ci in trend.series(key, scope, f"{name}_ci95")],
    )


def _charts(trend) -> tuple[Chart, ...]:
    """Per run series: log loss bands and the small multiples; then moved slices and the warning strip."""
    labels = [n.label for n in trend.nights]
    index = {label: i for i, label in enumerate(labels)}
    charts = []
    for r, key in enumerate(trend.run_keys()[:MAX_RUNS]):
        scopes = trend.scopes(key)
        splits = [s for s in scopes if s.startswith("split=")][:MAX_SPLITS]
        # The series' latest name: lm-eval tasks of runs named by date are one series (Trend.by_task).
        name = next((run["name"] for run in (trend.run_of(n, key) for n in reversed(trend.nights)) if run), key)
        loss = trend.loss_metric(key)
        if loss is not None:  # an lm-eval loglikelihood task has no loss with an interval
            series = [(s, *_band_series(trend, key, s, loss)) for s in ["overall", *splits]]
            shifts = [(index[w.night], w.value) for w in trend.shifts
                      if w.scope == "overall" and (key == "" or trend.key_of_name(w.run) == key)]
            title = "Log loss" if loss == LOG_LOSS else "Bits per byte"
            charts.append(Chart(
                f"trend-loss-{r}", f"{title} per night, {_run_title(trend, key, name)}",
                trend_charts.band_chart(labels, series, f"{title} per night ({_run_title(trend, key, name)})",
                                        "log loss, nats" if loss == LOG_LOSS else "bits per byte", f"tl{r}", shifts),
                "Each line is a scope (the whole run, each split); the shaded band is its 95% interval. "
                "A widening gap between the training and held-out lines is overfitting growing night by night. "
                "Red rings: trend_shift warnings of the whole run.",
            ))
        panels = []
        classifier = trend.run_of(trend.nights[-1], key) is None or \
            trend.run_of(trend.nights[-1], key)["layout_kind"] == CLASSIFIER
        # A language-model run (an lm-eval task) shows its own figures first; four panels at most.
        for metric in view("trend_panels") if classifier else (*view("trend_lm"), *view("trend_panels")):
            lines = [(s, trend.series(key, s, metric.name)) for s in ["overall", *splits]]
            if metric.name != loss and any(v is not None for _, values in lines for v in values):
                panels.append((_panel_title(metric), lines))
        panels = panels[:4]
        if panels:
            charts.append(Chart(
                f"trend-more-{r}", f"{'Calibration, accuracy and label mix' if classifier else 'More figures'} "
                f"per night, {_run_title(trend, key, name)}",
                trend_charts.small_multiples_chart(labels, panels, f"tm{r}"),
                "ECE and KL(P̂ ‖ Q̄) rise when the model's probabilities drift from the outcomes; label "
                "entropy H(P̂) moves when the mix of labels shifts, which changes the log loss the model can reach."
                if classifier else "The run's own figures night by night (lm-eval's acc and acc_norm, perplexity), "
                "then its calibration where it has one.",
            ))
    moved = trend.moved[:MAX_MOVED]
    if moved:
        keys = trend.run_keys()
        series = []
        for m in moved:
            key = "" if keys == ("",) else trend.key_of_name(m.run)
            series.append((m.scope if keys == ("",) else f"{m.run}: {m.scope}", *_band_series(trend, key, m.scope)))
        charts.append(Chart(
            "trend-slices", "Slices that moved most",
            trend_charts.band_chart(labels, series, "Slices that moved most (log loss, 95% band)", "log loss, nats",
                                    "ts"),
            f"The slice values whose latest log loss is furthest from the median of their first {trend.window} "
            "nights, with their 95% intervals.",
        ))
    codes: dict[str, list[int]] = {}
    for w in trend.warnings:
        codes.setdefault(w.code, []).append(index[w.night])
    if codes:
        ordered = sorted(codes, key=lambda c: (c != "trend_shift", c))
        charts.append(Chart(
            "trend-warnings", "Warnings per night",
            trend_charts.warning_strip_chart(labels, ordered, [codes[c] for c in ordered], "tw"),
            "A mark for every night a warning code fired in any run or scope; red: trend_shift.",
        ))
    return tuple(charts)


def _tables(trend) -> tuple[Table, ...]:
    """The nights (latest first), the warnings (trend shifts first) and the moved slices."""
    rows, classes = [], []
    shown = nights_columns(run for night in trend.nights for run in night.runs)
    for night in reversed(trend.nights):
        for run in night.runs:
            m = run["overall"]
            n_shift = sum(1 for w in trend.shifts if w.night == night.label and w.run == run["name"])
            rows.append((night.label, run["name"], *(format_value(entry.name, m.get(entry.name)) for entry in shown),
                         count(len(run["warnings"])), count(n_shift)))
            classes.append("fail" if n_shift else "")
    nights = Table(
        "nights", "Nights, latest first",
        (Column("night", numeric=False), Column("run", numeric=False),
         *(Column(entry.label, help=entry.help) for entry in shown),
         Column("warnings", help="the night's own warnings, from its document"),
         Column("trend shifts", help="trend_shift warnings of the run, its splits and slices that night")),
        tuple(rows[:MAX_TABLE_ROWS]),
        "The whole run's figures each night; flagged rows have a trend_shift warning.",
        f"{len(rows) - MAX_TABLE_ROWS} earlier rows are in the trend JSON." if len(rows) > MAX_TABLE_ROWS else "",
        tuple(classes[:MAX_TABLE_ROWS]),
    )
    warnings = sorted(trend.warnings, key=lambda w: w.code != "trend_shift")
    order = {n.label: i for i, n in enumerate(trend.nights)}
    warnings = sorted(warnings, key=lambda w: (w.code != "trend_shift", -order[w.night]))
    wrows = tuple((w.night, w.run, w.code, w.scope, w.message) for w in warnings[:MAX_TABLE_ROWS])
    table = Table(
        "trend-warnings", "Warnings, trend shifts first, latest first",
        (Column("night", numeric=False), Column("run", numeric=False), Column("code", numeric=False),
         Column("scope", numeric=False), Column("message", numeric=False)),
        wrows,
        "trend_shift: the night's log loss lies outside the range expected from the nights before; the other "
        "codes are the nightly documents' own warnings.",
        f"{len(warnings) - MAX_TABLE_ROWS} more in the trend JSON." if len(warnings) > MAX_TABLE_ROWS else "",
    )
    moved = Table(
        "moved", "Slices that moved most",
        (Column("slice", numeric=False), Column("run", numeric=False), Column("latest log loss"),
         Column("median of first nights"), Column("change")),
        tuple((m.scope, m.run, format_value(LOG_LOSS, m.latest), format_value(LOG_LOSS, m.median_first),
               change(LOG_LOSS, m.change)) for m in trend.moved),
        f"Latest night against the median of the first {trend.window} nights that have the slice value: "
        "what crept up over the period as well as what jumped last night.",
    )
    return (nights, table, moved) if trend.moved else (nights, table)


def build_trend_page(trend, *, generated_at: datetime, command_line: str, version: str, gates=None) -> TrendPage:
    """The trend page's content from a finished :class:`~losslens.trend.Trend`."""
    from ..trend import TREND_FORMAT_VERSION

    n_shifts = len(trend.shifts)
    latest = [w for w in trend.shifts if w.night == trend.nights[-1].label]
    summary = (f"{n_shifts} trend shift{'s' if n_shifts != 1 else ''} over {len(trend.nights)} nights"
               f"{f', {len(latest)} on the latest night' if latest else ''}.")
    return TrendPage(
        title=f"losslens trend: {trend.nights[0].label} to {trend.nights[-1].label}",
        version=version,
        format_version=TREND_FORMAT_VERSION,
        generated_at=iso_time(generated_at),
        command_line=command_line,
        n_nights=len(trend.nights),
        first=trend.nights[0].label,
        last=trend.nights[-1].label,
        window=trend.window,
        summary=summary,
        n_shifts=n_shifts,
        charts=_charts(trend),
        tables=_tables(trend),
        gates=gates_page(gates) if gates is not None and gates.results else None,
        notes=tuple(trend.notes),
    )


def render_trend(trend, *, generated_at: datetime, command_line: str,
                 template_dir: str | os.PathLike | None = None, gates=None) -> str:
    """Render the self-contained trend page.

    Parameters
    ----------
    trend : losslens.trend.Trend
        The nights and their warnings.
    generated_at : datetime
        Timezone-aware; pin it for byte-identical output.
    command_line : str
        Shown in the footer.
    template_dir : str or path, optional
        A folder of templates searched before the built-in ones.
    gates : losslens.gates.GateReport, optional
        The latest night's gate outcomes, shown as a banner.

    Returns
    -------
    str
        One HTML page: CSS inlined, charts as inline SVG, no script, nothing fetched.
    """
    import jinja2

    from ..version import __version__
    from .templates import _template_error, check_templates, make_environment

    if generated_at.utcoffset() is None:
        raise UsageError("the page time must be timezone-aware, e.g. 2026-01-31T12:00:00+00:00")
    environment = make_environment(template_dir)
    if template_dir is not None:  # the built-in templates compile (tests/test_html.py): not again each run
        check_templates(environment)
    page = build_trend_page(trend, generated_at=generated_at, command_line=command_line, version=__version__,
                            gates=gates)
    try:
        return environment.get_template(TREND_TEMPLATE).render(page=page)
    except jinja2.TemplateError as exc:
        raise _template_error(exc) from None
