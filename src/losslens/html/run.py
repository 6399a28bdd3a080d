"""The view model of one run's section: header, warnings, headlines, guide, charts, tables.

Pure: reads one finished :class:`~losslens.evaluation.RunEvaluation` and returns a
:class:`~losslens.html.model.RunPage`. Metric labels and formats come from the catalog and
:mod:`losslens.formatting`, as in the terminal.
"""

from __future__ import annotations

import math
from typing import Sequence

from markupsafe import Markup

import losslens.html.charts as charts
import losslens.html.many_classes as many_classes

from ..catalog import view, view_present
from ..diagnostics import TRAIN_SPLITS
from ..evaluation import HIST_EDGES, LN2, OTHER
from ..formatting import MISSING, count, finite, fixable, interval, interval_of, number, percent, signed, value
from ..formatting import name as data_name
from ..decision_text import calibration_intervals
from .calibration_charts import equal_mass_reliability_chart
from .baseline import baseline_page
from .model import Chart, Column, Guide, Headline, Notice, RunPage, Table, cut, name_cell

#: Class names listed in the header before "…".
MAX_HEADER_CLASSES = 12

#: Where in this report to look for each known warning code. The engine's message already
#: says what the warning means and what to check; this points at the chart or table that
#: shows it. Codes not listed (added later by diagnostics) are shown with their message alone.
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
        rows.append(("label column", layout.label or MISSING))
    if layout.positive_index is not None:
        rows.append(("positive class", layout.classes[layout.positive_index]))
    for title, column in (("id column", layout.id), ("weight column", layout.weight), ("split column", layout.split)):
        rows.append((title, column or MISSING))
    rows.append(("slice columns", ", ".join(layout.by) if layout.by else MISSING))
    return tuple(rows)


def _preview(names: Sequence[str], limit: int = MAX_HEADER_CLASSES) -> str:
    names = list(names)
    # Each name shortened: a 10,000-character class name must not fill the header.
    shown = ", ".join(data_name(n) for n in names[:limit])
    return shown + (f", … ({len(names):,} in all)" if len(names) > limit else "")


def notices(warnings) -> tuple[Notice, ...]:
    """Warnings grouped by code, in the order each code first appears."""
    groups: dict[str, list] = {}
    for w in warnings:
        groups.setdefault(w.code, []).append(w)
    return tuple(
        Notice(code=code, scope=first.scope, message=first.message, advice=WHERE_TO_LOOK.get(code, ""),
               more=tuple(Notice(code=code, scope=w.scope, message=w.message) for w in rest))
        for code, (first, *rest) in groups.items()
    )


def run_page(run, index: int, baseline=None) -> RunPage:
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
        warnings=notices(run.warnings),
        n_warnings=len(run.warnings),
        headlines=headlines(run),
        guide=_guide(run),
        charts=_charts(run, prefix),
        tables=_tables(run),
        baseline=baseline_page(run, baseline) if baseline is not None else None,
    )


def headlines(run) -> tuple[Headline, ...]:
    """The run's headline figures (log loss, cross-entropy, ...), as the report and the notebook card show them."""
    m = run.overall
    splits = run.by_split
    # The catalog's headline metrics, in its order; titles and captions are this page's words.
    log_loss, bits, perplexity, accuracy, gain, kl = view("headlines")

    def figure(metric, title, unit, detail, caption="", bootstrap=False):
        return Headline(
            title, value(metric.name, getattr(m, metric.name)), unit, detail,
            tuple((name, value(metric.name, getattr(s, metric.name))) for name, s in splits.items()),
            caption, _bootstrap_lines(m, metric.name) if bootstrap else (),
        )

    soft = ()
    if m.kl_bits is not None:
        soft = (Headline("KL(targets ‖ model)", number(m.kl_bits), "bits",
                         f"cross-entropy above the target entropy {number(m.target_entropy_bits)} bits",
                         tuple((name, number(s.kl_bits)) for name, s in splits.items()),
                         "The part of the loss the model can reduce; the target entropy cannot be beaten."),)
    present = tuple(
        figure(metric, metric.label[:1].upper() + metric.label[1:], metric.unit, metric.help)
        for metric in view_present("when_present", [m, *splits.values()])
    )
    return soft + (
        figure(log_loss, "Log loss", "nats", f"95% interval {interval(m.log_loss_ci95)}, {m.log_loss_ci95_method}",
               "Mean of −ln q(true class). Lower is better; 0 is perfect.", bootstrap=True),
        figure(bits, "Cross-entropy", "bits", "per example; the log loss in base 2",
               "Average number of bits to encode the true labels with the model's probabilities."),
        figure(perplexity, "Perplexity", "",
               f"effective number of classes the model hesitates between (of {len(run.classes):,})",
               "exp(log loss). 1 is certainty; the number of classes is a uniform guess."),
        figure(accuracy, "Accuracy", "", "top class = true class", bootstrap=True),
        figure(gain, "Information gain", "bits",
               f"{percent(m.relative_information_gain, 1)} of the label entropy H(P̂) = "
               f"{number(m.label_entropy_bits)} bits",
               "H(P̂) − cross-entropy: how much better than always predicting the class frequencies."),
        figure(kl, "KL(P̂ ‖ Q̄)", "bits", "gap between label frequencies and mean predictions",
               "Calibration in the large: 0 when the model predicts each class as often as it occurs."),
    ) + present


def bootstrap_method(boot: dict) -> str:
    """How a bootstrap interval was made, e.g. "percentile bootstrap, 1,000 resamples, seed 0"."""
    return f"{boot.get('method', 'bootstrap')}, {count(boot.get('n_resamples'))} resamples, seed {boot.get('seed')}"


def _bootstrap_lines(m, metric: str, lead: str = "95% interval ") -> tuple[str, ...]:
    """A headline's line for the --bootstrap interval of ``metric``, when there is one."""
    boot = m.bootstrap
    if not boot or metric not in boot:
        return ()
    if not lead:  # the reliability chart's caption words it as "interval (method)"
        return (f"{interval_of(metric, boot[metric])} ({bootstrap_method(boot)})",)
    return (f"{lead}{interval_of(metric, boot[metric])}, {bootstrap_method(boot)}",)


def _guide(run) -> Guide:
    m = run.overall
    splits = [(name, s.log_loss) for name, s in run.by_split.items() if finite(s.log_loss)]
    contrast = None
    if len(splits) >= 2:
        low = min(splits, key=lambda kv: kv[1])
        high = max(splits, key=lambda kv: kv[1])
        contrast = (low[0], number(low[1]), high[0], number(high[1]))
    k = len(run.classes)
    return Guide(
        soft_targets=_soft(run),
        n_classes=k,
        ce_bits=number(m.cross_entropy_bits),
        ce_nats=number(m.log_loss),
        perplexity=number(m.perplexity, 3),
        label_entropy_bits=number(m.label_entropy_bits),
        label_entropy_nats=number(m.label_entropy_bits * LN2 if finite(m.label_entropy_bits) else math.nan),
        kl_empirical_bits=number(m.kl_empirical_bits),
        marginal_bits=number(m.marginal_cross_entropy_bits),
        gain_bits=number(m.information_gain_bits),
        gain_share=percent(m.relative_information_gain, 1),
        uniform_bits=number(math.log2(k)) if k > 0 else MISSING,
        target_entropy_bits=number(m.target_entropy_bits) if m.target_entropy_bits is not None else "",
        kl_bits=number(m.kl_bits) if m.kl_bits is not None else "",
        split_contrast=contrast,
        fixable=fixable(m),
        temperature=number(m.temperature, 3) if finite(m.temperature) else "",
        # A negative calibration loss means T came from the held-out splits (see formatting.fixable):
        # what it says of the model holds there, not for these examples.
        confidence=_confidence_word(m.temperature) if not _fitted_elsewhere(m) else "",
        temperature_where="on the held-out splits" if _fitted_elsewhere(m) else "here",
        calibration_intervals=calibration_intervals(m),
    )


def _fitted_elsewhere(m) -> bool:
    """Whether the scope's temperature was fitted on other examples (it makes its log loss worse)."""
    return finite(m.calibration_loss) and m.calibration_loss < 0


def _confidence_word(t) -> str:
    """What a fitted temperature says: above 1 the model is overconfident, below 1 underconfident."""
    if not finite(t) or t == 1:
        return ""
    return "overconfident (a temperature above 1 softens it)" if t > 1 else \
        "underconfident (a temperature below 1 sharpens it)"


def _charts(run, prefix: str) -> tuple[Chart, ...]:
    m = run.overall
    classes = list(run.classes)
    weights = [run.by_class[c].weight_sum for c in classes]
    # Beyond a bar per class, the charts name the classes worth a look (many_classes.select_classes).
    folded = len(classes) > charts.MAX_BARS
    baseline_nats = m.label_entropy_bits * LN2 if finite(m.label_entropy_bits) else math.nan
    floor = m.target_entropy_bits * LN2 if finite(m.target_entropy_bits) else None
    distribution_caption = (
        "Blue: how often each class is the true label (P̂). Orange: the model's average "
        "probability for it (Q̄). Bars of different length mean the model predicts the class "
        f"more or less often than it occurs; KL(P̂ ‖ Q̄) = {number(m.kl_empirical_bits)} bits sums this up.")
    if folded:
        distribution, class_loss = _many_class_charts(run, prefix, distribution_caption)
    else:
        distribution = Chart("distribution", "Label distribution vs mean prediction",
                             charts.distributions_chart(classes, [run.label_distribution[c] for c in classes],
                                                        [run.mean_predicted_distribution[c] for c in classes],
                                                        weights, f"{prefix}-dist"),
                             distribution_caption)
        class_loss = Chart("class-loss", "Loss by true class",
                           charts.class_loss_chart(classes, [run.by_class[c].log_loss for c in classes], weights,
                                                   m.log_loss, f"{prefix}-cls"),
                           "Mean loss of the examples of each true class, worst first. Classes far right of the "
                           "overall line are where the model struggles.")
    out = [
        distribution,
        Chart("loss-histogram", "Distribution of per-example loss",
              charts.loss_histogram_chart(run.loss_histogram, HIST_EDGES, m.log_loss, baseline_nats,
                                          f"{prefix}-hist", floor),
              "Each bar counts examples by their loss −ln q(true class), on a log scale: far left are "
              "confident right answers, far right confident mistakes (5 nats means p(true class) below "
              "0.7%). Solid line: this model's mean loss. Dashed: the mean loss of always predicting the "
              f"class frequencies. Median ≈ {number(run.loss_quantiles.get('p50'), 3)}, 99th percentile ≈ "
              f"{number(run.loss_quantiles.get('p99'), 3)} nats."),
        class_loss,
        Chart("reliability", "Reliability diagram",
              charts.reliability_chart(run.calibration, m.ece, f"{prefix}-rel"),
              "Examples are grouped by the probability of the predicted class. In a calibrated model, "
              "the bars reach the diagonal: of the predictions made with 80% confidence, 80% are right. "
              "Bars below the diagonal mean overconfidence. The lower panel shows how many examples fall "
              f"in each bin. ECE = {number(m.ece)} is the weighted mean gap."
              + "".join(f" Its 95% interval is {line}." for line in _bootstrap_lines(m, _ECE.name, "")),
              *_brier_facts(run)),
    ]
    out += _equal_mass_chart(run, prefix)
    heatmap = many_classes.confusion_heatmap(run.confusion, run.classes)
    if heatmap is not None:
        out.append(Chart("confusion", "Confusion matrix", Markup(""), heatmap=heatmap, caption=
                         "Each row is a true class, each column the class predicted (the most probable); a "
                         "cell's shade is the share of the row's examples predicted as the column's class, so "
                         "a perfect model fills the diagonal. Dark cells off the diagonal are the confusions "
                         "the confused-pairs table lists."))
    if run.by_split:
        rows = [charts.Category(name, (s.log_loss,), *s.log_loss_ci95) for name, s in run.by_split.items()]
        out.append(Chart("splits", "Log loss by split",
                         charts.interval_chart(rows, m.log_loss, "Log loss by split",
                                               "log loss, nats (95% interval)", f"{prefix}-split"),
                         _splits_caption(run)))
    for j, (column, items) in enumerate(_slices(run)):
        shown = items[: charts.MAX_BARS]
        rows = [charts.Category(str(value), (s.log_loss,), *s.log_loss_ci95) for value, s in shown]
        more = (f" Showing the {len(shown)} worst of {len(items):,} values; the table and the JSON "
                "report list the others.") if len(items) > len(shown) else ""
        out.append(Chart(f"slice-{j + 1}", f"Log loss by {column}",
                         charts.interval_chart(rows, m.log_loss, f"Log loss by {column} (worst first)",
                                               "log loss, nats (95% interval)", f"{prefix}-slice{j + 1}"),
                         f"Each value of the slice column “{column}”, worst first: ranked by how far its "
                         f"log loss is above the overall {number(m.log_loss)}"
                         + (f", with {OTHER} (the smallest values merged) last" if _has_other(items) else "")
                         + ". Intervals that do not overlap the overall line point at a subgroup the model "
                         "serves worse (or better)." + more))
    return tuple(out)


def _equal_mass_chart(run, prefix: str) -> list[Chart]:
    """The reliability diagram over equal-mass bins with an interval per bin, when the run kept its sample."""
    bins = getattr(run, "calibration_equal_mass", ())
    if not bins:
        return []
    m = run.overall
    n = sum(b.n_examples for b in bins)
    return [Chart("reliability-mass", "Reliability diagram, equal-mass bins",
                  equal_mass_reliability_chart(bins, m.ece_equal_mass, m.ece_equal_mass_ci95, f"{prefix}-relm"),
                  f"The same question with {len(bins)} bins that each hold about the same number of examples "
                  f"({n:,} in all; every other bin's confidence range is shaded), so no bin is nearly empty. "
                  "Each point is a bin's accuracy at its mean confidence, with a 95% interval (Wilson's): a point "
                  "whose interval misses the diagonal is a gap that noise does not explain. ECE equal-mass is the "
                  "mean of these gaps weighted by bin size, HELM's ece_10_bin; its 95% interval is a bootstrap "
                  "with a fixed seed.")]


def _many_class_charts(run, prefix: str, distribution_caption: str) -> tuple[Chart, Chart]:
    """The label-distribution and per-class charts when a bar per class would be unreadable.

    They name the classes that cost most, those predicted furthest from their rate and the most
    frequent (:func:`~losslens.html.many_classes.select_classes`), and sum up the rest in one
    bar that says how many classes it stands for.
    """
    selection = many_classes.select_classes(run)
    chosen = (f" Named: the {many_classes.N_WORST} classes with the largest excess loss, the "
              f"{many_classes.N_SHIFTED} whose label share is furthest from their mean prediction and the "
              f"{many_classes.N_FREQUENT} most frequent; the last bar sums up the other {selection.n_other:,} "
              "classes. Every class is in --per-class FILE.csv and the JSON (by_class).")
    distribution = Chart("distribution", "Label distribution vs mean prediction",
                         many_classes.class_distribution_chart(selection, f"{prefix}-dist"),
                         distribution_caption + " Log scale." + chosen)
    excess = Chart("class-loss", "Classes that cost most",
                   many_classes.class_excess_chart(selection, f"{prefix}-cls"),
                   "Each class's excess loss: the sum over its examples of (loss − overall log loss), divided "
                   "by the number of all examples, so the bars of all classes add up to 0. Long red bars are "
                   f"the classes that raise the log loss {number(run.overall.log_loss)} most." + chosen)
    return distribution, excess


def _splits_caption(run) -> str:
    """How to read the splits chart; a split is called training only when it is named so."""
    training = [name for name in run.by_split if name.lower() in TRAIN_SPLITS]
    if training:
        return ("Compare training and held-out loss: a training loss far below validation "
                "means the model memorised its training examples, and only the held-out "
                "figure says how it will do on new data.")
    return ("Compare the splits: a split with a loss far below the others may be the data the model "
            "was fitted on (memorised), and only data it was not fitted on says how it will do on new data.")


def _has_other(items) -> bool:
    """Whether the engine merged the smallest values of a slice column into (other)."""
    return any(value == OTHER for value, _ in items)


def _calibration_table(run) -> tuple[Table, ...]:
    """Per scope (overall, splits): the calibration errors and the temperature split, where computed."""
    scopes = [("overall", run.overall), *run.by_split.items()]
    columns = view_present("calibration_scopes", [s for _, s in scopes])
    if not columns:
        return ()
    rows = tuple((data_name(name), *(value(e.name, getattr(s, e.name)) for e in columns)) for name, s in scopes)
    return (Table(
        "calibration", "Calibration: what one temperature fixes",
        (Column("scope", numeric=False), *(Column(e.label, help=e.help) for e in columns)), rows,
        "calibration loss = log loss − log loss after T: the nats a single temperature T (softmax(z / T)) "
        "removes. Negative where T was fitted on other examples (see the layout notes).",
    ),)


def _brier_facts(run) -> tuple:
    """The binary Brier decomposition as (facts, caption) for the reliability chart, or nothing."""
    parts = run.brier_decomposition
    if not parts:
        return ()
    facts = (
        ("Brier score", number(run.overall.brier_score)),
        ("reliability", number(parts.get("reliability"))),
        ("resolution", number(parts.get("resolution"))),
        ("uncertainty", number(parts.get("uncertainty"))),
        ("residual", number(parts.get("residual"))),
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

#: The columns of every per-scope table (overall, splits, slice values): the catalog's "scopes" view.
_METRIC_COLUMNS = tuple(Column(m.label, help=m.help) for m in view("scopes"))


def _metric_cells(m, extra=()) -> tuple[str, ...]:
    return tuple(value(entry.name, getattr(m, entry.name)) for entry in (*view("scopes"), *extra))


def _extra_metrics(run) -> tuple:
    """The catalog's "when_present" metrics some scope of the run has (top-5 with more than 5 classes)."""
    scopes = [run.overall, *run.by_split.values(), *(s for values in run.by_slice.values() for s in values.values())]
    return view_present("when_present", scopes)


#: The metrics with --bootstrap intervals, in the catalog's order (log loss, accuracy, ECE).
_BOOTSTRAPPED = view("bootstrap")
_ECE = _BOOTSTRAPPED[-1]
_BOOTSTRAP_COLUMNS = tuple(Column(f"{m.label} bootstrap 95%") for m in _BOOTSTRAPPED)


def _bootstrap_cells(m) -> tuple[str, ...]:
    """The --bootstrap intervals of one scope, — where the scope has none."""
    boot = m.bootstrap or {}
    return tuple(interval_of(e.name, boot[e.name]) if e.name in boot else MISSING for e in _BOOTSTRAPPED)


def _interval_caption(scopes) -> str:
    """Which method made each interval column of a metrics table (read from the metrics)."""
    methods = sorted({m.log_loss_ci95_method for m in scopes})
    text = f"95% interval of the log loss: {'; '.join(methods)}."
    boots = sorted({bootstrap_method(m.bootstrap) for m in scopes if m.bootstrap})
    if boots:
        text += f" Bootstrap columns: {'; '.join(boots)}."
    return text


def _slices(run) -> list[tuple[str, list]]:
    """Each slice column with its values in the engine's order: worst first, (other) last.

    Kept as the engine ranked them (by log loss above the whole run's), not re-sorted, so
    that the page, the terminal and the JSON list slices in the same order.
    """
    return [(column, list(values.items())) for column, values in run.by_slice.items()]


def _tables(run) -> tuple[Table, ...]:
    m = run.overall
    extra = _extra_metrics(run)
    extra_columns = tuple(Column(e.label, help=e.help) for e in extra)
    # The per-class section leads with the classes that cost most and what they are taken for.
    tables = [*_worst_classes_table(run), *_confused_pairs_table(run)]
    # Classes by frequency: the ones that matter most come first when the table is cut.
    position = {c: i for i, c in enumerate(run.classes)}
    classes = sorted(run.classes, key=lambda c: (-run.by_class[c].weight_sum, position[c]))
    class_rows, class_note = cut([
        (name_cell(c), count(k.n_examples), percent(k.actual_share), percent(k.predicted_share), number(k.mean_predicted_prob),
         number(k.log_loss), number(k.cross_entropy_bits), percent(k.recall), percent(k.precision), number(k.ece))
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
            (Column("split", numeric=False), *_METRIC_COLUMNS, *extra_columns, *(_BOOTSTRAP_COLUMNS if boot else ())),
            tuple((name, *_metric_cells(s, extra), *(_bootstrap_cells(s) if boot else ())) for name, s in scopes),
            _interval_caption([s for _, s in scopes]),
        ))
    for j, (column, values) in enumerate(_slices(run)):
        # "vs overall" is the JSON's excess_log_loss, the number the rows are ranked by.
        rows, note = cut([(name_cell(v), signed(s.log_loss - m.log_loss), *_metric_cells(s, extra)) for v, s in values],
                          f"values of {column}")
        tables.append(Table(
            f"slice-{j + 1}", f"Per value of {column}",
            (Column(column, numeric=False), Column("vs overall", help="log loss minus the whole run's, nats"),
             *_METRIC_COLUMNS, *extra_columns),
            rows, f"Worst first: ranked by log loss above the whole run's {number(m.log_loss)} nats"
            + (f", {OTHER} (the smallest values merged) last. " if _has_other(values) else ". ")
            + _interval_caption([s for _, s in values]), note,
        ))
    tables += _calibration_table(run)
    tables.append(_worst_table(run))
    return tuple(tables)


def _worst_classes_table(run) -> tuple[Table, ...]:
    """The classes that cost most (the JSON's worst_classes), worst first; none without examples."""
    if not run.worst_classes:
        return ()
    rows = tuple(
        (name_cell(c.name), count(c.n_examples), number(c.log_loss), signed(c.excess_loss), percent(c.recall),
         name_cell(c.most_confused_with) if c.most_confused_with is not None else MISSING)
        for c in run.worst_classes
    )
    n = len(run.classes)
    return (Table(
        "worst-classes", "Classes that cost most",
        (Column("class", numeric=False), Column("examples"), Column("log loss", help="nats, examples of this true class"),
         Column("excess loss", help="Σ over the class's examples of (loss − overall log loss) / all examples, nats"),
         Column("recall"), Column("most confused with", numeric=False, help="the class its examples are most often predicted as")),
        rows,
        "Ranked by excess loss: how much each class adds to the overall log loss "
        f"{number(run.overall.log_loss)} nats (the excess losses of all {n:,} classes add up to 0). "
        "Start here: a class with a high loss and a clear “most confused with” is often a labelling "
        "or taxonomy problem between those two classes.",
    ),)


def _confused_pairs_table(run) -> tuple[Table, ...]:
    """The most frequent off-diagonal (true, predicted) pairs, when the model makes any mistake."""
    if not run.confused_pairs:
        return ()
    rows = tuple(
        (name_cell(p.true), name_cell(p.predicted), count(p.count), percent(p.share_of_true))
        for p in run.confused_pairs
    )
    return (Table(
        "confused-pairs", "Most confused pairs",
        (Column("true class", numeric=False), Column("predicted as", numeric=False), Column("examples"),
         Column("share of true", help="share of the true class's examples predicted as this class")),
        rows,
        "The most frequent mistakes (top-1 prediction ≠ true class), most frequent first. The JSON "
        "(confused_pairs) has the same list; with 30 classes or fewer the confusion-matrix chart shows them all.",
    ),)


def _worst_table(run) -> Table:
    """The worst examples, located by id, by row (one input file) or by file and row."""
    classes = run.classes
    one_file = len({e.source for e in run.worst}) <= 1 and len(run.inputs) == 1
    if run.layout.id:
        # "id", not "id (id)", when the column is called id.
        heading = "id" if run.layout.id == "id" else f"id ({run.layout.id})"
        where_column, where = Column(heading, numeric=False), lambda e: name_cell(e.id)
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
        (where(e), name_cell(classes[e.label]), name_cell(classes[e.predicted]), _prob(e.true_prob), number(e.loss), number(e.loss / LN2))
        + ((e.split or MISSING,) if has_split else ())
        for e in run.worst
    )
    columns = (
        where_column, Column("true label", numeric=False), Column("predicted", numeric=False),
        Column("p(true class)"), Column("loss nats"), Column("loss bits"),
    ) + ((Column("split", numeric=False),) if has_split else ())
    return Table(
        "worst", "The worst example" if len(rows) == 1 else f"The {len(rows)} worst examples", columns, rows,
        "The examples with the highest loss. Check them first: wrong labels, leaked or corrupt inputs "
        "and overconfident mistakes show up here." + located,
    )


def _prob(p: float) -> str:
    """A probability with 6 decimals, or in scientific notation when that would show 0."""
    return number(p, 6) if not finite(p) or p >= 1e-6 or p == 0 else f"{p:.2e}"


