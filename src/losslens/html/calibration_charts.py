"""The equal-mass reliability diagram: each bin's accuracy with its 95% interval, against the diagonal.

Drawn in SVG by hand (:mod:`losslens.html.svg`) in the page's chart colours; the bins come from the run's
example sample (:func:`losslens.calibration_intervals.equal_mass_bins`).
"""

from __future__ import annotations

import math
from typing import Sequence

from markupsafe import Markup

from ..catalog import ACCURACY, metric
from ..formatting import interval, number
import losslens.html.svg as svg
from .charts import COLOR_ACTUAL, COLOR_MEAN, SPINE_GREY, _checked


def equal_mass_reliability_chart(bins: Sequence, ece: float | None, ece_ci95, prefix: str) -> Markup:
    """Reliability diagram over equal-mass bins, each bin's accuracy with its Wilson 95% interval.

    Parameters
    ----------
    bins : sequence of MassBin
        With ``lower``, ``upper``, ``mean_confidence``, ``accuracy`` and ``accuracy_ci95``.
    ece, ece_ci95 : float, pair of float
        The equal-mass ECE and its bootstrap interval, for the title.
    prefix : str
        Id prefix, unique on the page.
    """
    fig = svg.Figure(prefix)
    left = svg.PAD + svg.FONT * 1.4 + svg.ticks_width(svg.Scale(0.0, 1.02))
    x = svg.Scale(0.0, 1.0)
    ax = fig.panel(left, svg.UNDER_TITLE, fig.width - left - svg.PAD - 8, 190.0, x, svg.Scale(0.0, 1.02))
    # A pale band per bin shows its confidence range: equal-mass bins are narrow where the
    # examples crowd (usually near 1) and wide where they are few.
    for b in bins[::2]:  # every other bin shaded, so that the bins' edges show
        ax.box(b.lower, b.upper, 0.0, 1.02, COLOR_ACTUAL, 0.09)
    ax.polyline([0, 1], [0, 1], SPINE_GREY, 1.0, "--")
    for b in bins:
        low, high = min(b.accuracy_ci95[0], b.accuracy), max(b.accuracy_ci95[1], b.accuracy)
        ax.whisker(b.mean_confidence, low, b.mean_confidence, high, COLOR_ACTUAL, width=1.4)
    for b in bins:
        ax.point(b.mean_confidence, b.accuracy, COLOR_MEAN, 2.0)
    fig.axes(ax, xlabel="confidence: predicted probability of the predicted class", ylabel=metric(ACCURACY).label,
             grid="xy")
    shown = number(ece) if ece is not None and math.isfinite(ece) else "n/a"
    ci = interval(ece_ci95)
    fig.title(ax, f"Equal-mass bins (ECE = {shown}" + (f", 95% CI {ci})" if ece_ci95 else ")"))
    fig.legend.ncol = 1
    fig.legend.add("line", SPINE_GREY, "perfect calibration", "--")
    fig.legend.add("vbar", COLOR_MEAN, "accuracy of the bin (95% interval) at its mean confidence")
    return _checked(fig.finish(ax.bottom + svg.BELOW))
