"""View model of the language-model section of the HTML report (pure; no markup here).

:func:`lm_section` turns an :class:`~losslens.lm.evaluation.LMRunEvaluation` into plain
dataclasses of formatted strings, tables and charts; ``templates/lm_section.html`` renders them
with the shared ``macros.html`` table macro. Charts come from :mod:`losslens.html.charts`.
Every user string (document ids, snippets, slice values) reaches the page through Jinja's
autoescaping, never through markup built here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..catalog import ACC, ACC_NORM, BRIER_SCORE, PERPLEXITY, VERDICT, metric, view
from ..decision_text import delta_parts
from ..formatting import count, p_value
from ..formatting import value as fmt_value
from ..formatting import number as num
from .model import Chart, Column, ReportPage, Table, cut, name_cell


@dataclass(frozen=True)
class LMCard:
    """One headline card: a figure in language-model terms and what it means."""

    label: str
    value: str
    detail: str


@dataclass(frozen=True)
class LMWarning:
    """A warning as shown (memorised documents first)."""

    code: str
    scope: str
    message: str


@dataclass(frozen=True)
class LMSection:
    """Everything the language-model section of the page shows for one run."""

    key: str
    name: str
    notes: tuple[str, ...]
    cards: tuple[LMCard, ...]
    warnings: tuple[LMWarning, ...]
    charts: tuple[Chart, ...]
    tables: tuple[Table, ...]
    guide: tuple[tuple[str, str], ...]


#: "How to read" for language models: (term, explanation), shown under the section.
GUIDE = (
    ("log loss / cross-entropy", "the mean over tokens of −ln p(token | prefix): the loss the model was "
     "trained on, in nats (÷ ln 2 for bits). Lower is better."),
    (PERPLEXITY, "exp(log loss): the model is as unsure as a uniform choice among this many tokens. "
     "Only comparable between models with the same tokenizer."),
    ("bits per byte", "total loss ÷ UTF-8 bytes of the text ÷ ln 2: comparable across tokenizers, "
     "which is why lm-evaluation-harness reports it for wikitext."),
    ("unigram entropy", "the loss of the best model that ignores context (each token's frequency in "
     "this very text); information gain is how much the model beats it."),
    ("Min-K% Prob", "per document, the geometric-mean probability of its hardest k·n tokens. A high value "
     "means even the hardest tokens were easy: the document was probably seen in training."),
    ("zlib ratio", "per document, the mean token log-prob (nats) ÷ the zlib-compressed size of its text in "
     "bytes (Carlini et al. 2021). Closer to 0 = easier than its compressibility explains: another sign "
     "of text seen in training."),
    ("Min-K%++", "per document, the mean of its lowest k% token scores (log p − μ) / σ, μ and σ the mean and "
     "spread of log p over the vocabulary (Zhang et al. 2024): high = the tokens sit near a peak of the "
     "model's distribution, as training text does."),
    ("rank-1 share", "the share of a document's tokens that were the model's most probable next token."),
    ("contamination AUROC", "with --reference (text known not to be in the training data): the chance a "
     "document of this run scores higher than a reference document; 0.5 = no difference, near 1 = this "
     "run looks seen in training. Weak evidence when both sets come from the same distribution."),
    ("intervals", "95% intervals treat documents, not tokens, as the independent units (ratio estimator)."),
)


#: "How to read" for lm-evaluation-harness tasks and checkpoint comparisons.
LM_EVAL_GUIDE = (
    (ACC, "share of questions whose gold choice has the highest log-likelihood (multiple choice), or "
     "whose continuation is the greedy one (loglikelihood tasks): lm-eval's own definition."),
    (ACC_NORM, "as acc, with each choice's log-likelihood divided by its length in characters, so that "
     "long answers are not penalised for their length."),
    (BRIER_SCORE, "lm-eval's: Σ over a question's choices of (q − 1[gold])², q the softmax of the choices' "
     "log-likelihoods; for two choices twice scikit-learn's binary Brier score."),
    ("log_loss / ece", "the softmax of the choices read as a classifier's prediction: its cross-entropy "
     "against the gold choice, and the calibration of its confidence."),
    ("perplexity, bits_per_byte", "exp(−mean log-likelihood) for loglikelihood tasks; rolling tasks "
     "(wikitext) give word and byte perplexity and bits per byte from the logged word and byte counts."),
    ("loss delta", "candidate − reference of the mean per-document loss, paired by doc_id; the row is "
     "flagged when the verdict says the candidate got worse."),
    ("verdict, adjusted p", "better or worse when the change is unlikely to be chance: its p-value, adjusted "
     "(Benjamini–Hochberg) for every task compared in the report, below 0.05; otherwise no detectable change."),
    ("detectable, flips", "the smallest change this many questions would detect 80% of the time (a smaller one "
     "is usually missed); the questions each checkpoint got right and the other wrong, with McNemar's exact test."),
    ("Δ p(gold), Δ bits/byte", "Δ p(gold): the change of the probability given to the right answer, a smoother score than "
     "right/wrong; Δ bits/byte: the change of total loss per byte of text, documents (not tokens) as the units."),
)


def _document_table(key: str, title: str, rows, caption: str = "") -> Table:
    """A table of documents with the contamination scores some of them have (Min-K% Prob always)."""
    from ..lm.contamination import document_score_columns, score_text

    scores = document_score_columns(rows)
    columns = (Column("document", numeric=False), Column("tokens"), Column("mean loss (nats/token)"),
               *(Column(m.label, help=m.help) for m in scores), Column("text", numeric=False))
    cells = tuple(
        (str(r.document), count(r.n_tokens) if r.n_tokens is not None else "—", num(r.mean_loss_nats),
         *(score_text(m, getattr(r, m.name)) for m in scores), r.snippet or "")
        for r in rows
    )
    return Table(key, title, columns, cells, caption=caption)


def _contamination_tables(run) -> list[Table]:
    """Each score's AUROC against ``--reference``, and the documents above the reference's 99th percentile."""
    if not run.reference:
        return []
    from ..catalog import DOCUMENT_SCORES
    from ..lm.contamination import MEANING, standout_table

    found = [(m, run.contamination[m.name]) for m in DOCUMENT_SCORES if m.name in run.contamination]
    tables = [Table("contamination", f"Contamination evidence against the reference {run.reference!r}", (
        Column("score", numeric=False), Column("AUROC", help="this run's documents vs the reference's"),
        Column("95% interval", help="bootstrap over documents, fixed seed"), Column("documents"),
        Column("reference documents"), Column("above reference p99")),
        tuple((m.label, num(e.auroc, 3), f"{num(e.auroc_ci95[0], 3)}–{num(e.auroc_ci95[1], 3)}",
               count(e.n_documents), count(e.n_reference), count(e.n_above_reference_p99)) for m, e in found),
        caption=MEANING)]
    header, rows = standout_table(run)
    if rows:
        tables.append(Table("standouts", "Documents above the reference's 99th percentile",
                            tuple(Column(h, numeric=i > 1) for i, h in enumerate(header)),
                            tuple(tuple(row) for row in rows)))
    return tables


def _bits(x):
    return num(x, 3) if x is not None else "—"


def lm_loss_histogram_chart(counts, mean_loss: float, unigram_nats: float, unit: str, title: str,
                            prefix: str, edges=None):
    """Histogram of per-token or per-document loss on a log axis, in language-model words.

    Drawn with the classifier chart's helpers (same look, same reproducible SVG); the mean loss
    and the unigram entropy of the text (when known) are marked.
    """
    from matplotlib.ticker import MaxNLocator

    from ..accumulate import HIST_EDGES
    import losslens.html.charts as charts
    import losslens.html.log_bins as log_bins

    # Bins as narrow as Freedman–Diaconis allows on the log axis (the accumulated edges by default).
    edges = HIST_EDGES if edges is None else edges
    heights, left, right = charts.rebin(np.asarray(counts, dtype=float), edges, log_bins.log_bin_group(counts, edges))
    nonzero = np.flatnonzero(heights)
    with charts.chart_style():
        fig = charts.new_figure(6.4, 3.6)
        ax = fig.add_subplot()
        if nonzero.size:
            lo, hi = nonzero[0], nonzero[-1]
            ax.stairs(heights[lo:hi + 1], np.append(left[lo:hi + 1], right[hi]), fill=True,
                      color=charts.COLOR_LOSS, linewidth=0)
            x_min, x_max = left[lo], right[hi]
        else:
            x_min, x_max = 1e-4, 10.0
        marks = [(mean_loss, charts.COLOR_MEAN, "-", f"mean loss {mean_loss:.3g} nats/token")]
        if math.isfinite(unigram_nats) and unigram_nats > 0:
            marks.append((unigram_nats, charts.COLOR_BASELINE, "--", f"unigram entropy {unigram_nats:.3g} nats"))
        for value, color, style, label in marks:
            if math.isfinite(value) and value > 0:
                ax.axvline(value, color=color, linestyle=style, linewidth=1.6, label=label)
                x_min, x_max = min(x_min, value / 3), max(x_max, value * 3)
        charts.log_x_axis(ax)
        ax.set_xlim(x_min, x_max)
        ax.set_xlabel(f"{unit} loss, nats (log scale)")
        ax.set_ylabel("tokens" if unit == "per-token" else "documents")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(axis="x", visible=False)
        charts.legend_below(fig, ax, ncol=len(marks))
        charts.chart_title(ax, title)
        return charts.svg_of(fig, prefix)


def lm_section(run, prefix: str = "lm") -> LMSection:
    """Build the section's view model for one language-model run.

    Parameters
    ----------
    run : LMRunEvaluation
    prefix : str
        Unique on the page; used for chart and table ids.

    Returns
    -------
    LMSection
    """
    from .log_bins import log_histogram

    o = run.overall
    cards = [
        LMCard("bits per byte", _bits(o.bits_per_byte),
               f"95% interval {_bits(o.bits_per_byte_ci95[0])}–{_bits(o.bits_per_byte_ci95[1])}"
               if o.bits_per_byte_ci95 else "no byte counts in the input"),
        LMCard(metric(PERPLEXITY).label, num(o.perplexity, 3) if o.perplexity is not None else "—",
               f"log loss {num(o.log_loss)} nats/token" if o.log_loss is not None else "no token counts"),
        LMCard("tokens", count(o.n_tokens) if o.n_tokens is not None else "—",
               f"{count(o.n_bytes)} bytes" if o.n_bytes is not None else ""),
        LMCard("documents", count(o.n_documents),
               f"{count(o.n_memorized)} look memorised" if o.n_memorized else "none looks memorised"),
    ]
    if run.unigram_entropy_bits is not None:
        cards.append(LMCard("information gain", f"{num(run.information_gain_bits, 3)} bits/token",
                            f"over the text's unigram entropy {num(run.unigram_entropy_bits, 3)} bits"))
    # Memorisation first: it changes how every other number must be read.
    ordered = sorted(run.warnings, key=lambda w: w.code != "memorized_documents")
    warnings = tuple(LMWarning(w.code, w.scope, w.message) for w in ordered)

    charts = []
    baseline = run.unigram_entropy_bits * math.log(2) if run.unigram_entropy_bits is not None else math.nan
    if run.layout.kind == "tokens" and o.log_loss is not None:
        charts.append(Chart("token-loss", "Per-token loss", lm_loss_histogram_chart(
            run.token_loss_histogram, o.log_loss, baseline, "per-token", "−ln p(token | prefix) of every scored token",
            f"{prefix}-tok"),
            caption="−ln p(token | prefix) of every scored token, log scale. The dashed line is the "
                    "unigram entropy of this text: tokens right of it cost more than ignoring context."))
    docs = run.documents
    if docs.n_tokens is not None and len(docs.keys):
        per_doc = docs.nll / docs.n_tokens
        counts, edges = log_histogram(per_doc)  # every document is here: finer edges than the tokens'
        charts.append(Chart("document-loss", "Per-document mean loss", lm_loss_histogram_chart(
            counts, o.log_loss, baseline, "per-document mean", "Each document's mean token loss", f"{prefix}-doc",
            edges),
            caption="Each document's mean token loss, log scale. A bump near zero is memorised or "
                    "duplicated text."))

    tables = []
    if run.memorized_documents:
        tables.append(_document_table("memorized", "Memorised documents (highest Min-K% Prob first)",
                                      run.memorized_documents,
                                      caption="Even their hardest tokens are predicted with ease."))
    scopes = [("split", split, m) for split, m in run.by_split.items()]
    scopes += [(column, value, m) for column, values in run.by_slice.items() for value, m in values.items()]
    if scopes:
        # The catalog's per-scope view, without the columns no scope has (no bytes, no words).
        shown = [m for m in view("lm_scopes") if any(getattr(s, m.name) is not None for _, _, s in scopes)]
        tables.append(Table("slices", "Loss by split and slice", (
            Column("column", numeric=False), Column("value", numeric=False),
            *(Column(m.label, help=m.help or m.unit) for m in shown)),
            tuple((name_cell(column), name_cell(value), *(fmt_value(m.name, getattr(s, m.name)) for m in shown))
                  for column, value, s in scopes)))
    tables.append(_document_table("worst", "Worst documents (highest mean token loss)", run.worst_documents))
    tables.append(_document_table("best", "Best documents (lowest mean token loss)", run.best_documents))
    tables += _contamination_tables(run)
    return LMSection(
        key=prefix, name=run.name, notes=run.layout.notes, cards=tuple(cards), warnings=warnings,
        charts=tuple(charts), tables=tuple(tables), guide=GUIDE,
    )


def render_lm_section(section: LMSection, environment=None) -> str:
    """Render the section to an HTML fragment (``templates/lm_section.html``)."""
    from .templates import make_environment

    environment = environment or make_environment()
    return environment.get_template("lm_section.html").render(section=section)


@dataclass(frozen=True)
class LMEvalSection:
    """lm-evaluation-harness tasks and checkpoint comparisons, as shown."""

    key: str
    notes: tuple[str, ...]
    warnings: tuple[LMWarning, ...]
    tables: tuple[Table, ...]
    title: str = "lm-evaluation-harness tasks"
    guide: tuple[tuple[str, str], ...] = ()




def _metric_cell(value) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    return num(value, 4) if abs(value) < 1e6 else f"{value:.4g}"


def _further_deltas(c) -> tuple[str, str]:
    """The p(gold) and bits-per-byte delta cells of a comparison ("—" where it has none)."""
    parts = dict(delta_parts(c.tests.deltas if c.tests else None))
    return parts.get("Δ p(gold)", "—"), parts.get("Δ bits/byte", "—")


def checkpoint_tables(comparisons, title: str, what: str = "documents") -> list[Table]:
    """The paired comparisons of runs (or lm-eval tasks): one table of deltas, then per comparison
    the ``what`` that got worse most."""
    if not comparisons:
        return []
    tables = [Table("checkpoints", title, (
        Column("reference", numeric=False), Column("candidate", numeric=False), Column("paired"),
        Column("Δ log loss, nats", help="candidate − reference (negative: better), per token, byte or "
               "question as the next column says"), Column("per", numeric=False),
        Column("95% interval"), Column("share improved"), Column(VERDICT, numeric=False),
        Column("adjusted p", help="Benjamini–Hochberg across every comparison of the report; the verdict needs < 0.05"),
        Column("detectable", help="the smallest change this many paired units detect (80% power, 5% level), "
                                  "in the delta's unit"),
        # Kept on one line (a numeric cell does not wrap) now that the deltas make the table wide.
        Column("flips", help="became right / became wrong (lm-eval's acc), McNemar's exact p"),
        Column("Δ p(gold)", help="paired change of the probability of the right answer (95% interval, p)"),
        Column("Δ bits/byte", help="paired change of bits per byte, documents as the units (95% interval, p)")),
        tuple((name_cell(c.reference), name_cell(c.candidate), count(c.n_paired), _metric_cell(c.log_loss_delta),
               c.unit,
               f"{num(c.log_loss_delta_ci95[0])} to {num(c.log_loss_delta_ci95[1])}" if c.log_loss_delta_ci95 else "—",
               f"{c.share_improved:.0%}" if c.share_improved is not None else "—", c.verdict,
               p_value(c.log_loss_delta_p_value_adjusted),
               f"{num(c.tests.minimum_detectable_effect)} per {c.unit}" if c.tests else "—",
               f"{c.tests.mcnemar['improved']} / {c.tests.mcnemar['worsened']}, {p_value(c.tests.mcnemar['p_value'])}"
               if c.tests and c.tests.mcnemar else "—",
               *_further_deltas(c))
              for c in comparisons),
        row_classes=tuple("regression" if c.verdict == "worse" else ""
                          for c in comparisons))]
    for i, c in enumerate(comparisons):
        if c.worst_regressions:
            tables.append(Table(f"worse-{i}", f"{c.candidate}: {what} that got worse most", (
                Column("doc_id", numeric=False), Column("reference loss"), Column("candidate loss"), Column("delta")),
                tuple((name_cell(r["document"]), num(r["reference_loss"]), num(r["candidate_loss"]), num(r["delta"]))
                      for r in c.worst_regressions[:10])))
    return tables


def lm_eval_section(evaluation, prefix: str = "lm-eval") -> LMEvalSection:
    """Build the view model of an :class:`~losslens.lm.lm_eval.LMEvalEvaluation`.

    One table of every task's recomputed metrics (lm-eval's names), one of the checkpoint
    comparisons (per task: the paired loss delta and its interval), and per comparison the
    questions that got worse most.
    """
    # lm-eval's own names as headings: they are what its users look for.
    shown = [m for m in view("lm_eval_tasks") if any(t.metrics.get(m.name) is not None for t in evaluation.tasks)]
    rows, cut_note = cut([(name_cell(t.name), t.type_label, count(t.n_documents),
                           *(fmt_value(m.name, t.metrics.get(m.name)) for m in shown))
                          for t in evaluation.tasks], "tasks")
    tables = [Table("tasks", "Tasks (recomputed from the samples where there are samples)",
                    (Column("run", numeric=False), Column("type", numeric=False), Column("documents"),
                     *(Column(m.name, help=m.help) for m in shown)), rows,
                    caption="brier_score is lm-eval's: the sum over a question's choices, twice scikit-learn's "
                            "binary Brier score for two choices.", note=cut_note)]
    logged = evaluation.logged_rows()
    if logged:
        rows, cut_note = cut([(name_cell(task), name_cell(metric), num(value, 4), num(stderr, 4))
                              for task, metric, value, stderr in logged], "figures")
        tables.append(Table("logged", "lm-eval's own figures (results_*.json)", (
            Column("run", numeric=False), Column("metric", numeric=False), Column("value"), Column("stderr")),
            rows, caption="For tasks without a samples file (rerun lm-eval with --log_samples to recompute "
                          "them) and for groups, as lm-eval logged them.", note=cut_note))
    tables += checkpoint_tables(evaluation.comparisons, "Checkpoints against the first, paired by doc_id",
                                "questions")
    # Every task's warnings here, whatever its type: the classifier sections below cover only
    # the first tasks. Samples that disagree with their results file come first.
    pairs = sorted(((t, w) for t in evaluation.tasks for w in t.warnings),
                   key=lambda pair: pair[1].code != "inconsistent_samples")
    warnings = tuple(LMWarning(w.code, t.name if w.scope == "overall" else f"{t.name} {w.scope}", w.message)
                     for t, w in pairs)
    # The heading names the harnesses that wrote the logs (inspect-ai and HELM tasks are shown here too).
    harnesses = sorted({getattr(t, "harness", "lm-evaluation-harness") for t in evaluation.tasks})
    title = f"{harnesses[0]} tasks" if len(harnesses) == 1 else f"Evaluation harness tasks ({', '.join(harnesses)})"
    return LMEvalSection(prefix, tuple(evaluation.notes), warnings, tuple(tables), title=title,
                         guide=LM_EVAL_GUIDE)


def render_lm_eval_section(section: LMEvalSection, environment=None) -> str:
    """Render the lm-eval section to an HTML fragment (``templates/lm_eval_section.html``)."""
    from .templates import make_environment

    environment = environment or make_environment()
    return environment.get_template("lm_eval_section.html").render(section=section)


#: Multiple-choice tasks whose classifier section the page shows (each is about 60 kB of charts).
MAX_TASK_SECTIONS = 6


def language_model_page(job, *, generated_at: str, command_line: str, version: str, format_version: int,
                        gates_page=None) -> ReportPage:
    """The report page of a language-model job (token / sequence runs, or lm-eval tasks).

    Parameters
    ----------
    job : losslens.job.JobResult
        ``job.kind`` is ``language_model`` or ``lm_eval``.
    generated_at : str
        The formatted generation time.
    command_line, version, format_version
        As for :func:`losslens.html.page.build_page`.
    gates_page : GatesPage, optional
        The gates' view model, shown first.

    Returns
    -------
    ReportPage
    """
    from dataclasses import replace

    from .baseline import baseline_page

    evaluation = job.evaluation
    # Each run against --baseline: its table (None when the file has no such run), the summary first.
    baselines = [baseline_page(run, job.baseline, "lm_baseline") for run in evaluation.runs] if job.baseline else []
    baseline_tables = [replace(b.table, key=f"baseline-{i}", title=f"{run.name}: {b.table.title.lower()}",
                               caption=f"{b.summary} {b.table.caption}") if b.table is not None else None
                       for i, (run, b) in enumerate(zip(evaluation.runs, baselines))]
    runs = ()
    if job.kind == "lm_eval":
        from .run import run_page

        sections, lm_eval, checkpoints = (), lm_eval_section(evaluation), None
        # Each multiple-choice task is a classifier run: its full section (reliability, the
        # answer-position KL, worst questions) follows the tasks table.
        choice_tasks = [t for t in evaluation.tasks if t.classifier is not None]
        runs = tuple(run_page(t.classifier.runs[0], i) for i, t in enumerate(choice_tasks[:MAX_TASK_SECTIONS]))
        if len(choice_tasks) > MAX_TASK_SECTIONS:
            lm_eval = replace(lm_eval, notes=lm_eval.notes + (
                f"classifier sections of the first {MAX_TASK_SECTIONS} of {len(choice_tasks)} multiple-choice "
                "tasks shown (the page stays under 1 MB); the JSON report has every task's",))
        lm_eval = replace(lm_eval, tables=lm_eval.tables + tuple(t for t in baseline_tables if t is not None))
        names = tuple(dict.fromkeys(t.name.split("/")[0] for t in evaluation.tasks))
        n_warnings = len(lm_eval.warnings)
    else:
        sections = tuple(lm_section(run, f"lm-{i}") for i, run in enumerate(evaluation.runs))
        # Each run's baseline table first among its tables: it says whether anything got worse.
        if baseline_tables:
            sections = tuple(replace(s, tables=(t, *s.tables)) if t is not None else s
                             for s, t in zip(sections, baseline_tables))
        lm_eval = None
        tables = checkpoint_tables(evaluation.comparisons, "Each run against the first, paired by document id")
        checkpoints = LMEvalSection("lm-checkpoints", (), (), tuple(tables), title="Checkpoint comparison") if tables else None
        names = tuple(run.name for run in evaluation.runs)
        n_warnings = sum(len(s.warnings) for s in sections)
    return ReportPage(
        title="losslens report: " + ", ".join(names), version=version, format_version=format_version,
        generated_at=generated_at, command_line=command_line, runs=runs, comparison=None, n_warnings=n_warnings,
        run_names=names, gates=gates_page, lm_sections=sections, lm_eval=lm_eval, lm_checkpoints=checkpoints,
    )
