"""The report page of Hugging Face Trainer runs: cards, warnings, the loss curves chart, the evaluations.

Each run becomes a :class:`~losslens.html.lm.LMSection` (the language-model section template,
``lm_section.html``, shows it); the figures are :mod:`losslens.lm.trainer_run`'s, formatted here.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from markupsafe import Markup

from ..catalog import EVAL_LOSS, view
from ..formatting import number as num
from ..formatting import value as fmt_value
from ..readers.trainer import NEAR_ZERO_LOSS
from .charts import (COLOR_ACTUAL, COLOR_MEAN, COLOR_PREDICTED, chart_style, chart_title, legend_below, log_tick,
                     new_figure, svg_of)
from .lm import LMCard, LMSection, LMWarning
from .model import Chart, Column, ReportPage, Table, cut

#: "How to read" a Trainer run's section.
GUIDE = (
    ("eval loss", "the mean cross-entropy on the eval set Trainer logged at each evaluation, in nats per token "
     "(÷ ln 2 for bits; exp of it is the perplexity). Lower is better."),
    ("train loss", "the training loss Trainer logged every logging_steps: the mean over that interval's batches, "
     "with dropout on, so a little above what the model scores on its training text at that step."),
    ("train/eval gap", "eval loss − the training loss logged at or just before the evaluation's step. A gap that "
     "grows while the training loss falls is overfitting."),
    ("best step", "the step of the lowest eval loss; evaluations after it that never went lower say where "
     "training stopped helping (load_best_model_at_end keeps that checkpoint)."),
    ("near-zero training loss", "under 0.05 nats per token the model gives its training text a mean per-token "
     "probability above 0.95: it has memorised it."),
)


def loss_curves_chart(train: Sequence[tuple[int, float]], evals: Sequence[tuple[int, float]], best_step: int | None,
                      prefix: str, gap: Sequence[tuple[int, float]] = ()) -> Markup:
    """Training and eval loss by step, the best evaluation ringed, and the gap (``gap``'s) shaded below eval."""
    with chart_style():
        fig = new_figure(8.8, 3.6)
        ax = fig.add_subplot()
        if train:
            steps, losses = np.array(train, dtype=float).T
            ax.plot(steps, losses, color=COLOR_ACTUAL, linewidth=1.5, label="training loss")
        if evals:
            steps_e, losses_e = np.array(evals, dtype=float).T
            ax.plot(steps_e, losses_e, color=COLOR_PREDICTED, linewidth=1.8, marker="o", markersize=3.5,
                    label="eval loss")
            if gap:
                # The gap as computed (eval − the training loss logged at or before the step), not re-read
                # off the drawn training line.
                gap_steps, gaps = np.array(gap, dtype=float).T
                at = np.array([dict(evals)[int(s)] for s in gap_steps]) - gaps
                ax.fill_between(gap_steps, at, at + gaps, color=COLOR_PREDICTED, alpha=0.12, linewidth=0,
                                label="train/eval gap")
            if best_step is not None:
                best = dict(evals)[best_step]
                ax.plot([best_step], [best], linestyle="none", marker="o", markersize=10, markerfacecolor="none",
                        markeredgecolor=COLOR_MEAN, markeredgewidth=1.6, label=f"best eval loss (step {best_step})")
        if train and min(loss for _, loss in train) < 10 * NEAR_ZERO_LOSS:
            ax.axhline(NEAR_ZERO_LOSS, color=COLOR_MEAN, linestyle=":", linewidth=1.2,
                       label=f"near-zero training loss ({NEAR_ZERO_LOSS} nats)")
        ax.set_xlabel("step")
        ax.set_ylabel("loss, nats per token")
        low = min([loss for _, loss in (*train, *evals)] or [0.0])
        if low > 0 and max(loss for _, loss in (*train, *evals)) / low > 30:
            from matplotlib.ticker import FuncFormatter, NullFormatter

            ax.set_yscale("log")  # a memorising run falls by decades: a linear axis flattens the end
            ax.yaxis.set_major_formatter(FuncFormatter(log_tick))
            ax.yaxis.set_minor_formatter(NullFormatter())
        legend_below(fig, ax, ncol=3)
        chart_title(ax, "Loss curves")
        return svg_of(fig, prefix)


def _cards(run) -> tuple[LMCard, ...]:
    o = run.overall
    if o.eval_loss is None:
        return (LMCard("train loss", num(o.train_loss), "the last logged, nats per token; no evaluation logged"),)
    return (
        LMCard("eval loss", f"{num(o.eval_loss)} nats", f"{num(o.eval_cross_entropy_bits)} bits, perplexity "
               f"{num(o.eval_perplexity, 3)} (step {o.global_step})"),
        LMCard("best eval loss", f"{num(o.best_eval_loss)} nats", f"step {o.best_step}" + (
            f"; {run.stopped_improving()}" if run.stopped_improving() else "; the last evaluation is the best")),
        LMCard("train loss", f"{num(o.train_loss)} nats" if o.train_loss is not None else "—",
               f"lowest {num(o.train_loss_min)}" if o.train_loss_min is not None else "no training loss logged"),
        LMCard("train/eval gap", f"{num(o.train_eval_gap)} nats" if o.train_eval_gap is not None else "—",
               f"eval perplexity {num(math.exp(o.train_eval_gap), 3)}× the training text's"
               if o.train_eval_gap is not None else "no training loss before the evaluations"),
    )


def _evaluations_table(run) -> Table:
    """One row per evaluation: step, eval loss, the training loss read at it, the gap, the change from the best."""
    gap = dict(run.gap)
    best = run.overall.best_eval_loss
    rows = [(str(step), num(loss), num(loss - gap[step]) if step in gap else "—",
             num(gap[step]) if step in gap else "—", f"{loss - best:+.4f}", "best" if step == run.overall.best_step
             else "") for step, loss in run.eval]
    shown, note = cut(rows, "evaluations")
    return Table("evaluations", "Evaluations", (
        Column("step"), Column("eval loss, nats"), Column("train loss, nats", help="logged at or before the step"),
        Column("gap, nats", help="eval − train"), Column("Δ from best"), Column("", numeric=False)),
        shown, caption="Trainer's logged losses; the row of the best eval loss is marked.", note=note)


def _logged_table(run) -> Table | None:
    """Trainer's own figures (eval_results.json, the run's mean training loss) beside losslens's."""
    logged = run.logged or {}
    results = logged.get("eval_results") or {}
    key = logged.get("eval_key", EVAL_LOSS)
    rows = [(logged.get("file") or "eval_results.json", key, num(results[key]),
             fmt_value(EVAL_LOSS, run.overall.eval_loss))] if key in results else []
    if logged.get("train_loss_mean") is not None:
        rows.append(("log_history summary", "train_loss (mean over the run)", num(logged["train_loss_mean"]), "—"))
    if not rows:
        return None
    return Table("logged", "Trainer's own figures", (
        Column("file", numeric=False), Column("figure", numeric=False), Column("logged"),
        Column("last in log_history")), tuple(rows))


def trainer_section(run, prefix: str) -> LMSection:
    """The section of one Trainer run (see :class:`losslens.lm.trainer_run.TrainerResult`)."""
    charts = ()
    if run.train or run.eval:
        charts = (Chart("loss-curves", "Loss curves", loss_curves_chart(run.train, run.eval, run.overall.best_step,
                                                                          f"{prefix}-curves", run.gap),
                        caption="Training loss (every logging_steps) and eval loss (every evaluation) by step; "
                                "the shaded band is the train/eval gap, the ring the lowest eval loss; a dotted line marks "
                                "0.05 nats when the training loss comes near it (memorisation below)."),)
    tables = [_evaluations_table(run)] if run.eval else []
    logged = _logged_table(run)
    tables += [logged] if logged is not None else []
    summary = Table("figures", "Figures", tuple(Column(m.label, help=m.help or m.unit) for m in view("trainer_runs")),
                    (tuple(fmt_value(m.name, getattr(run.overall, m.name)) for m in view("trainer_runs")),))
    order = ("near_zero_train_loss", "inconsistent_samples")  # memorisation, then files that disagree, first
    warnings = sorted(run.warnings, key=lambda w: order.index(w.code) if w.code in order else len(order))
    return LMSection(key=prefix, name=run.name, notes=tuple(run.notes), cards=_cards(run),
                     warnings=tuple(LMWarning(w.code, w.scope, w.message) for w in warnings), charts=charts,
                     tables=(summary, *tables), guide=GUIDE)


def trainer_page(job, *, generated_at: str, command_line: str, version: str, format_version: int,
                 gates_page=None) -> ReportPage:
    """The report page of a Trainer job: one section per run, gates first.

    Parameters
    ----------
    job : losslens.job.JobResult
        ``job.kind`` is ``trainer``.
    generated_at, command_line, version, format_version
        As for :func:`losslens.html.page.build_page`.
    gates_page : GatesPage, optional
        The gates' view model.

    Returns
    -------
    ReportPage
    """
    from dataclasses import replace

    runs = job.evaluation.runs
    sections = tuple(trainer_section(run, f"trainer-{i}") for i, run in enumerate(runs))
    if job.baseline is not None:
        from .baseline import baseline_page

        # Each run's table against --baseline first among its tables: it says whether anything got worse.
        pages = [baseline_page(run, job.baseline, "lm_baseline") for run in runs]
        sections = tuple(replace(s, tables=(replace(b.table, caption=f"{b.summary} {b.table.caption}"), *s.tables))
                         if b.table is not None else s for s, b in zip(sections, pages))
    names = tuple(run.name for run in runs)
    return ReportPage(title="losslens report: " + ", ".join(names), version=version, format_version=format_version,
                      generated_at=generated_at, command_line=command_line, runs=(), comparison=None,
                      n_warnings=sum(len(s.warnings) for s in sections), run_names=names, gates=gates_page,
                      lm_sections=sections)
