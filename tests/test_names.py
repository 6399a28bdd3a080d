"""Names shortened as a set (formatting.shorten_names): different names never print alike.

The terminal cuts run, task, scope and class names to its width. Cut one at a time at the end,
``zen-ngram-base/zen_loglikelihood`` and ``zen-ngram-base/zen_loglikelihood_rolling`` (or two
checkpoints that differ in the middle of a path) printed the same; these tests hold the set
function to its promise, and the terminal and markdown to using it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from losslens import formatting as fmt
from losslens import terminal
from losslens.lm import evaluate_lm_eval
from losslens.markdown import job_markdown

DATA = Path(__file__).parent / "data" / "lm_eval"


def _check(names, limit):
    shown = fmt.shorten_names(names, limit)
    limit = max(limit, fmt.MIN_NAME_WIDTH)
    assert set(shown) == {str(n) for n in names}
    values = list(shown.values())
    assert len(set(values)) == len(values), shown  # different names stay different
    for name, text in shown.items():
        assert fmt.width(text) <= limit or fmt.width(fmt.visible(name)) <= limit
        assert text.isprintable() or set(text) <= set(fmt.visible(name)), text  # no raw control character
        if fmt.width(fmt.visible(name)) <= limit:
            assert text == fmt.visible(name)  # a name that fits is kept whole
    return shown


def test_loglikelihood_and_rolling_print_differently():
    shown = _check(["zen-ngram-base/zen_loglikelihood", "zen-ngram-base/zen_loglikelihood_rolling"], 20)
    assert shown["zen-ngram-base/zen_loglikelihood"] == "…zen_loglikelihood"  # the last part of the path whole
    assert shown["zen-ngram-base/zen_loglikelihood_rolling"].endswith("_rolling")
    # One at a time, at the end, they did not.
    assert fmt.name("zen-ngram-base/zen_loglikelihood", 20) == fmt.name("zen-ngram-base/zen_loglikelihood_rolling", 20)


def test_the_shared_beginning_is_dropped_at_a_separator():
    shown = _check(["zen-ngram-base/zen_ll", "zen-ngram-base/zen_rolling", "zen-ngram-tuned/zen_ll"], 14)
    assert shown == {"zen-ngram-base/zen_ll": "…base/zen_ll", "zen-ngram-base/zen_rolling": "…base…_rolling",
                     "zen-ngram-tuned/zen_ll": "…tuned/zen_ll"}


def test_names_that_differ_in_the_middle_show_where():
    names = ["checkpoints/run-a/step1000/out/arc_easy", "checkpoints/run-a/step2000/out/arc_easy", "mmlu",
             "checkpoints/run-a/step1000/out/arc_challenge"]
    shown = _check(names, 18)
    assert "1000" in shown[names[0]] and "2000" in shown[names[1]] and shown["mmlu"] == "mmlu"
    assert shown[names[0]].endswith("arc_easy") and shown[names[3]].endswith("challenge")
    # A shared end: the beginning that tells them apart is kept.
    shown = _check(["alpha-model/" + "x" * 40, "beta-model/" + "x" * 40], 16)
    assert [v[:2] for v in shown.values()] == ["al", "be"]


def test_wide_characters_count_two_columns_and_controls_are_escaped():
    names = ["日本語の長いモデル名前/タスク1", "日本語の長いモデル名前/タスク2", "run\x1b[31m\x07" * 4, "a\u202eb" * 10]
    shown = _check(names, 14)
    assert shown[names[0]].endswith("タスク1") and shown[names[1]].endswith("タスク2")
    assert "\x1b" not in shown[names[2]] and "\x07" not in shown[names[2]] and "\\x" in shown[names[2]]
    assert "\u202e" not in shown[names[3]]


def test_the_last_resort_keeps_them_apart_with_a_hash():
    names = [f"{'x' * 20}{i}{'y' * 20}" for i in range(12)]
    shown = _check(names, 8)  # too narrow to show the digit and both sides
    assert len(set(shown.values())) == 12


@settings(max_examples=150, deadline=None)
@given(st.lists(st.text(alphabet=st.sampled_from("ab/_-\x1b日é"), max_size=30), min_size=1, max_size=12),
       st.integers(min_value=1, max_value=30))
def test_any_set_of_names_stays_distinct_and_fits(names, limit):
    _check(names, limit)


def _renamed(tmp_path):
    """The n-gram checkpoints, with a rolling and a loglikelihood task of one long stem."""
    folders = []
    for kind in ("base", "tuned"):
        target = tmp_path / f"zen-ngram-{kind}"
        shutil.copytree(DATA / kind / f"zen-ngram-{kind}", target)
        for path in list(target.iterdir()):
            name = path.name.replace("stdlib_docs", "zen_loglikelihood_rolling").replace("zen_lambada", "zen_loglikelihood")
            path.rename(target / name)
        results = next(target.glob("results_*.json"))
        results.write_text(results.read_text().replace("stdlib_docs", "zen_loglikelihood_rolling")
                           .replace("zen_lambada", "zen_loglikelihood"))
        folders.append(target)
    return folders


@pytest.mark.parametrize("width", [60, 80, 120])
def test_lm_eval_task_names_never_print_alike_in_the_terminal(tmp_path, width):
    from losslens.job import JobResult

    evaluation = evaluate_lm_eval(_renamed(tmp_path))
    names = {t.name for t in evaluation.tasks}
    assert {"zen-ngram-base/zen_loglikelihood", "zen-ngram-base/zen_loglikelihood_rolling"} <= names
    text = terminal.job_text(JobResult(evaluation, tuple(evaluation.comparisons)), width)
    table = text.split("\n\n")[1].splitlines()[2:]  # the first table's rows
    labels = [row.split("  ")[0] for row in table]
    assert len(labels) == len(names) == len(set(labels)), table
    assert all(fmt.width(line) <= width for line in text.splitlines())
    # Each comparison line names its two runs distinctly too.
    for c in evaluation.comparisons:
        shown = fmt.shorten_names([n for x in evaluation.comparisons for n in (x.reference, x.candidate)])
        assert f"{shown[c.candidate]} vs {shown[c.reference]}" in text.replace("\n    ", " ")


def test_markdown_run_cells_stay_distinct():
    from losslens.job import JobResult

    long = "nightly/2026-11-25/" + "model-" * 12
    evaluation = evaluate_lm_eval([DATA / "base" / "zen-ngram-base", DATA / "tuned" / "zen-ngram-tuned"],
                                  names=[long + "base", long + "tuned"])
    text = job_markdown(JobResult(evaluation, tuple(evaluation.comparisons)))
    rows = [line.split(" | ")[0] for line in text.splitlines() if line.startswith("| ") and "/zen" in line]
    assert len(rows) == len(set(rows)) >= 10
