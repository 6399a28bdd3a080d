"""A small SVG drawing helper for the report's charts: scales, ticks, panels, legend, title.

The classifier page's charts are a few bars, lines and points; drawing them by hand instead of
with matplotlib saves its import (about 0.25 s) and its text layout (about 0.4 s) on every
report, and writes a third of the bytes. There is no text measurement here: label widths are
estimated from DejaVu Sans's advance widths (:func:`text_width`), a wide sans-serif, so that
margins err on the roomy side in the page's own font.

Coordinates are SVG user units; the page's CSS sizes each chart from its ``viewBox`` (width
100%), so a unit is a pixel at the natural width of 460.8 (6.4 inches at 72 dpi, the size of
the matplotlib charts it replaces). Every text goes through :func:`text` (XML-escaped, control
characters made visible), and the whole is checked by :func:`losslens.html.charts._checked`.
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass, field
from typing import Sequence
from xml.sax.saxutils import escape as _escape

from ..formatting import visible

WIDTH = 460.8
FONT = 9.0  # tick labels, axis labels
TITLE_FONT = 10.0
LEGEND_FONT = 8.5
PAD = 6.0  # around the figure
TICK = 3.5  # tick mark length, and the gap from it to its label
ROW = 18.72  # one category of a horizontal bar chart: 0.26 inch, as before
TEXT = "#27303a"
TICK_COLOR = "#52606d"
SPINE = "#9aa5b1"
GRID = "#e3e6ea"

#: DejaVu Sans advance widths of " " to "~", per 1000 units of font size (its bold is ~9% wider).
_ASCII_WIDTHS = (
    318, 401, 460, 838, 636, 950, 780, 275, 390, 390, 500, 838, 318, 361, 318, 337, 636, 636, 636, 636, 636, 636,
    636, 636, 636, 636, 337, 337, 838, 838, 838, 531, 1000, 684, 686, 698, 770, 632, 575, 775, 752, 295, 295, 656,
    557, 863, 748, 787, 603, 787, 695, 635, 611, 732, 684, 989, 685, 611, 685, 390, 337, 390, 838, 500, 500, 613,
    635, 550, 635, 615, 352, 635, 634, 278, 278, 579, 278, 974, 634, 612, 635, 635, 411, 521, 392, 634, 592, 818,
    592, 592, 525, 636, 337, 636, 838,
)
#: Line dash patterns in units of the line width, as matplotlib draws "--" and ":".
DASHES = {"-": None, "--": (3.7, 1.6), ":": (1.0, 1.65)}


def text_width(text: str, size: float = FONT, bold: bool = False) -> float:
    """Estimated width of ``text`` at ``size`` px: DejaVu Sans's widths, wide characters 1 em."""
    total = 0
    for ch in text:
        code = ord(ch)
        if 32 <= code < 127:
            total += _ASCII_WIDTHS[code - 32]
        elif unicodedata.combining(ch):
            continue
        elif unicodedata.east_asian_width(ch) in ("W", "F"):
            total += 1000
        else:
            total += 700
    return total * size / 1000 * (1.09 if bold else 1.0)


def fit(text: str, room: float, size: float = FONT, bold: bool = False) -> str:
    """``text`` made visible (one line) and cut with "…" to fit ``room`` px."""
    text = visible(" ".join(str(text).split()))
    if text_width(text, size, bold) <= room:
        return text
    while text and text_width(text + "…", size, bold) > room:
        text = text[:-1]
    return text + "…"


def _num(v: float) -> str:
    """A coordinate with at most two decimals, without trailing zeros."""
    out = f"{v:.2f}".rstrip("0").rstrip(".")
    return "0" if out == "-0" else out


def text(x: float, y: float, content: str, *, size: float = FONT, anchor: str = "start", color: str = TEXT,
         bold: bool = False, rotate: bool = False, full: str | None = None) -> str:
    """A ``<text>``: escaped, control characters made visible; ``full`` (when it differs) on hover."""
    shown = visible(content)
    attrs = f'x="{_num(x)}" y="{_num(y)}" font-size="{_num(size)}" fill="{color}"'
    if anchor != "start":
        attrs += f' text-anchor="{anchor}"'
    if bold:
        attrs += ' font-weight="bold"'
    if rotate:
        attrs += f' transform="rotate(-90 {_num(x)} {_num(y)})"'
    element = f"<text {attrs}>{_escape(shown)}</text>"
    if full is not None:
        whole = visible(" ".join(str(full).split()))
        if whole != shown:
            return f"<g><title>{_escape(whole)}</title>{element}</g>"
    return element


def line(x1: float, y1: float, x2: float, y2: float, color: str, width: float = 1.0, dash: str = "-") -> str:
    """A straight line, solid, dashed ("--") or dotted (":")."""
    pattern = DASHES[dash]
    extra = f' stroke-dasharray="{_num(pattern[0] * width)},{_num(pattern[1] * width)}"' if pattern else ""
    return (f'<line x1="{_num(x1)}" y1="{_num(y1)}" x2="{_num(x2)}" y2="{_num(y2)}" stroke="{color}" '
            f'stroke-width="{_num(width)}"{extra}/>')


def rect(x: float, y: float, w: float, h: float, color: str, opacity: float = 1.0, edge: str = "") -> str:
    """A filled rectangle (``edge``: a white outline that keeps neighbouring bars apart)."""
    attrs = f'x="{_num(x)}" y="{_num(y)}" width="{_num(max(w, 0.0))}" height="{_num(max(h, 0.0))}" fill="{color}"'
    if opacity < 1:
        attrs += f' fill-opacity="{opacity:g}"'
    if edge:
        attrs += f' stroke="{edge}" stroke-width="0.6"'
    return f"<rect {attrs}/>"


def circle(x: float, y: float, r: float, color: str) -> str:
    """A filled dot (a point marker)."""
    return f'<circle cx="{_num(x)}" cy="{_num(y)}" r="{_num(r)}" fill="{color}"/>'


# --------------------------------------------------------------------------- scales


def nice_ticks(lo: float, hi: float, nbins: int = 9, integer: bool = False) -> list[float]:
    """Ticks at multiples of 1, 2, 2.5 or 5 times a power of ten, at most ``nbins + 1`` in [lo, hi].

    The step is the smallest of those at least ``(hi - lo) / nbins``, as matplotlib's
    ``MaxNLocator`` picks it; with ``integer`` only whole steps (1, 2, 5, 10, ...).
    """
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo] if math.isfinite(lo) else []
    raw = (hi - lo) / max(nbins, 1)
    magnitude = 10.0 ** math.floor(math.log10(raw))
    steps = (1, 2, 5, 10) if integer else (1, 2, 2.5, 5, 10)
    step = next(s * magnitude for s in steps if s * magnitude >= raw * (1 - 1e-9))
    if integer:
        step = max(step, 1.0)
    first = math.ceil(lo / step - 1e-9)
    ticks = []
    k = first
    while k * step <= hi + step * 1e-9:
        ticks.append(round(k * step, 12) + 0.0)
        k += 1
    return ticks


def _decimals(step: float) -> int:
    """Decimals that tell ticks ``step`` apart: 0.25 → 2, 0.5 → 1, 20 → 0."""
    for d in range(0, 10):
        if abs(round(step, d) - step) < step * 1e-6:
            return d
    return 10


def linear_labels(ticks: Sequence[float], suffix: str = "") -> list[str]:
    """Tick labels with the decimals their step needs, all alike ("0.00", "0.25"), "−" for minus.

    Whole numbers of 10,000 and more get thousands separators.
    """
    if not ticks:
        return []
    decimals = _decimals(ticks[1] - ticks[0]) if len(ticks) > 1 else _decimals(abs(ticks[0]) or 1.0)
    out = []
    for t in ticks:
        label = f"{t:,.0f}" if decimals == 0 and abs(t) >= 10_000 else f"{t:.{decimals}f}"
        if label.startswith("-") and not label.strip("-0.,"):
            label = label[1:]  # "-0.00": a zero that a rounding made negative
        out.append(label.replace("-", "\u2212") + suffix)
    return out


def log_ticks(lo: float, hi: float, numticks: int = 9) -> list[float]:
    """Powers of ten in [lo, hi], every ``stride``-th decade when there are more than ``numticks``."""
    if not (0 < lo < hi) or not math.isfinite(hi):
        return []
    first, last = math.ceil(math.log10(lo) - 1e-9), math.floor(math.log10(hi) + 1e-9)
    stride = max(math.ceil((last - first + 1) / numticks), 1)
    return [10.0 ** e for e in range(first, last + 1) if e % stride == 0]


def log_tick(value: float, _position=None) -> str:
    """A log-axis tick label in plain text: 1e-06 → "1e-6", 0.1 → "0.1", 3.0 → "" (not a decade)."""
    if value <= 0 or not math.isfinite(value):
        return ""
    exponent = round(math.log10(value))
    if abs(math.log10(value) - exponent) > 1e-9:
        return ""
    if -3 <= exponent <= 3:
        return f"{value:g}"
    return f"1e{exponent}"


@dataclass
class Scale:
    """Data ``lo``..``hi`` onto pixels ``start``..``end``, linear or log10, with its ticks."""

    lo: float
    hi: float
    log: bool = False
    integer: bool = False
    nbins: int = 9
    suffix: str = ""  # "%" for percentages
    start: float = 0.0  # pixels; start == end until a panel places the scale
    end: float = 0.0

    def __call__(self, value: float) -> float:
        """The pixel of ``value``, kept within a few widths of the range (no huge numbers for inf)."""
        if self.log:
            value = math.log10(value) if value > 0 else -1e9
            lo, hi = math.log10(self.lo), math.log10(self.hi)
        else:
            lo, hi = self.lo, self.hi
        if not math.isfinite(value):
            value = hi if value > 0 else lo
        share = (value - lo) / (hi - lo) if hi != lo else 0.5
        return self.start + max(min(share, 3.0), -2.0) * (self.end - self.start)

    def ticks(self) -> list[tuple[float, str]]:
        """(value, label) of each tick: decades labelled by :func:`log_tick`, or nice linear steps."""
        if self.log:
            values = log_ticks(self.lo, self.hi, self.nbins)
            return [(v, log_tick(v)) for v in values]
        nbins = self.nbins
        while True:
            values = nice_ticks(self.lo, self.hi, nbins, self.integer)
            labels = linear_labels(values, self.suffix)
            # On a placed x axis, fewer ticks rather than labels that run together ("0.375 0.400").
            room = abs(self(values[1]) - self(values[0])) if len(values) > 1 and self.end > self.start else math.inf
            if nbins <= 2 or room >= max(text_width(label) for label in labels) + 6:
                return list(zip(values, labels))
            nbins -= 1


def auto_bins(length: float, vertical: bool) -> int:
    """How many tick intervals fit an axis ``length`` px long, as matplotlib's auto (at most 9)."""
    return max(min(int(length // (FONT * (2 if vertical else 3))), 9), 1)


@dataclass
class Panel:
    """One plot area: its box in the figure, an x scale and a y scale (or ``n_rows`` categories)."""

    left: float
    top: float
    width: float
    height: float
    x: Scale
    y: Scale | None = None  # None: categories, row 0 at the top
    n_rows: int = 0
    clip: str = ""  # the id of this panel's clip path, set by Figure.panel
    parts: list[str] = field(default_factory=list)

    def __post_init__(self):
        self.x.start, self.x.end = self.left, self.left + self.width
        if self.y is not None:
            self.y.start, self.y.end = self.top + self.height, self.top

    @property
    def bottom(self) -> float:
        return self.top + self.height

    def row(self, i: float) -> float:
        """The pixel y of the middle of category row ``i`` (may be fractional for paired bars)."""
        return self.top + (i + 0.75) * self.row_height()

    def row_height(self) -> float:
        """Rows share the panel's height, a quarter row of room above the first and below the last."""
        return self.height / (max(self.n_rows, 1) + 0.5)

    def hbar(self, i: float, value: float, thickness: float, color: str) -> None:
        """A horizontal bar from x = 0 (the axis' low end when above 0) to ``value`` at row ``i``."""
        x0 = self.x(max(self.x.lo, 0.0))
        h = thickness * min(self.row_height(), 1.5 * ROW)  # one or two rows: no slab
        self.parts.append(rect(x0, self.row(i) - h / 2, self.x(value) - x0, h, color))

    def box(self, x0: float, x1: float, y0: float, y1: float, color: str, opacity: float = 1.0,
            edge: str = "") -> None:
        """A rectangle between data x0..x1 and y0..y1 (a vertical bar, a shaded band)."""
        left, right, low, high = self.x(x0), self.x(x1), self._y(y0), self._y(y1)
        self.parts.append(rect(left, min(low, high), right - left, abs(low - high), color, opacity, edge))

    def stairs(self, heights: Sequence[float], edges: Sequence[float], color: str) -> None:
        """A filled histogram outline: one path from bin edges and heights (no patch per bin)."""
        base = self._y(self.y.lo)
        points = [f"M{_num(self.x(edges[0]))} {_num(base)}"]
        for h, a, b in zip(heights, edges[:-1], edges[1:]):
            points.append(f"L{_num(self.x(a))} {_num(self._y(h))}L{_num(self.x(b))} {_num(self._y(h))}")
        points.append(f"L{_num(self.x(edges[-1]))} {_num(base)}Z")
        self.parts.append(f'<path d="{"".join(points)}" fill="{color}"/>')

    def vline(self, value: float, color: str, width: float = 1.0, dash: str = "-") -> None:
        """A vertical line across the panel at data x ``value``."""
        self.parts.append(line(self.x(value), self.top, self.x(value), self.bottom, color, width, dash))

    def polyline(self, xs: Sequence[float], ys: Sequence[float], color: str, width: float = 1.0,
                 dash: str = "-") -> None:
        """Straight segments through data points (the diagonal of a reliability diagram)."""
        for (x1, y1), (x2, y2) in zip(zip(xs, ys), zip(xs[1:], ys[1:])):
            self.parts.append(line(self.x(x1), self._y(y1), self.x(x2), self._y(y2), color, width, dash))

    def point(self, x: float, y: float, color: str, r: float = 2.5) -> None:
        """A dot at data x and data y (or category row ``y`` when the panel has rows)."""
        self.parts.append(circle(self.x(x), self._y(y), r, color))

    def whisker(self, x0: float, y0: float, x1: float, y1: float, color: str, width: float = 1.2,
                cap: float = 3.0) -> None:
        """An error bar from (x0, y0) to (x1, y1), horizontal or vertical, with caps at both ends."""
        a, b, c, d = self.x(x0), self._y(y0), self.x(x1), self._y(y1)
        self.parts.append(line(a, b, c, d, color, width))
        for px, py in ((a, b), (c, d)):
            if b == d:
                self.parts.append(line(px, py - cap, px, py + cap, color, width))
            else:
                self.parts.append(line(px - cap, py, px + cap, py, color, width))

    def _y(self, value: float) -> float:
        return self.row(value) if self.y is None else self.y(value)


@dataclass
class Legend:
    """Entries drawn below the chart: (kind, colour, label, dash); kinds "rect", "line", "point",
    "hbar" (a point with a horizontal interval) and "vbar" (with a vertical one)."""

    entries: list[tuple[str, str, str, str]] = field(default_factory=list)
    ncol: int = 2

    def add(self, kind: str, color: str, label: str, dash: str = "-") -> None:
        self.entries.append((kind, color, visible(label), dash))

    def rows(self, room: float) -> list[list[tuple[str, str, str, str]]]:
        """The entries in rows of at most ``ncol``, fewer columns when a row would not fit ``room``."""
        for ncol in range(max(self.ncol, 1), 0, -1):
            rows = [self.entries[i:i + ncol] for i in range(0, len(self.entries), ncol)]
            if all(self._row_width(r) <= room for r in rows) or ncol == 1:
                return rows
        return []

    @staticmethod
    def _entry_width(entry) -> float:
        return 20 + text_width(entry[2], LEGEND_FONT)

    def _row_width(self, row) -> float:
        return sum(self._entry_width(e) for e in row) + 14 * (len(row) - 1)

    def draw(self, center: float, top: float, room: float) -> tuple[list[str], float]:
        """The legend's markup centred on ``center`` from ``top`` down, and its height."""
        parts, y = [], top
        for row in self.rows(room):
            x = center - self._row_width(row) / 2
            mid = y + LEGEND_FONT * 0.75
            for kind, color, label, dash in row:
                parts.append(_swatch(kind, color, dash, x, mid))
                parts.append(text(x + 20, mid + LEGEND_FONT * 0.35, fit(label, room - 20, LEGEND_FONT),
                                  size=LEGEND_FONT, full=label))
                x += self._entry_width((kind, color, label, dash)) + 14
            y += LEGEND_FONT * 1.6
        return parts, y - top


def _swatch(kind: str, color: str, dash: str, x: float, mid: float) -> str:
    """The little picture in front of a legend entry, 16 px wide."""
    if kind == "rect":
        return rect(x + 2, mid - 3.5, 12, 7, color)
    if kind == "line":
        return line(x, mid, x + 16, mid, color, 1.6, dash)
    if kind == "point":
        return circle(x + 8, mid, 2.5, color)
    if kind == "hbar":
        return line(x + 1, mid, x + 15, mid, TEXT, 1.2) + circle(x + 8, mid, 3, color)
    # "vbar": the equal-mass diagram's interval, drawn in charts.COLOR_ACTUAL.
    return line(x + 8, mid - 5, x + 8, mid + 5, "#3b6ea8", 1.4) + circle(x + 8, mid, 2.5, color)


class Figure:
    """Panels, a title, a legend below: serialised to one ``<svg class="chart" role="img">``."""

    def __init__(self, prefix: str, width: float = WIDTH):
        self.prefix = prefix
        self.width = width
        self.panels: list[Panel] = []
        self.extra: list[str] = []  # titles, axis labels: outside every panel
        self.legend = Legend()

    def panel(self, left: float, top: float, width: float, height: float, x: Scale, y: Scale | None = None,
              n_rows: int = 0) -> Panel:
        """Add a plot area; its drawing is clipped to its box."""
        made = Panel(left, top, width, height, x, y, n_rows, clip=f"{self.prefix}-clip{len(self.panels) + 1}")
        self.panels.append(made)
        return made

    def title(self, panel: Panel, content: str, top: float = PAD) -> None:
        """A bold title, left-aligned with ``panel``, cut to fit the figure."""
        shown = fit(content, self.width - panel.left - PAD, TITLE_FONT, bold=True)
        self.extra.append(text(panel.left, top + TITLE_FONT, shown, size=TITLE_FONT, bold=True, full=content))

    def axes(self, panel: Panel, *, xlabel: str = "", ylabel: str = "", grid: str = "", names=None,
             x_labels: bool = True, y_labels: bool = True) -> None:
        """Spines (left, bottom), ticks with labels, grid lines ("x", "y" or "xy") and axis labels.

        ``names`` label the category rows (shortened names get their full name on hover).
        """
        grid_parts, parts = [], []
        for value, label in panel.x.ticks():
            px = panel.x(value)
            if "x" in grid:
                grid_parts.append(line(px, panel.top, px, panel.bottom, GRID, 0.8))
            parts.append(line(px, panel.bottom, px, panel.bottom + TICK, TICK_COLOR, 0.8))
            if x_labels and label:
                parts.append(text(px, panel.bottom + 2 * TICK + FONT * 0.8, label, anchor="middle",
                                  color=TICK_COLOR))
        if panel.y is not None:
            for value, label in panel.y.ticks():
                py = panel.y(value)
                if "y" in grid:
                    grid_parts.append(line(panel.left, py, panel.left + panel.width, py, GRID, 0.8))
                parts.append(line(panel.left - TICK, py, panel.left, py, TICK_COLOR, 0.8))
                if y_labels and label:
                    parts.append(text(panel.left - 2 * TICK, py + FONT * 0.35, label, anchor="end",
                                      color=TICK_COLOR))
        for i, (shown, full) in enumerate(names or ()):
            py = panel.row(i)
            parts.append(line(panel.left - TICK, py, panel.left, py, TICK_COLOR, 0.8))
            if y_labels:
                parts.append(text(panel.left - 2 * TICK, py + FONT * 0.35, shown, anchor="end",
                                  color=TICK_COLOR, full=full))
        parts.append(line(panel.left, panel.top, panel.left, panel.bottom, SPINE, 0.8))
        parts.append(line(panel.left, panel.bottom, panel.left + panel.width, panel.bottom, SPINE, 0.8))
        if xlabel:
            parts.append(text(panel.left + panel.width / 2, panel.bottom + X_LABELS, fit(xlabel, panel.width + 40),
                              anchor="middle", full=xlabel))
        if ylabel:
            parts.append(text(PAD + FONT * 0.8, panel.top + panel.height / 2, fit(ylabel, panel.height),
                              anchor="middle", rotate=True, full=ylabel))
        panel.parts[:0] = grid_parts  # under the data
        self.extra.extend(parts)

    def render(self, height: float) -> str:
        """The SVG of the figure, ``height`` units tall, legend centred under the panels."""
        body = [f'<rect x="0" y="0" width="{_num(self.width)}" height="{_num(height)}" fill="#ffffff"/>']
        clips = []
        for p in self.panels:
            clips.append(f'<clipPath id="{p.clip}"><rect x="{_num(p.left)}" y="{_num(p.top)}" '
                         f'width="{_num(p.width)}" height="{_num(p.height)}"/></clipPath>')
            body.append(f'<g clip-path="url(#{p.clip})">' + "\n".join(p.parts) + "</g>")
        body.extend(self.extra)
        return (f'<svg class="chart" role="img" xmlns="http://www.w3.org/2000/svg" '
                f'viewBox="0 0 {_num(self.width)} {_num(height)}">\n<defs>{"".join(clips)}</defs>\n'
                + "\n".join(body) + "\n</svg>\n")

    def finish(self, bottom: float) -> str:
        """Draw the legend below ``bottom`` (the lowest axis label) and render the whole."""
        parts, used = self.legend.draw(self.width / 2, bottom + 6, self.width - 2 * PAD)
        self.extra.extend(parts)
        return self.render(bottom + (used + 6 if used else 0) + PAD)


#: From a panel's bottom edge: the baseline of its x-axis label, and the room tick labels and
#: axis label take below the panel.
X_LABELS = 2 * TICK + FONT * 0.8 + FONT * 1.5
BELOW = X_LABELS + FONT * 0.3
#: From the figure top: where a panel starts under a title.
UNDER_TITLE = PAD + TITLE_FONT * 1.3 + 8


def row_slots(n_rows: int) -> float:
    """Rows of room a panel of ``n_rows`` categories takes: a quarter row above and below the
    first and last, and at least three rows, so that one or two rows do not make a sliver."""
    return max(n_rows, 3) + 0.5


def names_width(labels: Sequence[str]) -> float:
    """Room the category labels take left of a panel, ticks included."""
    return max((text_width(s) for s in labels), default=0.0) + 2 * TICK + 2


def ticks_width(scale: Scale) -> float:
    """Room a numeric y axis' tick labels take left of a panel, ticks included."""
    return max((text_width(label) for _, label in scale.ticks()), default=0.0) + 2 * TICK + 2
