"""Charts of the trend page: metrics night by night, as inline SVG strings.

Pure, built like :mod:`losslens.html.charts` (whose helpers it imports): matplotlib's object
API, ``svg.hashsalt`` fixed and no date in the metadata (byte-identical output), text as
``<text>``, and every SVG parsed and checked before it is marked safe.

Size matters here: a year of nights with 20 slices must stay well under 1 MB, so every
series is one ``<path>`` (a line, or a band's outline), and the warning strip draws each
code's nights as one compound path of rectangles rather than one element per night.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from markupsafe import Markup

from .charts import COLOR_TEXT, new_figure, legend_below, chart_style, svg_of, chart_title, short

#: Colours of the series in one chart: the run first, then splits or slices.
PALETTE = ("#3b6ea8", "#e08a3c", "#5b8c3a", "#b8322a", "#7d5ba6", "#2a9d8f", "#8c6d31", "#d45087", "#52606d",
           "#9c755f")
#: Night labels shown under the x axis; more would run together.
MAX_X_LABELS = 8


def _x_axis(ax, labels: Sequence[str], most: int = MAX_X_LABELS) -> None:
    """Nights as positions 0..n-1, a few of their labels as ticks (first and last included)."""
    n = len(labels)
    if n <= most:
        ticks = list(range(n))
    else:
        ticks = sorted({round(i * (n - 1) / (most - 1)) for i in range(most)})
    ax.set_xticks(ticks, [short(labels[i], 20) for i in ticks], rotation=25, ha="right")
    ax.set_xlim(-0.5, n - 0.5)
    ax.grid(axis="x", visible=False)


def _as_array(values) -> np.ndarray:
    """Values with None as NaN (matplotlib leaves a gap there)."""
    return np.array([math.nan if v is None else float(v) for v in values], dtype=float)


def band_chart(labels: Sequence[str], series: Sequence[tuple[str, Sequence, Sequence, Sequence]],
               title: str, ylabel: str, prefix: str, shifts: Sequence[tuple[int, float]] = ()) -> Markup:
    """Log loss per night with its 95% interval as a shaded band, one line per series.

    Parameters
    ----------
    labels : sequence of str
        Night labels, in order.
    series : sequence of (name, values, lows, highs)
        One per scope (the run, each split); None where a night lacks the value.
    title, ylabel : str
        Chart title and y-axis label.
    prefix : str
        Id prefix, unique on the page.
    shifts : sequence of (night index, value)
        Nights with a ``trend_shift`` warning, marked with a ring.
    """
    x = np.arange(len(labels))
    with chart_style():
        fig = new_figure(9.6, 3.9)
        ax = fig.add_subplot()
        for i, (name, values, lows, highs) in enumerate(series):
            color = PALETTE[i % len(PALETTE)]
            y, low, high = _as_array(values), _as_array(lows), _as_array(highs)
            if np.isfinite(low).any():
                ax.fill_between(x, low, high, color=color, alpha=0.18, linewidth=0)
            ax.plot(x, y, color=color, linewidth=1.6, marker="o" if len(x) <= 40 else None, markersize=3,
                    label=short(name, 40))
        if shifts:
            ax.plot([s[0] for s in shifts], [s[1] for s in shifts], linestyle="none", marker="o", markersize=9,
                    markerfacecolor="none", markeredgecolor="#b8322a", markeredgewidth=1.6, label="trend_shift")
        _x_axis(ax, labels)
        ax.set_ylabel(ylabel)
        legend_below(fig, ax, ncol=min(len(series) + bool(shifts), 5))
        chart_title(ax, title)
        return svg_of(fig, prefix)


def small_multiples_chart(labels: Sequence[str], panels: Sequence[tuple[str, Sequence[tuple[str, Sequence]]]],
                          prefix: str) -> Markup:
    """One small line chart per metric (ECE, accuracy, KL, label entropy), series in each.

    Parameters
    ----------
    labels : sequence of str
        Night labels.
    panels : sequence of (title, [(series name, values), ...])
        At most four panels; the same series order (and colours) in each.
    prefix : str
        Id prefix, unique on the page.
    """
    x = np.arange(len(labels))
    n = len(panels)
    cols = 2 if n > 1 else 1
    rows = math.ceil(n / cols)
    with chart_style():
        fig = new_figure(9.6, 2.5 * rows + 0.6)
        axes = np.atleast_1d(fig.subplots(rows, cols, sharex=True, squeeze=False)).ravel()
        for ax, (title, lines) in zip(axes, panels):
            for i, (name, values) in enumerate(lines):
                ax.plot(x, _as_array(values), color=PALETTE[i % len(PALETTE)], linewidth=1.4,
                        marker="o" if len(x) <= 40 else None, markersize=2.5, label=short(name, 40))
            _x_axis(ax, labels, MAX_X_LABELS // 2 + 1)  # half-width panels: fewer labels fit
            chart_title(ax, title)
        for ax in axes[n:]:
            ax.set_visible(False)
        legend_below(fig, axes[0], ncol=min(len(panels[0][1]), 5) if panels else 1)
        return svg_of(fig, prefix)


def warning_strip_chart(labels: Sequence[str], codes: Sequence[str], fired: Sequence[Sequence[int]],
                        prefix: str) -> Markup:
    """Which warning codes fired on which night: one row per code, a mark per night.

    Parameters
    ----------
    labels : sequence of str
        Night labels.
    codes : sequence of str
        Warning codes, one row each (top to bottom).
    fired : sequence of sequence of int
        For each code, the indices of the nights on which it fired.
    prefix : str
        Id prefix, unique on the page.
    """
    from matplotlib.patches import PathPatch
    from matplotlib.path import Path

    with chart_style():
        fig = new_figure(9.6, 1.0 + 0.28 * max(len(codes), 1))
        ax = fig.add_subplot()
        for row, nights in enumerate(fired):
            nights = sorted(set(nights))
            if not nights:
                continue
            # Consecutive nights merge into one rectangle; all of a code's rectangles are one path.
            spans, start, previous = [], nights[0], nights[0]
            for night in nights[1:] + [None]:
                if night is not None and night == previous + 1:
                    previous = night
                    continue
                spans.append((start, previous))
                if night is not None:
                    start = previous = night
            vertices, commands = [], []
            for a, b in spans:
                x0, x1, y0, y1 = a - 0.42, b + 0.42, row - 0.32, row + 0.32
                vertices += [(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)]
                commands += [Path.MOVETO, Path.LINETO, Path.LINETO, Path.LINETO, Path.CLOSEPOLY]
            color = "#b8322a" if codes[row] == "trend_shift" else "#d9822b"
            ax.add_patch(PathPatch(Path(vertices, commands), facecolor=color, edgecolor="none"))
        ax.set_yticks(range(len(codes)), [short(c, 28) for c in codes])
        ax.set_ylim(len(codes) - 0.5, -0.5)
        _x_axis(ax, labels)
        ax.grid(axis="y", visible=False)
        ax.tick_params(axis="y", colors=COLOR_TEXT)
        chart_title(ax, "Warnings per night")
        return svg_of(fig, prefix)
