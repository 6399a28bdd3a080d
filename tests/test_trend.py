"""losslens.trend and `losslens trend`: ordering, trend_shift against hand-worked values, gates,
the trend JSON and page, bad input."""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import pytest

import losslens
from losslens.errors import InputError, UsageError
from losslens.html.trend import render_trend
from losslens.trend import build_trend, check_trend_gates, load_documents, natural_key, parse_trend_gates

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "example_data" / "digits_multiclass.parquet"
MOMENT = datetime(2026, 3, 31, tzinfo=timezone.utc)


_NIGHT = itertools.count(1)


def doc(loss, half, name="run", splits=None, slices=None, generated_at=None, warnings=(), **extra):
    """A minimal metrics document: one run with a log loss and its 95% interval (and more scopes).

    Each document names its own input file, as a real night's does (``inputs``): two nights
    with equal numbers are still two documents, not a copy (see test_trend_kinds.py).
    """
    def metrics(value, h):
        return {"log_loss": value, "log_loss_ci95": [value - h, value + h], **extra}

    run = {"name": name, "inputs": [f"preds-{next(_NIGHT)}.parquet"], "overall": metrics(loss, half),
           "warnings": list(warnings)}
    if splits:
        run["by_split"] = {k: metrics(*v) for k, v in splits.items()}
    if slices:
        run["by_slice"] = {col: {k: metrics(*v) for k, v in vals.items()} for col, vals in slices.items()}
    document = {"format_version": 1, "runs": [run]}
    if generated_at:
        document["generated_at"] = generated_at
    return document


def nights(*documents):
    return [(f"night-{i + 1}.json", d) for i, d in enumerate(documents)]


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "losslens", *args], capture_output=True, text=True, timeout=120, cwd=cwd)


# --------------------------------------------------------------------------- ordering


def test_natural_order_of_file_names_without_generated_at():
    documents = [(f"reports/night-{i}.json", doc(1.0, 0.1)) for i in (10, 2, 1)]
    trend = build_trend(documents)
    assert [n.label for n in trend.nights] == ["night-1", "night-2", "night-10"]
    assert [n.source for n in trend.nights] == ["reports/night-1.json", "reports/night-2.json", "reports/night-10.json"]
    assert natural_key("2026-03-09") < natural_key("2026-03-10")


def test_generated_at_orders_nights_and_labels_them_ties_by_file_name():
    documents = [
        ("b.json", doc(1.0, 0.1, generated_at="2026-03-02T04:30:00Z")),
        ("a.json", doc(1.0, 0.1, generated_at="2026-03-02T04:30:00+00:00")),  # the same moment
        ("c.json", doc(1.0, 0.1, generated_at="2026-03-01T04:30:00Z")),
    ]
    trend = build_trend(documents)
    assert [n.source for n in trend.nights] == ["c.json", "a.json", "b.json"]
    assert [n.label for n in trend.nights] == ["2026-03-01T04:30:00Z", "2026-03-02T04:30:00+00:00", "2026-03-02T04:30:00Z"]


def test_without_generated_at_in_every_document_file_names_decide():
    documents = [("n-2.json", doc(1.0, 0.1, generated_at="2026-01-01T00:00:00Z")), ("n-1.json", doc(1.0, 0.1))]
    # Order by file name; each night is still labelled by its generated_at where it has one.
    assert [n.source for n in build_trend(documents).nights] == ["n-1.json", "n-2.json"]
    assert [n.label for n in build_trend(documents).nights] == ["n-1", "2026-01-01T00:00:00Z"]


def test_equal_stems_in_two_folders_stay_two_nights():
    trend = build_trend([("a/n.json", doc(1.0, 0.1)), ("b/n.json", doc(1.0, 0.1))])
    assert [n.label for n in trend.nights] == ["n", "n (2)"]


# --------------------------------------------------------------------------- trend_shift


def test_shift_against_hand_worked_range():
    # Halves and losses are exact binary fractions, so the boundary case is exact.
    # Nights 1-3 are never checked; night 4 (1.0) is inside; night 5: median 1.0, allowed
    # 0.125 (its half) + 0.125 (median earlier half) = 0.25; 1.25 is on the edge (not a
    # shift: the test is strict), 1.375 on night 6 is outside: median of 1,1,1,1,1.25 = 1.
    trend = build_trend(nights(doc(1.0, 0.125), doc(3.0, 0.125), doc(1.0, 0.125), doc(1.0, 0.125),
                               doc(1.25, 0.125), doc(1.375, 0.125)))
    assert [(w.night, w.scope, w.value) for w in trend.shifts] == [("night-6", "overall", 1.375)]
    shift = trend.shifts[0]
    assert shift.expected == (0.75, 1.25)
    assert "above the range expected from the previous 5 nights" in shift.message


def test_first_three_nights_are_never_checked():
    trend = build_trend(nights(doc(1.0, 0.01), doc(9.0, 0.01), doc(0.1, 0.01)))
    assert trend.shifts == ()


def test_window_limits_the_earlier_nights():
    # With window 2, night 5 is compared with nights 3 and 4 (median 1.5: 2.0 is 0.5 away,
    # more than 0.1 + 0.1) and night 6 with nights 4 and 5 only (both 2.0): no shift.
    # With the default window night 6 sees 1,1,1,2,2, median 1, and 2.0 is far outside.
    documents = nights(doc(1, 0.1), doc(1, 0.1), doc(1, 0.1), doc(2, 0.1), doc(2, 0.1), doc(2, 0.1))
    assert [w.night for w in build_trend(documents, window=2).shifts] == ["night-4", "night-5"]
    assert [w.night for w in build_trend(documents).shifts] == ["night-4", "night-5", "night-6"]


def test_a_night_without_interval_is_not_checked():
    last = doc(5.0, 0.1)
    last["runs"][0]["overall"]["log_loss_ci95"] = [None, None]
    assert build_trend(nights(doc(1, 0.1), doc(1, 0.1), doc(1, 0.1), last)).shifts == ()


def test_shifts_checked_per_split_and_slice():
    quiet = {"splits": {"train": (0.1, 0.01), "validation": (0.5, 0.05)}, "slices": {"region": {"north": (0.3, 0.05), "a|<b>": (0.3, 0.05)}}}
    moved = {"splits": {"train": (0.1, 0.01), "validation": (0.9, 0.05)}, "slices": {"region": {"north": (0.3, 0.05), "a|<b>": (0.8, 0.05)}}}
    trend = build_trend(nights(*[doc(0.3, 0.02, **quiet) for _ in range(4)], doc(0.3, 0.02, **moved)))
    assert sorted(w.scope for w in trend.shifts) == ["region=a|<b>", "split=validation"]
    assert trend.moved[0].scope == "region=a|<b>" and trend.moved[0].change == pytest.approx(0.5, rel=1e-12)


def test_runs_matched_by_name_when_nights_have_several():
    def two(a, b):
        d = doc(a, 0.1, name="old")
        d["runs"].append(doc(b, 0.1, name="new")["runs"][0])
        return d

    trend = build_trend(nights(two(1, 1), two(1, 1), two(1, 1), two(1, 3)))
    assert trend.run_keys() == ("old", "new")
    assert [(w.run, w.scope) for w in trend.shifts] == [("new", "overall")]


def test_single_run_nights_are_one_series_whatever_their_names():
    trend = build_trend(nights(*[doc(1, 0.1, name=f"2026-03-0{i}") for i in range(1, 4)], doc(2, 0.1, name="2026-03-04")))
    assert trend.run_keys() == ("",)
    assert [(w.run, w.night) for w in trend.shifts] == [("2026-03-04", "night-4")]


# --------------------------------------------------------------------------- documents losslens wrote


@pytest.fixture(scope="module")
def digits_nights(tmp_path_factory):
    """Twelve nights of the bundled digits example, written with the CLI; the last two nights
    come from a degraded model (probabilities mixed half with uniform)."""
    folder = tmp_path_factory.mktemp("nights")
    frame = pd.read_parquet(EXAMPLE)
    columns = [c for c in frame.columns if c.startswith("p_")]
    for night in range(1, 13):
        sample = frame.sample(frac=0.9, random_state=night)
        if night >= 11:
            sample[columns] = 0.5 * sample[columns].to_numpy() + 0.5 / len(columns)
        sample.to_parquet(folder / f"preds-{night}.parquet", index=False)
        proc = run_cli("metrics", str(folder / f"preds-{night}.parquet"), "--by", "ink", "--quiet",
                       "--json", str(folder / f"night-{night}.json"))
        assert proc.returncode == 0, proc.stderr
    return folder


def test_cli_trend_on_digits_nights(digits_nights, tmp_path):
    paths = [str(p) for p in sorted(digits_nights.glob("night-*.json"))]
    out = tmp_path / "trend.html"
    proc = run_cli("trend", *paths, "-o", str(out), "--json", str(tmp_path / "trend.json"),
                   "--fail-on-warning", "trend_shift", "--generated-at", "2026-03-13T00:00:00Z")
    assert proc.returncode == 1, proc.stderr
    document = json.loads((tmp_path / "trend.json").read_text())
    assert document["kind"] == "trend" and document["format_version"] == 1
    assert [n["label"] for n in document["nights"]] == [f"night-{i}" for i in range(1, 13)]
    # Every night's numbers are the nightly document's, unchanged.
    first = json.loads((digits_nights / "night-1.json").read_text())["runs"][0]
    assert document["nights"][0]["runs"][0]["overall"]["log_loss"] == first["overall"]["log_loss"]
    assert document["nights"][0]["runs"][0]["by_split"]["validation"]["ece"] == first["by_split"]["validation"]["ece"]
    shifted = {(w["night"], w["scope"]) for w in document["warnings"] if w["code"] == "trend_shift"}
    assert {("night-11", "overall"), ("night-11", "split=validation"), ("night-12", "ink=light")} <= shifted
    assert {night for night, _ in shifted} == {"night-11", "night-12"}  # resampling noise alone never fires
    warning = next(w for w in document["warnings"] if w["code"] == "trend_shift")
    assert set(warning) == {"code", "night", "run", "scope", "message", "value", "expected"}
    # Nightly warnings come along, labelled with their night.
    assert any(w["code"] == "generalization_gap" and w["night"] == "night-1" for w in document["warnings"])
    assert document["gates"]["passed"] is False
    assert "gate failed" not in proc.stderr and "FAIL  warning trend_shift" in proc.stdout
    html = out.read_text()
    assert html.startswith("<!DOCTYPE html>") and "<script" not in html.lower()
    assert 'http-equiv="Content-Security-Policy"' in html
    # Log loss bands, the small multiples, the slices that moved, the warning strip.
    assert len(re.findall(r"<svg ", html)) == 4
    # Byte-identical for the same command (the footer shows it) and a pinned time.
    pages = []
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        run_cli("trend", *paths, "-o", "trend.html", "--generated-at", "2026-03-13T00:00:00Z", cwd=tmp_path / folder)
        pages.append((tmp_path / folder / "trend.html").read_bytes())
    assert pages[0] == pages[1]


def test_gates_look_at_the_latest_night(digits_nights, tmp_path):
    # Nights 1-11: the shift is on night 11, the latest; nights 1-10: no shift at all.
    paths = [str(digits_nights / f"night-{i}.json") for i in range(1, 11)]
    proc = run_cli("trend", *paths, "-o", str(tmp_path / "t.html"), "--fail-on-warning", "trend_shift", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    proc = run_cli("trend", *paths, "-o", str(tmp_path / "t.html"), "--fail-if", "validation.log_loss > 0.05", "--quiet")
    assert proc.returncode == 1
    latest = json.loads((digits_nights / "night-10.json").read_text())["runs"][0]
    value = latest["by_split"]["validation"]["log_loss"]
    # The run is named after its predictions file, as `losslens metrics` named it.
    assert proc.stderr == f"losslens: gate failed: validation.log_loss > 0.05 [run preds-10]: {value:.6g}\n"


def test_gate_helpers_reuse_losslens_gates():
    trend = build_trend(nights(doc(1, 0.1), doc(1, 0.1), doc(1, 0.1), doc(2, 0.1)))
    report = check_trend_gates(parse_trend_gates(["log_loss > 1.5"], ["trend_shift"]), trend)
    assert [(r.gate.expression, r.outcome, r.value) for r in report.results] == [
        ("log_loss > 1.5", "fail", 2.0), ("warning trend_shift", "fail", 1.0)]
    with pytest.raises(UsageError, match="unknown warning code"):
        parse_trend_gates((), ["trend_shfit"])
    with pytest.raises(UsageError, match="delta gates need --baseline"):
        check_trend_gates(parse_trend_gates(["delta.log_loss > 0.1"]), trend)
    # A metric the documents do not have is undefined, and fails (as for metrics runs).
    assert check_trend_gates(parse_trend_gates(["accuracy < 0.9"]), trend).results[0].outcome == "undefined"


# --------------------------------------------------------------------------- generic metrics


def test_language_model_and_many_class_documents_trend_generically():
    # A language-model style document: token-weighted metrics under other names.
    def lm(bpb, loss):
        return {"format_version": 1, "runs": [{"name": "lm", "inputs": [f"tokens-{next(_NIGHT)}.parquet"], "overall": {
            "log_loss": loss, "log_loss_ci95": [loss - 0.01, loss + 0.01], "bits_per_byte": bpb, "n_tokens": 1000,
            "perplexity": 2.0, "nested": {"ignored": 1}, "flag": True}, "by_split": {}, "warnings": []}]}

    trend = build_trend(nights(lm(1.1, 2.0), lm(1.2, 2.0), lm(1.1, 2.0), lm(1.3, 2.5)))
    assert trend.series("", "overall", "bits_per_byte") == [1.1, 1.2, 1.1, 1.3]
    assert "nested" not in trend.nights[0].runs[0]["overall"] and "flag" not in trend.nights[0].runs[0]["overall"]
    assert [w.scope for w in trend.shifts] == ["overall"]
    page = render_trend(trend, generated_at=MOMENT, command_line="losslens trend")
    assert "Log loss per night" in page


def test_many_class_documents(tmp_path):
    import numpy as np

    rng = np.random.default_rng(0)
    documents = []
    for night in range(4):
        logits = rng.normal(size=(400, 300))
        p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        y = rng.integers(0, 300, size=400)
        evaluation = losslens.evaluate(y, p, classes=list(range(300)))
        documents.append((f"n{night}.json", evaluation.to_dict()))
    trend = build_trend(documents)
    assert trend.series("", "overall", "log_loss") == [d["runs"][0]["overall"]["log_loss"] for _, d in documents]


# --------------------------------------------------------------------------- the page


def test_page_escapes_names_and_stays_small_for_a_year_of_nights():
    import random

    rng = random.Random(0)
    slices = [f"s{i}" for i in range(19)] + ["<script>alert(1)</script>"]
    documents = []
    for night in range(365):
        drift = 0.3 if night > 300 else 0.0
        documents.append((f"2025-{night:03d}.json", doc(
            0.4 + rng.gauss(0, 0.01) + drift, 0.02, name="nightly",
            splits={"train": (0.2 + rng.gauss(0, 0.01), 0.01), "validation": (0.5 + rng.gauss(0, 0.01) + drift, 0.03)},
            slices={"region": {s: (0.4 + rng.gauss(0, 0.02) + drift * (s == slices[-1]), 0.04) for s in slices}},
            warnings=[{"code": "prior_shift", "scope": "overall", "message": "m"}] if night % 50 == 0 else [],
            accuracy=0.9 + rng.gauss(0, 0.01), ece=0.02, kl_empirical_bits=0.01, label_entropy_bits=3.2,
        )))
    trend = build_trend(documents)
    page = render_trend(trend, generated_at=MOMENT, command_line="losslens trend <x>")
    assert len(page.encode()) < 1_000_000, len(page.encode())
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "losslens trend &lt;x&gt;" in page
    assert not re.search(r"(src|href)=\"https?:", page) and "@import" not in page
    assert render_trend(trend, generated_at=MOMENT, command_line="losslens trend <x>") == page


# --------------------------------------------------------------------------- bad input


def test_format_versions(tmp_path):
    newer = doc(1.0, 0.1)
    newer["format_version"] = 2  # same structure: read
    (tmp_path / "a.json").write_text(json.dumps(newer))
    assert load_documents([str(tmp_path / "a.json")])[0][1]["format_version"] == 2
    (tmp_path / "b.json").write_text(json.dumps({"format_version": 3, "nights": []}))
    with pytest.raises(InputError, match=re.escape(f"{tmp_path / 'b.json'}: format_version 3 document without runs")):
        load_documents([str(tmp_path / "b.json")])


@pytest.mark.parametrize("content, message", [
    ("not json", "not JSON"),
    (json.dumps({"kind": "trend", "format_version": 1, "nights": []}), "a trend document, not a metrics document"),
    (json.dumps([1, 2]), "not a JSON report written by losslens"),
])
def test_bad_documents_exit_2_with_one_line_and_no_output(tmp_path, content, message):
    (tmp_path / "good.json").write_text(json.dumps(doc(1.0, 0.1)))
    (tmp_path / "bad.json").write_text(content)
    out = tmp_path / "trend.html"
    out.write_text("earlier page")
    proc = run_cli("trend", str(tmp_path / "good.json"), str(tmp_path / "bad.json"), "-o", str(out),
                   "--json", str(tmp_path / "t.json"))
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and message in proc.stderr and str(tmp_path / "bad.json") in proc.stderr
    assert "Traceback" not in proc.stderr
    assert out.read_text() == "earlier page" and not (tmp_path / "t.json").exists()


def test_output_that_is_an_input_is_refused(tmp_path):
    night = doc(1.0, 0.1)
    (tmp_path / "n1.json").write_text(json.dumps(night))
    proc = run_cli("trend", str(tmp_path / "n1.json"), "--json", str(tmp_path / "n1.json"), "-o", str(tmp_path / "t.html"))
    # The check every command uses (losslens.output.check_outputs), so the message is theirs.
    assert proc.returncode == 2 and f"--json {tmp_path / 'n1.json'}: is the input" in proc.stderr
    assert json.loads((tmp_path / "n1.json").read_text()) == night
    # A quoted pattern: tonight's trend JSON must not be read as a night tomorrow.
    proc = run_cli("trend", str(tmp_path / "n*.json"), "--json", str(tmp_path / "n-trend.json"), "-o", str(tmp_path / "t.html"))
    assert proc.returncode == 2 and "matches the input pattern" in proc.stderr
    assert not (tmp_path / "n-trend.json").exists() and not (tmp_path / "t.html").exists()
    # Two documents on standard output would interleave.
    proc = run_cli("trend", str(tmp_path / "n1.json"), "--json", "-", "--markdown", "-", "-o", str(tmp_path / "t.html"))
    assert proc.returncode == 2 and "both write to standard output" in proc.stderr and proc.stdout == ""
    assert not (tmp_path / "t.html").exists()


def test_quoted_glob_and_markdown_to_stdout(tmp_path):
    for i in range(1, 5):
        (tmp_path / f"2026-03-0{i}.json").write_text(json.dumps(doc(1.0 if i < 4 else 2.0, 0.1)))
    proc = run_cli("trend", str(tmp_path / "2026-*.json"), "-o", str(tmp_path / "t.html"), "--markdown", "-")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("## losslens trend: 4 nights, 2026-03-01 to 2026-03-04")
    assert "`trend_shift`" in proc.stdout and "trend page written" in proc.stderr


def test_one_night_and_a_bad_window(tmp_path):
    (tmp_path / "n1.json").write_text(json.dumps(doc(1.0, 0.1, slices={"ink": {"light": (1.0, 0.1)}})))
    proc = run_cli("trend", str(tmp_path / "n1.json"), "-o", str(tmp_path / "t.html"), "--json", "-")
    assert proc.returncode == 0, proc.stderr
    document = json.loads(proc.stdout)
    assert [n["label"] for n in document["nights"]] == ["n1"] and document["moved_slices"] == []
    proc = run_cli("trend", str(tmp_path / "n1.json"), "-o", str(tmp_path / "u.html"), "--window", "0")
    assert proc.returncode == 2 and proc.stderr == "losslens: error: --window must be at least 1, got 0\n"
    assert not (tmp_path / "u.html").exists()


def test_nights_pinned_with_generated_at_are_ordered_by_it_not_by_name(tmp_path):
    # Files named against their order; the time each was pinned with decides (issue #13).
    for name, day in (("zeta", 1), ("alpha", 3), ("mid", 2)):
        proc = run_cli("metrics", str(EXAMPLE), "--quiet", "--json", str(tmp_path / f"{name}.json"),
                       "--generated-at", f"2026-03-0{day}T04:30:00Z")
        assert proc.returncode == 0, proc.stderr
    proc = run_cli("trend", str(tmp_path / "*.json"), "-o", str(tmp_path / "t.html"), "--json", "-")
    assert proc.returncode == 0, proc.stderr
    document = json.loads(proc.stdout)
    assert [n["source"].rsplit("/", 1)[-1] for n in document["nights"]] == ["zeta.json", "mid.json", "alpha.json"]
    assert [n["label"] for n in document["nights"]] == [f"2026-03-0{d}T04:30:00Z" for d in (1, 2, 3)]


def test_a_folder_or_missing_file_is_named_in_one_line(tmp_path):
    # The same reading as --baseline's (losslens.baseline.read_json_document).
    (tmp_path / "reports").mkdir()
    with pytest.raises(InputError, match=re.escape(f"{tmp_path / 'reports'}: is a folder; give a JSON file")):
        load_documents([str(tmp_path / "reports")])
    with pytest.raises(InputError, match=re.escape(f"{tmp_path / 'nope.json'}: no such file")):
        load_documents([str(tmp_path / "nope.json")])
    (tmp_path / "x.json").write_text("{")
    with pytest.raises(InputError, match=r"x\.json: not JSON \(.*\); give JSON written by losslens --json$"):
        load_documents([str(tmp_path / "x.json")])


def test_gates_read_a_language_model_nights_own_metrics(tmp_path):
    # Gates take a run's metrics from its layout: the nights of a token run are gated on
    # bits per byte, not refused as "classifier runs have no bits_per_byte".
    for night, logprob in (("n1", [-1.0, -2.0, -0.5]), ("n2", [-1.5, -2.0, -0.75])):
        frame = pd.DataFrame({"doc_id": [7, 7, 8], "token": ["a", "b", "c"], "logprob": logprob})
        frame.to_parquet(tmp_path / f"{night}.parquet")
        done = subprocess.run([sys.executable, "-m", "losslens", "metrics", str(tmp_path / f"{night}.parquet"),
                               "--json", str(tmp_path / f"{night}.json"), "-q"], capture_output=True, text=True,
                              cwd=tmp_path)
        assert done.returncode == 0, done.stderr

    def trend(*gate):
        return subprocess.run([sys.executable, "-m", "losslens", "trend", str(tmp_path / "n1.json"),
                               str(tmp_path / "n2.json"), "--json", str(tmp_path / "t.json"), "-q", *gate],
                              capture_output=True, text=True, cwd=tmp_path)  # trend.html goes to cwd

    # The latest night: 4.25 nats over 3 one-byte tokens = 4.25 / (3 ln 2) ≈ 2.04 bits per byte.
    assert trend("--fail-if", "bits_per_byte > 3").returncode == 0
    failed = trend("--fail-if", "bits_per_byte > 2")
    assert failed.returncode == 1, failed.stderr
    runs = json.loads((tmp_path / "t.json").read_text())["nights"][-1]["runs"]
    assert runs[0]["layout_kind"] == "tokens"
