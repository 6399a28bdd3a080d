"""The terminal reporter: fits the terminal's width, never prints a control character from the data."""

import re
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from losslens.cli import OK, app
from losslens.engine import evaluate_runs
from losslens.formatting import width
from losslens.terminal import summary, text_table

runner = CliRunner()

#: Class names as they come in real files: terminal escapes, a bell, NUL, a bidi override,
#: right-to-left text, emoji, and one 10,000 characters long.
NASTY = ["\x1b[31mred\x1b[0m", "bell\x07", "nul\x00x", "evil\u202egpj.exe", "שלום", "🐈 cat", "x" * 10_000]
#: No C0/C1 control character other than the line break, and no bidi override.
RAW_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


@pytest.fixture
def nasty_file(tmp_path):
    rng = np.random.default_rng(0)
    n = 70
    labels = [NASTY[i % len(NASTY)] for i in range(n)]
    p = rng.dirichlet(np.ones(len(NASTY)), n)
    frame = pd.DataFrame({"label": labels, **{f"p_{c}": p[:, i] for i, c in enumerate(NASTY)},
                          "split": ["train", "validation"] * (n // 2), "region": [NASTY[i % 3] for i in range(n)]})
    path = tmp_path / "nasty.parquet"
    frame.to_parquet(path)
    return path


@pytest.fixture
def digits():
    return "example_data/digits_multiclass.parquet"


def _lines(text):
    return text.splitlines()

# Widths are terminal columns (formatting.width): "P̂" is two characters and one column.


@pytest.mark.parametrize("columns", ["80", "60", "120"])
def test_no_line_is_wider_than_the_terminal(digits, columns, tmp_path):
    result = runner.invoke(app, ["metrics", digits, digits, "--name", "a", "--name", "b", "--by", "ink", "--id", "id",
                                 "--fail-if", "log_loss > 5"], env={"COLUMNS": columns})
    assert result.exit_code == OK, result.output
    widest = max(width(line) for line in _lines(result.stdout))
    assert widest <= int(columns)
    assert "run 'a': 1,797 examples, 10 classes" in result.stdout


def test_the_summary_table_splits_its_columns_rather_than_overflow(digits):
    evaluation = evaluate_runs([digits], by=["ink"])
    wide = summary(evaluation, width=200)
    narrow = summary(evaluation, width=80)
    assert max(map(width, _lines(wide))) > 80  # the table is wider than 80 columns ...
    header = next(line for line in _lines(narrow) if line.startswith("scope"))
    # ... so at 80 it is three tables (10 classes add top-5 and classwise ECE), each led by the scope column.
    assert sum(line.startswith("scope ") for line in _lines(narrow)) == 3 and "log loss" in header
    assert max(map(width, _lines(narrow))) <= 80
    # Every value of the wide table is still printed.
    for value in ("split=train", "split=validation", "ink=", "H(P̂) bits", "gain bits", "95% interval",
                  "top-5", "classwise ECE"):
        assert value in narrow


def test_text_table_keeps_the_first_column_in_every_part():
    rows = [["scope", "a" * 30, "b" * 30, "c" * 30], ["overall", "1", "2", "3"]]
    lines = text_table(rows, width=80)
    assert [line.split()[0] for line in lines if line and not line.startswith("-")] == ["scope", "overall"] * 2


def test_names_from_the_data_are_escaped_and_shortened_in_the_terminal(nasty_file):
    result = runner.invoke(app, ["metrics", str(nasty_file), "--by", "region"], env={"COLUMNS": "80"})
    assert result.exit_code == OK, result.output
    out = result.stdout
    assert not RAW_CONTROL.search(out)
    assert max(width(line) for line in _lines(out)) <= 80
    assert "\\x1b[31mred\\x1b[0m" in out and "bell\\x07" in out and "nul\\x00x" in out
    assert "evil\\u202egpj.exe" in out and "שלום" in out and "🐈 cat" in out
    assert "x" * 10_000 not in out and "xxxxxxxx…" in out


def test_names_from_the_data_are_escaped_in_html_and_svg_with_the_full_name_on_hover(nasty_file, tmp_path):
    out = tmp_path / "r.html"
    result = runner.invoke(app, ["report", str(nasty_file), "--by", "region", "-o", str(out), "-q"])
    assert result.exit_code == OK, result.output
    page = out.read_text(encoding="utf-8")
    assert not RAW_CONTROL.search(page.replace("\n", "").replace("\t", ""))
    assert "\\x1b[31mred\\x1b[0m" in page and "bell\\x07" in page
    assert f'title="{"x" * 10_000}"' in page  # the whole name on hover ...
    assert f">{'x' * 39}…</td>" in page  # ... and shortened in the cell
    svgs = re.findall(r"<svg.*?</svg>", page, flags=re.S)
    for svg in svgs:
        ET.fromstring(svg)  # every chart is valid XML (a raw NUL would not be)
    # Charts shorten the long class name too, with the full name as the SVG hover title.
    assert any(f"<title>{'x' * 10_000}</title>" in svg for svg in svgs)
    assert not any("<title>\\x1b" in svg for svg in svgs)  # short enough: no hover title needed


def test_one_example_is_singular(tmp_path):
    path = tmp_path / "one.csv"
    pd.DataFrame({"label": [1], "y_prob": [0.8]}).to_csv(path, index=False)
    result = runner.invoke(app, ["metrics", str(path), "--classes", "0,1"])
    assert result.exit_code == OK, result.output
    assert "run 'one': 1 example, 2 classes, from" in result.stdout
    assert "-0.0000" not in result.stdout


def test_reporters_agree_on_missing_values_and_gate_values(tmp_path):
    # A class with no examples has no loss: "—" in the terminal and on the page (the terminal
    # printed "–"). A delta gate's value: one format in the text, the quiet line and the page
    # (they were "0.0837133", "0.0837133" and "+0.0837133").
    from losslens.job import run_job
    from losslens.html import render_report
    from losslens.output import json_text
    from losslens.terminal import failed_gate_lines, job_text
    from datetime import datetime, timezone

    old, new = tmp_path / "old.csv", tmp_path / "new.csv"
    for path, p1 in ((old, [0.9, 0.2, 0.7, 0.4]), (new, [0.6, 0.5, 0.5, 0.5])):
        # Class 2 has a column but no examples.
        pd.DataFrame({"id": [1, 2, 3, 4], "label": [1, 0, 1, 0], "p_0": [1 - p for p in p1], "p_1": p1,
                      "p_2": 0.0}).to_csv(path, index=False)
    baseline = tmp_path / "baseline.json"
    baseline.write_text(json_text(run_job([str(old)], names=["night"]).to_dict()))
    result = run_job([str(new)], names=["night"], baseline=str(baseline), fail_if=["delta.log_loss > 0.01"])
    delta = result.gates.results[0].value
    shown = f"+{delta:.6g}"
    text = job_text(result, width=100)
    assert f"value {shown}" in text
    assert failed_gate_lines(result.gates) == [f"losslens: gate failed: delta.log_loss > 0.01 [run night]: {shown}"]
    page = render_report(result, generated_at=datetime(2026, 1, 1, tzinfo=timezone.utc), command_line="x")
    assert f'<td class="num">{shown}</td>' in page
    class_row = next(line for line in text.splitlines() if line.startswith("2 "))
    assert class_row.split()[2] == "—" and "–" not in class_row
    assert "<td class=\"num\">—</td>" in page


def test_wrapped_lines_keep_their_indent():
    from losslens.terminal import fit

    text = "  ! code [overall]: " + "word " * 30
    lines = fit(text, 40).splitlines()
    assert lines[0].startswith("  ! code [overall]: word") and all(line.startswith("      ") for line in lines[1:])
    assert all(width(line) <= 40 for line in lines) and " ".join(lines).split() == text.split()


def test_an_error_quoting_a_label_from_the_data_escapes_it(tmp_path):
    path = tmp_path / "bad.parquet"
    pd.DataFrame({"label": ["\x1b[2Jcat", "dog"], "p_cat": [0.5, 0.4], "p_dog": [0.5, 0.6]}).to_parquet(path)
    result = runner.invoke(app, ["metrics", str(path)])
    assert result.exit_code == 2
    assert not RAW_CONTROL.search(result.stderr) and "\\x1b[2Jcat" in result.stderr
    assert result.stderr.startswith("losslens: error: ") and result.stderr.count("\n") == 1


def test_trend_text_counts_nights_and_escapes_names():
    from losslens.terminal import trend_text
    from losslens.trend import build_trend

    def night(loss, i):  # each night names its own input, as real documents do (else: copies, skipped)
        return {"format_version": 1, "runs": [{"name": "run\x1b[31m", "inputs": [f"p{i}.parquet"], "overall": {
            "log_loss": loss, "log_loss_ci95": [loss - 0.1, loss + 0.1]}}]}

    # Three steady nights, then one 1.0 nats above: outside 1.0 ± (0.1 + 0.1).
    trend = build_trend([(f"night-{i}\x07.json", night(2.0 if i == 4 else 1.0, i)) for i in range(1, 5)])
    text = trend_text(trend, width=200)
    assert text.splitlines()[0] == ("trend: 4 nights, night-1\\x07 to night-4\\x07; 1 warning, 1 trend shift "
                                    "(window 7)")
    assert "run 'run\\x1b[31m', night-4\\x07: log loss 2.0000 is above" in text
    assert "0.8000–1.2000" in text  # the expected range, formatted as every interval
    assert "\x1b" not in text and "\x07" not in text
