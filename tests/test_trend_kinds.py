"""Trends and baselines over documents of every kind: a week of lm-eval nights, copies of a
night in the nightly folder, lm-eval baselines from another checkpoint, and the markdown
summary appended to ``$GITHUB_STEP_SUMMARY`` (issues 18 and 19).

The nights are made as a nightly job makes them: lm-evaluation-harness output folders (the
n-gram checkpoint in ``tests/data/lm_eval``, its per-choice log-likelihoods perturbed a
little each night and much on the last) run through ``losslens metrics --json``.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from losslens.baseline import compare_with_baseline, load_baseline
from losslens.json_documents import document_runs
from losslens.errors import InputError
from losslens.html.trend import render_trend
from losslens.markdown import trend_markdown
from losslens.trend import build_trend, check_trend_gates, load_documents, parse_trend_gates

DATA = Path(__file__).resolve().parent / "data" / "lm_eval"
TUNED = DATA / "tuned" / "zen-ngram-tuned"
BASE = DATA / "base" / "zen-ngram-base"
DAYS = [f"2026-03-0{d}" for d in range(1, 8)]
#: The last night's regression: the right answer's log-likelihood lowered by this many nats,
#: and every document's log-likelihood of the rolling task multiplied by this.
DROP = 6.0
SCALE = 1.5


def losslens(*args, cwd=None, env=None):
    return subprocess.run([sys.executable, "-m", "losslens", *map(str, args)], capture_output=True, text=True,
                          timeout=180, cwd=cwd, env=env)


def _perturb(record: dict, shift: float) -> dict:
    """A multiple-choice record with ``shift`` added to the right answer's log-likelihood.

    lm-eval's own per-record ``acc`` / ``acc_norm`` are recomputed as lm-eval does (argmax of
    the log-likelihoods, of the log-likelihoods per byte of the choice), so that the record
    stays what lm-eval would have written for such a model.
    """
    label = int(record["doc"]["label"])
    lls = [float(r[0]) + (shift if i == label else 0.0) for i, r in enumerate(record["filtered_resps"])]
    record["filtered_resps"] = [[repr(ll), r[1]] for ll, r in zip(lls, record["filtered_resps"])]
    record["resps"] = [[[repr(ll), r[0][1]]] for ll, r in zip(lls, record["resps"])]
    choices = [a["arg_1"] for a in record["arguments"].values()]
    per_byte = [ll / len(c.encode("utf-8")) for ll, c in zip(lls, choices)]
    record["acc"] = float(max(range(len(lls)), key=lls.__getitem__) == label)
    record["acc_norm"] = float(max(range(len(lls)), key=per_byte.__getitem__) == label)
    return record


def _scale(record: dict, scale: float) -> dict:
    """A rolling (perplexity) record with its document's log-likelihood multiplied by ``scale``."""
    ll = float(record["filtered_resps"][0]) * scale
    record["filtered_resps"], record["resps"] = [repr(ll)], [[repr(ll)]]
    for name in record["metrics"]:
        record[name] = [ll, record[name][1]]
    return record


def _rewrite(folder: Path, task: str, change) -> list[dict]:
    (path,) = folder.glob(f"samples_{task}_*.jsonl")
    records = [change(json.loads(line)) for line in path.read_text().splitlines() if line.strip()]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return records


def make_night(folder: Path, shift: float, scale: float = 1.0) -> dict[str, list[dict]]:
    """The tuned checkpoint's lm-eval output in ``folder``, perturbed; its zen_mc and stdlib_docs records."""
    shutil.copytree(TUNED, folder)
    return {"zen_mc": _rewrite(folder, "zen_mc", lambda r: _perturb(r, shift)),
            "stdlib_docs": _rewrite(folder, "stdlib_docs", lambda r: _scale(r, scale))}


def hand_accuracy(records: list[dict]) -> float:
    """acc of multiple-choice records from their log-likelihoods: the share whose argmax is the label."""
    hits = [max(range(len(r["filtered_resps"])), key=lambda i: float(r["filtered_resps"][i][0])) == r["doc"]["label"]
            for r in records]
    return sum(hits) / len(hits)


@pytest.fixture(scope="module")
def week(tmp_path_factory):
    """Seven nights of one checkpoint (``zen-ngram``), each written by ``losslens metrics --json``.

    Nights 1-6 move its zen_mc log-likelihoods by a few hundredths of a nat; night 7 lowers
    the right answer's by :data:`DROP` nats. Returns the folder with ``reports/DAY.json`` and
    the zen_mc records of each night.
    """
    root = tmp_path_factory.mktemp("week")
    (root / "reports").mkdir()
    records = {}
    for i, day in enumerate(DAYS):
        last = i == len(DAYS) - 1
        records[day] = make_night(root / "lm_eval" / day / "zen-ngram", -DROP if last else 0.02 * (i % 3) - 0.02,
                                  SCALE if last else 1.0 + 0.002 * i)
        done = losslens("metrics", root / "lm_eval" / day / "zen-ngram", "--json", root / "reports" / f"{day}.json",
                        "--generated-at", f"{day}T04:30:00Z", "-q")
        assert done.returncode == 0, done.stderr
    return root, records


# --------------------------------------------------------------------------- one reader of documents


def test_every_kind_of_document_reads_into_one_shape(week):
    root, _ = week
    document = json.loads((root / "reports" / DAYS[0]).with_suffix(".json").read_text())
    assert document["format_version"] == 3 and "tasks" not in document  # lm-eval tasks are runs
    runs = {r["name"]: r for r in document_runs(document, "night.json")}
    assert sorted(runs) == [f"zen-ngram/{t}" for t in ("stdlib_docs", "zen_lambada", "zen_mc", "zen_mc2", "zen_mc4")]
    mc = runs["zen-ngram/zen_mc"]
    assert (mc["kind"], mc["layout_kind"], mc["task"], mc["output_type"]) == (
        "multiple_choice", "multiple_choice", "zen_mc", "multiple_choice")
    assert runs["zen-ngram/stdlib_docs"]["layout_kind"] == "sequences"
    # A version-2 document (tasks with lm-eval's metrics and an inner run) reads into the same
    # shape: lm-eval's metrics over the inner classifier run's, acc and the interval both there.
    old = json.loads((Path(__file__).parent / "data" / "json_v2" / "lm_eval.json").read_text())
    task = next(t for t in old["tasks"] if t["task"] == "zen_mc")
    mc = next(r for r in document_runs(old, "v2.json") if r.get("task") == "zen_mc")
    assert (mc["kind"], mc["layout_kind"], mc["name"]) == ("multiple_choice", "multiple_choice", "base/zen_mc")
    assert mc["overall"]["acc"] == task["metrics"]["acc"]
    assert mc["overall"]["log_loss_ci95"] == task["classifier"]["overall"]["log_loss_ci95"]
    rolling = next(r for r in document_runs(old, "v2.json") if r.get("task") == "stdlib_docs")
    assert rolling["overall"]["bits_per_byte"] == next(
        t for t in old["tasks"] if t["task"] == "stdlib_docs")["metrics"]["bits_per_byte"]
    # A null among lm-eval's metrics never hides the inner run's number.
    rolling = {"format_version": 2, "kind": "lm_eval", "tasks": [{
        "name": "ck/docs", "task": "docs", "output_type": "loglikelihood_rolling", "metrics": {"log_loss": None},
        "warnings": [], "language_model": {"overall": {"log_loss": 2.5, "log_loss_ci95": [2.4, 2.6]}}}]}
    assert document_runs(rolling, "x")[0]["overall"]["log_loss"] == 2.5


def task_metric(document, task, name):
    return next(r for r in document["runs"] if r.get("task") == task)["overall"][name]


def test_baseline_and_trend_refuse_alike(tmp_path):
    # One reader: a trend document given as --baseline is named for what it is, as trend names it.
    trend_doc = tmp_path / "trend.json"
    trend_doc.write_text(json.dumps({"format_version": 1, "kind": "trend", "nights": []}))
    with pytest.raises(InputError, match=re.escape(f"--baseline {trend_doc}: a trend document, not a metrics document")):
        load_baseline(str(trend_doc))
    with pytest.raises(InputError, match=re.escape(f"{trend_doc}: a trend document, not a metrics document")):
        load_documents([str(trend_doc)])
    bad_task = tmp_path / "bad.json"
    bad_task.write_text(json.dumps({"format_version": 2, "kind": "lm_eval", "tasks": [{"name": "a/b"}]}))
    for call, shown in ((lambda: load_baseline(str(bad_task)), f"--baseline {bad_task}"),
                        (lambda: load_documents([str(bad_task)]), str(bad_task))):
        with pytest.raises(InputError, match=re.escape(f"{shown}: tasks[0] has no name or metrics")):
            call()


# --------------------------------------------------------------------------- a week of lm-eval nights


def test_a_week_of_lm_eval_nights_gives_a_trend_with_a_shift(week, tmp_path):
    root, records = week
    done = losslens("trend", root / "reports" / "*.json", "-o", tmp_path / "t.html", "--json", tmp_path / "t.json",
                    "--markdown", tmp_path / "t.md")
    assert done.returncode == 0, done.stderr
    trend = json.loads((tmp_path / "t.json").read_text())
    assert [n["label"] for n in trend["nights"]] == [f"{d}T04:30:00Z" for d in DAYS]
    runs = {r["name"]: r for r in trend["nights"][-1]["runs"]}
    assert runs["zen-ngram/zen_mc"]["layout_kind"] == "multiple_choice"
    assert runs["zen-ngram/zen_lambada"]["layout_kind"] == "loglikelihood"
    # The trend carries each night's own numbers.
    last = json.loads((root / "reports" / f"{DAYS[-1]}.json").read_text())
    assert runs["zen-ngram/zen_mc"]["overall"]["log_loss"] == task_metric(last, "zen_mc", "log_loss")
    shifts = {w["run"]: w for w in trend["warnings"] if w["code"] == "trend_shift"}
    assert sorted(shifts) == ["zen-ngram/stdlib_docs", "zen-ngram/zen_mc"]
    assert {(w["night"], w["scope"]) for w in shifts.values()} == {(f"{DAYS[-1]}T04:30:00Z", "overall")}
    assert shifts["zen-ngram/zen_mc"]["value"] == task_metric(last, "zen_mc", "log_loss")
    assert shifts["zen-ngram/zen_mc"]["message"].startswith("log loss ")
    # A rolling task has no log loss: its bits per byte is followed, by hand -sum(ll) / (bytes ln 2).
    rolling = records[DAYS[-1]]["stdlib_docs"]
    bits = -sum(float(r["filtered_resps"][0]) for r in rolling) / (sum(r["bits_per_byte"][1] for r in rolling) * math.log(2))
    assert shifts["zen-ngram/stdlib_docs"]["value"] == pytest.approx(bits, rel=1e-12)  # summed in another order
    assert shifts["zen-ngram/stdlib_docs"]["message"].startswith("bits/byte ")
    page = (tmp_path / "t.html").read_text()
    assert "zen-ngram/zen_mc" in page and "trend_shift" in page
    assert "Bits per byte per night (run zen-ngram/stdlib_docs)" in page
    assert "per night (run zen-ngram/zen_lambada)" not in page  # nothing with an interval to draw
    # The nights table (page and markdown) shows lm-eval's figures where runs have them.
    markdown = (tmp_path / "t.md").read_text()
    assert "| acc | acc\\_norm | perplexity | bits/byte | warnings | trend shifts |" in markdown


def test_gates_on_the_latest_lm_eval_night(week, tmp_path):
    root, records = week
    reports = root / "reports"
    done = losslens("trend", reports / "*.json", "-o", tmp_path / "t.html", "--json", tmp_path / "t.json", "-q",
                    "--fail-if", "acc < 0.5")
    assert done.returncode == 1, done.stderr
    results = {r["run"]: r for r in json.loads((tmp_path / "t.json").read_text())["gates"]["results"]}
    # acc of the last night's zen_mc from its log-likelihoods, by hand.
    expected = hand_accuracy(records[DAYS[-1]]["zen_mc"])
    assert expected < 0.5 < hand_accuracy(records[DAYS[0]]["zen_mc"])
    assert results["zen-ngram/zen_mc"]["value"] == pytest.approx(expected, abs=1e-15)
    assert results["zen-ngram/zen_mc"]["outcome"] == "fail"
    assert "zen-ngram/stdlib_docs" not in results  # a rolling task has no acc: not gated on it
    assert "gate failed: acc < 0.5 [run zen-ngram/zen_mc]" in done.stderr
    done = losslens("trend", reports / "*.json", "-o", tmp_path / "t.html", "-q", "--fail-on-warning", "trend_shift")
    assert done.returncode == 1 and "[run zen-ngram/zen_mc]" in done.stderr
    # The six quiet nights alone pass the same gate.
    quiet = [reports / f"{d}.json" for d in DAYS[:-1]]
    done = losslens("trend", *quiet, "-o", tmp_path / "q.html", "-q", "--fail-on-warning", "trend_shift")
    assert done.returncode == 0, done.stderr


# --------------------------------------------------------------------------- copies in the nightly folder


def _without_time(source: Path, target: Path) -> None:
    document = json.loads(source.read_text())
    document.pop("generated_at", None)  # what a night written without --generated-at holds
    target.write_text(json.dumps(document, indent=2))


def test_a_baseline_copied_into_the_nightly_folder_is_not_the_latest_night(week, tmp_path):
    # The old recipe: nights without generated_at, named by date, and the last good night copied
    # to reports/baseline.json -- which sorts after the dates.
    root, _ = week
    reports = tmp_path / "reports"
    reports.mkdir()
    for day in DAYS:
        _without_time(root / "reports" / f"{day}.json", reports / f"{day}.json")
    shutil.copy(reports / f"{DAYS[4]}.json", reports / "baseline.json")  # nights 6 and 7 failed their gates
    done = losslens("trend", reports / "*.json", "-o", tmp_path / "t.html", "--json", tmp_path / "t.json",
                    "--fail-on-warning", "trend_shift")
    assert done.returncode == 1, done.stderr  # the real latest night regressed
    trend = json.loads((tmp_path / "t.json").read_text())
    assert [n["label"] for n in trend["nights"]] == DAYS
    note = f"{reports / 'baseline.json'}: a copy of {reports / (DAYS[4] + '.json')} (the same content); skipped"
    assert trend["notes"][0].startswith(note)
    assert f"note: {note}" in done.stderr
    assert "baseline.json: a copy of" in (tmp_path / "t.html").read_text()


def test_the_same_runs_and_generated_at_is_a_copy_other_keys_aside():
    def night(loss, **extra):
        return {"format_version": 2, "generated_at": "2026-03-02T04:30:00Z", **extra,
                "runs": [{"name": "r", "inputs": ["p.parquet"], "overall": {"log_loss": loss}}]}

    trend = build_trend([("a/2026-03-02.json", night(1.0)), ("a/keep.json", night(1.0, gates={"passed": True})),
                         ("a/other.json", night(2.0))])
    assert [n.source for n in trend.nights] == ["a/2026-03-02.json", "a/other.json"]
    assert trend.notes == ("a/keep.json: a copy of a/2026-03-02.json (the same runs and generated_at); skipped, so "
                           "that it is not taken for another night (keep baselines out of the nightly folder)",)


def test_a_copied_classifier_night_does_not_hide_the_regression():
    # The same on classifier nights: without the copy skipped, baseline.json (night 5, which
    # sorts after the dates) would be the latest night and the trend_shift gate would pass.
    def night(day, loss):
        return (f"reports/2026-03-0{day}.json", {"format_version": 2, "runs": [{
            "name": f"2026-03-0{day}", "inputs": [f"predictions/2026-03-0{day}.parquet"],
            "overall": {"log_loss": loss, "log_loss_ci95": [loss - 0.01, loss + 0.01]}, "warnings": []}]})

    nights = [night(d, 0.30 + 0.001 * d) for d in range(1, 6)] + [night(6, 0.5), night(7, 0.6)]
    trend = build_trend(nights + [("reports/baseline.json", nights[4][1])])
    assert [n.label for n in trend.nights] == [f"2026-03-0{d}" for d in range(1, 8)]
    report = check_trend_gates(parse_trend_gates(fail_on_warning=["trend_shift"]), trend)
    assert not report.passed and [r.run for r in report.failures] == ["2026-03-07"]


def test_nights_placed_by_file_name_say_so_when_some_have_a_time():
    def night(loss, stamp=None):
        document = {"format_version": 2, "runs": [{"name": "r", "inputs": [f"{loss}.parquet"], "overall": {"log_loss": loss}}]}
        return {**document, "generated_at": stamp} if stamp else document

    trend = build_trend([("n1.json", night(1.0, "2026-03-09T00:00:00Z")), ("n2.json", night(2.0))])
    assert [n.source for n in trend.nights] == ["n1.json", "n2.json"]
    assert trend.notes == ("1 document without generated_at (e.g. n2.json): every night is placed by the order of "
                           "its file name",)


# --------------------------------------------------------------------------- the trend markdown


def test_markdown_counts_each_nights_trend_shifts(week):
    root, _ = week
    trend = build_trend(load_documents([str(root / "reports" / f"{d}.json") for d in DAYS]))
    text = trend_markdown(trend.to_dict())
    header = next(line for line in text.splitlines() if line.startswith("| night |"))
    assert header.endswith("| warnings | trend shifts |")
    rows = [line for line in text.splitlines() if line.startswith(f"| {DAYS[-1]}T04:30:00Z | ")]
    shifts = {row.split(" | ")[1]: row.rstrip(" |").rsplit(" | ", 1)[1] for row in rows}
    assert shifts == {"zen-ngram/stdlib\\_docs": "1", "zen-ngram/zen\\_lambada": "0", "zen-ngram/zen\\_mc": "1",
                      "zen-ngram/zen\\_mc2": "0", "zen-ngram/zen\\_mc4": "0"}
    # With several runs a night, each warning names its run.
    assert f"- `trend_shift` {DAYS[-1]}T04:30:00Z run zen-ngram/zen\\_mc [overall]: log loss " in text


def _unescape(text: str) -> str:
    return re.sub(r"\\([\\`*_\[\]|#~])", r"\1", text).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def test_markdown_never_cuts_a_message_mid_word():
    # A long word across column 200, where the summary's messages are cut.
    message = "log loss 2.5000 is above " + "the range " * 17 + "overconfidently miscalibrated night; check it"
    assert message[198] != " " and message[199] != " "
    document = {"format_version": 1, "kind": "trend", "window": 7, "moved_slices": [],
                "nights": [{"label": "n1", "runs": [{"name": "r", "overall": {}, "warnings": []}]}],
                "warnings": [{"code": "trend_shift", "night": "n1", "run": "r", "scope": "overall", "message": message}]}
    (line,) = [ln for ln in trend_markdown(document).splitlines() if ln.startswith("- `trend_shift`")]
    shown = _unescape(line.split(": ", 1)[1])
    assert shown.endswith("…") and len(shown) <= 200
    kept = shown[:-1]
    assert message.startswith(kept) and (kept.endswith(" ") or message[len(kept)] == " ")


# --------------------------------------------------------------------------- lm-eval baselines across checkpoints


@pytest.fixture(scope="module")
def base_document(tmp_path_factory):
    path = tmp_path_factory.mktemp("base") / "base.json"
    done = losslens("metrics", BASE, "--json", path, "-q")
    assert done.returncode == 0, done.stderr
    return path


def test_a_baseline_from_another_checkpoints_folder_matches_by_task(base_document, tmp_path):
    done = losslens("metrics", TUNED, "--baseline", base_document, "--json", tmp_path / "t.json")
    assert done.returncode == 0, done.stderr
    document = json.loads((tmp_path / "t.json").read_text())
    baseline = document["baseline"]
    assert baseline["unmatched_runs"] == []
    pairs = {r["run"]: r["baseline_run"] for r in baseline["runs"]}
    assert pairs == {f"zen-ngram-tuned/{t}": f"zen-ngram-base/{t}"
                     for t in ("stdlib_docs", "zen_lambada", "zen_mc", "zen_mc2", "zen_mc4")}
    assert baseline["notes"] == ["no run of the baseline has the name of a run of this job: 5 lm-eval run(s) "
                                 "matched by task name instead, e.g. zen-ngram-tuned/stdlib_docs with "
                                 "zen-ngram-base/stdlib_docs"]
    assert "note: no run of the baseline has the name" in done.stdout
    base = json.loads(base_document.read_text())
    mc = next(r for r in baseline["runs"] if r["run"] == "zen-ngram-tuned/zen_mc")["overall"]["log_loss"]
    assert mc["baseline"] == task_metric(base, "zen_mc", "log_loss")
    assert mc["current"] == task_metric(document, "zen_mc", "log_loss")


def test_task_matching_leaves_ambiguous_and_other_tasks_unmatched(base_document, tmp_path):
    from losslens.lm.lm_eval import evaluate_lm_eval

    evaluation = evaluate_lm_eval([str(TUNED)], names=["tonight"])
    # A baseline holding two checkpoints: which one's zen_mc? Not compared, and said so.
    both = tmp_path / "both.json"
    done = losslens("metrics", BASE, TUNED, "--json", both, "-q")
    assert done.returncode == 0, done.stderr
    compared = compare_with_baseline(evaluation, load_baseline(str(both)), str(both))
    assert compared.runs == () and len(compared.unmatched) == 5
    assert compared.notes[0].startswith("tonight/stdlib_docs, tonight/zen_lambada, ")
    assert compared.notes[0].endswith("the baseline holds this task for several checkpoints; not compared "
                                      "(give a baseline of one checkpoint)")
    # A baseline of one task is no baseline for the others.
    one = json.loads(base_document.read_text())
    one["runs"] = [r for r in one["runs"] if r["task"] == "zen_mc"]
    (tmp_path / "one.json").write_text(json.dumps(one))
    compared = compare_with_baseline(evaluation, load_baseline(str(tmp_path / "one.json")), "one.json")
    assert [(r.run, r.baseline_run) for r in compared.runs] == [("tonight/zen_mc", "zen-ngram-base/zen_mc")]
    assert len(compared.unmatched) == 4


# --------------------------------------------------------------------------- $GITHUB_STEP_SUMMARY


def test_markdown_is_appended_to_the_step_summary(week, base_document, tmp_path, monkeypatch):
    root, _ = week
    summary = tmp_path / "step_summary.md"
    summary.write_text("## Tests\n\n42 passed")  # an earlier command of the step, no final newline
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    done = losslens("metrics", TUNED, "--baseline", base_document, "--markdown", summary, "-q")
    assert done.returncode == 0, done.stderr
    done = losslens("trend", root / "reports" / "*.json", "-o", tmp_path / "t.html", "--markdown", summary)
    assert done.returncode == 0, done.stderr
    assert f"markdown summary appended to {summary}" in done.stderr
    text = summary.read_text()
    assert text.startswith("## Tests\n\n42 passed\n\n## losslens: zen-ngram-tuned/")
    assert "\n\n## losslens trend: 7 nights" in text and text.count("## losslens") == 2
    # Another file is replaced as before: whole or not at all.
    other = tmp_path / "comment.md"
    other.write_text("old comment\n")
    done = losslens("trend", root / "reports" / "*.json", "-o", tmp_path / "t.html", "--markdown", other, "-q")
    assert done.returncode == 0 and other.read_text().startswith("## losslens trend: 7 nights")


def test_write_markdown_appends_only_to_the_step_summary(tmp_path, monkeypatch):
    from losslens.output import write_markdown

    summary = tmp_path / "sub" / "summary.md"
    summary.parent.mkdir()
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    assert write_markdown(summary, "## a\n") == "appended to"  # created when the step wrote nothing yet
    link = tmp_path / "link.md"
    link.symlink_to(summary)  # the same file by another path
    assert write_markdown(link, "## b\n") == "appended to"
    assert summary.read_text() == "## a\n\n## b\n" and link.is_symlink()
    other = tmp_path / "other.md"
    other.write_text("old\n")
    assert write_markdown(other, "## c\n") == "written to" and other.read_text() == "## c\n"
    monkeypatch.delenv("GITHUB_STEP_SUMMARY")
    assert write_markdown(summary, "## d\n") == "written to" and summary.read_text() == "## d\n"


def test_lm_eval_nights_named_by_date_form_one_series_per_task(week, tmp_path):
    # A nightly job that names its runs by date (--name "$day"): every night's runs are called
    # "<day>/<task>"; each task's nights are still one series, so the regression is found.
    root, _ = week
    for day in DAYS:
        document = json.loads((root / "reports" / f"{day}.json").read_text())
        for run in document["runs"]:
            run["name"] = f"{day}/{run['task']}"
        (tmp_path / f"{day}.json").write_text(json.dumps(document))
    trend = build_trend(load_documents([str(tmp_path / f"{day}.json") for day in DAYS]))
    assert trend.by_task and trend.run_keys() == ("stdlib_docs", "zen_lambada", "zen_mc", "zen_mc2", "zen_mc4")
    assert sorted((w.night, w.run) for w in trend.shifts) == [
        (f"{DAYS[-1]}T04:30:00Z", f"{DAYS[-1]}/stdlib_docs"), (f"{DAYS[-1]}T04:30:00Z", f"{DAYS[-1]}/zen_mc")]
    assert [v is not None for v in trend.series("zen_mc", "overall", "log_loss")] == [True] * 7
    page = render_trend(trend, generated_at=datetime(2026, 3, 8, tzinfo=timezone.utc), command_line="losslens trend")
    assert f"Log loss per night (run {DAYS[-1]}/zen_mc)" in page
    # Two checkpoints a night: runs are matched by their full names again.
    both = json.loads((root / "reports" / f"{DAYS[0]}.json").read_text())
    other = json.loads(json.dumps(both))
    for run in other["runs"]:
        run["name"] = f"other/{run['task']}"
    both["runs"] += other["runs"]
    trend = build_trend([("n1.json", both), ("n2.json", {**both, "generated_at": "2026-03-09T00:00:00Z"})])
    assert not trend.by_task and "other/zen_mc" in trend.run_keys() and "zen-ngram/zen_mc" in trend.run_keys()
