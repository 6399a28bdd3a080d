"""Many classes in the outputs: --per-class, the HTML report at 1,000 and 10,000 classes, the terminal.

The numbers themselves are checked against scikit-learn in tests/test_many_classes.py; here
the reporters must show them (the same values as the JSON), stay small, readable and
escaped, and print the same bytes twice.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import subprocess
import sys
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import top_k_accuracy_score
from typer.testing import CliRunner

import losslens
from losslens.cli import app
from losslens.formatting import value
from losslens.html import many_classes, render_report
from losslens.per_class import PER_CLASS_COLUMNS
from losslens.terminal import run_summary

from test_many_classes import frame_of, softmax_model

runner = CliRunner()
WHEN = datetime(2026, 1, 31, 12, 0, 0, tzinfo=timezone.utc)
#: Class names a user's taxonomy may hold: markup, quotes, a comma, a control character.
ODD = ('<script>alert("x")</script>', "a,b \"quoted\"", "tab\there", "bell\x07", "é & ü")


def odd_frame(n: int, k: int, seed: int = 5) -> pd.DataFrame:
    """A calibrated float32 softmax model over ``k`` classes, some with awkward names."""
    probs, labels = softmax_model(np.random.default_rng(seed), n, k)
    names = [ODD[j % len(ODD)] + f" {j}" if j % 37 == 0 else f"n{j:05d}" for j in range(k)]
    frame = pd.DataFrame(probs, columns=[f"p_{c}" for c in names])
    frame.insert(0, "label", [names[j] for j in labels])
    return frame


def render(evaluation) -> str:
    return render_report(evaluation, generated_at=WHEN, command_line="losslens report wide.parquet")


# --------------------------------------------------------------------------- --per-class


@pytest.fixture(scope="module")
def wide_parquet(tmp_path_factory):
    """300 classes as DataFrame.to_parquet writes them (float32 kept, default names)."""
    folder = tmp_path_factory.mktemp("wide")
    probs, labels = softmax_model(np.random.default_rng(11), 2000, 300)
    path = folder / "wide.parquet"
    frame_of(probs, labels).to_parquet(path)
    return path, probs, labels


def test_per_class_has_one_row_per_class_equal_to_the_json(wide_parquet, tmp_path):
    path, _, _ = wide_parquet
    out, report = tmp_path / "classes.csv", tmp_path / "m.json"
    result = runner.invoke(app, ["metrics", str(path), "--per-class", str(out), "--json", str(report), "-q"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(out.open(newline="", encoding="utf-8")))
    by_class = json.loads(report.read_text())["runs"][0]["by_class"]
    assert [r["class"] for r in rows] == list(by_class)  # every class, in the run's class order
    assert len(rows) == 300 and tuple(rows[0]) == PER_CLASS_COLUMNS
    for row in rows:
        entry = by_class[row["class"]]
        for column in ("n_examples", "log_loss", "excess_loss", "recall", "precision", "ece", "actual_share"):
            expected = entry[column]
            # Both are losslens's own numbers, written with repr: they read back exactly.
            assert (row[column] == "") if expected is None else (float(row[column]) == expected), (row, column)
        assert (row["most_confused_with"] or None) == entry["most_confused_with"]


def test_per_class_to_standard_output_keeps_stdout_csv(wide_parquet):
    path, _, _ = wide_parquet
    proc = subprocess.run([sys.executable, "-m", "losslens", "metrics", str(path), "--per-class", "-"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.reader(io.StringIO(proc.stdout)))
    assert rows[0] == list(PER_CLASS_COLUMNS) and len(rows) == 301
    assert "log loss" in proc.stderr  # the summary went to stderr


def test_per_class_of_several_runs_has_a_run_column(tmp_path):
    probs, labels = softmax_model(np.random.default_rng(1), 400, 8)
    frame_of(probs, labels).to_csv(tmp_path / "a.csv", index=False)
    frame_of(probs[::-1].copy(), labels).to_csv(tmp_path / "b.csv", index=False)
    out = tmp_path / "classes.csv"
    result = runner.invoke(app, ["metrics", str(tmp_path / "a.csv"), str(tmp_path / "b.csv"), "--per-class", str(out), "-q"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(out.open(newline="")))
    assert [r["run"] for r in rows] == ["a"] * 8 + ["b"] * 8


def test_per_class_never_overwrites_an_input(wide_parquet):
    path, _, _ = wide_parquet
    before = path.read_bytes()
    result = runner.invoke(app, ["metrics", str(path), "--per-class", str(path)])
    assert result.exit_code == 2
    assert "--per-class" in result.output and "destroy" in result.output
    assert path.read_bytes() == before


def test_per_class_and_json_cannot_share_a_file(wide_parquet, tmp_path):
    path, _, _ = wide_parquet
    same = tmp_path / "out.csv"
    result = runner.invoke(app, ["metrics", str(path), "--per-class", str(same), "--json", str(same)])
    assert result.exit_code == 2 and "same file" in result.output
    assert not same.exists()


# --------------------------------------------------------------------------- HTML at 1,000 and 10,000 classes


@pytest.mark.parametrize("n, k", [(3000, 1000), (1500, 10_000)])
def test_report_stays_small_readable_escaped_and_reproducible(n, k):
    evaluation = losslens.evaluate(odd_frame(n, k))
    page = render(evaluation)
    assert len(page.encode()) < 1_000_000
    assert page == render(evaluation)  # byte-identical
    # No user text as markup, no raw control character.
    assert "<script" not in page.lower() and "\x07" not in page
    assert "&lt;script&gt;" in page
    run = evaluation.run
    # Two charts summarise the classes not named, with their exact count.
    selection = many_classes.select_classes(run)
    assert page.count(f"all other {selection.n_other:,} classes") >= 2
    assert "chart-confusion" not in page
    # Every chart stays readable: a few dozen labels, not one per class.
    assert max(len(re.findall(r"<text", svg)) for svg in re.findall(r"<svg.*?</svg>", page, flags=re.S)) < 80
    # The per-class section leads with the worst classes, in the JSON's order.
    tables = page[page.index(">Classes that cost most<"):]
    shown = [run.worst_classes[i].name for i in range(5)]
    positions = [tables.index(_escaped_start(name)) for name in shown]
    assert positions == sorted(positions)
    assert tables.index("Most confused pairs") < tables.index(">Per class<")
    # Top-5 accuracy in the headlines and the scope table, as the JSON has it.
    assert page.count(value("top_5_accuracy", run.overall.top_5_accuracy)) >= 1
    assert ">Top-5<" in page


def _escaped_start(name: str) -> str:
    """The first characters of a class name as the page writes them (escaped, maybe shortened)."""
    from markupsafe import escape

    from losslens.formatting import visible

    return str(escape(visible(name)[:12]))


def test_top_5_shown_on_the_page_equals_sklearn():
    frame = odd_frame(2000, 40, seed=9)
    run = losslens.evaluate(frame).run
    probs = frame[[c for c in frame.columns if c.startswith("p_")]].to_numpy()
    y = np.array([list(run.classes).index(c) for c in frame["label"]])
    expected = top_k_accuracy_score(y, probs, k=5, labels=np.arange(40))
    assert math.isclose(run.overall.top_5_accuracy, expected, rel_tol=1e-12)
    assert f"{100 * expected:.2f}%" in render(losslens.evaluate(frame))


def test_few_classes_have_a_heat_map_and_no_top_5():
    probs, labels = softmax_model(np.random.default_rng(2), 600, 4)
    page = render(losslens.evaluate(frame_of(probs, labels)))
    assert "chart-confusion" in page
    assert "Top-5" not in page and ">top-5<" not in page  # no empty column or card with 4 classes
    assert ">Classes that cost most<" in page


# --------------------------------------------------------------------------- terminal


def test_terminal_shows_top_5_and_the_worst_classes_within_the_width():
    frame = odd_frame(3000, 1000)
    run = losslens.evaluate(frame).run
    text = run_summary(run, width=72)
    assert "top-5" in text and value("top_5_accuracy", run.overall.top_5_accuracy) in text
    assert "classes that cost most" in text
    assert max(len(line) for line in text.splitlines()) <= 72
    assert "\x07" not in text and "\t" not in text
    block = text[text.index("classes that cost most"):]
    first = run.worst_classes[0].name
    assert _visible_start(first) in block


def _visible_start(name: str) -> str:
    from losslens.formatting import visible

    return visible(name)[:5]


def test_terminal_without_many_classes_is_unchanged_in_shape():
    probs, labels = softmax_model(np.random.default_rng(2), 600, 4)
    text = run_summary(losslens.evaluate(frame_of(probs, labels)).run, width=100)
    assert "top-5" not in text and "classes that cost most" not in text


def test_thirty_classes_get_the_heat_map_and_stay_small():
    probs, labels = softmax_model(np.random.default_rng(4), 3000, 30)
    page = render(losslens.evaluate(frame_of(probs, labels)))
    assert "chart-confusion" in page
    heat = re.search(r'<table class="heatmap">(.*?)</table>', page, flags=re.S).group(1)
    assert heat.count("<td ") == 900 and len(heat) < 200_000
    assert len(page.encode()) < 1_000_000
