"""The notebook card: a compact view of an evaluation for ``Evaluation._repr_html_``.

Built like the report (a view model here, markup in ``templates/card.html``, autoescaped),
from the report's own pieces: the headline figures of :func:`losslens.html.run.headlines`
(so a card says "Log loss", "Cross-entropy", ... exactly as the report does), the grouped
warnings, and the loss histogram as inline SVG. An HTML fragment with scoped CSS, since a
notebook cell is not a page; no script, nothing fetched, well under 100 kB.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from markupsafe import Markup

from ..formatting import count
from .model import Headline, Notice
from .run import headlines, notices

#: Runs shown as cards; the JSON and the report have every run.
MAX_RUNS = 4
#: Warning groups listed per card.
MAX_WARNINGS = 8


@dataclass(frozen=True)
class RunCard:
    """One run's card."""

    name: str
    n_examples: str
    n_classes: str
    headlines: tuple[Headline, ...]
    warnings: tuple[Notice, ...]
    n_warnings: int
    histogram: Markup


@dataclass(frozen=True)
class Card:
    """Every run's card, and how many runs were left out."""

    runs: tuple[RunCard, ...]
    n_more: int


def build_card(evaluation) -> Card:
    """The card's content from an :class:`~losslens.evaluation.Evaluation`."""
    from ..evaluation import HIST_EDGES
    from . import charts

    cards = []
    for i, run in enumerate(evaluation.runs[:MAX_RUNS]):
        m = run.overall
        histogram = charts.loss_histogram_chart(
            run.loss_histogram, HIST_EDGES, m.log_loss, m.label_entropy_bits * math.log(2.0), f"card{i}",
        )
        cards.append(RunCard(run.name, count(m.n_examples), count(len(run.classes)), headlines(run),
                             notices(run.warnings)[:MAX_WARNINGS], len(run.warnings), histogram))
    return Card(tuple(cards), max(len(evaluation.runs) - MAX_RUNS, 0))


def render_card(evaluation) -> str:
    """The card as an HTML fragment (autoescaped template ``card.html``)."""
    from .render import _template_error, make_environment

    import jinja2

    try:
        return make_environment().get_template("card.html").render(card=build_card(evaluation))
    except jinja2.TemplateError as exc:
        raise _template_error(exc) from None
