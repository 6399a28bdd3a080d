"""losslens.markdown: the summary for $GITHUB_STEP_SUMMARY — numbers as the terminal prints
them, at most 60 lines, names escaped."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import losslens
from losslens import formatting
from losslens.markdown import MAX_LINES, cell, code, job_markdown, markdown_summary
from losslens.terminal import summary
from losslens.trend import build_trend

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "example_data" / "digits_multiclass.parquet"


@pytest.fixture(scope="module")
def digits():
    return losslens.evaluate(str(EXAMPLE), by=["ink"])


def test_headline_numbers_are_the_terminals(digits):
    text = markdown_summary(digits.to_dict())
    terminal = summary(digits, width=200)
    m = digits.overall
    # Hand-formatted as the terminal's cells: 4 decimals, accuracy in percent with 2, the
    # interval joined by an en dash.
    for value in (f"{m.log_loss:.4f}", f"{m.log_loss_ci95[0]:.4f}–{m.log_loss_ci95[1]:.4f}",
                  f"{100 * m.accuracy:.2f}%", f"{m.ece:.4f}", f"{m.kl_empirical_bits:.4f}"):
        assert value in terminal and value in text
    validation = digits.run.by_split["validation"]
    row = next(line for line in text.splitlines() if "| split=validation |" in line)
    assert f"| {validation.log_loss:.4f} |" in row and f"| {validation.n_examples:,} |" in row
    assert f"| {100 * validation.accuracy:.2f}% |" in row
    assert "`generalization_gap`" in text and "[split=validation]" in text
    assert len(text.splitlines()) <= MAX_LINES


def test_cells_are_formatted_as_everywhere_else():
    # One way to print a number (losslens.formatting): the missing value, counts, tiny values.
    document = {"format_version": 1, "runs": [{"name": "r", "overall": {
        "n_examples": 1797, "log_loss": 2.3e-7, "log_loss_ci95": [None, None], "accuracy": None, "ece": 0.5,
        "cross_entropy_bits": float("inf"), "kl_empirical_bits": -0.0}}]}
    row = next(line for line in markdown_summary(document).splitlines() if line.startswith("| r |"))
    assert row == "| r | overall | 1,797 | 2.30e-07 | — | ∞ | — | 0.5000 | 0.0000 |"
    assert formatting.MISSING == "—"


def test_names_are_escaped():
    nasty = "a|b`c<script>x</script>\nnew*line_"
    text = cell(nasty)
    assert "\n" not in text and "<" not in text and ">" not in text
    assert "\\|" in text and "\\`" in text and "\\*" in text and "\\_" in text
    assert re.sub(r"\\.", "", text).count("|") == 0  # every pipe is escaped: cells cannot split
    assert code("near_zero_loss") == "`near_zero_loss`"
    assert code("a`b|c") == "`a?b?c`"  # inside a code span escapes do not work: replaced
    assert code("<b>") == "`?b?`" and code("log_loss >= 0.2", operators=True) == "`log_loss >= 0.2`"
    assert cell("\x1b[31mred\x07") == "\\[31mred"  # control characters gone, the bracket escaped


def test_at_most_60_lines_whatever_the_input_and_names_escaped_in_context():
    nasty = "cls|<b>`x`\n"
    frame = pd.DataFrame({
        "label": ["a", "b", nasty] * 40,
        "p_a": [0.7, 0.2, 0.1] * 40, "p_b": [0.2, 0.7, 0.1] * 40, f"p_{nasty}": [0.1, 0.1, 0.8] * 40,
        "split": [f"s{i % 30}" for i in range(120)],
        "region": [nasty if i % 2 else "north" for i in range(120)],
    })
    evaluation = losslens.evaluate_runs([frame] * 12, names=[f"run {nasty} {i}" for i in range(12)], by=["region"])
    document = evaluation.to_dict()
    # Gates and comparisons as the CLI adds them, many of each.
    document["gates"] = {"passed": False, "n_failed": 40, "results": [
        {"expression": "log_loss > 0.1", "run": f"r{i}", "kind": "metric", "value": 0.5, "failed": True} for i in range(40)]}
    document["comparisons"] = [{"reference": "a", "candidate": f"c{i}", "paired": False, "log_loss_delta": 0.01,
                                "log_loss_delta_ci95": [-0.01, 0.03], "share_improved": None, "verdict": "worse"}
                               for i in range(30)]
    text = markdown_summary(document)
    lines = text.splitlines()
    assert len(lines) <= MAX_LINES
    assert "<b>" not in text and "&lt;b&gt;" in text
    assert "… and" in text  # it says what it left out
    for line in lines:
        if line.startswith("|"):
            # Every row of a table has as many unescaped pipes as the header row.
            assert len(re.findall(r"(?<!\\)\|", line)) in (10, 9, 5, 7)


def test_trend_summary():
    def doc(loss, night):  # each night names its own input, as real documents do (else: copies, skipped)
        return {"format_version": 1, "runs": [{"name": "r|1", "inputs": [f"n{night}.parquet"],
                                               "overall": {"log_loss": loss, "log_loss_ci95": [loss - 0.1, loss + 0.1]},
                                               "by_slice": {"ink": {"<i>": {"log_loss": loss, "log_loss_ci95": [loss - 0.1, loss + 0.1]}}}}]}

    trend = build_trend([(f"n{i}.json", doc(1.0 if i < 40 else 2.0, i)) for i in range(50)])
    text = markdown_summary(trend.to_dict())
    assert text.startswith("## losslens trend: 50 nights, n0 to n49")
    assert len(text.splitlines()) <= MAX_LINES
    assert "| n49 | r\\|1 | 2.0000 | 1.9000–2.1000 |" in text
    assert "ink=&lt;i&gt;" in text and "<i>" not in text
    assert "… and 40 more nights in the JSON" in text


def test_comparisons_and_gates_from_a_real_cli_document(tmp_path):
    old = pd.read_parquet(EXAMPLE)
    new = old.copy()
    columns = [c for c in old.columns if c.startswith("p_")]
    new[columns] = 0.8 * old[columns].to_numpy() + 0.2 / len(columns)
    old.to_parquet(tmp_path / "old.parquet", index=False)
    new.to_parquet(tmp_path / "new.parquet", index=False)
    proc = subprocess.run(
        [sys.executable, "-m", "losslens", "metrics", str(tmp_path / "old.parquet"),
         str(tmp_path / "new.parquet"), "--id", "id", "--fail-if", "validation.log_loss > 0.2", "--json", "-", "--quiet"],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1  # the gate fails for the smoothed run
    document = json.loads(proc.stdout)
    text = markdown_summary(document)
    comparison = document["comparisons"][0]
    low, high = comparison["log_loss_delta_ci95"]
    row = next(line for line in text.splitlines() if line.startswith("| new vs old |"))
    # As the terminal says it: signed deltas, the share improved in percent with one decimal.
    assert comparison["log_loss_delta_p_value_adjusted"] < 1e-300
    assert row == (f"| new vs old | yes | +{comparison['log_loss_delta']:.4f} | +{low:.4f} to +{high:.4f} | "
                   f"{100 * comparison['share_improved']:.1f}% | {comparison['verdict']} | "
                   "p &lt; 1e-300 | "  # p underflows to 0: said so, the "<" escaped as every cell's
                   f"{comparison['minimum_detectable_effect']:.4f} |")
    # Below the table: accuracy flips (McNemar) and the paired Brier and p(gold) deltas, as the terminal says them.
    details = next(line for line in text.splitlines() if line.startswith("- new: accuracy"))
    flips = comparison["mcnemar"]
    assert f"{flips['improved']} became right, {flips['worsened']} became wrong" in details
    assert f"Δ Brier {comparison['brier_score_delta']:+.4f} (95% CI {comparison['brier_score_delta_ci95'][0]:+.4f}" in details
    assert f"Δ p(gold) {comparison['p_gold_delta']:+.4f}" in details
    assert "**Gates: 1 failed**" in text
    failed = next(r for r in document["gates"]["results"] if r["failed"])
    # The gate's value with six significant digits, as the terminal's gate lines print it.
    assert f"| FAIL | `validation.log_loss > 0.2` | new | {failed['value']:.6g} |" in text


_names = st.text(min_size=0, max_size=30)


@settings(max_examples=40, deadline=None)
@given(runs=st.lists(st.tuples(_names, st.lists(_names, max_size=8), st.lists(st.tuples(_names, _names), max_size=15)),
                     min_size=1, max_size=8))
def test_any_document_gives_at_most_60_lines_and_no_markup(runs):
    document = {"format_version": 1, "runs": [
        {"name": name, "overall": {"log_loss": 0.5, "log_loss_ci95": [0.4, 0.6]},
         "by_split": {s: {"log_loss": 0.5} for s in splits},
         "warnings": [{"code": code, "scope": scope, "message": scope} for code, scope in warnings]}
        for name, splits, warnings in runs]}
    text = markdown_summary(document)
    assert len(text.splitlines()) <= MAX_LINES
    assert "<" not in text and ">" not in text.replace("&gt;", "")


# --------------------------------------------------------------------------- --markdown on metrics and report


def run_cli(*args, cwd=None, env=None):
    return subprocess.run([sys.executable, "-m", "losslens", *args], capture_output=True, text=True, timeout=120,
                          cwd=cwd, env=env)


def test_metrics_markdown_to_stdout_is_the_summary_of_its_json(tmp_path):
    proc = run_cli("metrics", str(EXAMPLE), "--by", "ink", "--json", str(tmp_path / "m.json"), "--markdown", "-",
                   "--fail-if", "validation.log_loss > 0.05")
    assert proc.returncode == 1  # the gate fails; every output is still written
    document = json.loads((tmp_path / "m.json").read_text())
    # Standard output holds the summary alone; the terminal text went to standard error.
    assert proc.stdout == markdown_summary(document)
    assert "scope" in proc.stderr and "gates: 1 FAILED" in proc.stderr
    failed = document["gates"]["results"][0]
    assert f"| FAIL | `validation.log_loss > 0.05` | digits\\_multiclass | {failed['value']:.6g} |" in proc.stdout


def test_report_markdown_file_equals_the_api_and_is_refused_over_an_input(tmp_path):
    out = tmp_path / "summary.md"
    proc = run_cli("report", str(EXAMPLE), "-o", str(tmp_path / "r.html"), "--markdown", str(out), "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "" and (tmp_path / "r.html").exists()
    expected = job_markdown(losslens.run_job([str(EXAMPLE)]))
    assert out.read_text() == expected and len(expected.splitlines()) <= MAX_LINES
    # The output-safety check every output passes: never over an input, nothing written.
    copy = tmp_path / "preds.csv"
    pd.read_parquet(EXAMPLE).to_csv(copy, index=False)
    before = copy.read_bytes()
    proc = run_cli("metrics", str(copy), "--markdown", str(copy), "--json", str(tmp_path / "x.json"))
    assert proc.returncode == 2 and proc.stderr.startswith(f"losslens: error: --markdown {copy}: is the input")
    assert copy.read_bytes() == before and not (tmp_path / "x.json").exists()
    proc = run_cli("metrics", str(copy), "--markdown", "-", "--json", "-")
    assert proc.returncode == 2 and "both write to standard output" in proc.stderr and proc.stdout == ""


def test_generated_at_is_in_the_json_only_when_pinned(tmp_path):
    import os

    env = {k: v for k, v in os.environ.items() if k != "SOURCE_DATE_EPOCH"}
    plain = run_cli("metrics", str(EXAMPLE), "--json", "-", "--quiet", env=env)
    assert "generated_at" not in json.loads(plain.stdout)
    pinned = run_cli("metrics", str(EXAMPLE), "--json", "-", "--quiet", "--generated-at", "2026-03-01T04:30:00+00:00",
                     env=env)
    document = json.loads(pinned.stdout)
    assert list(document)[:2] == ["format_version", "generated_at"] and document["generated_at"] == "2026-03-01T04:30:00Z"
    # Nothing else changes: the pinned document is the plain one plus that key.
    del document["generated_at"]
    assert document == json.loads(plain.stdout)
    # Two runs in two folders with the same command line (the page's footer shows it): the same bytes.
    runs = []
    for folder in (tmp_path / "a", tmp_path / "b"):
        folder.mkdir()
        runs.append(run_cli("report", str(EXAMPLE), "-o", "r.html", "--json", "-", "--quiet", cwd=folder,
                            env={**env, "SOURCE_DATE_EPOCH": "1772339400"}))
    # (56·365 + 14 leap days + 59) days · 86400 s + 4.5 h = 1772339400 s
    assert json.loads(runs[0].stdout)["generated_at"] == "2026-03-01T04:30:00Z"
    assert runs[0].stdout == runs[1].stdout
    assert (tmp_path / "a" / "r.html").read_bytes() == (tmp_path / "b" / "r.html").read_bytes()
    bad = run_cli("metrics", str(EXAMPLE), "--json", "-", "--generated-at", "yesterday", env=env)
    assert bad.returncode == 2 and bad.stdout == "" and "'yesterday' is not an ISO time" in bad.stderr


def test_language_model_documents_get_their_own_headline_columns(tmp_path):
    """Token files and lm-eval folders: the catalog's LM columns, warnings from the top-level list, paired deltas."""
    import numpy as np
    import pandas as pd

    from losslens.markdown import markdown_summary

    rng = np.random.default_rng(0)
    rows = [(f"doc{d}", float(np.log(rng.uniform(0.05, 0.9))), "ab") for d in range(40) for _ in range(30)]
    path = tmp_path / "tokens.parquet"
    pd.DataFrame(rows, columns=["doc_id", "logprob", "token"]).to_parquet(path)
    document = losslens.run_job([str(path)]).to_dict()
    text = markdown_summary(document)
    header = next(line for line in text.splitlines() if line.startswith("| run"))
    assert header == "| run | scope | documents | tokens | log loss | perplexity | bits/byte | memorised |"
    overall = document["runs"][0]["overall"]
    assert f"| tokens | overall | 40 | 1,200 | {overall['log_loss']:.4f} |" in text
    # One text of a single distinct token: its entropy is 0, never printed as "-0".
    assert "worse_than_prior" in text and " -0 bits" not in text

    fixtures = Path(__file__).parent / "data" / "lm_eval"
    both = losslens.run_job([str(fixtures / "base"), str(fixtures / "tuned")]).to_dict()
    text = markdown_summary(both)
    assert "| run | scope | acc | acc\\_norm |" in text
    assert "| tuned/zen\\_mc vs base/zen\\_mc | yes |" in text
    assert len(text.splitlines()) <= 60
