"""The view model of the comparison of runs: side by side, and each run against the first.

Pure: formats the :class:`~losslens.comparison.Comparison` results as they are (the page
computes no difference of its own), with the catalog's metrics and formats.
"""

from __future__ import annotations

import math

import losslens.html.charts as charts

from ..catalog import ACCURACY, LOG_LOSS_DELTA_CI95, LOG_LOSS_DELTA_P_VALUE, metric, view
from ..evaluation import LN2
from ..formatting import (MISSING, change, count, detectable_change, flips, name, number, p_value, percent, plural,
                          points, signed, signed_interval, value)
from ..decision_text import bootstrap_clauses, delta_parts
from .model import Chart, Column, ComparisonPage, Table, name_cell
from .run import bootstrap_method


def runs_table(runs) -> Table:
    """Side-by-side headline metrics of every run, for two or more runs (the catalog's "runs_page" view)."""
    shown = view("runs_page")
    rows = tuple(
        (name_cell(r.name), *(value(m.name, getattr(r.overall, m.name)) for m in shown), count(len(r.warnings)))
        for r in runs
    )
    columns = (Column("run", numeric=False), *(Column(m.label, help=m.help) for m in shown), Column("warnings"))
    return Table("comparison", "Runs side by side", columns, rows,
                 "Overall figures of each run; lower log loss is better. Details per run below.")


def runs_chart(runs) -> Chart:
    """The runs next to each other: log loss with its 95% interval, and accuracy."""
    methods = sorted({r.overall.log_loss_ci95_method for r in runs})
    accuracy = view("bootstrap")[1].name  # the accuracy chart's intervals, when --bootstrap made them
    boots = sorted({bootstrap_method(r.overall.bootstrap) for r in runs
                    if r.overall.bootstrap and accuracy in r.overall.bootstrap})
    accuracy_ci = [tuple(r.overall.bootstrap[accuracy]) if r.overall.bootstrap and accuracy in r.overall.bootstrap
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


def comparison_page(comparison, evaluation, index: int) -> ComparisonPage:
    """One candidate against the reference: the change of log loss, its interval, the worst regressions."""
    c = comparison
    by_name = {r.name: r for r in evaluation.runs}
    reference, candidate = by_name.get(c.reference), by_name.get(c.candidate)
    facts = []
    if c.paired:
        facts.append(("paired", f"over {plural(c.n_paired, 'example')} with the same id in both runs"))
        facts.append(("examples improved", percent(c.share_improved, 1)))
        facts.append(("examples got worse", percent(c.share_worsened, 1)))
    else:
        facts.append(("unpaired", "the difference of the two runs' log losses, their errors taken as independent"))
    facts.append((f"log loss of {c.reference}", number(c.log_loss_reference)))
    facts.append((f"log loss of {c.candidate}", number(c.log_loss_candidate)))
    if c.n_reference_only is not None:
        facts.append((f"only in {c.reference}", _ids(c.n_reference_only, c.reference_only_ids)))
    if c.n_candidate_only is not None:
        facts.append((f"only in {c.candidate}", _ids(c.n_candidate_only, c.candidate_only_ids)))
    if c.n_label_mismatch:
        facts.append(("different labels", f"{plural(c.n_label_mismatch, 'paired example')}"))
    facts += decision_facts(c, "example", "nats")

    rows = []
    for m in view("changes"):
        if m.name not in c.metric_deltas:
            continue
        rows.append((m.name,
                     value(m.name, getattr(reference.overall, m.name)) if reference else MISSING,
                     value(m.name, getattr(candidate.overall, m.name)) if candidate else MISSING,
                     change(m.name, c.metric_deltas[m.name]), m.better or ""))
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
            f"regressions-{index + 1}", f"The {plural(len(c.worst_regressions), 'example')} that got worse the most",
            (Column("id", numeric=False), Column("true label", numeric=False),
             Column(f"loss in {c.reference}", help="nats"), Column(f"loss in {c.candidate}", help="nats"),
             Column("change nats"), Column("change bits")),
            tuple((name_cell(r.id), name_cell(r.label), number(r.loss_reference), number(r.loss_candidate), signed(r.loss_delta),
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


def decision_facts(c, units: str, unit: str) -> list[tuple[str, str]]:
    """The (what, value) lines that decide: p-values, the smallest detectable change, accuracy flips,
    clusters and the paired bootstrap (for classifier and language-model comparisons alike)."""
    t = c.tests
    if t is None:
        return []
    facts = [("p-value", f"adjusted {p_value(c.log_loss_delta_p_value_adjusted)} (Benjamini–Hochberg across the "
                         f"job's comparisons; unadjusted {p_value(t.p_value)}); the verdict needs below 0.05")]
    if c.paired:
        facts.append(("smallest detectable change", detectable_change(c.n_paired, units, t.minimum_detectable_effect, unit)
                      + " (80% power, 5% level)"))
    if t.accuracy_delta is not None:
        ci = t.accuracy_delta_ci95
        interval = f" (95% interval {points(ci[0])} to {points(ci[1])})" if ci else ""
        facts.append((metric(ACCURACY).label, f"{points(t.accuracy_delta)}" + interval))
        facts.append(("accuracy flips", flips(t.mcnemar)))
    facts += delta_parts(t.deltas)
    if t.cluster is not None:
        facts.append(("clustered on", f"{name(t.cluster['column'])}: {plural(t.cluster['n_clusters'], 'cluster')}, "
                                      f"standard error {number(t.se_clustered)}"))
    if t.bootstrap:
        b = t.bootstrap
        facts.append(("paired bootstrap", f"{count(b['n_resamples'])} resamples (seed {b['seed']}): 95% interval "
                                          f"{signed_interval(b[LOG_LOSS_DELTA_CI95])}, "
                                          f"{p_value(b[LOG_LOSS_DELTA_P_VALUE])}"
                                          + "".join(f"; {clause}" for clause in bootstrap_clauses(b))))
    return facts


def _ids(n: int, listed) -> str:
    """How many ids only one run has, with the first few."""
    if not n:
        return "no examples"
    shown = ", ".join(name(i) for i in listed)
    more = ", …" if n > len(listed) else ""
    return plural(n, "example") + (f" (ids {shown}{more})" if listed else "")
