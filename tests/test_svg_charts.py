"""The hand-written SVG charts of the classifier page (losslens.html.svg and the charts drawn with it).

Ticks and labels are checked against hand-worked values, geometry against the scale (a bar of
value v is v × pixels-per-unit wide), text against hostile labels, and the whole page against
matplotlib: a classifier report must not import it (issue #22: its import alone cost 0.25 s).
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace

import pytest

import losslens
from losslens.calibration_intervals import MassBin
from losslens.html import charts, svg
from losslens.html.calibration_charts import equal_mass_reliability_chart

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "example_data" / "digits_multiclass.parquet"
NS = "{http://www.w3.org/2000/svg}"


def _tree(markup) -> ET.Element:
    return ET.fromstring(str(markup))


def _plot_box(root: ET.Element, n: int = 1) -> tuple[float, float, float, float]:
    """(left, top, width, height) of the n-th panel, from its clip rectangle."""
    clip = root.find(f".//{NS}clipPath[{n}]/{NS}rect")
    return tuple(float(clip.get(k)) for k in ("x", "y", "width", "height"))


# --------------------------------------------------------------------------- scales and ticks


def test_linear_ticks_step_by_1_2_2_5_5_times_a_power_of_ten():
    # (0, 0.1157): raw step 0.01286 → 0.02; (0, 1.02): raw 0.113 → 0.2; (0.35, 0.55) in 9 bins: 0.0222 → 0.025.
    assert svg.nice_ticks(0.0, 0.1157, 9) == [0.0, 0.02, 0.04, 0.06, 0.08, 0.1]
    assert svg.nice_ticks(0.0, 1.02, 9) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert svg.nice_ticks(0.35, 0.55, 9) == [0.35, 0.375, 0.4, 0.425, 0.45, 0.475, 0.5, 0.525, 0.55]
    # Counts: whole steps only (126 / 9 = 14 → 20), never 2.5.
    assert svg.nice_ticks(0.0, 126.0, 9, integer=True) == [0, 20, 40, 60, 80, 100, 120]
    assert svg.nice_ticks(0.0, 1.05, 9, integer=True) == [0, 1]


def test_linear_labels_share_their_decimals():
    assert svg.linear_labels([0.0, 0.02, 0.04, 0.1]) == ["0.00", "0.02", "0.04", "0.10"]
    assert svg.linear_labels([0.0, 0.5, 1.0]) == ["0.0", "0.5", "1.0"]
    assert svg.linear_labels([-0.5, 0.0, 0.5]) == ["−0.5", "0.0", "0.5"]
    assert svg.linear_labels([0, 20_000, 40_000]) == ["0", "20,000", "40,000"]
    assert svg.linear_labels([94.0, 96.0, 98.0], "%") == ["94%", "96%", "98%"]


def test_log_scale_ticks_decades_with_the_plain_labels_of_log_tick():
    # 1e-10 .. 10 is 12 decades; at most 9 ticks → every 2nd decade (even exponents).
    scale = svg.Scale(1e-10, 10.0, log=True)
    assert scale.ticks() == [(1e-10, "1e-10"), (1e-8, "1e-8"), (1e-6, "1e-6"), (1e-4, "1e-4"), (0.01, "0.01"),
                             (1.0, "1")]
    assert svg.Scale(0.5, 2500.0, log=True).ticks() == [(1.0, "1"), (10.0, "10"), (100.0, "100"), (1000.0, "1000")]
    assert [svg.log_tick(v) for v in (1e-6, 1e-3, 0.1, 1.0, 10.0, 1e4, 3.0)] == [
        "1e-6", "0.001", "0.1", "1", "10", "1e4", ""]
    assert charts.log_tick is svg.log_tick  # one definition; trainer.py imports it from charts


def test_scales_map_data_to_pixels():
    linear = svg.Scale(0.0, 0.5, start=100.0, end=500.0)
    assert linear(0.2) == pytest.approx(260.0)  # 100 + 0.2 / 0.5 × 400
    log = svg.Scale(1e-3, 10.0, log=True, start=0.0, end=400.0)
    assert log(0.1) == pytest.approx(200.0)  # two of four decades
    assert math.isfinite(log(0.0)) and math.isfinite(linear(math.inf))  # never an unbounded coordinate


def test_crowded_x_tick_labels_are_thinned():
    scale = svg.Scale(0.3375, 0.5605, start=0.0, end=120.0)
    values = [v for v, _ in scale.ticks()]
    assert len(values) < len(svg.nice_ticks(0.3375, 0.5605, 9))
    widest = max(svg.text_width(label) for _, label in scale.ticks())
    assert min(scale(b) - scale(a) for a, b in zip(values, values[1:])) >= widest + 6


def test_room_for_y_tick_labels_is_measured_on_all_ticks():
    # The accuracy axis 0 .. 1.02 has six labels "0.0" .. "1.0"; the room left of the panel holds
    # the widest, the tick and the gaps (a scale not yet placed must not thin its ticks).
    assert [label for _, label in svg.Scale(0.0, 1.02).ticks()] == ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]
    assert svg.ticks_width(svg.Scale(0.0, 1.02)) == pytest.approx(svg.text_width("0.0") + 2 * svg.TICK + 2)


def test_text_width_uses_dejavu_advances():
    # DejaVu Sans: "0" is 636 and "." 318 units per 1000; at 9 px "0.00" is (3 × 636 + 318) × 0.009.
    assert svg.text_width("0.00") == pytest.approx((3 * 636 + 318) * 0.009)
    assert svg.text_width("猫", 10) == pytest.approx(10.0)  # wide characters: one em


# --------------------------------------------------------------------------- chart geometry


def test_a_bar_of_value_v_is_v_times_the_scale_wide():
    markup = charts.distributions_chart(["a", "b"], [0.25, 0.75], [0.3, 0.7], [1.0, 3.0], "t")
    root = _tree(markup)
    left, _, width, _ = _plot_box(root)
    x_max = 0.75 * 1.12  # the axis reaches 12% past the longest bar
    blue = [float(r.get("width")) for r in root.iter(f"{NS}rect") if r.get("fill") == charts.COLOR_ACTUAL
            and r.get("height") != "7"]  # the legend's swatch is 7 high
    orange = [float(r.get("width")) for r in root.iter(f"{NS}rect") if r.get("fill") == charts.COLOR_PREDICTED
              and r.get("height") != "7"]
    assert blue == pytest.approx([0.25 * width / x_max, 0.75 * width / x_max], abs=0.01)
    assert orange == pytest.approx([0.3 * width / x_max, 0.7 * width / x_max], abs=0.01)
    assert all(float(r.get("x")) == pytest.approx(left) for r in root.iter(f"{NS}rect")
               if r.get("fill") == charts.COLOR_ACTUAL and r.get("height") != "7")


def test_loss_histogram_marks_mean_baseline_and_floor_on_a_log_axis():
    edges = [10.0 ** (k / 20) for k in range(-80, 21)]  # 20 bins per decade, 1e-4 .. 10
    counts = [0] * (len(edges) + 1)
    counts[60] = 5  # one bin at about 0.01 nats
    markup = charts.loss_histogram_chart(counts, edges, 0.05, 1.0, "h", floor_nats=0.02)
    root = _tree(markup)
    left, top, width, height = _plot_box(root)
    x_min, x_max = 0.02 / 3, 1.0 * 3  # the marks widen the axis to a third below and 3× above them
    lines = [ln for ln in root.iter(f"{NS}line") if ln.get("y1") == _n(top) and ln.get("stroke-width") == "1.6"]
    by_color = {ln.get("stroke"): ln for ln in lines}
    for value, color, dash in ((0.05, charts.COLOR_MEAN, None), (1.0, charts.COLOR_BASELINE, "5.92,2.56"),
                               (0.02, charts.COLOR_FLOOR, "1.6,2.64")):
        x = left + width * (math.log10(value) - math.log10(x_min)) / (math.log10(x_max) - math.log10(x_min))
        assert float(by_color[color].get("x1")) == pytest.approx(x, abs=0.01)
        assert by_color[color].get("stroke-dasharray") == dash
    texts = [t.text for t in root.iter(f"{NS}text")]
    assert "model's mean loss 0.05 nats" in texts and "baseline H(P̂) 1 nats" in texts
    assert "target entropy 0.02 nats" in texts and "0.01" in texts and "1" in texts


def _data(root: ET.Element, n: int = 1) -> list[ET.Element]:
    """The elements drawn inside the n-th panel (its clipped group): no legend, no axes."""
    groups = [g for g in root.iter(f"{NS}g") if g.get("clip-path")]
    return list(groups[n - 1])


def _n(v: float) -> str:
    return svg._num(v)


def test_equal_mass_bins_draw_each_wilson_interval():
    bins = [MassBin(0.0, 0.6, 10, 10.0, 0.5, 0.8, (0.49, 0.94)), MassBin(0.6, 1.0, 10, 10.0, 0.9, 1.0, (0.72, 1.0))]
    root = _tree(equal_mass_reliability_chart(bins, 0.2, (0.1, 0.3), "m"))
    left, top, width, height = _plot_box(root)
    whiskers = [ln for ln in _data(root) if ln.tag == f"{NS}line" and ln.get("stroke") == charts.COLOR_ACTUAL
                and ln.get("x1") == ln.get("x2") and ln.get("y1") != ln.get("y2")]
    got = sorted((float(w.get("x1")), float(w.get("y1")), float(w.get("y2"))) for w in whiskers)
    y = lambda v: top + height - v / 1.02 * height  # noqa: E731
    want = [(left + 0.5 * width, y(0.49), y(0.94)), (left + 0.9 * width, y(0.72), y(1.0))]
    assert got == [pytest.approx(w, abs=0.01) for w in want]
    assert "Equal-mass bins (ECE = 0.2000, 95% CI 0.1000–0.3000)" in [t.text for t in root.iter(f"{NS}text")]


def test_reliability_counts_on_a_log_axis_keep_a_small_bin_visible():
    bins = [SimpleNamespace(lower=0.5, upper=0.6, weight=3.0, mean_confidence=0.55, accuracy=0.5),
            SimpleNamespace(lower=0.9, upper=1.0, weight=3000.0, mean_confidence=0.97, accuracy=0.96),
            SimpleNamespace(lower=0.0, upper=0.1, weight=0.0, mean_confidence=math.nan, accuracy=math.nan)]
    root = _tree(charts.reliability_chart(bins, 0.0123, "r"))
    _, top, _, height = _plot_box(root, 2)
    grey = [float(r.get("height")) for r in root.iter(f"{NS}rect") if r.get("fill") == charts.COLOR_LOSS]
    # log10 scale from 0.5 to 3000 × 2.5: a bar from 0.5 to 3 is log(6) / log(15000) of the panel.
    assert grey == pytest.approx([height * math.log10(6) / math.log10(15000),
                                  height * math.log10(6000) / math.log10(15000)], abs=0.02)
    assert len([c for c in root.iter(f"{NS}circle") if c.get("r") == "1.75"]) == 2  # the empty bin has no point


def test_intervals_skip_what_is_not_finite():
    rows = [charts.Category("a", (0.5,), 0.4, 0.6), charts.Category("b", (0.7,)),
            charts.Category("c", (math.nan,))]
    root = _tree(charts.interval_chart(rows, 0.55, "Log loss by split", "log loss", "s"))
    points = [c for c in _data(root) if c.tag == f"{NS}circle"]
    assert len(points) == 2  # "c" has no log loss: no point at 0
    whiskers = [ln for ln in _data(root) if ln.tag == f"{NS}line" and ln.get("stroke") == charts.COLOR_TEXT
                and ln.get("y1") == ln.get("y2") and ln.get("stroke-width") == "1.2"]
    assert len(whiskers) == 1  # only "a" has an interval


def test_runs_chart_shows_accuracy_in_percent_and_both_titles():
    loss = [charts.Category("ref", (0.07,), 0.04, 0.1), charts.Category("new", (0.15,), 0.09, 0.2)]
    accuracy = [charts.Category("ref", (0.986,)), charts.Category("new", (0.944,))]
    root = _tree(charts.runs_chart(["ref", "new"], loss, accuracy, "c"))
    texts = [t.text for t in root.iter(f"{NS}text")]
    assert "Log loss (lower is better)" in texts and "Accuracy (higher is better)" in texts
    assert [t for t in texts if re.fullmatch(r"\d+(\.\d+)?%", t)] == ["94%", "96%", "98%"]
    assert texts.count("ref") == 1 and texts.count("new") == 1  # names once, on the left panel


# --------------------------------------------------------------------------- text safety


HOSTILE = '<b>&"\'</b><script>alert(1)</script>\x1b[31m' + "y" * 200


@pytest.mark.parametrize("draw", [
    lambda: charts.distributions_chart([HOSTILE, "b"], [0.5, 0.5], [0.4, 0.6], [1.0, 1.0], "d"),
    lambda: charts.class_loss_chart([HOSTILE, "b"], [0.5, 0.2], [1.0, 1.0], 0.3, "l"),
    lambda: charts.interval_chart([charts.Category(HOSTILE, (0.5,), 0.4, 0.6)], 0.5, f"Log loss by {HOSTILE}",
                                  "log loss", "i"),
    lambda: charts.runs_chart([HOSTILE, "b"], [charts.Category(HOSTILE, (0.5,)), charts.Category("b", (0.4,))],
                              [charts.Category(HOSTILE, (0.9,)), charts.Category("b", (0.8,))], "r"),
])
def test_a_hostile_label_is_escaped_shortened_and_whole_on_hover(draw):
    markup = draw()
    text = str(markup)
    assert str(charts._checked(text)) == text  # parses, and holds only drawing elements
    root = _tree(markup)
    assert root.get("class") == "chart" and root.get("role") == "img"
    assert "<script" not in text and "<b>" not in text and "\x1b" not in text
    assert "&lt;b&gt;&amp;\"'&lt;/b&gt;" in text
    shown = [t.text for t in root.iter(f"{NS}text") if t.text and t.text.startswith("<b>")]
    assert shown and all(t.endswith("…") for t in shown)
    titles = [t.text for t in root.iter(f"{NS}title")]
    assert any(t.endswith("\\x1b[31m" + "y" * 200) and t.startswith("<b>&\"'</b><script>") for t in titles)
    ids = re.findall(r' id="([^"]+)"', text)
    assert ids and all(i.startswith(root.find(f".//{NS}clipPath").get("id").split("-clip")[0] + "-") for i in ids)


def test_ids_carry_the_prefix_so_charts_on_one_page_differ():
    a = str(charts.class_loss_chart(["x", "y"], [0.1, 0.2], [1, 1], 0.15, "run1-cls"))
    b = str(charts.class_loss_chart(["x", "y"], [0.1, 0.2], [1, 1], 0.15, "run2-cls"))
    assert set(re.findall(r' id="([^"]+)"', a)) == {"run1-cls-clip1"}
    assert set(re.findall(r' id="([^"]+)"', b)) == {"run2-cls-clip1"}
    assert "url(#run1-cls-clip1)" in a


# --------------------------------------------------------------------------- the page


def test_a_classifier_report_does_not_import_matplotlib(tmp_path):
    # Two runs of a 10-class file with a split and a slice column: every classifier chart
    # (the runs chart and the interval charts too), drawn in the command's own process.
    script = (
        "import sys\n"
        "from losslens.cli import app\n"
        "try:\n"
        f"    app(['report', {str(EXAMPLE)!r}, {str(EXAMPLE)!r}, '--name', 'a', '--name', 'b', '--by', 'ink',"
        f" '-o', {str(tmp_path / 'r.html')!r}, '-q'])\n"
        "except SystemExit as done:\n"
        "    assert not done.code, done.code\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'matplotlib'))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(losslens.__file__).resolve().parents[1])}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert page.count('<svg class="chart" role="img"') == 1 + 2 * 7  # runs chart; 7 per run (split and slice)
