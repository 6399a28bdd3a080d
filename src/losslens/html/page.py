"""The HTML report's content as plain dataclasses, built from an Evaluation.

Pure: :func:`build_page` reads a finished :class:`~losslens.evaluation.Evaluation` and
returns a :class:`ReportPage` of strings (numbers already formatted), tables and chart SVGs.
The templates only lay these out, so that a custom template never has to format a number
and every reporter reads the same analysis. No markup is built here except the charts,
which :mod:`losslens.html.charts` checks before marking safe.

The comparisons of runs, the baseline deltas and the gate outcomes arrive finished (from
:mod:`losslens.compare`, :mod:`losslens.baseline` and :mod:`losslens.gates`); this module only
formats them, so that the page, the terminal and the JSON can never disagree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Sequence

from markupsafe import Markup

from ..accumulate import OTHER
from . import charts

LN2 = math.log(2.0)
#: Tables longer than this are cut (the JSON report has every row); keeps the page small
#: for 1,000 classes or slice values.
MAX_TABLE_ROWS = 100
#: Class names listed in the header before "…".
MAX_HEADER_CLASSES = 12

#: Where in this report to look for each known warning code. The engine's message already
#: says what the warning means and what to check; this points at the chart or table that
#: shows it. Codes not listed (added later by diagnostics) are shown with their message alone.
WHERE_TO_LOOK = {
    "clipped_probabilities": "The worst-examples table below lists the rows with the highest loss.",
    "near_zero_loss": "The “Log loss by split” chart below compares the splits with their 95% intervals.",
    "generalization_gap": "The “Log loss by split” chart below compares the splits with their 95% intervals.",
    "prior_shift": "The “Label distribution vs mean prediction” chart below shows which classes are "
    "predicted more or less often than they occur.",
    "worse_than_prior": "The loss histogram below marks the model's mean loss (solid line) and the "
    "class-frequency baseline (dashed).",
    "missing_classes": "The per-class table below lists every class with its number of examples.",
}


# --------------------------------------------------------------------------- formatting


def _finite(x) -> bool:
    return x is not None and isinstance(x, (int, float)) and math.isfinite(x)


def num(x, decimals: int = 4) -> str:
    """Format a number with fixed decimals; tiny values in scientific notation, NaN as —."""
    if x is None:
        return "—"
    x = float(x)
    if math.isnan(x):
        return "—"
    if math.isinf(x):
        return "∞" if x > 0 else "−∞"
    if x != 0 and abs(x) < 0.5 * 10 ** (-decimals):
        return f"{x:.2e}"
    return f"{x:.{decimals}f}"


def count(x) -> str:
    """Format a count with thousands separators."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "—"
    if isinstance(x, float) and not x.is_integer():
        return f"{x:,.2f}"
    return f"{int(x):,}"


def pct(x, decimals: int = 2) -> str:
    """Format a share as a percentage; NaN as —."""
    if not _finite(x):
        return "—"
    return f"{100 * x:.{decimals}f}%"


def signed(x, decimals: int = 4) -> str:
    """Format a change with its sign (+0.0123, -0.0123); NaN or None as —."""
    text = num(x, decimals)
    return text if text == "—" or text.startswith(("-", "−")) else "+" + text


def signed_interval(ci) -> str:
    """Format a 95% interval of a change as ``+low to +high``; — when it does not exist."""
    low, high = ci
    if not (_finite(low) and _finite(high)):
        return "—"
    return f"{signed(low)} to {signed(high)}"


def points(x) -> str:
    """Format a change of a share in percentage points (+1.25 pp); NaN or None as —."""
    return "—" if not _finite(x) else signed(100 * x, 2) + " pp"


def interval(ci) -> str:
    """Format a 95% interval as ``low–high``; — when it does not exist (one example)."""
    low, high = ci
    if not (_finite(low) and _finite(high)):
        return "—"
    return f"{num(low)}–{num(high)}"


# --------------------------------------------------------------------------- dataclasses


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


@dataclass(frozen=True)
class Headline:
    """One headline figure with its unit, a line of context and its value per split."""

    label: str
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
    """The quality gates: one verdict for the job and a row per gate and run."""

    passed: bool
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
    """A candidate run against the reference run (the first), as :mod:`losslens.compare` found it.

    ``verdict`` is ``better``, ``worse`` or ``no clear difference`` (whether the 95%
    interval of the change excludes 0); ``facts`` are (what, value) lines of the summary.
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


# --------------------------------------------------------------------------- building


def build_page(
    evaluation,
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
    evaluation : losslens.evaluation.Evaluation
        One or more runs.
    generated_at : datetime
        Timezone-aware time shown as the generation time; passed in so that a pinned
        time gives a byte-identical report.
    command_line : str
        How the report was made, shown in the footer.
    version : str
        losslens version shown in the header.
    format_version : int
        The JSON report's format version, shown in the footer.
    comparisons : sequence of losslens.compare.Comparison, optional
        Each run after the first against the first, from :func:`losslens.compare.compare_runs`.
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
    runs = tuple(_run_page(run, i, baseline) for i, run in enumerate(evaluation.runs))
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
        comparison=_comparison(evaluation.runs) if several else None,
        n_warnings=sum(r.n_warnings for r in runs),
        run_names=names,
        gates=_gates(gates) if gates is not None and gates.results else None,
        runs_chart=_runs_chart(evaluation.runs) if several else None,
        comparisons=tuple(_comparison_page(c, evaluation, i) for i, c in enumerate(comparisons)),
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


def _soft(run) -> bool:
    return run.layout.target_columns is not None


def _layout_rows(layout) -> tuple[tuple[str, str], ...]:
    """The detected column layout as (what, columns) pairs, for the header."""
    kinds = {
        "probabilities": "one probability column per class",
        "logits": "one logit column per class (scored with log-softmax)",
        "positive_prob": "binary: one column is P(positive class)",
        "positive_logit": "binary: one column is the positive class's logit",
    }
    rows = [("predictions", kinds.get(layout.kind, layout.kind))]
    rows.append(("prediction columns", _preview(layout.prediction_columns)))
    if layout.target_columns is not None:
        rows.append(("soft-target columns", _preview([c or "(none: target 0)" for c in layout.target_columns])))
    else:
        rows.append(("label column", layout.label or "—"))
    if layout.positive_index is not None:
        rows.append(("positive class", layout.classes[layout.positive_index]))
    for title, value in (("id column", layout.id), ("weight column", layout.weight), ("split column", layout.split)):
        rows.append((title, value or "—"))
    rows.append(("slice columns", ", ".join(layout.by) if layout.by else "—"))
    return tuple(rows)


def _preview(names: Sequence[str], limit: int = MAX_HEADER_CLASSES) -> str:
    names = list(names)
    shown = ", ".join(names[:limit])
    return shown + (f", … ({len(names):,} in all)" if len(names) > limit else "")


def _notices(warnings) -> tuple[Notice, ...]:
    """Warnings grouped by code, in the order each code first appears."""
    groups: dict[str, list] = {}
    for w in warnings:
        groups.setdefault(w.code, []).append(w)
    return tuple(
        Notice(code=code, scope=first.scope, message=first.message, advice=WHERE_TO_LOOK.get(code, ""),
               more=tuple(Notice(code=code, scope=w.scope, message=w.message) for w in rest))
        for code, (first, *rest) in groups.items()
    )


def _run_page(run, index: int, baseline=None) -> RunPage:
    prefix = f"r{index + 1}"
    m = run.overall
    return RunPage(
        index=index + 1,
        anchor=f"run-{index + 1}",
        name=run.name,
        inputs=tuple(run.inputs),
        n_examples=count(m.n_examples),
        weight_sum=count(m.weight_sum),
        weighted=run.layout.weight is not None,
        n_classes=len(run.classes),
        classes_preview=_preview(run.classes),
        layout=_layout_rows(run.layout),
        notes=tuple(run.layout.notes),
        warnings=_notices(run.warnings),
        n_warnings=len(run.warnings),
        headlines=_headlines(run),
        guide=_guide(run),
        charts=_charts(run, prefix),
        tables=_tables(run),
        baseline=_baseline_page(run, baseline) if baseline is not None else None,
    )


def _headlines(run) -> tuple[Headline, ...]:
    m = run.overall
    splits = run.by_split

    def per_split(fmt, attr):
        return tuple((name, fmt(getattr(s, attr))) for name, s in splits.items())

    entropy = m.label_entropy_bits
    soft = ()
    if m.kl_bits is not None:
        soft = (Headline("KL(targets ‖ model)", num(m.kl_bits), "bits",
                         f"cross-entropy above the target entropy {num(m.target_entropy_bits)} bits",
                         tuple((name, num(s.kl_bits)) for name, s in splits.items()),
                         "The part of the loss the model can reduce; the target entropy cannot be beaten."),)
    return soft + (
        Headline("Log loss", num(m.log_loss), "nats",
                 f"95% interval {interval(m.log_loss_ci95)}, {m.log_loss_ci95_method}", per_split(num, "log_loss"),
                 "Mean of −ln q(true class). Lower is better; 0 is perfect.",
                 _bootstrap_lines(m, "log_loss", interval)),
        Headline("Cross-entropy", num(m.cross_entropy_bits), "bits",
                 "per example; the log loss in base 2", per_split(num, "cross_entropy_bits"),
                 "Average number of bits to encode the true labels with the model's probabilities."),
        Headline("Perplexity", num(m.perplexity, 3), "",
                 f"effective number of classes the model hesitates between (of {len(run.classes):,})",
                 per_split(lambda x: num(x, 3), "perplexity"),
                 "exp(log loss). 1 is certainty; the number of classes is a uniform guess."),
        Headline("Accuracy", pct(m.accuracy), "",
                 "top class = true class", per_split(pct, "accuracy"),
                 more=_bootstrap_lines(m, "accuracy", _pct_interval)),
        Headline("Information gain", num(m.information_gain_bits), "bits",
                 f"{pct(m.relative_information_gain, 1)} of the label entropy H(P̂) = {num(entropy)} bits",
                 per_split(num, "information_gain_bits"),
                 "H(P̂) − cross-entropy: how much better than always predicting the class frequencies."),
        Headline("KL(P̂ ‖ Q̄)", num(m.kl_empirical_bits), "bits",
                 "gap between label frequencies and mean predictions", per_split(num, "kl_empirical_bits"),
                 "Calibration in the large: 0 when the model predicts each class as often as it occurs."),
    )


def _bootstrap_method(boot: dict) -> str:
    """How a bootstrap interval was made, e.g. "percentile bootstrap, 1,000 resamples, seed 0"."""
    return f"{boot.get('method', 'bootstrap')}, {count(boot.get('n_resamples'))} resamples, seed {boot.get('seed')}"


def _pct_interval(ci) -> str:
    """Format a 95% interval of a share as ``low%–high%``; — when it does not exist."""
    low, high = ci
    return f"{pct(low)}–{pct(high)}" if _finite(low) and _finite(high) else "—"


def _bootstrap_lines(m, metric: str, fmt) -> tuple[str, ...]:
    """A headline's line for the --bootstrap interval of ``metric``, when there is one."""
    boot = m.bootstrap
    if not boot or metric not in boot:
        return ()
    return (f"95% interval {fmt(boot[metric])}, {_bootstrap_method(boot)}",)


def _guide(run) -> Guide:
    m = run.overall
    splits = [(name, s.log_loss) for name, s in run.by_split.items() if _finite(s.log_loss)]
    contrast = None
    if len(splits) >= 2:
        low = min(splits, key=lambda kv: kv[1])
        high = max(splits, key=lambda kv: kv[1])
        contrast = (low[0], num(low[1]), high[0], num(high[1]))
    k = len(run.classes)
    return Guide(
        soft_targets=_soft(run),
        n_classes=k,
        ce_bits=num(m.cross_entropy_bits),
        ce_nats=num(m.log_loss),
        perplexity=num(m.perplexity, 3),
        label_entropy_bits=num(m.label_entropy_bits),
        label_entropy_nats=num(m.label_entropy_bits * LN2 if _finite(m.label_entropy_bits) else math.nan),
        kl_empirical_bits=num(m.kl_empirical_bits),
        marginal_bits=num(m.marginal_cross_entropy_bits),
        gain_bits=num(m.information_gain_bits),
        gain_share=pct(m.relative_information_gain, 1),
        uniform_bits=num(math.log2(k)) if k > 0 else "—",
        target_entropy_bits=num(m.target_entropy_bits) if m.target_entropy_bits is not None else "",
        kl_bits=num(m.kl_bits) if m.kl_bits is not None else "",
        split_contrast=contrast,
    )


def _charts(run, prefix: str) -> tuple[Chart, ...]:
    from ..accumulate import HIST_EDGES

    m = run.overall
    classes = list(run.classes)
    weights = [run.by_class[c].weight_sum for c in classes]
    folded = len(classes) > charts.MAX_BARS
    fold_note = (f" Showing the {charts.MAX_BARS - 1} most frequent of {len(classes):,} classes; "
                 "the rest are folded into “other”.") if folded else ""
    baseline_nats = m.label_entropy_bits * LN2 if _finite(m.label_entropy_bits) else math.nan
    floor = m.target_entropy_bits * LN2 if _finite(m.target_entropy_bits) else None
    out = [
        Chart("distribution", "Label distribution vs mean prediction",
              charts.distributions_chart(classes, [run.label_distribution[c] for c in classes],
                                         [run.mean_predicted_distribution[c] for c in classes], weights,
                                         f"{prefix}-dist"),
              "Blue: how often each class is the true label (P̂). Orange: the model's average "
              "probability for it (Q̄). Bars of different length mean the model predicts the class "
              f"more or less often than it occurs; KL(P̂ ‖ Q̄) = {num(m.kl_empirical_bits)} bits sums this up."
              + fold_note),
        Chart("loss-histogram", "Distribution of per-example loss",
              charts.loss_histogram_chart(run.loss_histogram, HIST_EDGES, m.log_loss, baseline_nats,
                                          f"{prefix}-hist", floor),
              "Each bar counts examples by their loss −ln q(true class), on a log scale: far left are "
              "confident right answers, far right confident mistakes (5 nats means p(true class) below "
              "0.7%). Solid line: this model's mean loss. Dashed: the mean loss of always predicting the "
              f"class frequencies. Median ≈ {num(run.loss_quantiles.get('p50'), 3)}, 99th percentile ≈ "
              f"{num(run.loss_quantiles.get('p99'), 3)} nats."),
        Chart("class-loss", "Loss by true class",
              charts.class_loss_chart(classes, [run.by_class[c].log_loss for c in classes], weights,
                                      m.log_loss, f"{prefix}-cls"),
              "Mean loss of the examples of each true class, worst first. Classes far right of the "
              "overall line are where the model struggles." + fold_note),
        Chart("reliability", "Reliability diagram",
              charts.reliability_chart(run.calibration, m.ece, f"{prefix}-rel"),
              "Examples are grouped by the probability of the predicted class. In a calibrated model, "
              "the bars reach the diagonal: of the predictions made with 80% confidence, 80% are right. "
              "Bars below the diagonal mean overconfidence. The lower panel shows how many examples fall "
              f"in each bin. ECE = {num(m.ece)} is the weighted mean gap."
              + (f" Its 95% interval is {interval(m.bootstrap['ece'])} ({_bootstrap_method(m.bootstrap)})."
                 if m.bootstrap and "ece" in m.bootstrap else ""),
              *_brier_facts(run)),
    ]
    if run.by_split:
        rows = [charts.Category(name, (s.log_loss,), *s.log_loss_ci95) for name, s in run.by_split.items()]
        out.append(Chart("splits", "Log loss by split",
                         charts.interval_chart(rows, m.log_loss, "Log loss by split",
                                               "log loss, nats (95% interval)", f"{prefix}-split"),
                         "Compare training and held-out loss: a training loss far below validation "
                         "means the model memorised its training examples, and only the held-out "
                         "figure says how it will do on new data."))
    for j, (column, items) in enumerate(_slices(run)):
        shown = items[: charts.MAX_BARS]
        rows = [charts.Category(str(value), (s.log_loss,), *s.log_loss_ci95) for value, s in shown]
        more = (f" Showing the {len(shown)} worst of {len(items):,} values; the table and the JSON "
                "report list the others.") if len(items) > len(shown) else ""
        out.append(Chart(f"slice-{j + 1}", f"Log loss by {column}",
                         charts.interval_chart(rows, m.log_loss, f"Log loss by {column} (worst first)",
                                               "log loss, nats (95% interval)", f"{prefix}-slice{j + 1}"),
                         f"Each value of the slice column “{column}”, worst first: ranked by how far its "
                         f"log loss is above the overall {num(m.log_loss)}"
                         + (f", with {OTHER} (the smallest values merged) last" if _has_other(items) else "")
                         + ". Intervals that do not overlap the overall line point at a subgroup the model "
                         "serves worse (or better)." + more))
    return tuple(out)


def _has_other(items) -> bool:
    """Whether the engine merged the smallest values of a slice column into (other)."""
    return any(value == OTHER for value, _ in items)


def _brier_facts(run) -> tuple:
    """The binary Brier decomposition as (facts, caption) for the reliability chart, or nothing."""
    parts = run.brier_decomposition
    if not parts:
        return ()
    facts = (
        ("Brier score", num(run.overall.brier_score)),
        ("reliability", num(parts.get("reliability"))),
        ("resolution", num(parts.get("resolution"))),
        ("uncertainty", num(parts.get("uncertainty"))),
        ("residual", num(parts.get("residual"))),
    )
    caption = (
        "Brier score = reliability − resolution + uncertainty + residual (Murphy), over bins of "
        "p(positive class). Reliability is the calibration error (lower is better); resolution is how "
        "far the forecasts sort examples away from the base rate (higher is better); uncertainty "
        "comes from the labels alone and no model changes it; the residual is the spread of forecasts "
        "within each bin, which the binning leaves out."
    )
    return facts, caption


# --------------------------------------------------------------------------- tables

_METRIC_COLUMNS = (
    Column("examples"),
    Column("log loss", help="nats"),
    Column("95% interval", help="of the log loss"),
    Column("bits", help="cross-entropy in bits"),
    Column("perplexity"),
    Column("accuracy"),
    Column("Brier", help="mean squared error of the probabilities"),
    Column("ECE", help="expected calibration error"),
    Column("H(P̂) bits", help="label entropy: the baseline's cross-entropy"),
    Column("KL(P̂‖Q̄) bits"),
    Column("gain bits", help="information gain over the class-frequency baseline"),
)


def _metric_cells(m) -> tuple[str, ...]:
    return (
        count(m.n_examples), num(m.log_loss), interval(m.log_loss_ci95), num(m.cross_entropy_bits),
        num(m.perplexity, 3), pct(m.accuracy), num(m.brier_score), num(m.ece),
        num(m.label_entropy_bits), num(m.kl_empirical_bits), num(m.information_gain_bits),
    )


_BOOTSTRAP_COLUMNS = (
    Column("log loss bootstrap 95%"),
    Column("accuracy bootstrap 95%"),
    Column("ECE bootstrap 95%"),
)


def _bootstrap_cells(m) -> tuple[str, ...]:
    """The --bootstrap intervals of one scope, — where the scope has none."""
    boot = m.bootstrap or {}
    return tuple(
        fmt(boot[key]) if key in boot else "—"
        for key, fmt in (("log_loss", interval), ("accuracy", _pct_interval), ("ece", interval))
    )


def _interval_caption(scopes) -> str:
    """Which method made each interval column of a metrics table (read from the metrics)."""
    methods = sorted({m.log_loss_ci95_method for m in scopes})
    text = f"95% interval of the log loss: {'; '.join(methods)}."
    boots = sorted({_bootstrap_method(m.bootstrap) for m in scopes if m.bootstrap})
    if boots:
        text += f" Bootstrap columns: {'; '.join(boots)}."
    return text


def _cut(rows: list, what: str) -> tuple[tuple, str]:
    """At most :data:`MAX_TABLE_ROWS` rows, and a note naming how many were left out."""
    if len(rows) <= MAX_TABLE_ROWS:
        return tuple(rows), ""
    return tuple(rows[:MAX_TABLE_ROWS]), (
        f"Showing {MAX_TABLE_ROWS} of {len(rows):,} {what}; the JSON report (--json) has them all."
    )


def _slices(run) -> list[tuple[str, list]]:
    """Each slice column with its values in the engine's order: worst first, (other) last.

    Kept as the engine ranked them (by log loss above the whole run's), not re-sorted, so
    that the page, the terminal and the JSON list slices in the same order.
    """
    return [(column, list(values.items())) for column, values in run.by_slice.items()]


def _tables(run) -> tuple[Table, ...]:
    m = run.overall
    tables = []
    # Classes by frequency: the ones that matter most come first when the table is cut.
    position = {c: i for i, c in enumerate(run.classes)}
    classes = sorted(run.classes, key=lambda c: (-run.by_class[c].weight_sum, position[c]))
    class_rows, class_note = _cut([
        (c, count(k.n_examples), pct(k.actual_share), pct(k.predicted_share), num(k.mean_predicted_prob),
         num(k.log_loss), num(k.cross_entropy_bits), pct(k.recall), pct(k.precision), num(k.ece))
        for c in classes for k in (run.by_class[c],)
    ], "classes")
    tables.append(Table(
        "classes", "Per class",
        (Column("class", numeric=False), Column("examples"), Column("P̂ share", help="share of true labels"),
         Column("predicted share", help="share of top-1 predictions"), Column("Q̄ mean prob", help="mean predicted probability"),
         Column("log loss", help="nats, examples of this true class"), Column("bits"), Column("recall"),
         Column("precision"),
         Column("ECE", help="one-vs-rest calibration error of this class's probability, over all examples")),
        class_rows, "Most frequent classes first. Loss, recall and share of predictions are per true class; "
        "ECE compares this class's predicted probability with how often it is the label, over all examples.",
        class_note,
    ))
    if run.by_split:
        scopes = [("overall", m), *run.by_split.items()]
        boot = any(s.bootstrap for _, s in scopes)
        tables.append(Table(
            "splits", "Per split",
            (Column("split", numeric=False), *_METRIC_COLUMNS, *(_BOOTSTRAP_COLUMNS if boot else ())),
            tuple((name, *_metric_cells(s), *(_bootstrap_cells(s) if boot else ())) for name, s in scopes),
            _interval_caption([s for _, s in scopes]),
        ))
    for j, (column, values) in enumerate(_slices(run)):
        # "vs overall" is the JSON's excess_log_loss, the number the rows are ranked by.
        rows, note = _cut([(str(v), signed(s.log_loss - m.log_loss), *_metric_cells(s)) for v, s in values],
                          f"values of {column}")
        tables.append(Table(
            f"slice-{j + 1}", f"Per value of {column}",
            (Column(column, numeric=False), Column("vs overall", help="log loss minus the whole run's, nats"),
             *_METRIC_COLUMNS),
            rows, f"Worst first: ranked by log loss above the whole run's {num(m.log_loss)} nats"
            + (f", {OTHER} (the smallest values merged) last. " if _has_other(values) else ". ")
            + _interval_caption([s for _, s in values]), note,
        ))
    tables.append(_worst_table(run))
    return tuple(tables)


def _worst_table(run) -> Table:
    """The worst examples, located by id, by row (one input file) or by file and row."""
    classes = run.classes
    one_file = len({e.source for e in run.worst}) <= 1 and len(run.inputs) == 1
    if run.layout.id:
        where_column, where = Column(f"id ({run.layout.id})", numeric=False), lambda e: e.id
        located = ""
    elif one_file:
        # No thousands separator: the reader searches the file for this number.
        where_column, where = Column("row"), lambda e: str(e.row)
        source = run.inputs[0] if run.inputs else "<data>"
        # An in-memory table has no header line to count from.
        located = " Rows count from 1" + ("" if source.startswith("<") else f" after the header of {source}") + "."
    else:
        where_column, where = Column("file:row", numeric=False), lambda e: f"{e.source}:{e.row}"
        located = " Rows count from 1 after each file's header."
    has_split = any(e.split is not None for e in run.worst)
    rows = tuple(
        (where(e), classes[e.label], classes[e.predicted], _prob(e.true_prob), num(e.loss), num(e.loss / LN2))
        + ((e.split or "—",) if has_split else ())
        for e in run.worst
    )
    columns = (
        where_column, Column("true label", numeric=False), Column("predicted", numeric=False),
        Column("p(true class)"), Column("loss nats"), Column("loss bits"),
    ) + ((Column("split", numeric=False),) if has_split else ())
    return Table(
        "worst", f"The {len(rows)} worst examples", columns, rows,
        "The examples with the highest loss. Check them first: wrong labels, leaked or corrupt inputs "
        "and overconfident mistakes show up here." + located,
    )


def _prob(p: float) -> str:
    """A probability with 6 decimals, or in scientific notation when that would show 0."""
    return num(p, 6) if not _finite(p) or p >= 1e-6 or p == 0 else f"{p:.2e}"


def _comparison(runs) -> Table:
    """Side-by-side headline metrics of every run, for two or more runs."""
    rows = tuple(
        (r.name, count(r.overall.n_examples), num(r.overall.log_loss), interval(r.overall.log_loss_ci95),
         num(r.overall.cross_entropy_bits), num(r.overall.perplexity, 3), pct(r.overall.accuracy),
         num(r.overall.information_gain_bits), num(r.overall.kl_empirical_bits), num(r.overall.ece),
         count(len(r.warnings)))
        for r in runs
    )
    columns = (
        Column("run", numeric=False), Column("examples"), Column("log loss", help="nats"), Column("95% interval"),
        Column("bits"), Column("perplexity"), Column("accuracy"), Column("gain bits"), Column("KL(P̂‖Q̄) bits"),
        Column("ECE"), Column("warnings"),
    )
    return Table("comparison", "Runs side by side", columns, rows,
                 "Overall figures of each run; lower log loss is better. Details per run below.")


# --------------------------------------------------------------------------- jobs: gates, comparisons, baseline

#: Outcome of a gate as shown; "undefined" fails the job too (see losslens.gates).
_OUTCOME = {"pass": "PASS", "fail": "FAIL", "undefined": "FAIL (undefined)"}


def _gate_value(result) -> str:
    """A gate's value as the terminal prints it: 6 significant digits, a count for warnings."""
    value = result.value
    if value is None:
        return "undefined"
    if result.gate.code is not None:
        return count(value)
    text = f"{value:.6g}"
    return ("+" + text if value >= 0 else text) if result.gate.delta else text


def _gates(report) -> GatesPage:
    """The gates' verdict and one row per gate and run, failures flagged."""
    n, failed = len(report.results), len(report.failures)
    if report.passed:
        summary = f"All {n} gate check{'s' if n != 1 else ''} passed."
    else:
        summary = (f"{failed} of {n} gate check{'s' if n != 1 else ''} failed: the command exits with "
                   "code 1, so a job running it fails.")
    rows = tuple(
        (_OUTCOME.get(r.outcome, r.outcome.upper()), r.gate.expression, r.run, _gate_value(r), r.detail or "")
        for r in report.results
    )
    table = Table(
        "gates", "Quality gates",
        (Column("outcome", numeric=False), Column("gate", numeric=False), Column("run", numeric=False),
         Column("value"), Column("detail", numeric=False)),
        rows,
        "A gate fails when its condition holds (--fail-if \"log_loss > 0.35\" fails a log loss above 0.35); "
        "an undefined value fails too. Every run is checked against every gate.",
        row_classes=tuple("pass" if not r.failed else "fail" for r in report.results),
    )
    return GatesPage(passed=report.passed, summary=summary, table=table)


def _runs_chart(runs) -> Chart:
    """The runs next to each other: log loss with its 95% interval, and accuracy."""
    methods = sorted({r.overall.log_loss_ci95_method for r in runs})
    boots = sorted({_bootstrap_method(r.overall.bootstrap) for r in runs
                    if r.overall.bootstrap and "accuracy" in r.overall.bootstrap})
    accuracy_ci = [tuple(r.overall.bootstrap["accuracy"]) if r.overall.bootstrap and "accuracy" in r.overall.bootstrap
                   else (math.nan, math.nan) for r in runs]
    svg = charts.runs_chart(
        [r.name for r in runs],
        [charts.Category(r.name, (r.overall.log_loss,), *r.overall.log_loss_ci95) for r in runs],
        [charts.Category(r.name, (r.overall.accuracy,), *ci) for r, ci in zip(runs, accuracy_ci)],
        "runs",
    )
    caption = (
        f"Each run's overall log loss with its 95% interval ({'; '.join(methods)}) and its accuracy; the "
        f"first run, “{runs[0].name}”, is the reference (blue, dashed line) the others are compared with. "
        "Runs scored on the same examples are compared more precisely by the paired change below than by "
        "whether these intervals overlap."
    )
    if boots:
        caption += f" Accuracy intervals: {'; '.join(boots)}."
    return Chart("runs", "Runs side by side", svg, caption)


#: (metric, how to format a value, how to format a change) of the comparison table, in its
#: order; the names are those of the JSON and of --fail-if.
_JOB_METRICS = (
    ("log_loss", lambda x: num(x), signed),
    ("cross_entropy_bits", lambda x: num(x), signed),
    ("perplexity", lambda x: num(x, 3), lambda x: signed(x, 3)),
    ("accuracy", pct, points),
    ("brier_score", lambda x: num(x), signed),
    ("ece", lambda x: num(x), signed),
    ("information_gain_bits", lambda x: num(x), signed),
    ("kl_empirical_bits", lambda x: num(x), signed),
)


def _metric_format(name: str):
    """(value, change) formatters of a metric: shares in % and points, counts whole."""
    for metric, value, change in _JOB_METRICS:
        if metric == name:
            return value, change
    if name.startswith("n_"):
        return count, lambda x: "—" if x is None else ("+" if x >= 0 else "") + count(x)
    if name.endswith("_share"):
        return pct, points
    return (lambda x: num(x)), signed


def _better(name: str) -> str:
    """``lower`` or ``higher`` (is better), as losslens.baseline judges regressions; empty for counts."""
    from ..baseline import HIGHER_IS_BETTER, LOWER_IS_BETTER

    return "lower" if name in LOWER_IS_BETTER else "higher" if name in HIGHER_IS_BETTER else ""


def _comparison_page(comparison, evaluation, index: int) -> ComparisonPage:
    """One candidate against the reference: the change of log loss, its interval, the worst regressions."""
    c = comparison
    by_name = {r.name: r for r in evaluation.runs}
    reference, candidate = by_name.get(c.reference), by_name.get(c.candidate)
    facts = []
    if c.paired:
        facts.append(("paired", f"over {count(c.n_paired)} examples with the same id in both runs"))
        facts.append(("examples improved", pct(c.share_improved, 1)))
        facts.append(("examples got worse", pct(c.share_worsened, 1)))
    else:
        facts.append(("unpaired", "the difference of the two runs' log losses, their errors taken as independent"))
    facts.append((f"log loss of {c.reference}", num(c.log_loss_reference)))
    facts.append((f"log loss of {c.candidate}", num(c.log_loss_candidate)))
    if c.n_reference_only is not None:
        facts.append((f"only in {c.reference}", _ids(c.n_reference_only, c.reference_only_ids)))
    if c.n_candidate_only is not None:
        facts.append((f"only in {c.candidate}", _ids(c.n_candidate_only, c.candidate_only_ids)))
    if c.n_label_mismatch:
        facts.append(("different labels", f"{count(c.n_label_mismatch)} paired examples"))

    rows = []
    for name, value, change in _JOB_METRICS:
        if name not in c.metric_deltas:
            continue
        rows.append((name,
                     value(getattr(reference.overall, name)) if reference else "—",
                     value(getattr(candidate.overall, name)) if candidate else "—",
                     change(c.metric_deltas[name]), _better(name)))
    deltas = Table(
        f"deltas-{index + 1}", f"Every metric: {c.candidate} against {c.reference}",
        (Column("metric", numeric=False), Column(c.reference), Column(c.candidate),
         Column("change", help=f"{c.candidate} minus {c.reference}, over each whole run"),
         Column("better is", numeric=False)),
        tuple(rows),
        "Over each whole run (not only the paired examples). Names as in the JSON and in --fail-if; "
        "accuracy changes are in percentage points.",
    )
    regressions, none = None, ""
    if c.worst_regressions:
        regressions = Table(
            f"regressions-{index + 1}", f"The {len(c.worst_regressions)} examples that got worse the most",
            (Column("id", numeric=False), Column("true label", numeric=False),
             Column(f"loss in {c.reference}", help="nats"), Column(f"loss in {c.candidate}", help="nats"),
             Column("change nats"), Column("change bits")),
            tuple((r.id, r.label, num(r.loss_reference), num(r.loss_candidate), signed(r.loss_delta),
                   signed(r.loss_delta / LN2)) for r in c.worst_regressions),
            f"Paired examples whose loss rose the most from {c.reference} to {c.candidate}, worst first. "
            "Look at these before accepting the new run: a few large regressions can hide behind a "
            "better average.",
        )
    elif c.paired:
        none = f"No paired example has a higher loss in {c.candidate} than in {c.reference}."
    else:
        none = ("The examples could not be paired, so the ones that got worse cannot be listed: give both "
                "runs an id column (--id).")
    return ComparisonPage(
        anchor=f"compare-{index + 1}",
        reference=c.reference,
        candidate=c.candidate,
        verdict=c.verdict,
        delta=signed(c.log_loss_delta),
        delta_ci95=signed_interval(c.log_loss_delta_ci95),
        method="paired" if c.paired else "unpaired",
        facts=tuple(facts),
        note=c.note,
        deltas=deltas,
        regressions=regressions,
        no_regressions=none,
    )


def _ids(n: int, listed) -> str:
    """How many ids only one run has, with the first few."""
    if not n:
        return "no examples"
    shown = ", ".join(listed)
    more = ", …" if n > len(listed) else ""
    return f"{count(n)} example{'s' if n != 1 else ''}" + (f" (ids {shown}{more})" if listed else "")


def _baseline_page(run, baseline) -> BaselinePage:
    """One run's deltas against the baseline file: the main metrics and every flagged regression."""
    from ..baseline import REGRESSION_TOLERANCE, SHOWN

    compared = baseline.run(run.name)
    if compared is None:
        return BaselinePage(
            source=baseline.source, baseline_run="", n_regressions=0,
            summary=f"The baseline file has no run named “{run.name}”; this run is not compared with it.",
        )
    rows, classes = [], []
    for scope, deltas in [("overall", compared.overall), *compared.by_split.items()]:
        for d in deltas:
            if d.metric not in SHOWN and not d.regression:
                continue
            value, change = _metric_format(d.metric)
            rows.append((scope, d.metric, value(d.baseline), value(d.current), change(d.delta),
                         _better(d.metric), "regression" if d.regression else ""))
            classes.append("regression" if d.regression else "")
    n = len(compared.regressions)
    tolerance = f"{REGRESSION_TOLERANCE:.0%}"
    summary = (f"{n} regression{'s' if n != 1 else ''}: metrics worse than in the baseline by more than "
               f"{tolerance}." if n else f"No regressions: no metric is worse than in the baseline by more than {tolerance}.")
    of = "" if compared.baseline_run == run.name else f" (its run “{compared.baseline_run}”)"
    table = Table(
        "baseline", f"Metrics now and in the baseline{of}",
        (Column("scope", numeric=False), Column("metric", numeric=False), Column("baseline"), Column("now"),
         Column("change", help="now minus baseline"), Column("better is", numeric=False),
         Column("flag", numeric=False)),
        tuple(rows),
        f"The main metrics overall and per split, and every metric flagged as a regression (worse by more "
        f"than {tolerance} of the baseline value). Use --fail-if \"delta.METRIC > X\" to fail a job on a "
        "change; the JSON has every metric.",
        row_classes=tuple(classes),
    )
    return BaselinePage(source=baseline.source, baseline_run=compared.baseline_run, n_regressions=n,
                        summary=summary, table=table)
