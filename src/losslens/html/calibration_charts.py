"""The equal-mass reliability diagram: each bin's accuracy with its 95% interval, against the diagonal.

Drawn with the page's chart style (:mod:`losslens.html.charts`); the bins come from the run's
example sample (:func:`losslens.calibration_intervals.equal_mass_bins`).
"""

from __future__ import annotations

import math
from typing import Sequence

from markupsafe import Markup

from ..catalog import ACCURACY, metric
from ..formatting import interval, number
from .charts import COLOR_ACTUAL, COLOR_MEAN, chart_style, chart_title, legend_below, new_figure, svg_of


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
    with chart_style():
        fig = new_figure(6.4, 3.9)
        ax = fig.subplots()
        ax.plot([0, 1], [0, 1], color="#9aa5b1", linestyle="--", linewidth=1, label="perfect calibration")
        # A pale band per bin shows its confidence range: equal-mass bins are narrow where the
        # examples crowd (usually near 1) and wide where they are few.
        for b in bins[::2]:  # every other bin shaded, so that the bins' edges show
            ax.axvspan(b.lower, b.upper, color=COLOR_ACTUAL, alpha=0.09, linewidth=0)
        x = [b.mean_confidence for b in bins]
        y = [b.accuracy for b in bins]
        below = [max(b.accuracy - b.accuracy_ci95[0], 0.0) for b in bins]
        above = [max(b.accuracy_ci95[1] - b.accuracy, 0.0) for b in bins]
        ax.errorbar(x, y, yerr=[below, above], fmt="o", color=COLOR_MEAN, ecolor=COLOR_ACTUAL, elinewidth=1.4,
                    capsize=3, markersize=4, label="accuracy of the bin (95% interval) at its mean confidence")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("confidence: predicted probability of the predicted class")
        ax.set_ylabel(metric(ACCURACY).label)
        shown = number(ece) if ece is not None and math.isfinite(ece) else "n/a"
        ci = interval(ece_ci95)
        chart_title(ax, f"Equal-mass bins (ECE = {shown}" + (f", 95% CI {ci})" if ece_ci95 else ")"))
        legend_below(fig, ax, ncol=1)
        return svg_of(fig, prefix)
