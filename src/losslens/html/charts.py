"""Charts of the HTML report, as checked inline SVG strings.

Pure: each function takes finished numbers (never rows) and returns checked SVG markup.

The classifier page's charts (:func:`distributions_chart` to :func:`runs_chart`) are drawn
by hand with :mod:`losslens.html.svg`: a classifier report never imports matplotlib (issue
#22: its import and text layout were about 0.6 s of every report). The other pages' charts
(many classes, language models, trends, trainers) are matplotlib figures built with the
object API (``Figure()``, never ``pyplot``) in :func:`chart_style` and serialised by
:func:`svg_of`; this module keeps those shared helpers.

Three promises hold for both kinds:

* **Reproducible.** The same numbers give the same bytes (for matplotlib: ``svg.hashsalt``
  is fixed and the date is left out of the metadata).
* **Lean and searchable.** Text is ``<text>`` (not glyph paths); no XML prolog, DOCTYPE,
  metadata or unused ids.
* **Safe.** User strings (class names, slice values) reach the SVG as escaped text with
  control characters made visible; :func:`_checked` then parses the result and refuses
  anything but plain drawing elements before the string is marked safe for Jinja.
"""

from __future__ import annotations

import io
import math
import re
import warnings
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from markupsafe import Markup

from ..catalog import ACCURACY, metric
from ..formatting import number, shorten
import losslens.html.svg as svg
from .svg import log_tick  # noqa: F401 (trainer.py and the tests import it from here)

#: How many categories (classes, slice values) a chart shows before folding the rest into
#: one "other" bar; more than about 20 bars stop being readable.
MAX_BARS = 20
#: Longer labels are shortened in charts (tables show them whole).
MAX_LABEL = 28

COLOR_ACTUAL = "#3b6ea8"  # P̂, the labels
COLOR_PREDICTED = "#e08a3c"  # Q̄, the model
COLOR_LOSS = "#7b8794"
COLOR_MEAN = "#b8322a"
COLOR_BASELINE = "#3b6ea8"
COLOR_FLOOR = "#5b8c3a"
COLOR_GRID = "#e3e6ea"
COLOR_TEXT = "#27303a"
SPINE_GREY = "#9aa5b1"  # the diagonal of perfect calibration, the overall line of interval charts

_RC = {
    "svg.fonttype": "none",
    "svg.hashsalt": "losslens",
    # A "$" in a class name must stay a dollar sign, not start mathtext (which could fail).
    "text.parse_math": False,
    "text.usetex": False,
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans"],
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "axes.labelsize": 9,
    "axes.edgecolor": "#9aa5b1",
    "axes.labelcolor": COLOR_TEXT,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.axisbelow": True,
    "grid.color": COLOR_GRID,
    "grid.linewidth": 0.8,
    "xtick.color": "#52606d",
    "ytick.color": "#52606d",
    "text.color": COLOR_TEXT,
    "legend.frameon": False,
    "legend.fontsize": 8.5,
    "path.simplify": True,
}

#: Elements matplotlib writes for our charts; anything else (script, foreignObject, image,
#: a, animate, ...) means a label escaped its text node, and the chart is refused.
_ALLOWED_TAGS = {
    "svg", "g", "defs", "path", "use", "text", "tspan", "clipPath", "rect", "line",
    "polyline", "polygon", "circle", "ellipse", "style", "title", "desc",
}
_SVG_NS = "{http://www.w3.org/2000/svg}"
_XLINK_HREF = "{http://www.w3.org/1999/xlink}href"


@dataclass(frozen=True)
class Category:
    """One bar of a categorical chart: a label and its numbers."""

    label: str
    values: tuple[float, ...]
    low: float = math.nan
    high: float = math.nan


def short(label: str, limit: int = MAX_LABEL) -> str:
    """Shorten a label for a chart axis, keeping its start and marking the cut.

    Control characters are made visible first (a NUL would make the SVG invalid XML).
    """
    return shorten(" ".join(str(label).split()), limit)


def new_figure(width: float, height: float):
    """A matplotlib figure of ``width`` x ``height`` inches with constrained layout (no pyplot state)."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def svg_of(figure, prefix: str) -> Markup:
    """Serialise ``figure`` to cleaned, checked SVG markup whose ids start with ``prefix``."""
    buffer = io.StringIO()
    with warnings.catch_warnings():
        # An emoji in a class name has no glyph in the chart font: drawn as a box, not worth a
        # warning on the user's terminal (the tables show it).
        warnings.filterwarnings("ignore", message="Glyph .* missing from font")
        _lay_out(figure)
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    return _checked(_clean(buffer.getvalue(), prefix))


def _lay_out(figure) -> None:
    """Run the figure's constrained layout once, here, and leave savefig none to run.

    With a layout engine, savefig draws the whole figure twice: once with drawing switched off,
    only so that the layout can measure the text, then for real. The layout needs only its own
    measurements: run on an SVG canvas (whose renderer measures text as print_svg's does, at
    72 dpi) it puts every axes where that first draw would, so the SVG is the same bytes
    (tests/gold compares them) and each chart takes about a quarter less time.
    """
    from matplotlib.backends.backend_svg import FigureCanvasSVG

    engine = figure.get_layout_engine()
    if engine is None:
        return
    FigureCanvasSVG(figure)
    try:
        engine.execute(figure)
    except ValueError:  # as Figure.draw does: a layout that cannot be solved leaves the axes as they are
        pass
    figure.set_layout_engine(None)


def _clean(svg: str, prefix: str) -> str:
    """Drop what an inline SVG does not need and make its ids unique on the page."""
    svg = svg[svg.index("<svg"):]
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, flags=re.S)
    # The stylesheet's `*` selector would leak to the whole HTML page; style.css has it,
    # scoped to charts.
    svg = re.sub(r"<style[^>]*>.*?</style>\s*", "", svg, flags=re.S)
    svg = re.sub(r"<defs>\s*</defs>\s*", "", svg)
    # Size comes from CSS (width 100%, height from the viewBox); fixed pt sizes overflow
    # phones and print.
    svg = re.sub(r'^<svg([^>]*?) width="[^"]*" height="[^"]*"', r"<svg\1", svg, count=1)
    referenced = set(re.findall(r'(?:url\(#|xlink:href="#)([^)"]+)', svg))

    def rename(match: re.Match) -> str:
        name = match.group(1)
        return f' id="{prefix}-{name}"' if name in referenced else ""

    # Every chart names its groups figure_1, axes_1, ...; on one page they would repeat.
    svg = re.sub(r' id="([^"]*)"', rename, svg)
    svg = re.sub(r'url\(#([^)"]+)\)', lambda m: f"url(#{prefix}-{m.group(1)})", svg)
    svg = re.sub(r'xlink:href="#([^"]+)"', lambda m: f'xlink:href="#{prefix}-{m.group(1)}"', svg)
    svg = svg.replace("<svg ", '<svg class="chart" role="img" ', 1)
    return svg.strip() + "\n"


def _checked(svg: str) -> Markup:
    """Parse ``svg`` and return it as safe markup only if it holds plain drawing elements.

    Raises
    ------
    ValueError
        If the SVG does not parse, or holds an element, event handler or link that a chart
        never needs: a sign that some label was not escaped.
    """
    root = ET.fromstring(svg)
    for element in root.iter():
        tag = element.tag.removeprefix(_SVG_NS)
        if tag not in _ALLOWED_TAGS:
            raise ValueError(f"chart SVG holds an unexpected <{tag}> element")
        for name, value in element.attrib.items():
            if name.lower().startswith("on"):
                raise ValueError(f"chart SVG holds an event handler {name!r}")
            if name in (_XLINK_HREF, "href") and not value.startswith("#"):
                raise ValueError("chart SVG links outside itself")
    return Markup(svg)


def chart_style():
    """The context every chart is drawn in: the report's fonts, colours and SVG settings."""
    import matplotlib

    return matplotlib.rc_context(_RC)


def fold(items: Sequence[tuple[str, float, Sequence[float]]], limit: int = MAX_BARS):
    """Keep the ``limit - 1`` heaviest items and merge the rest into one "other" item.

    Parameters
    ----------
    items : sequence of (label, weight, values)
        ``values`` are means over the item's examples.
    limit : int
        Most bars to return.

    Returns
    -------
    list of (label, weight, values)
        Heaviest first when folded (ties in input order); the folded item's values are the
        weight-averaged values of the items it replaces.
    """
    items = list(items)
    if len(items) <= limit:
        return items
    order = sorted(range(len(items)), key=lambda i: (-items[i][1], i))
    kept = [items[i] for i in order[: limit - 1]]
    rest = [items[i] for i in order[limit - 1:]]
    weight = sum(w for _, w, _ in rest)
    width = len(rest[0][2])
    values = tuple(
        sum(w * v[j] for _, w, v in rest if w > 0 and math.isfinite(v[j])) / weight if weight > 0 else math.nan
        for j in range(width)
    )
    return kept + [(f"other ({len(rest):,} classes)", weight, values)]


def log_x_axis(ax) -> None:
    """Log x axis labelled by decades, in plain text."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter, NullLocator

    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10, numticks=9))
    ax.xaxis.set_major_formatter(FuncFormatter(log_tick))
    ax.xaxis.set_minor_formatter(NullFormatter())
    # Minor ticks over many decades cost more to lay out than they help reading.
    ax.xaxis.set_minor_locator(NullLocator())


def legend_below(fig, ax, ncol: int = 2) -> None:
    """Legend under the plot, outside the data, so that it never hides a bar."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncol=ncol)


def bar_height(n: int) -> float:
    """Figure height in inches for ``n`` horizontal bars (or pairs of bars)."""
    return 1.1 + 0.26 * max(n, 2)


def chart_title(ax, text: str) -> None:
    """Set a chart's title with the report's spacing."""
    ax.set_title(text, pad=8)


def rebin(counts: np.ndarray, edges: np.ndarray, per_group: int):
    """Merge ``per_group`` neighbouring finite histogram bins; returns (counts, left, right).

    ``counts[0]`` (below the first edge) and ``counts[-1]`` (at or above the last) stay
    single bins, drawn one decade wide beyond the ends.
    """
    inner = counts[1:-1]
    n_groups = len(inner) // per_group
    merged = inner[: n_groups * per_group].reshape(n_groups, per_group).sum(axis=1)
    lefts = edges[:-1][: n_groups * per_group : per_group]
    rights = edges[per_group : n_groups * per_group + 1 : per_group]
    all_counts = np.r_[counts[0], merged, counts[-1]]
    all_left = np.r_[edges[0] / 10, lefts, edges[-1]]
    all_right = np.r_[edges[0], rights, edges[-1] * 10]
    return all_counts, all_left, all_right


def _interval_limits(values: np.ndarray) -> tuple[float, float]:
    """x limits for points with intervals: from 0 when that costs little room, else zoomed.

    Groups with similar losses (5.38 against 5.44) would collapse into one point on an axis
    from 0; zooming shows whether their intervals overlap, which is the question asked.
    """
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 0.0, 1.0
    low, high = float(finite.min()), float(finite.max())
    span = high - low
    if high <= 0:
        return 0.0, 1.0
    if low < 0.25 * high or span == 0:
        return 0.0, high * 1.12
    return low - 0.12 * span, high + 0.12 * span


# --------------------------------------------------------------------------- the classifier page's charts
# Drawn by hand in SVG (losslens.html.svg): no matplotlib import, no text layout engine.


def _rows_panel(fig: svg.Figure, names: Sequence[str], x: svg.Scale, left: float | None = None,
                width: float | None = None) -> svg.Panel:
    """A panel with a row per name under the title, the names' room on its left."""
    if left is None:
        left = svg.PAD + svg.names_width([short(n) for n in names])
    if width is None:
        width = fig.width - left - _right_room(x)
    x.nbins = min(x.nbins, svg.auto_bins(width, vertical=False))
    return fig.panel(left, svg.UNDER_TITLE, width, svg.row_slots(len(names)) * svg.ROW, x, n_rows=len(names))


def _right_room(x: svg.Scale) -> float:
    """Room right of a panel for half its widest x tick label (a tick may sit at the end)."""
    return max((svg.text_width(label) / 2 + 2 for _, label in x.ticks()), default=0.0) + svg.PAD


def _names(names: Sequence[str]) -> list[tuple[str, str]]:
    """(shown, full) of each row label: shortened for the axis, whole on hover."""
    return [(short(n), str(n)) for n in names]


def distributions_chart(
    classes: Sequence[str], actual: Sequence[float], predicted: Sequence[float], weights: Sequence[float], prefix: str
) -> Markup:
    """Paired horizontal bars per class: label share P̂(c) beside mean predicted Q̄(c).

    Classes beyond :data:`MAX_BARS` are folded into "other" by example weight.
    """
    items = fold([(c, w, (a, p)) for c, w, a, p in zip(classes, weights, actual, predicted)])
    p_hat = np.array([v[0] for _, _, v in items], dtype=float)
    q_bar = np.array([v[1] for _, _, v in items], dtype=float)
    if len(items) < len(classes):
        # Folded shares are sums, not means: "other" holds that much probability in total.
        p_hat[-1] = 1.0 - np.nansum(p_hat[:-1])
        q_bar[-1] = 1.0 - np.nansum(q_bar[:-1])
    names = [c for c, _, _ in items]
    fig = svg.Figure(prefix)
    x = svg.Scale(0.0, max(float(np.nanmax(np.r_[p_hat, q_bar, 0.01])) * 1.12, 0.05))
    panel = _rows_panel(fig, names, x)
    for i, (p, q) in enumerate(zip(np.nan_to_num(p_hat), np.nan_to_num(q_bar))):
        panel.hbar(i - 0.2, p, 0.4, COLOR_ACTUAL)
        panel.hbar(i + 0.2, q, 0.4, COLOR_PREDICTED)
    fig.axes(panel, xlabel="share of examples / probability", grid="x", names=_names(names))
    fig.legend.add("rect", COLOR_ACTUAL, "P̂ actual share of labels")
    fig.legend.add("rect", COLOR_PREDICTED, "Q̄ mean predicted probability")
    fig.title(panel, "Label distribution P̂ vs mean prediction Q̄")
    return _checked(fig.finish(panel.bottom + svg.BELOW))


def loss_histogram_chart(
    counts: Sequence[int],
    edges: Sequence[float],
    mean_loss: float,
    baseline_nats: float,
    prefix: str,
    floor_nats: float | None = None,
) -> Markup:
    """Histogram of per-example loss on a log x axis, with the mean and the baseline marked.

    Parameters
    ----------
    counts : sequence of int
        ``len(edges) + 1`` counts: below ``edges[0]``, each ``[edges[i-1], edges[i])``,
        and at or above ``edges[-1]``.
    edges : sequence of float
        Increasing, log-spaced bin edges in nats.
    mean_loss : float
        The run's log loss (weighted mean, nats).
    baseline_nats : float
        H(P̂) in nats: the loss of always predicting the label frequencies.
    prefix : str
        Id prefix, unique on the page.
    floor_nats : float, optional
        For soft targets, the mean target entropy: no model can go below it.
    """
    counts = np.asarray(counts, dtype=float)
    edges = np.asarray(edges, dtype=float)
    # 20 bins per decade are too thin to read; 4 per decade keep the shape.
    per_decade = round(1 / math.log10(edges[1] / edges[0]))
    heights, left, right = rebin(counts, edges, max(per_decade // 4, 1))
    nonzero = np.flatnonzero(heights)
    x_min, x_max = (left[nonzero[0]], right[nonzero[-1]]) if nonzero.size else (1e-4, 10.0)
    marks = [(mean_loss, COLOR_MEAN, "-", f"model's mean loss {mean_loss:.3g} nats")]
    if math.isfinite(baseline_nats) and baseline_nats > 0:
        marks.append((baseline_nats, COLOR_BASELINE, "--", f"baseline H(P̂) {baseline_nats:.3g} nats"))
    if floor_nats is not None and math.isfinite(floor_nats) and floor_nats > 0:
        marks.append((floor_nats, COLOR_FLOOR, ":", f"target entropy {floor_nats:.3g} nats"))
    marks = [m for m in marks if math.isfinite(m[0]) and m[0] > 0]
    for value, *_ in marks:
        x_min, x_max = min(x_min, value / 3), max(x_max, value * 3)
    fig = svg.Figure(prefix)
    fig.legend.ncol = len(marks)
    y = svg.Scale(0.0, float(heights.max()) * 1.05 if nonzero.size else 1.0, integer=True)
    left_room = svg.PAD + svg.FONT * 1.4 + svg.ticks_width(y)
    x = svg.Scale(x_min, x_max, log=True)
    panel = fig.panel(left_room, svg.UNDER_TITLE, fig.width - left_room - _right_room(x), 186.0, x, y)
    y.nbins = svg.auto_bins(panel.height, vertical=True)
    if nonzero.size:
        lo, hi = nonzero[0], nonzero[-1]
        panel.stairs(heights[lo : hi + 1], np.append(left[lo : hi + 1], right[hi]), COLOR_LOSS)
    for value, color, style, label in marks:
        panel.vline(value, color, 1.6, style)
        fig.legend.add("line", color, label, style)
    fig.axes(panel, xlabel="per-example loss −ln q(true class), nats (log scale)", ylabel="examples", grid="y")
    fig.title(panel, "Distribution of per-example loss")
    return _checked(fig.finish(panel.bottom + svg.BELOW))


def class_loss_chart(
    classes: Sequence[str], losses: Sequence[float], weights: Sequence[float], overall: float, prefix: str
) -> Markup:
    """Horizontal bars of the mean loss of each true class, worst first, overall marked."""
    items = fold([(c, w, (l,)) for c, w, l in zip(classes, weights, losses) if w > 0])
    folded = items[-1] if len(items) and len(items) < len([w for w in weights if w > 0]) else None
    main = [it for it in items if it is not folded]
    main.sort(key=lambda it: -it[2][0] if math.isfinite(it[2][0]) else math.inf)
    if folded:
        main.append(folded)
    values = np.array([v[0] for _, _, v in main], dtype=float)
    names = [c for c, _, _ in main]
    fig = svg.Figure(prefix)
    top = float(np.nanmax(np.r_[values, overall if math.isfinite(overall) else 0, 1e-3]))
    panel = _rows_panel(fig, names, svg.Scale(0.0, max(top * 1.1, 1e-3)))
    for i, value in enumerate(np.nan_to_num(values)):
        panel.hbar(i, value, 0.62, COLOR_LOSS)
    if math.isfinite(overall):
        panel.vline(overall, COLOR_MEAN, 1.4)
        fig.legend.add("line", COLOR_MEAN, f"overall log loss {overall:.3g}")
    fig.axes(panel, xlabel="mean loss of examples of this true class, nats", grid="x", names=_names(names))
    fig.title(panel, "Loss by true class")
    return _checked(fig.finish(panel.bottom + svg.BELOW))


def reliability_chart(bins: Sequence, ece: float, prefix: str) -> Markup:
    """Reliability diagram: accuracy per confidence bin against the diagonal, with bin counts.

    Parameters
    ----------
    bins : sequence of CalibrationBin-like
        With ``lower``, ``upper``, ``weight``, ``mean_confidence`` and ``accuracy``.
    ece : float
        Expected calibration error, shown in the title.
    prefix : str
        Id prefix, unique on the page.
    """
    filled = [b for b in bins if b.weight > 0]
    fig = svg.Figure(prefix)
    accuracy = svg.Scale(0.0, 1.02)
    # Counts on a log scale: a bin of 3 examples must stay visible next to one of 3,000,
    # since its bar above carries as much ink.
    counts = svg.Scale(0.5, max(b.weight for b in filled) * 2.5, log=True, nbins=4) if filled else svg.Scale(0, 1)
    left = svg.PAD + svg.FONT * 1.4 + max(svg.ticks_width(accuracy), svg.ticks_width(counts))
    width = fig.width - left - _right_room(svg.Scale(0.0, 1.0))
    top = fig.panel(left, svg.UNDER_TITLE, width, 172.0, svg.Scale(0.0, 1.0), accuracy)
    bottom = fig.panel(left, top.bottom + 10, width, 64.0, svg.Scale(0.0, 1.0), counts)
    bottom.y.nbins = min(bottom.y.nbins, svg.auto_bins(bottom.height, vertical=True))
    top.polyline([0, 1], [0, 1], SPINE_GREY, 1.0, "--")
    for b in filled:
        top.box(b.lower, b.upper, 0.0, b.accuracy, COLOR_ACTUAL, 0.85, edge="white")
        bottom.box(b.lower, b.upper, counts.lo, b.weight, COLOR_LOSS, edge="white")
    for b in filled:
        top.point(b.mean_confidence, b.accuracy, COLOR_MEAN, 1.75)
    # The same digits as every other place the ECE is printed (and the JSON rounds to).
    ece_text = number(ece) if math.isfinite(ece) else "n/a"
    fig.axes(top, ylabel=metric(ACCURACY).label, grid="xy", x_labels=False)
    fig.axes(bottom, xlabel="confidence: predicted probability of the predicted class", ylabel="examples", grid="y")
    fig.title(top, f"Reliability diagram (ECE = {ece_text})")
    fig.legend.ncol = 3
    fig.legend.add("line", SPINE_GREY, "perfect calibration", "--")
    fig.legend.add("rect", COLOR_ACTUAL, "accuracy in confidence bin")
    fig.legend.add("point", COLOR_MEAN, "mean confidence of the bin")
    return _checked(fig.finish(bottom.bottom + svg.BELOW))


def interval_chart(
    rows: Sequence[Category], overall: float, title: str, xlabel: str, prefix: str
) -> Markup:
    """Log loss per group (split or slice value) as points with 95% interval bars.

    Parameters
    ----------
    rows : sequence of Category
        ``values[0]`` is the log loss; ``low`` and ``high`` the interval (NaN: none).
        A group without a finite log loss gets no point.
    overall : float
        The run's log loss, drawn as a reference line.
    title, xlabel : str
        Chart title and x-axis label.
    prefix : str
        Id prefix, unique on the page.
    """
    loss = np.array([r.values[0] for r in rows], dtype=float)
    low = np.array([r.low for r in rows], dtype=float)
    high = np.array([r.high for r in rows], dtype=float)
    fig = svg.Figure(prefix)
    names = [r.label for r in rows]
    panel = _rows_panel(fig, names, svg.Scale(*_interval_limits(np.r_[loss, low, high, overall])))
    if math.isfinite(overall):
        panel.vline(overall, SPINE_GREY, 1.0, "--")
        fig.legend.add("line", SPINE_GREY, f"overall {overall:.3g}", "--")
    _points_with_intervals(panel, loss, low, high, [COLOR_MEAN] * len(rows), 2.5)
    fig.legend.add("hbar", COLOR_MEAN, "log loss with 95% interval")
    fig.axes(panel, xlabel=xlabel, grid="x", names=_names(names))
    fig.title(panel, title)
    return _checked(fig.finish(panel.bottom + svg.BELOW))


def _points_with_intervals(panel: svg.Panel, value, low, high, colors: Sequence[str], radius: float) -> None:
    """A dot per row at ``value`` with a whisker over [low, high] where both ends are finite."""
    for i, (v, lo, hi, color) in enumerate(zip(value, low, high, colors)):
        if math.isfinite(lo) and math.isfinite(hi):
            panel.whisker(min(lo, v) if math.isfinite(v) else lo, i, max(hi, v) if math.isfinite(v) else hi, i,
                          COLOR_TEXT)
        if math.isfinite(v):
            panel.point(v, i, color, radius)


def runs_chart(names: Sequence[str], loss: Sequence[Category], accuracy: Sequence[Category], prefix: str) -> Markup:
    """Runs next to each other: log loss with 95% intervals (left) and accuracy (right).

    Parameters
    ----------
    names : sequence of str
        Run names, the reference (first) run first.
    loss, accuracy : sequence of Category
        One per run: ``values[0]`` the figure, ``low``/``high`` its 95% interval (NaN: none,
        e.g. accuracy without ``--bootstrap``).
    prefix : str
        Id prefix, unique on the page.

    Notes
    -----
    Both panels are dot plots zoomed to the runs' values rather than bars from 0: runs of
    one model differ by a few thousandths, which bars from 0 would hide.
    """
    colors = [COLOR_ACTUAL] + [COLOR_MEAN] * (len(names) - 1)
    fig = svg.Figure(prefix, width=svg.WIDTH * 1.5)
    left = svg.PAD + svg.names_width([short(n) for n in names])
    gap = 24.0
    panels = []
    for rows, scale, title, xlabel in (
        (loss, 1.0, "Log loss (lower is better)", "log loss, nats (95% interval)"),
        (accuracy, 100.0, "Accuracy (higher is better)", "accuracy, %"),
    ):
        value = np.array([r.values[0] for r in rows], dtype=float) * scale
        low = np.array([r.low for r in rows], dtype=float) * scale
        high = np.array([r.high for r in rows], dtype=float) * scale
        # Few ticks on the right: zoomed-in percentages are long labels ("97.40%").
        x = svg.Scale(*_interval_limits(np.r_[value, low, high]), nbins=5 if scale != 1.0 else 9,
                      suffix="%" if scale != 1.0 else "")
        width = (fig.width - left - gap - svg.PAD - 14) / 2
        panel = _rows_panel(fig, names, x, left=left + len(panels) * (width + gap), width=width)
        if math.isfinite(value[0]):
            panel.vline(value[0], COLOR_ACTUAL, 1.0, "--")
        _points_with_intervals(panel, value, low, high, colors, 3.0)
        fig.axes(panel, xlabel=xlabel, grid="x", names=_names(names) if not panels else None)
        fig.title(panel, title)
        panels.append(panel)
    return _checked(fig.finish(panels[0].bottom + svg.BELOW))
