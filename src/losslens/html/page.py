"""The HTML report's content as plain dataclasses, built from an Evaluation.

Pure: :func:`build_page` reads a finished :class:`~losslens.evaluation.Evaluation` and
returns a :class:`ReportPage` of strings (numbers already formatted), tables and chart SVGs.
The templates only lay these out, so that a custom template never has to format a number
and every reporter reads the same analysis. No markup is built here except the charts,
which :mod:`losslens.html.charts` checks before marking safe.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Sequence

from markupsafe import Markup

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
    """A titled table of formatted cells; ``note`` says what was left out, if anything."""

    key: str
    title: str
    columns: tuple[Column, ...]
    rows: tuple[tuple[str, ...], ...]
    caption: str = ""
    note: str = ""


@dataclass(frozen=True)
class Chart:
    """A chart: checked inline SVG markup and a caption on how to read it."""

    key: str
    title: str
    svg: Markup
    caption: str = ""


@dataclass(frozen=True)
class Headline:
    """One headline figure with its unit, a line of context and its value per split."""

    label: str
    value: str
    unit: str
    detail: str
    splits: tuple[tuple[str, str], ...] = ()
    help: str = ""


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


@dataclass(frozen=True)
class ReportPage:
    """The whole report: header facts, the comparison of runs (if several), each run."""

    title: str
    version: str
    format_version: int
    generated_at: str
    command_line: str
    runs: tuple[RunPage, ...]
    comparison: Table | None
    n_warnings: int
    run_names: tuple[str, ...] = field(default_factory=tuple)


# --------------------------------------------------------------------------- building


def build_page(evaluation, *, generated_at: datetime, command_line: str, version: str, format_version: int) -> ReportPage:
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
    runs = tuple(_run_page(run, i) for i, run in enumerate(evaluation.runs))
    names = tuple(run.name for run in evaluation.runs)
    return ReportPage(
        title="losslens report: " + ", ".join(names),
        version=version,
        format_version=format_version,
        generated_at=_time(generated_at),
        command_line=command_line,
        runs=runs,
        comparison=_comparison(evaluation.runs) if len(evaluation.runs) > 1 else None,
        n_warnings=sum(r.n_warnings for r in runs),
        run_names=names,
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


def _run_page(run, index: int) -> RunPage:
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
                 f"95% interval {interval(m.log_loss_ci95)}", per_split(num, "log_loss"),
                 "Mean of −ln q(true class). Lower is better; 0 is perfect."),
        Headline("Cross-entropy", num(m.cross_entropy_bits), "bits",
                 "per example; the log loss in base 2", per_split(num, "cross_entropy_bits"),
                 "Average number of bits to encode the true labels with the model's probabilities."),
        Headline("Perplexity", num(m.perplexity, 3), "",
                 f"effective number of classes the model hesitates between (of {len(run.classes):,})",
                 per_split(lambda x: num(x, 3), "perplexity"),
                 "exp(log loss). 1 is certainty; the number of classes is a uniform guess."),
        Headline("Accuracy", pct(m.accuracy), "",
                 "top class = true class", per_split(pct, "accuracy")),
        Headline("Information gain", num(m.information_gain_bits), "bits",
                 f"{pct(m.relative_information_gain, 1)} of the label entropy H(P̂) = {num(entropy)} bits",
                 per_split(num, "information_gain_bits"),
                 "H(P̂) − cross-entropy: how much better than always predicting the class frequencies."),
        Headline("KL(P̂ ‖ Q̄)", num(m.kl_empirical_bits), "bits",
                 "gap between label frequencies and mean predictions", per_split(num, "kl_empirical_bits"),
                 "Calibration in the large: 0 when the model predicts each class as often as it occurs."),
    )


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
              f"in each bin. ECE = {num(m.ece)} is the weighted mean gap."),
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
        more = (f" Showing the {len(shown)} largest of {len(items):,} values; the table and the JSON "
                "report list the others.") if len(items) > len(shown) else ""
        out.append(Chart(f"slice-{j + 1}", f"Log loss by {column}",
                         charts.interval_chart(rows, m.log_loss, f"Log loss by {column}",
                                               "log loss, nats (95% interval)", f"{prefix}-slice{j + 1}"),
                         f"Each value of the slice column “{column}”, largest first. Intervals that "
                         "do not overlap the overall line point at a subgroup the model serves worse "
                         "(or better)." + more))
    return tuple(out)


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


def _cut(rows: list, what: str) -> tuple[tuple, str]:
    """At most :data:`MAX_TABLE_ROWS` rows, and a note naming how many were left out."""
    if len(rows) <= MAX_TABLE_ROWS:
        return tuple(rows), ""
    return tuple(rows[:MAX_TABLE_ROWS]), (
        f"Showing {MAX_TABLE_ROWS} of {len(rows):,} {what}; the JSON report (--json) has them all."
    )


def _slices(run) -> list[tuple[str, list]]:
    """Each slice column with its values, largest (by weight) first, ties by name."""
    return [
        (column, sorted(values.items(), key=lambda kv: (-kv[1].weight_sum, str(kv[0]))))
        for column, values in run.by_slice.items()
    ]


def _tables(run) -> tuple[Table, ...]:
    m = run.overall
    tables = []
    # Classes by frequency: the ones that matter most come first when the table is cut.
    position = {c: i for i, c in enumerate(run.classes)}
    classes = sorted(run.classes, key=lambda c: (-run.by_class[c].weight_sum, position[c]))
    class_rows, class_note = _cut([
        (c, count(k.n_examples), pct(k.actual_share), pct(k.predicted_share), num(k.mean_predicted_prob),
         num(k.log_loss), num(k.cross_entropy_bits), pct(k.recall), pct(k.precision))
        for c in classes for k in (run.by_class[c],)
    ], "classes")
    tables.append(Table(
        "classes", "Per class",
        (Column("class", numeric=False), Column("examples"), Column("P̂ share", help="share of true labels"),
         Column("predicted share", help="share of top-1 predictions"), Column("Q̄ mean prob", help="mean predicted probability"),
         Column("log loss", help="nats, examples of this true class"), Column("bits"), Column("recall"),
         Column("precision")),
        class_rows, "Most frequent classes first. Loss, recall and share of predictions are per true class.",
        class_note,
    ))
    if run.by_split:
        tables.append(Table(
            "splits", "Per split", (Column("split", numeric=False), *_METRIC_COLUMNS),
            tuple((name, *_metric_cells(s)) for name, s in [("overall", m), *run.by_split.items()]),
        ))
    for j, (column, values) in enumerate(_slices(run)):
        rows, note = _cut([(str(v), *_metric_cells(s)) for v, s in values], f"values of {column}")
        tables.append(Table(
            f"slice-{j + 1}", f"Per value of {column}", (Column(column, numeric=False), *_METRIC_COLUMNS),
            rows, "Largest first.", note,
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
