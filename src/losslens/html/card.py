"""The notebook card: a compact view of any result, for ``_repr_html_`` (see :mod:`losslens.notebook`).

Built like the report (a view model here, markup in ``templates/card.html``, autoescaped),
from the report's own pieces, for every kind of job:

- classifier runs: the headline figures of :func:`losslens.html.run.headlines` (so a card says
  "Log loss", "Cross-entropy", ... exactly as the report does), the grouped warnings, and the
  loss histogram as inline SVG;
- token / sequence runs: bits per byte, perplexity, log loss, tokens and documents, formatted
  as the terminal formats them (:func:`losslens.formatting.value`), and the warnings;
- lm-evaluation-harness tasks: one row per task with lm-eval's metric names, every task's
  warnings grouped by code;
- comparisons (each run against the first): the loss delta with its interval.

Run names are shown in full (a card is where a user reads which run is which). An HTML
fragment with scoped CSS, since a notebook cell is not a page; no script, nothing fetched,
well under 100 kB.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from markupsafe import Markup

import losslens.formatting as fmt
from ..catalog import VERDICT, view
from .model import Headline, Notice
from .run import headlines, notices

#: Runs shown as cards; the JSON and the report have every run.
MAX_RUNS = 4
#: Warning groups listed per card.
MAX_WARNINGS = 8
#: Rows of a card's table (lm-eval tasks, comparisons); the report has every row.
MAX_ROWS = 30


@dataclass(frozen=True)
class RunCard:
    """One run's card: its full name, what was read, its headline figures and warnings."""

    name: str
    meta: str
    headlines: tuple[Headline, ...]
    warnings: tuple[Notice, ...]
    n_warnings: int
    histogram: Markup


@dataclass(frozen=True)
class CardTable:
    """A small table of formatted cells (lm-eval tasks, comparisons)."""

    title: str
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    n_more: int = 0


@dataclass(frozen=True)
class Card:
    """Every run's card, how many runs were left out, and the job's tables and shared warnings."""

    runs: tuple[RunCard, ...]
    n_more: int
    tables: tuple[CardTable, ...] = ()
    warnings: tuple[Notice, ...] = ()
    n_warnings: int = 0


def _classifier_run(run, i: int) -> RunCard:
    from ..evaluation import HIST_EDGES
    import losslens.html.charts as charts

    m = run.overall
    histogram = charts.loss_histogram_chart(
        run.loss_histogram, HIST_EDGES, m.log_loss, m.label_entropy_bits * math.log(2.0), f"card{i}",
    )
    return RunCard(run.name, f"{fmt.count(m.n_examples)} examples · {fmt.count(len(run.classes))} classes",
                   headlines(run), notices(run.warnings)[:MAX_WARNINGS], len(run.warnings), histogram)


def _figure(entry, value, title: str, detail: str = "", help_text: str = "") -> Headline:
    """A headline figure of a language-model run, in the terminal's digits (the catalog entry's)."""
    return Headline(title, fmt.value(entry.name, value), entry.unit, detail, help=help_text or entry.help)


def lm_headlines(run) -> tuple[Headline, ...]:
    """The headline figures of a token / sequence run: bits per byte and perplexity first."""
    o = run.overall
    # The catalog's language-model run view, by position, as html/run.py takes the headlines.
    documents, tokens, log_loss, perplexity, bits, _ = view("lm_runs")
    figures = [
        _figure(bits, getattr(o, bits.name), "Bits per byte",
                f"95% interval {fmt.interval(o.bits_per_byte_ci95, bits.decimals)}"
                if o.bits_per_byte_ci95 else "no byte counts in the input"),
        _figure(perplexity, getattr(o, perplexity.name), "Perplexity", "exp(log loss): per token",
                "Only comparable between models with the same tokenizer."),
        _figure(log_loss, getattr(o, log_loss.name), "Log loss", "per token, −ln p(token | prefix)"),
        _figure(tokens, getattr(o, tokens.name), "Tokens",
                f"{fmt.count(o.n_bytes)} bytes" if o.n_bytes is not None else ""),
        _figure(documents, getattr(o, documents.name), "Documents",
                f"{fmt.count(o.n_memorized)} look memorised" if o.n_memorized else "none looks memorised"),
    ]
    if run.information_gain_bits is not None:
        # As the terminal prints it: bits per token over the text's unigram entropy.
        figures.append(Headline("Information gain", fmt.number(run.information_gain_bits), "bits",
                                f"over the text's unigram entropy {fmt.number(run.unigram_entropy_bits)} bits"))
    return tuple(figures)


def _lm_run(run) -> RunCard:
    o = run.overall
    meta = fmt.plural(o.n_documents, "document") + (f" · {fmt.plural(o.n_tokens, 'token')}" if o.n_tokens else "")
    # Memorisation first: it changes how every other number must be read.
    ordered = sorted(run.warnings, key=lambda w: w.code != "memorized_documents")
    return RunCard(run.name, meta, lm_headlines(run), notices(ordered)[:MAX_WARNINGS], len(run.warnings), Markup(""))


def _cut(rows: list) -> tuple[tuple, int]:
    return tuple(rows[:MAX_ROWS]), max(len(rows) - MAX_ROWS, 0)


def _tasks_table(evaluation) -> CardTable:
    """lm-eval tasks with lm-eval's metric names, the columns some task has."""
    shown = [m for m in view("lm_eval_tasks") if any(t.metrics.get(m.name) is not None for t in evaluation.tasks)]
    rows, n_more = _cut([(t.name, t.type_label, fmt.count(t.n_documents),
                          *(fmt.value(m.name, t.metrics.get(m.name)) for m in shown)) for t in evaluation.tasks])
    return CardTable("Tasks", ("run", "type", "documents", *(m.name for m in shown)), rows, n_more)


def _trainer_table(evaluation) -> CardTable:
    """Hugging Face Trainer runs: the figures of the catalog's ``trainer_runs`` view."""
    shown = view("trainer_runs")
    rows, n_more = _cut([(r.name, *(fmt.value(m.name, getattr(r.overall, m.name)) for m in shown))
                         for r in evaluation.runs])
    return CardTable("Trainer runs", ("run", *(m.label for m in shown)), rows, n_more)


def _comparisons_table(comparisons) -> CardTable:
    """Each run against the first: the loss delta (candidate − reference) and its 95% interval."""
    rows = []
    for c in comparisons:
        paired = getattr(c, "paired", True)
        rows.append((c.candidate, c.reference,
                     fmt.plural(c.n_paired, "pair") if paired else "unpaired",
                     fmt.signed(c.log_loss_delta),
                     fmt.signed_interval(c.log_loss_delta_ci95) if c.log_loss_delta_ci95 else fmt.MISSING,
                     fmt.percent(c.share_improved, 1),
                     getattr(c, VERDICT, "")))
    rows, n_more = _cut(rows)
    return CardTable("Against the first run", ("candidate", "reference", "paired", "Δ log loss (nats)",
                                               "95% interval", "improved", VERDICT), rows, n_more)


def build_card(job) -> Card:
    """The card's content from a :class:`~losslens.job.JobResult` (or a classifier Evaluation alone)."""
    evaluation = getattr(job, "evaluation", job)
    comparisons = tuple(getattr(job, "comparisons", ()) or getattr(evaluation, "comparisons", ()))
    kind = getattr(evaluation, "kind", "classifier")
    tables = []
    runs: list[RunCard] = []
    warnings, n_warnings = (), 0
    if kind in ("lm_eval", "trainer"):
        tables.append(_tasks_table(evaluation) if kind == "lm_eval" else _trainer_table(evaluation))
        pairs = [w for t in getattr(evaluation, "tasks", evaluation.runs) for w in _scoped(t)]
        warnings, n_warnings = notices(pairs)[:MAX_WARNINGS], len(pairs)
    elif kind == "language_model":
        runs = [_lm_run(run) for run in evaluation.runs[:MAX_RUNS]]
    else:
        runs = [_classifier_run(run, i) for i, run in enumerate(evaluation.runs[:MAX_RUNS])]
    if comparisons:
        tables.append(_comparisons_table(comparisons))
    n_more = 0 if kind in ("lm_eval", "trainer") else max(len(evaluation.runs) - MAX_RUNS, 0)
    return Card(tuple(runs), n_more, tuple(tables), warnings, n_warnings)


def _scoped(task):
    """A task's warnings with the task's run name in their scope (the card lists every task's)."""
    from dataclasses import replace

    return [replace(w, scope=task.name if w.scope == "overall" else f"{task.name} {w.scope}") for w in task.warnings]


def render_card(job) -> str:
    """The card as an HTML fragment (autoescaped template ``card.html``)."""
    from .templates import _template_error, make_environment

    import jinja2

    try:
        return make_environment().get_template("card.html").render(card=build_card(job))
    except jinja2.TemplateError as exc:
        raise _template_error(exc) from None
