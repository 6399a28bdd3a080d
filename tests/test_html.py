"""The HTML report: self-contained, small, reproducible, safe, atomic, overridable, stable.

Fast tests render in-process from DataFrames; the ones about the command line (atomic
writes, ``SOURCE_DATE_EPOCH``) run ``python -m losslens`` as a real process. The gold file
``tests/gold/report_small.html`` is regenerated with ``LOSSLENS_UPDATE_GOLD=1``.
"""

from __future__ import annotations

import dataclasses
import html as htmllib
import os
import re
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
from markupsafe import Markup, escape

import losslens
from losslens.errors import UsageError
from losslens.evaluation import LossWarning
from losslens.html import make_environment, render_report, template_dirs
from losslens.html import charts, many_classes
from losslens.formatting import number as num
from losslens.html.page import _time, build_page

GOLD = Path(__file__).parent / "gold" / "report_small.html"
#: The matplotlib version that wrote the gold file's SVGs (see test_gold_snapshot).
GOLD_MPL = GOLD.with_suffix(".matplotlib-version")
WHEN = datetime(2026, 1, 31, 12, 0, 0, tzinfo=timezone.utc)
EXAMPLE = Path(__file__).resolve().parents[1] / "example_data" / "digits_multiclass.parquet"

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
#: Evil strings that are also legal file names (no "/").
FILE_EVIL = '"><img src=x onerror=alert(1)>'


def render(evaluation, **kwargs) -> str:
    kwargs.setdefault("generated_at", WHEN)
    kwargs.setdefault("command_line", "losslens report data.csv")
    return render_report(evaluation, **kwargs)


def small_frame() -> pd.DataFrame:
    """A tiny fixed data set: 3 classes, 12 rows, a split, a slice and an id column."""
    probs = [
        (0.80, 0.15, 0.05), (0.70, 0.20, 0.10), (0.10, 0.80, 0.10), (0.20, 0.60, 0.20),
        (0.05, 0.05, 0.90), (0.10, 0.30, 0.60), (0.60, 0.30, 0.10), (0.30, 0.40, 0.30),
        (0.25, 0.25, 0.50), (0.90, 0.05, 0.05), (0.15, 0.70, 0.15), (0.40, 0.40, 0.20),
    ]
    return pd.DataFrame({
        "id": [f"ex-{i:02d}" for i in range(1, 13)],
        "label": ["cat", "cat", "dog", "dog", "bird", "bird", "dog", "bird", "cat", "cat", "dog", "bird"],
        "p_cat": [p[0] for p in probs],
        "p_dog": [p[1] for p in probs],
        "p_bird": [p[2] for p in probs],
        "split": ["train"] * 8 + ["validation"] * 4,
        "region": ["north", "south", "north", "south"] * 3,
    })


@pytest.fixture(scope="module")
def small():
    return losslens.evaluate(small_frame(), name="small", id="id", by=["region"])


@pytest.fixture(scope="module")
def small_html(small):
    return render(small)


def many_rows(n: int, k: int, seed: int = 0) -> pd.DataFrame:
    """``n`` rows of random (seeded) predictions over ``k`` classes with skewed frequencies."""
    rng = np.random.default_rng(seed)
    freq = rng.dirichlet(np.full(k, 0.5))
    labels = rng.choice(k, size=n, p=freq)
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), labels] += 2.0
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    frame = {"label": [f"c{j:04d}" for j in labels]}
    frame.update({f"p_c{j:04d}": probs[:, j] for j in range(k)})
    frame["split"] = np.where(rng.random(n) < 0.7, "train", "validation")
    frame["region"] = rng.choice([f"r{j}" for j in range(30)], size=n)
    return pd.DataFrame(frame)


# --------------------------------------------------------------------------- self-contained


def test_self_contained(small_html):
    lowered = small_html.lower()
    assert lowered.startswith("<!doctype html>")
    assert "<script" not in lowered
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", lowered), "an external link"
    assert "@import" not in lowered
    assert not re.search(r"url\(\s*[\"']?\s*(?:https?:)?//", lowered)
    assert "<link" not in lowered and "<iframe" not in lowered and "<img" not in lowered
    assert "<style>" in small_html and "@media print" in small_html
    assert "Content-Security-Policy\" content=\"default-src 'none'" in small_html
    # Charts are inline SVG, with no XML prolog or DOCTYPE of their own.
    assert small_html.count("<svg") >= 5
    assert "<?xml" not in small_html and "<!DOCTYPE svg" not in small_html
    assert "<metadata>" not in small_html


@pytest.fixture(scope="module")
def two_runs_html():
    uniform = small_frame().assign(p_cat=0.34, p_dog=0.33, p_bird=0.33)
    return render(losslens.evaluate_runs([small_frame(), uniform], names=["model-a", "uniform"], by=["region"]))


def test_ids_are_unique_on_the_page(two_runs_html):
    # Every chart of every run uses matplotlib's id scheme (figure_1, axes_1, clip ids):
    # they must be renamed apart.
    ids = re.findall(r'\sid="([^"]+)"', two_runs_html)
    assert len(ids) == len(set(ids)), [i for i in ids if ids.count(i) > 1][:5]
    # And every url(#...) / href="#..." points at an id of the page.
    for ref in re.findall(r'url\(#([^)]+)\)|href="#([^"]+)"', two_runs_html):
        assert (ref[0] or ref[1]) in ids


# --------------------------------------------------------------------------- content


def test_sections_in_reading_order(small_html):
    # Warnings (or the line saying there are none) come right after the header facts.
    order = ["<header", "small", "label column", 'warnings"', "Log loss", "Cross-entropy", "Perplexity",
             "Accuracy", "Information gain", "KL(P̂ ‖ Q̄)", "How to read these numbers", "Charts",
             "Per class", "Per split", "Per value of region", "worst examples", "How this report was made"]
    body = small_html[small_html.index("<body>"):]
    positions = [body.index(marker) for marker in order]
    assert positions == sorted(positions)


def test_header_and_footer_facts(small, small_html):
    assert f"losslens {losslens.__version__}" in small_html
    assert "2026-01-31 12:00:00 UTC" in small_html
    assert "losslens report data.csv" in small_html
    from losslens.evaluation import FORMAT_VERSION

    assert f"format version {FORMAT_VERSION}" in small_html
    for note in small.run.layout.notes:
        assert str(escape(note)) in small_html


def test_headlines_have_split_values(small, small_html):
    for name, metrics in small.run.by_split.items():
        assert f'<th scope="row">{name}</th><td>{num(metrics.log_loss)}</td>' in small_html
    assert num(small.overall.log_loss) in small_html
    assert num(small.overall.information_gain_bits) in small_html


def test_guide_fills_in_this_runs_numbers(small, small_html):
    m = small.overall
    equation = f"H(P̂) {num(m.label_entropy_bits)} + KL(P̂ ‖ Q̄) {num(m.kl_empirical_bits)} = {num(m.marginal_cross_entropy_bits)} bits"
    assert equation in small_html
    assert f"{num(m.label_entropy_bits)} − {num(m.cross_entropy_bits)} = {num(m.information_gain_bits)} bits" in small_html
    assert "same number" in small_html and "memorisation" in small_html


def test_soft_targets_guide():
    df = pd.DataFrame({
        "t_a": [0.7, 0.2, 0.5], "t_b": [0.3, 0.8, 0.5],
        "p_a": [0.6, 0.3, 0.5], "p_b": [0.4, 0.7, 0.5],
    })
    evaluation = losslens.evaluate(df, targets="t_")
    m = evaluation.overall
    page = render(evaluation)
    assert "KL(targets ‖ model)" in page
    assert (f"cross-entropy {num(m.cross_entropy_bits)} = target entropy {num(m.target_entropy_bits)}"
            f" + KL(targets ‖ model) {num(m.kl_bits)} bits") in page


def test_warnings_first_generic_and_grouped(small):
    run = small.run
    extra = (
        LossWarning("brand_new_code", f"Something {SCRIPT} happened.", scope="split=validation"),
        LossWarning("clipped_probabilities", "Some rows were clipped.", scope="overall"),
        LossWarning("brand_new_code", "Also here.", scope="region=north"),
    )
    evaluation = dataclasses.replace(small, runs=(dataclasses.replace(run, warnings=extra),))
    page = render(evaluation)
    assert "3 warnings" in page
    assert "brand_new_code" in page and "split=validation" in page
    assert str(escape(f"Something {SCRIPT} happened.")) in page
    assert page.index("brand_new_code") < page.index("clipped_probabilities") < page.index("Log loss")
    # Same code: grouped, the later ones folded under the first.
    assert page.count("<code>brand_new_code</code>") == 1
    assert "The same for 1 more: region=north" in page and "Also here." in page
    assert "No warnings" not in page


def test_several_runs_have_a_comparison_first(two_runs_html):
    page = two_runs_html
    assert page.index("Runs side by side") < page.index('id="run-1"') < page.index('id="run-2"')
    assert '<a href="#run-1">model-a</a>' in page and "Run uniform" in page


def test_two_classes_binary_layout():
    df = pd.DataFrame({"label": [0, 1, 1, 0, 1], "y_prob": [0.1, 0.8, 0.6, 0.4, 0.9]})
    page = render(losslens.evaluate(df))
    assert "binary: one column is P(positive class)" in page
    assert page.count("<svg") == 5  # no split, no slice; the equal-width and the equal-mass reliability diagrams
    assert page.count("<td style=") == 4  # the 2 × 2 confusion matrix, a table


def test_a_thousand_classes_stay_readable_and_small():
    evaluation = losslens.evaluate(many_rows(5_000, 1000), by=["region"])
    page = render(evaluation)
    # Both class charts name the classes select_classes chose and sum up the rest in one bar;
    # the class table is cut at 100 rows.
    selection = many_classes.select_classes(evaluation.run)
    assert selection.n_other >= 1000 - 25
    assert page.count(f"all other {selection.n_other:,} classes") >= 2
    assert max(len(re.findall(r"<text", svg)) for svg in re.findall(r"<svg.*?</svg>", page, flags=re.S)) < 80
    assert "Showing 100 of 1,000 classes" in page
    assert "chart-confusion" not in page  # no heat map beyond 30 classes
    assert len(page.encode()) < 1_000_000


def test_size_does_not_grow_with_rows():
    page = render(losslens.evaluate(many_rows(200_000, 5, seed=1), by=["region"]))
    assert len(page.encode()) < 1_000_000


# --------------------------------------------------------------------------- reproducible


def test_render_is_reproducible(small, small_html):
    assert render(small) == small_html


def test_generated_at_must_be_aware(small):
    with pytest.raises(UsageError, match="timezone-aware"):
        render(small, generated_at=datetime(2026, 1, 1))


def test_generated_at_other_zone_is_shown_with_offset():
    assert _time(datetime(2026, 1, 1, 9, 0, tzinfo=timezone(timedelta(hours=2)))) == "2026-01-01 09:00:00 +0200"
    assert _time(datetime(2026, 1, 1, 9, 0, tzinfo=timezone.utc)) == "2026-01-01 09:00:00 UTC"


def test_cli_source_date_epoch_gives_identical_bytes(tmp_path):
    env = {**os.environ, "NO_COLOR": "1", "SOURCE_DATE_EPOCH": "1700000000"}
    runs = []
    for run in ("first", "second"):
        # The same command line in two folders (the footer shows it), run side by side.
        (tmp_path / run).mkdir()
        runs.append(subprocess.Popen(
            [sys.executable, "-m", "losslens", "report", str(EXAMPLE), "--by", "ink", "-o", "report.html"],
            cwd=tmp_path / run, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        ))
    for proc in runs:
        _, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, stderr
    first, second = ((tmp_path / run / "report.html").read_bytes() for run in ("first", "second"))
    assert first == second
    assert b"2023-11-14 22:13:20 UTC" in first


# --------------------------------------------------------------------------- safe


def evil_frame() -> pd.DataFrame:
    return pd.DataFrame({
        "label": [SCRIPT, IMG, "a&b $x$ \\frac{", SCRIPT, IMG, SCRIPT],
        f"p_{SCRIPT}": [0.6, 0.2, 0.1, 0.5, 0.3, 0.9],
        f"p_{IMG}": [0.3, 0.7, 0.2, 0.25, 0.4, 0.05],
        "p_a&b $x$ \\frac{": [0.1, 0.1, 0.7, 0.25, 0.3, 0.05],
        "split": ["train", IMG, "train", IMG, "train", IMG],
        SCRIPT: [SCRIPT, IMG, "plain", SCRIPT, IMG, "plain"],
    })


def assert_escaped(page: str) -> None:
    for raw in (SCRIPT, IMG, FILE_EVIL):
        assert raw not in page
    lowered = page.lower()
    assert "<script" not in lowered and "<img" not in lowered
    assert not re.search(r"<[^>]*\son\w+\s*=", page), "an event handler attribute"


def test_user_strings_are_escaped_everywhere(tmp_path, write_table, run_cli):
    path = write_table(evil_frame(), tmp_path, "csv", stem=FILE_EVIL)
    out = tmp_path / "report.html"
    proc = run_cli("report", path, "--by", SCRIPT, "--name", SCRIPT, "-o", out, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    page = out.read_text(encoding="utf-8")
    assert_escaped(page)
    # ... and they are shown, escaped: in HTML text and inside the SVG charts.
    assert htmllib.escape(SCRIPT, quote=False) in page
    assert "&gt;&lt;img src=x onerror=alert(1)&gt;" in page
    svgs = re.findall(r"<svg.*?</svg>", page, flags=re.S)
    assert any("&lt;script&gt;alert(1)&lt;/script&gt;" in svg for svg in svgs)
    # "$" did not turn on mathtext; "&" is escaped in the SVG text.
    assert any("a&amp;b $x$ \\frac{" in svg for svg in svgs)


def test_chart_check_refuses_markup_that_escaped_its_text():
    good = '<svg xmlns="http://www.w3.org/2000/svg"><g><text>&lt;b&gt;</text></g></svg>'
    assert str(charts._checked(good)) == good
    for bad in (
        '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
        '<svg xmlns="http://www.w3.org/2000/svg"><g onload="alert(1)"/></svg>',
        '<svg xmlns="http://www.w3.org/2000/svg"><foreignObject/></svg>',
        '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink">'
        '<use xlink:href="http://example.com/x.svg#a"/></svg>',
    ):
        with pytest.raises(ValueError):
            charts._checked(bad)


def test_environment_autoescapes():
    environment = make_environment()
    assert environment.autoescape is True
    assert environment.trim_blocks and environment.lstrip_blocks
    assert environment.from_string("{{ x }}").render(x=SCRIPT) == htmllib.escape(SCRIPT)


# --------------------------------------------------------------------------- atomic


def test_bad_input_leaves_existing_report_untouched(tmp_path, run_cli):
    bad = tmp_path / "bad.csv"
    bad.write_text("label,p_a,p_b\na,0.5,0.5\nb,oops,0.5\n")
    out = tmp_path / "report.html"
    out.write_bytes(b"previous report")
    proc = run_cli("report", bad, "-o", out, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert out.read_bytes() == b"previous report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv", "report.html"]


def test_bad_input_writes_no_file(tmp_path, run_cli):
    proc = run_cli("report", tmp_path / "missing.csv", "-o", "new.html", cwd=tmp_path)
    assert proc.returncode == 2
    assert list(tmp_path.iterdir()) == []


def test_broken_user_template_leaves_existing_report_untouched(tmp_path, run_cli):
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "footer.html").write_text("{% for x in %}")
    existing = tmp_path / "old.html"
    existing.write_bytes(b"old")
    proc = run_cli("report", EXAMPLE, "--template-dir", templates, "-o", existing, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "footer.html, line 1" in proc.stderr
    assert existing.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.html", "templates"]


def test_broken_user_template_writes_no_new_file(tmp_path, run_cli):
    (tmp_path / "report.html").write_text("{% if %}")
    proc = run_cli("report", EXAMPLE, "--template-dir", tmp_path, "-o", "new.html", cwd=tmp_path)
    assert proc.returncode == 2 and "report.html, line 1" in proc.stderr, proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]


@pytest.mark.parametrize("broken, message", [
    ("{% include 'no_such_partial.html' %}", "TemplateNotFound: 'no_such_partial.html' not found"),
    ("{{ page.no_such_field }}", "UndefinedError: 'losslens.html.model.ReportPage object' has no attribute"),
])
def test_errors_found_while_rendering_are_usage_errors(small, tmp_path, broken, message):
    # These surface only after the charts are drawn; the CLI turns a UsageError into exit
    # code 2 before writing anything (see the syntax-error case above).
    (tmp_path / "footer.html").write_text(broken)
    with pytest.raises(UsageError, match=re.escape(message)):
        render(small, template_dir=tmp_path)


def test_template_dir_must_exist(small, tmp_path):
    with pytest.raises(UsageError, match="is not a folder"):
        render(small, template_dir=tmp_path / "nope")


# --------------------------------------------------------------------------- templates


def test_user_template_dir_is_searched_first(small, tmp_path):
    assert template_dirs(tmp_path)[0] == str(tmp_path)
    (tmp_path / "style.css").write_text("body { background: rebeccapurple; }\n")
    (tmp_path / "footer.html").write_text("<footer>made by {{ page.command_line }} for ACME</footer>\n")
    page = render(small, template_dir=tmp_path)
    assert "rebeccapurple" in page and "@media print" not in page
    assert "<footer>made by losslens report data.csv for ACME</footer>" in page
    # Templates not overridden still come from the built-in folder.
    assert "How to read these numbers" in page


def test_builtin_templates_are_found():
    builtin = Path(template_dirs()[-1])
    assert (builtin / "report.html").is_file() and (builtin / "style.css").is_file()
    # Package data ships *.html, *.css, *.svg, *.j2 only: a template of another kind would
    # be missing from the wheel.
    for path in builtin.iterdir():
        assert path.suffix in (".html", ".css", ".svg", ".j2", ".md"), path.name


# --------------------------------------------------------------------------- page model


def test_page_is_plain_data(small, monkeypatch):
    # The page model is what custom templates see; charts are not the point here.
    for name in ("distributions_chart", "loss_histogram_chart", "class_loss_chart", "reliability_chart",
                 "interval_chart"):
        monkeypatch.setattr(charts, name, lambda *args, **kwargs: Markup("<svg/>"))
    page = build_page(small, generated_at=WHEN, command_line="x", version="0", format_version=1)
    assert page.runs[0].name == "small"
    assert [c.key for c in page.runs[0].charts] == [
        "distribution", "loss-histogram", "class-loss", "reliability", "reliability-mass", "confusion", "splits",
        "slice-1"]
    # The per-class section leads with the classes that cost most and the confused pairs.
    assert [t.key for t in page.runs[0].tables][:3] == ["worst-classes", "confused-pairs", "classes"]
    worst = next(t for t in page.runs[0].tables if t.key == "worst")
    assert worst.columns[0].label == "id"  # "id", not "id (id)", for a column called id (issue 10 §6)
    assert len(worst.rows) == 12 and all(isinstance(cell, str) for row in worst.rows for cell in row)


def test_log_ticks_are_plain_text():
    assert [charts.log_tick(v) for v in (1e-6, 1e-3, 0.1, 1.0, 10.0, 1e4, 3.0)] == [
        "1e-6", "0.001", "0.1", "1", "10", "1e4", ""]


def test_fold_keeps_heaviest_and_averages_the_rest():
    items = [("a", 5.0, (1.0,)), ("b", 1.0, (2.0,)), ("c", 3.0, (3.0,)), ("d", 1.0, (4.0,))]
    folded = charts.fold(items, limit=3)
    assert [label for label, _, _ in folded] == ["a", "c", "other (2 classes)"]
    assert folded[-1][1] == 2.0 and folded[-1][2] == (3.0,)


# --------------------------------------------------------------------------- gold


def _mask(page: str) -> str:
    return page.replace(losslens.__version__, "<VERSION>")


def _without_svg(page: str) -> str:
    return re.sub(r"<svg.*?</svg>", "<svg/>", page, flags=re.S)


def test_gold_snapshot(small_html):
    page = _mask(small_html)
    if os.environ.get("LOSSLENS_UPDATE_GOLD") == "1":
        GOLD.parent.mkdir(exist_ok=True)
        GOLD.write_text(page, encoding="utf-8", newline="\n")
        GOLD_MPL.write_text(matplotlib.__version__ + "\n")
    expected = GOLD.read_text(encoding="utf-8")
    if GOLD_MPL.read_text().strip() == matplotlib.__version__:
        assert page == expected, "report changed; check it and rerun with LOSSLENS_UPDATE_GOLD=1"
    else:
        # Another matplotlib writes other SVG bytes; the rest of the page must still match.
        assert _without_svg(page) == _without_svg(expected), (
            "report changed; check it and rerun with LOSSLENS_UPDATE_GOLD=1")


@pytest.mark.parametrize("splits, says_training", [(("train", "validation"), True), (("fold_a", "fold_b"), False)])
def test_splits_are_called_training_only_when_named_so(monkeypatch, splits, says_training):
    # Issue 10 §6: the lower-loss split was called "training" whatever its name.
    for name in ("distributions_chart", "loss_histogram_chart", "class_loss_chart", "reliability_chart",
                 "interval_chart"):
        monkeypatch.setattr(charts, name, lambda *args, **kwargs: Markup("<svg/>"))
    frame = pd.DataFrame({"label": [1, 0, 1, 0], "y_prob": [0.9, 0.2, 0.6, 0.5], "split": [*splits, *splits]})
    page = build_page(losslens.evaluate(frame), generated_at=WHEN, command_line="x", version="0", format_version=1)
    caption = next(c.caption for c in page.runs[0].charts if c.key == "splits")
    assert ("a training loss far below validation" in caption) is says_training
    assert caption.startswith("Compare training and held-out loss" if says_training else "Compare the splits:")


def test_every_built_in_template_compiles():
    """A report checks the templates only of a --template-dir; the built-in ones are checked here."""
    from losslens.html.templates import check_templates

    environment = make_environment()
    names = environment.list_templates()
    assert "report.html" in names and len(names) >= 10
    check_templates(environment)  # raises UsageError naming the template and line
