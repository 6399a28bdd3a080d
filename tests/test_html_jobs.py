"""The HTML report in jobs: runs compared, a baseline, quality gates, and the diagnostics fields.

The numbers expected on the page are taken from the objects' ``to_dict()`` (what the JSON
holds) and formatted with the page's own formatters: the report must show them, not compute
its own. Rendering runs in-process; exit codes and escaping of command-line strings run
``python -m losslens`` as a real process.
"""

from __future__ import annotations

import html as htmllib
import json
import re
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pytest
from markupsafe import escape

import losslens
from losslens.baseline import compare_with_baseline
from losslens.comparison import LossCollector, compare_runs
from losslens.gates import check_gates, parse_gates
from losslens.html import render_report
from losslens.formatting import count, interval, points, signed, signed_interval
from losslens.formatting import number as num, percent as pct

WHEN = datetime(2026, 1, 31, 12, 0, 0, tzinfo=timezone.utc)
SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
#: A split name a gate can name: & and quotes reach the page through the gate's expression.
ODD_SPLIT = "held&\"out'"


def render(evaluation, **kwargs) -> str:
    kwargs.setdefault("generated_at", WHEN)
    kwargs.setdefault("command_line", "losslens report a.csv b.csv")
    return render_report(evaluation, **kwargs)


def frames(n: int = 300, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A reference and a noisier candidate over the same ids (3 classes, a split, a slice)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, size=n)
    logits = rng.normal(size=(n, 3))
    logits[np.arange(n), labels] += 2.5
    noisy = logits * 0.6 + rng.normal(scale=1.2, size=(n, 3))

    def frame(z):
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        return pd.DataFrame({
            "id": [f"ex-{i:04d}" for i in range(n)],
            "label": np.array(["cat", "dog", "bird"])[labels],
            "p_cat": p[:, 0], "p_dog": p[:, 1], "p_bird": p[:, 2],
            "split": np.where(np.arange(n) % 3 == 0, "validation", "train"),
            "region": np.array(["north", "south", "east", "west"])[np.arange(n) % 4],
        })

    return frame(logits), frame(noisy)


def evaluate_pair(ref, cand, names=("old", "new"), **options):
    """Evaluate two runs as the CLI does and compare them (paired by id)."""
    collector = LossCollector()
    evaluation = losslens.evaluate_runs([ref, cand], names=list(names), id="id", by=["region"],
                                        observers=[collector], **options)
    return evaluation, compare_runs(evaluation, collector)


@pytest.fixture(scope="module")
def job():
    """Two runs, their comparison, a baseline (the reference itself) and two gates, one failing."""
    ref, cand = frames()
    evaluation, comparisons = evaluate_pair(ref, cand)
    previous = losslens.evaluate(ref, name="old", id="id", by=["region"]).to_dict()
    baseline = compare_with_baseline(evaluation, previous, "previous.json")
    gates = check_gates(parse_gates(["validation.log_loss > 0.3", "accuracy < 0.1"]), evaluation, baseline)
    page = render(evaluation, comparisons=comparisons, baseline=baseline, gates=gates)
    return evaluation, comparisons, baseline, gates, page


def table_rows(page: str, table_id: str) -> list[list[str]]:
    """The body cells of the table in the block with this id, unescaped."""
    block = page[page.index(f'id="{table_id}"'):]
    body = block[block.index("<tbody>"):block.index("</tbody>")]
    return [[htmllib.unescape(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row, flags=re.S)]
            for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, flags=re.S)]


def assert_self_contained(page: str) -> None:
    lowered = page.lower()
    assert "<script" not in lowered and "<img" not in lowered and "<link" not in lowered
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", lowered), "an external link"
    assert not re.search(r"url\(\s*[\"']?\s*(?:https?:)?//", lowered) and "@import" not in lowered
    assert not re.search(r"<[^>]*\son\w+\s*=", page), "an event handler attribute"
    ids = re.findall(r'\sid="([^"]+)"', page)
    assert len(ids) == len(set(ids)), [i for i in ids if ids.count(i) > 1][:5]
    for ref in re.findall(r'url\(#([^)]+)\)|href="#([^"]+)"', page):
        assert (ref[0] or ref[1]) in ids


# --------------------------------------------------------------------------- runs compared


def test_comparison_section_shows_the_engines_numbers(job):
    evaluation, (comparison,), _, _, page = job
    c = comparison.to_dict()
    assert c["paired"] and c["n_paired"] == 300
    section = page[page.index("Runs compared"):page.index('id="run-1"')]
    assert f"Change of log loss <b>{signed(c['log_loss_delta'])}</b> nats" in section
    assert f"(95% interval {signed_interval(c['log_loss_delta_ci95'])}, paired)" in section
    assert c["verdict"] == "worse" and "new is worse" in section and "verdict-worse" in section
    assert f"<dd>{pct(c['share_improved'], 1)}</dd>" in section
    assert f"<dd>{pct(c['share_worsened'], 1)}</dd>" in section
    assert f"over {count(c['n_paired'])} examples" in section
    # Every metric's change, over each whole run, as compare.py computed it.
    deltas = {row[0]: row for row in table_rows(page, "compare-1-table-deltas-1")}
    assert deltas["log_loss"][3] == signed(c["metric_deltas"]["log_loss"])
    assert deltas["accuracy"][3] == points(c["metric_deltas"]["accuracy"])
    assert deltas["log_loss"][1:3] == [num(r.overall.log_loss) for r in evaluation.runs]


def test_worst_regressions_table_lists_the_engines_rows_in_order(job):
    _, (comparison,), _, _, page = job
    expected = comparison.to_dict()["worst_regressions"]
    assert len(expected) == 20
    rows = table_rows(page, "compare-1-table-regressions-1")
    assert [r[0] for r in rows] == [e["id"] for e in expected]
    for row, e in zip(rows, expected):
        assert row[1:] == [e["label"], num(e["loss_reference_nats"]), num(e["loss_candidate_nats"]),
                           signed(e["loss_delta_nats"]), signed(e["loss_delta_bits"])]
    assert "The 20 examples that got worse the most" in page


def test_runs_chart_and_side_by_side_table(job):
    evaluation, _, _, _, page = job
    section = page[page.index("Runs compared"):page.index('id="run-1"')]
    chart = re.search(r'<figure class="chart-box chart-runs">(.*?)</figure>', section, flags=re.S).group(1)
    assert chart.count("<svg") == 1
    for run in evaluation.runs:
        assert f">{run.name}</text>" in chart
    assert "Log loss (lower is better)" in chart and "Accuracy (higher is better)" in chart
    assert "normal approximation (effective sample size)" in section  # which interval is drawn
    # The table of runs side by side stays, after the chart.
    assert section.index("chart-runs") < section.index("Runs side by side</h3>")
    assert_self_contained(page)


def test_unpaired_comparison_says_why_no_regressions_are_listed():
    ref, cand = frames(60)
    evaluation = losslens.evaluate_runs([ref, cand], names=["old", "new"])
    (comparison,) = compare_runs(evaluation)
    page = render(evaluation, comparisons=(comparison,))
    assert not comparison.paired
    assert f"(95% interval {signed_interval(comparison.log_loss_delta_ci95)}, unpaired)" in page
    assert "give both runs an id column (--id)" in page
    assert f"Note: {htmllib.escape(comparison.note)}." in page
    assert "got worse the most" not in page


def test_a_run_report_without_jobs_has_none_of_their_sections():
    page = render(losslens.evaluate(frames(60)[0], id="id"))
    for marker in ('class="gates', "Runs compared", "Against the baseline", "got worse the most"):
        assert marker not in page


# --------------------------------------------------------------------------- baseline


def test_baseline_table_shows_the_deltas_and_flags_regressions(job):
    evaluation, _, baseline, _, page = job
    document = baseline.to_dict()
    old, new = document["runs"]
    assert old["n_regressions"] == 0 and new["n_regressions"] > 0
    # The reference run is its own baseline: folded, with the all-clear.
    run1 = page[page.index('id="run-1"'):page.index('id="run-2"')]
    assert "No regressions: no metric is worse than in the baseline by more than 1%." in run1
    assert '<details class="baseline-details">' in run1
    # The candidate: open, flagged, one flagged row per regression, values as in the JSON.
    run2 = page[page.index('id="run-2"'):]
    assert f"▲ {new['n_regressions']} regressions" in run2 and '<details class="baseline-details" open>' in run2
    rows = table_rows(page, "run-2-table-baseline")
    flagged = [r for r in rows if r[-1] == "regression"]
    n_flagged_rows = len(re.findall(r'<tr class="regression">', run2))
    assert len(flagged) == n_flagged_rows == new["n_regressions"]
    by_key = {(r[0], r[1]): r for r in rows}
    loss = new["overall"]["log_loss"]
    assert by_key[("overall", "log_loss")][2:] == [num(loss["baseline"]), num(loss["current"]), signed(loss["delta"]),
                                                   "lower", "regression" if loss["regression"] else ""]
    accuracy = new["by_split"]["validation"]["accuracy"]
    assert by_key[("validation", "accuracy")][2:5] == [pct(accuracy["baseline"]), pct(accuracy["current"]),
                                                       points(accuracy["delta"])]
    # And a line at the top of the page, per run.
    assert '<a href="#run-1">old</a> 0 regressions' in page
    assert f'<a href="#run-2">new</a> {new["n_regressions"]} regressions' in page


def test_a_run_missing_from_the_baseline_says_so():
    ref, cand = frames(60)
    evaluation, comparisons = evaluate_pair(ref, cand)
    previous = {"format_version": 1, "runs": [{"name": "old", "overall": evaluation.runs[0].overall.to_dict()},
                                              {"name": "other", "overall": {}}]}
    baseline = compare_with_baseline(evaluation, previous, "previous.json")
    assert baseline.to_dict()["unmatched_runs"] == ["new"]
    page = render(evaluation, comparisons=comparisons, baseline=baseline)
    assert "The baseline file has no run named “new”; this run is not compared with it." in page
    assert '<a href="#run-2">new</a> not compared' in page


# --------------------------------------------------------------------------- gates


def test_failing_gates_banner_comes_first_with_every_result(job):
    _, _, _, gates, page = job
    document = gates.to_dict()
    assert document["passed"] is False
    body = page[page.index("<main>"):]
    # With several runs: first on the page (after the warnings banner, if any), before the comparison.
    assert body.index('class="gates gates-fail"') < body.index("Runs compared")
    assert body.find('class="banner"') < body.index('class="gates gates-fail"')
    assert "✗ FAIL" in body and "✓ PASS" not in body
    n, failed = len(document["results"]), document["n_failed"]
    assert f"{failed} of {n} gate checks failed: the command exits with code 1" in body
    rows = table_rows(page, "table-gates")
    assert [(r[1], r[2]) for r in rows] == [(r["expression"], r["run"]) for r in document["results"]]
    for row, result in zip(rows, document["results"]):
        assert row[0] == ("PASS" if result["outcome"] == "pass" else "FAIL")
        assert row[3] == f"{result['value']:.6g}"
    assert len(re.findall(r'<tr class="fail">', body)) == failed


def test_single_run_gates_come_right_after_its_warnings():
    evaluation = losslens.evaluate(frames(60)[0], name="only")
    gates = check_gates(parse_gates(["log_loss > 100"], ["any"]), evaluation)
    page = render(evaluation, gates=gates)
    run = page[page.index('id="run-1"'):]
    assert run.index("warnings") < run.index('class="gates gates-') < run.index("card-label")
    passed = gates.passed
    assert ('gates-pass' in run) is passed and ("✓ PASS" in run) is passed
    warning_row = table_rows(page, "table-gates")[1]
    assert warning_row[1] == "warning any" and warning_row[3] == count(gates.results[1].value)


# --------------------------------------------------------------------------- diagnostics fields


def test_per_class_ece_column():
    evaluation = losslens.evaluate(frames(90)[0])
    rows = table_rows(render(evaluation), "run-1-table-classes")
    assert {r[0]: r[-1] for r in rows} == {c: num(m.ece) for c, m in evaluation.run.by_class.items()}


def test_bootstrap_intervals_are_shown_with_their_method():
    evaluation = losslens.evaluate(frames(120)[0], bootstrap=50, seed=3)
    m = evaluation.overall.to_dict()
    boot = m["bootstrap"]
    page = render(evaluation)
    method = f"{boot['method']}, {boot['n_resamples']} resamples, seed {boot['seed']}"
    assert f"95% interval {interval(m['log_loss_ci95'])}, {m['log_loss_ci95_method']}" in page
    assert f"95% interval {interval(boot['log_loss'])}, {method}" in page
    assert f"95% interval {pct(boot['accuracy'][0])}–{pct(boot['accuracy'][1])}, {method}" in page
    assert f"Its 95% interval is {interval(boot['ece'])} ({method})" in page
    # The split table gains bootstrap columns, and says which method made which interval.
    rows = {r[0]: r for r in table_rows(page, "run-1-table-splits")}
    assert rows["overall"][-3] == interval(boot["log_loss"])
    validation = evaluation.run.by_split["validation"].bootstrap
    assert rows["validation"][-1] == interval(validation["ece"])
    assert f"Bootstrap columns: {method}." in page


def test_binary_brier_decomposition_is_shown_by_the_reliability_diagram():
    df = pd.DataFrame({"label": [0, 1, 1, 0, 1, 0, 1, 1], "y_prob": [0.1, 0.8, 0.6, 0.4, 0.9, 0.3, 0.7, 0.2]})
    evaluation = losslens.evaluate(df)
    parts = evaluation.run.to_dict()["brier_decomposition"]
    page = render(evaluation)
    figure = re.search(r'<figure class="chart-box chart-reliability">(.*?)</figure>', page, flags=re.S).group(1)
    for name in ("reliability", "resolution", "uncertainty", "residual"):
        assert f"<th scope=\"col\">{name}</th>" in figure
    values = re.findall(r"<td>(.*?)</td>", figure)
    assert values == [num(evaluation.overall.brier_score)] + [num(parts[k]) for k in
                                                               ("reliability", "resolution", "uncertainty", "residual")]
    assert "Brier score = reliability − resolution + uncertainty + residual" in figure
    # Multiclass runs have no decomposition, and no such table.
    assert 'class="facts-table"' not in render(losslens.evaluate(frames(60)[0]))


def test_slices_keep_the_engines_order_worst_first_other_last():
    ref = frames(600)[0]
    ref["shop"] = [f"s{i % 9}" for i in range(len(ref))]
    evaluation = losslens.evaluate(ref, by=["shop"], max_slices=5)
    order = list(evaluation.run.by_slice["shop"])
    assert order[-1] == "(other)"
    page = render(evaluation)
    rows = table_rows(page, "run-1-table-slice-1")
    assert [r[0] for r in rows] == order
    excess = evaluation.run.to_dict()["by_slice"]["shop"]
    assert [r[1] for r in rows] == [signed(excess[v]["excess_log_loss"]) for v in order]
    assert "Worst first" in page and "(worst first)" in page and "worst first:" in page
    assert "(other) (the smallest values merged) last" in page


# --------------------------------------------------------------------------- through the command line


@pytest.fixture
def evil_files(tmp_path):
    """Two runs whose ids, labels and split names are markup, for the command line."""
    ref, cand = frames(90)
    for frame in (ref, cand):
        frame.loc[0, "id"] = SCRIPT
        frame.loc[1, "id"] = IMG
        frame["split"] = np.where(frame["split"] == "validation", ODD_SPLIT, "train")
    # Make the evil ids the worst regressions, so that they reach the regressions table.
    cand.loc[[0, 1], ["p_cat", "p_dog", "p_bird"]] = 1e-4
    truth = ref.loc[[0, 1], "label"].to_numpy()
    for i, label in zip((0, 1), truth):
        cand.loc[i, f"p_{label}"] = 1e-4
        cand.loc[i, [c for c in ("p_cat", "p_dog", "p_bird") if c != f"p_{label}"]] = (1 - 1e-4) / 2
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    ref.to_csv(a, index=False)
    cand.to_csv(b, index=False)
    return a, b


def test_cli_failing_gate_exits_1_writes_the_report_and_escapes_user_strings(evil_files, tmp_path, run_cli):
    a, b = evil_files
    previous = tmp_path / "previous.json"
    assert run_cli("metrics", a, "--id", "id", "--json", previous, "-q").returncode == 0
    out = tmp_path / "report.html"
    gate = f"{ODD_SPLIT}.log_loss > 0.01"
    proc = run_cli("report", a, b, "--id", "id", "--name", "old", "--name", SCRIPT, "--baseline", previous,
                   "--fail-if", gate, "--json", tmp_path / "r.json", "-o", out, cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    page = out.read_text(encoding="utf-8")
    document = json.loads((tmp_path / "r.json").read_text())
    assert document["gates"]["passed"] is False
    assert "✗ FAIL" in page and 'class="gates gates-fail"' in page

    # Nothing the user typed or the data held came through as markup ...
    assert SCRIPT not in page and IMG not in page
    assert_self_contained(page)
    # ... but all of it is shown, escaped: the run name, the ids, the gate's expression.
    escaped_script = htmllib.escape(SCRIPT)
    assert f"{escaped_script} against old</h3>" in page
    regressions = table_rows(page, "compare-1-table-regressions-1")
    assert {SCRIPT, IMG} <= {r[0] for r in regressions}
    assert [r[0] for r in regressions] == [r["id"] for r in document["comparisons"][0]["worst_regressions"]]
    gate_rows = table_rows(page, "table-gates")
    assert [(r[1], r[2]) for r in gate_rows] == [(gate, "old"), (gate, SCRIPT)]
    assert str(escape(gate)) in page  # as Jinja escapes it: &amp; &#34; &#39; &gt;
    # The run name is escaped inside the runs chart's SVG too.
    chart = re.search(r'<figure class="chart-box chart-runs">(.*?)</figure>', page, flags=re.S).group(1)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in chart
