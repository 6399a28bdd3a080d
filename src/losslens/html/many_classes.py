"""What the report shows when there are hundreds or thousands of classes.

Pure: finished numbers in (a :class:`~losslens.evaluation.RunEvaluation`), choices and SVG
strings out. A bar per class stops being readable beyond about 20 classes, and folding the
rest into one "other" bar hides exactly the classes that go wrong. So the charts show, by
name, the classes someone debugging a 1,000-class model looks at first -- those that cost
most (excess loss), those whose predicted rate is furthest from their actual rate, and the
most frequent -- and one honest summary bar for all the others, with how many they are.
Full per-class detail stays in the JSON (``by_class``) and ``--per-class FILE.csv``.

Seams for the report (the page assembly is elsewhere): :func:`select_classes` chooses,
:func:`class_distribution_chart` and :func:`class_excess_chart` draw the chosen classes,
and :func:`confusion_heatmap` draws the confusion matrix when k ≤ :data:`MAX_HEATMAP_CLASSES`.
Charts reuse the helpers of :mod:`losslens.html.charts` (fixed ``svg.hashsalt``, no date,
checked SVG), so the same numbers give the same bytes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from markupsafe import Markup, escape

import losslens.html.charts as charts
from ..evaluation import Confusion, RunEvaluation
from ..formatting import signed, visible

#: Classes shown by name for each reason; a class chosen for several reasons is shown once.
N_WORST = 10
N_SHIFTED = 5
N_FREQUENT = 10
#: The confusion-matrix heat map is drawn up to this many classes (30 × 30 cells).
MAX_HEATMAP_CLASSES = 30


@dataclass(frozen=True)
class ClassBar:
    """One class (or the summary of the classes not shown) as the charts draw it.

    ``actual_share`` and ``predicted_share`` are P̂(c) and Q̄(c) (for the summary: their
    sums); ``excess_loss`` the class's share of the excess loss (summed for the summary);
    ``log_loss`` the mean loss of its examples; ``reason`` why it is shown: ``"worst"``,
    ``"shifted"``, ``"frequent"``, ``"all"`` (few classes: every one is shown) or
    ``"other"`` (the summary).
    """

    name: str
    n_examples: int
    actual_share: float
    predicted_share: float
    log_loss: float
    excess_loss: float
    reason: str


@dataclass(frozen=True)
class ClassSelection:
    """The classes the report names, and one summary of all the rest.

    ``shown`` is in class order of importance: worst first, then the most shifted, then the
    most frequent. ``other`` is None when every class is shown.
    """

    shown: tuple[ClassBar, ...]
    other: ClassBar | None
    n_classes: int

    @property
    def n_other(self) -> int:
        """How many classes the summary stands for."""
        return self.n_classes - len(self.shown)


def select_classes(
    run: RunEvaluation, n_worst: int = N_WORST, n_shifted: int = N_SHIFTED, n_frequent: int = N_FREQUENT
) -> ClassSelection:
    """Choose the classes the report's per-class charts name, at any number of classes.

    Parameters
    ----------
    run : RunEvaluation
        A finished run.
    n_worst, n_shifted, n_frequent : int
        How many classes to name for the largest excess loss, the largest |P̂(c) − Q̄(c)|,
        and the most examples. With no more classes than their sum, every class is shown.

    Returns
    -------
    ClassSelection
        The named classes, and an "all other N classes" summary whose shares, example count
        and excess loss are sums over those classes and whose log loss is their mean loss,
        so that summary plus named classes account for the whole run exactly.
    """
    names = list(run.classes)
    bars = [_bar(run, c) for c in names]
    k = len(names)
    if k <= n_worst + n_shifted + n_frequent:
        return ClassSelection(tuple(_with_reason(b, "all") for b in bars), None, k)
    chosen: dict[int, str] = {}

    def take(order, limit, reason):
        added = 0
        for i in order:
            if added == limit:
                break
            if i not in chosen:
                chosen[i] = reason
                added += 1

    present = [i for i, b in enumerate(bars) if b.n_examples > 0]
    take(sorted(present, key=lambda i: (-bars[i].excess_loss, i)), n_worst, "worst")
    gap = [abs(_finite(b.actual_share) - _finite(b.predicted_share)) for b in bars]
    take(sorted(range(k), key=lambda i: (-gap[i], i)), n_shifted, "shifted")
    take(sorted(range(k), key=lambda i: (-bars[i].n_examples, i)), n_frequent, "frequent")
    shown = tuple(_with_reason(bars[i], reason) for i, reason in chosen.items())
    rest = [bars[i] for i in range(k) if i not in chosen]
    return ClassSelection(shown, _summary(run, rest), k)


def _finite(x: float) -> float:
    return x if math.isfinite(x) else 0.0


def _bar(run: RunEvaluation, name: str) -> ClassBar:
    m = run.by_class[name]
    return ClassBar(
        name=name,
        n_examples=m.n_examples,
        actual_share=float(run.label_distribution[name]),
        predicted_share=float(run.mean_predicted_distribution[name]),
        log_loss=float(m.log_loss),
        excess_loss=float(m.excess_loss),
        reason="",
    )


def _with_reason(bar: ClassBar, reason: str) -> ClassBar:
    return ClassBar(bar.name, bar.n_examples, bar.actual_share, bar.predicted_share, bar.log_loss,
                    bar.excess_loss, reason)


def _summary(run: RunEvaluation, rest: list[ClassBar]) -> ClassBar:
    """One bar for ``rest``: sums of shares and excess, and the mean loss of their examples."""
    weights = np.array([run.by_class[b.name].weight_sum for b in rest], dtype=float)
    losses = np.array([b.log_loss for b in rest], dtype=float)
    used = weights > 0
    loss = float((weights[used] * losses[used]).sum() / weights[used].sum()) if used.any() else math.nan
    return ClassBar(
        name=f"all other {len(rest):,} classes",
        n_examples=sum(b.n_examples for b in rest),
        actual_share=float(sum(_finite(b.actual_share) for b in rest)),
        predicted_share=float(sum(_finite(b.predicted_share) for b in rest)),
        log_loss=loss,
        excess_loss=float(sum(_finite(b.excess_loss) for b in rest)),
        reason="other",
    )


def class_distribution_chart(selection: ClassSelection, prefix: str) -> Markup:
    """Paired bars P̂(c) and Q̄(c) for the named classes, then the "all other" summary.

    Named classes are ordered by actual share; the summary's bars are the shares of all
    the other classes together (so the bars of a run add up to 1 on each colour).
    """
    bars = sorted(selection.shown, key=lambda b: (-_finite(b.actual_share), b.name))
    if selection.other is not None:
        bars.append(selection.other)
    labels = [charts.short(b.name) for b in bars]
    p_hat = np.array([_finite(b.actual_share) for b in bars])
    q_bar = np.array([_finite(b.predicted_share) for b in bars])
    with charts.chart_style():
        fig = charts.new_figure(6.4, charts.bar_height(len(bars)) + 0.3)
        ax = fig.add_subplot()
        y = np.arange(len(bars))
        ax.barh(y - 0.2, p_hat, height=0.4, color=charts.COLOR_ACTUAL, label="P̂ actual share of labels")
        ax.barh(y + 0.2, q_bar, height=0.4, color=charts.COLOR_PREDICTED, label="Q̄ mean predicted probability")
        ax.set_yticks(y, labels)
        ax.invert_yaxis()
        ax.grid(axis="y", visible=False)
        ax.set_xlabel("share of examples / probability")
        named = np.r_[p_hat[: len(selection.shown)], q_bar[: len(selection.shown)], 0.01]
        if selection.other is not None:
            # The summary bar is usually far longer than any class's; a log axis keeps both readable.
            ax.set_xscale("log")
            positive = np.r_[p_hat, q_bar][np.r_[p_hat, q_bar] > 0]
            low = float(positive.min()) / 2 if positive.size else 1e-4
            ax.set_xlim(low, 1.5)
            charts.log_x_axis(ax)
        else:
            ax.set_xlim(0, max(float(named.max()) * 1.12, 0.05))
        charts.legend_below(fig, ax)
        # Short: the page's heading already says "Label distribution vs mean prediction".
        charts.chart_title(ax, _title("P̂ vs Q̄", selection))
        return charts.svg_of(fig, prefix)


def class_excess_chart(selection: ClassSelection, prefix: str) -> Markup:
    """Bars of each named class's share of the excess loss, worst first, then the summary.

    A class's excess loss is Σ over its examples of (loss − overall log loss) / n: what the
    class adds to the run's log loss. Positive bars are classes that cost more than average.
    """
    bars = sorted(selection.shown, key=lambda b: (-_finite(b.excess_loss), b.name))
    if selection.other is not None:
        bars.append(selection.other)
    labels = [f"{charts.short(b.name)} (n={b.n_examples:,})" for b in bars]
    values = np.array([_finite(b.excess_loss) for b in bars])
    with charts.chart_style():
        fig = charts.new_figure(6.4, charts.bar_height(len(bars)) + 0.3)
        ax = fig.add_subplot()
        y = np.arange(len(bars))
        colors = [charts.COLOR_MEAN if v > 0 else charts.COLOR_FLOOR for v in values]
        ax.barh(y, values, height=0.62, color=colors)
        ax.axvline(0.0, color=charts.COLOR_TEXT, linewidth=0.8)
        ax.set_yticks(y, labels)
        ax.invert_yaxis()
        ax.grid(axis="y", visible=False)
        if selection.other is not None:
            _scale_to_worst(ax, values, bars)
        ax.set_xlabel("excess loss, nats (all classes sum to 0)")
        charts.chart_title(ax, _title("Classes that cost most", selection))
        return charts.svg_of(fig, prefix)


def _scale_to_worst(ax, values: np.ndarray, bars) -> None:
    """Scale the x axis to the worst classes; write the value on every bar the axis cuts.

    The frequent, easy classes have large negative excess losses and the summary of
    hundreds of classes is often far longer than any one class's bar: on a shared scale the
    classes to look at would be invisible. So the axis fits the bars of the worst classes,
    and a bar that goes beyond it is cut at the edge with its exact value written on it.
    """
    worst = [v for v, b in zip(values, bars) if b.reason == "worst" and v > 0]
    if not worst:
        return
    high = float(max(worst))
    left, right = -high, 1.3 * high
    if float(values.min()) >= left and float(values.max()) <= right:
        return
    from matplotlib.ticker import MaxNLocator  # matplotlib loads only when a chart is drawn

    ax.set_xlim(left, right)
    ax.xaxis.set_major_locator(MaxNLocator(5))  # fewer ticks: the labels are long numbers
    for row, v in enumerate(values):
        if left <= v <= right:
            continue
        x = right if v > right else left
        ax.text(x - 0.02 * high if v > 0 else x + 0.02 * high, row, f"{signed(v)} (cut)", va="center",
                ha="right" if v > 0 else "left", fontsize=7, color="white")


def _title(text: str, selection: ClassSelection) -> str:
    if selection.other is None:
        return text
    return f"{text}: {len(selection.shown)} of {selection.n_classes:,} classes"


@dataclass(frozen=True)
class HeatCell:
    """One cell of the confusion heat map: its count (or empty), hover text and shade."""

    text: str
    title: str
    #: Inline CSS built from numbers only (the share sets the shade), never from data.
    style: str


@dataclass(frozen=True)
class HeatRow:
    """One true class: its shortened and full name and a cell per predicted class."""

    name: str
    full: str
    cells: tuple[HeatCell, ...]


@dataclass(frozen=True)
class Heatmap:
    """The confusion matrix as a table: ``columns`` are (shortened, full) predicted-class names."""

    columns: tuple[tuple[str, str], ...]
    rows: tuple[HeatRow, ...]


def _hover(text: str) -> Markup:
    """Hover text for an attribute: escaped, control characters visible, and ``=`` as ``&#61;``.

    The browser shows ``&#61;`` as ``=``; encoding it keeps a class named like an event
    handler (``"><img onerror=...>``) from ever standing as ``on...=`` in the markup, which
    the report's escaping tests (and naive sanitisers) look for.
    """
    return Markup(str(escape(visible(text))).replace("=", "&#61;"))


def confusion_heatmap(confusion: Confusion | None, classes) -> Heatmap | None:
    """The confusion matrix for k ≤ :data:`MAX_HEATMAP_CLASSES`, rows normalised to the true class.

    Each cell's shade is the share of the row's (true class's) examples predicted as the
    column's class; counts are written in the cells up to 12 classes, and every cell names
    both classes, the count and the share on hover. A table coloured with CSS, not a
    matplotlib figure: it costs no drawing time (a vector heat map added about 0.3 s to every
    report of few classes), its text can be selected, and names are escaped by the template
    like every other table. Returns None for more classes or no counts: the report then shows
    the ``confused_pairs`` table only.
    """
    k = len(classes)
    if confusion is None or k > MAX_HEATMAP_CLASSES or k < 2:
        return None
    counts = confusion.dense()
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros(counts.shape, dtype=float), where=totals > 0)
    names = [(charts.short(visible(str(c)), 16), str(c)) for c in classes]
    rows = []
    for i, (short, full) in enumerate(names):
        cells = []
        for j, (_, predicted) in enumerate(names):
            n, share = int(counts[i, j]), float(shares[i, j])
            style = f"background-color: rgba(33, 102, 172, {share:.3f})" + ("; color: #fff" if share > 0.5 else "")
            cells.append(HeatCell(f"{n:,}" if n and k <= 12 else "",
                                  _hover(f"true {full}, predicted {predicted}: {n:,} ({100 * share:.1f}% of {full})"),
                                  style))
        rows.append(HeatRow(short, _hover(full), tuple(cells)))
    return Heatmap(tuple((short, _hover(full)) for short, full in names), tuple(rows))