"""lm-evaluation-harness samples: every metric recomputed and checked against lm-eval's own.

The fixtures in tests/data/lm_eval/ were written by lm-evaluation-harness 0.4.13 itself
(tests/data/lm_eval/make_fixtures.py: a character n-gram model behind a custom ``LM``, tasks
over local JSON files, ``log_samples``); its ``results_*.json`` holds lm-eval's aggregates.
Aggregates are compared with rel 1e-12: lm-eval sums in Python, numpy sums pairwise, so the last
bits may differ.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from losslens.errors import InputError
from losslens.lm import evaluate_lm_eval
from losslens.lm.lm_eval import questions_of, read_lm_eval

DATA = Path(__file__).parent / "data" / "lm_eval"
BASE, TUNED = DATA / "base", DATA / "tuned"
REL = 1e-12


def logged_results(folder: Path) -> dict:
    (path,) = folder.rglob("results_*.json")
    return json.loads(path.read_text())["results"]


def lm_eval_brier_score(items):
    """``lm_eval.api.metrics.brier_score`` as lm-eval 0.4.13 defines it (copied)."""
    gold, predictions = list(zip(*items))
    bs, num_class = np.array(predictions).shape
    gold = list(gold)
    gold_one_hot = np.eye(num_class)[gold]
    return np.mean(np.sum((predictions - gold_one_hot) ** 2, axis=1))


@pytest.mark.parametrize("folder", [BASE, TUNED], ids=["base", "tuned"])
def test_every_metric_agrees_with_lm_evals_results_file(folder):
    evaluation = evaluate_lm_eval(folder)
    logged = logged_results(folder)
    checked = 0
    for task in evaluation.tasks:
        for key, value in logged[task.task].items():
            metric = key.split(",")[0]
            if "_stderr" in key or metric in ("name", "alias", "sample_len"):
                continue
            assert task.metrics[metric] == pytest.approx(value, rel=REL), (task.name, metric)
            checked += 1
        assert "inconsistent_samples" not in [w.code for w in task.warnings]
    # acc + acc_norm of 3 multiple-choice tasks, 2 brier, perplexity + acc, 3 rolling figures
    assert checked == 6 + 2 + 2 + 3
    assert {t.output_type for t in evaluation.tasks} == {"multiple_choice", "loglikelihood", "loglikelihood_rolling"}


def test_run_names_notes_and_generate_until_skipped():
    evaluation = evaluate_lm_eval(BASE)
    assert [t.name for t in evaluation.tasks] == [
        "base/stdlib_docs", "base/zen_lambada", "base/zen_mc", "base/zen_mc2", "base/zen_mc4"]
    assert evaluation.notes == ("base/zen_gen: generate_until task skipped (no likelihoods to score)",)
    renamed = evaluate_lm_eval([BASE], names=["ckpt-100"])
    assert renamed.tasks[0].name == "ckpt-100/stdlib_docs"
    (single,) = BASE.rglob("samples_zen_mc2_*.jsonl")
    alone = evaluate_lm_eval(single)
    assert [t.name for t in alone.tasks] == [f"{single.stem}/zen_mc2"]


def test_multiple_choice_per_question_values_and_brier_with_ragged_choices():
    (tasks, _) = read_lm_eval(BASE)
    mc = next(t for t in tasks if t.task == "zen_mc")
    questions = questions_of(mc)
    sizes = {len(q.probabilities) for q in questions}
    assert sizes == {2, 3, 4, 5}  # questions with different numbers of choices
    for q, record in zip(questions, mc.records):
        assert q.acc == record["acc"] and q.acc_norm == record["acc_norm"]
        lls = np.array(q.loglikelihoods)
        assert q.probabilities == pytest.approx(np.exp(lls) / np.exp(lls).sum(), rel=1e-12)
    items = [(q.gold, np.array(q.probabilities)) for q in questions]
    with pytest.raises(ValueError):  # lm-eval's own brier_score cannot take ragged choices
        lm_eval_brier_score(items)
    result = next(t for t in evaluate_lm_eval(BASE).tasks if t.task == "zen_mc")
    expected = np.mean([sum((p - (j == g)) ** 2 for j, p in enumerate(q)) for g, q in items])
    assert result.metrics["brier_score"] == pytest.approx(expected, rel=REL)
    assert (result.metrics["n_choices_min"], result.metrics["n_choices_max"]) == (2, 5)


def test_multiple_choice_runs_through_the_classifier_engine():
    from sklearn.metrics import brier_score_loss, log_loss

    tasks = {t.task: t for t in evaluate_lm_eval(BASE).tasks}
    (samples,) = [t for t in read_lm_eval(BASE)[0] if t.task == "zen_mc"]
    questions = questions_of(samples)
    width = 5
    padded = np.array([list(q.probabilities) + [0.0] * (width - len(q.probabilities)) for q in questions])
    gold = [q.gold for q in questions]
    overall = tasks["zen_mc"].classifier.runs[0].overall
    assert overall.log_loss == pytest.approx(log_loss(gold, padded, labels=range(width)), rel=REL)
    assert overall.accuracy == pytest.approx(tasks["zen_mc"].metrics["acc"], rel=REL)
    # Two choices: lm-eval's Brier sums over both choices, twice scikit-learn's binary score.
    mc2 = tasks["zen_mc2"]
    (samples2,) = [t for t in read_lm_eval(BASE)[0] if t.task == "zen_mc2"]
    q2 = questions_of(samples2)
    y = np.array([q.gold for q in q2])
    p1 = np.array([q.probabilities[1] for q in q2])
    assert mc2.metrics["brier_score"] == pytest.approx(2 * brier_score_loss(y, p1), rel=REL)
    assert mc2.classifier.runs[0].overall.brier_score == pytest.approx(brier_score_loss(y, p1), rel=REL)
    assert "twice scikit-learn's binary Brier score" in mc2.notes[0]


def _rewrite(folder: Path, tmp_path: Path, change) -> Path:
    target = tmp_path / folder.name
    shutil.copytree(folder, target)
    for path in target.rglob("samples_*.jsonl"):
        records = [json.loads(line) for line in path.read_text().splitlines()]
        path.write_text("".join(json.dumps(change(r) or r) + "\n" for r in records))
    return target


def _list_layout_with_numbers(record):
    """The layout lm-eval ≤ 0.4.2 wrote: arguments as lists, numbers as numbers."""
    args = record["arguments"]
    record["arguments"] = [[a[k] for k in sorted(a)] for _, a in sorted(args.items(), key=lambda kv: int(kv[0].split("_")[-1]))]
    def number(v):
        try:
            return float(v)
        except (TypeError, ValueError):
            return v == "True" if v in ("True", "False") else v
    record["filtered_resps"] = [[number(x) for x in r] if isinstance(r, list) else number(r)
                                for r in record["filtered_resps"]]
    return record


def test_list_arguments_and_numbers_as_numbers_give_the_same_metrics(tmp_path):
    rewritten = _rewrite(BASE, tmp_path, _list_layout_with_numbers)
    for results in rewritten.rglob("results_*.json"):
        results.unlink()  # and no results file: output types inferred from the records
    original = {t.task: t.metrics for t in evaluate_lm_eval(BASE).tasks}
    evaluation = evaluate_lm_eval(rewritten)
    for task in evaluation.tasks:
        assert task.metrics.keys() == original[task.task].keys()
        for name, value in task.metrics.items():
            expected = original[task.task][name]
            assert value == (expected if expected is None else pytest.approx(expected, rel=REL)), (task.task, name)
    assert any("no results_*.json beside" in n and "multiple_choice inferred" in n for n in evaluation.notes)


def test_newest_of_several_dated_files_is_used_with_a_note(tmp_path):
    target = tmp_path / "out"
    shutil.copytree(BASE, target)
    (newest,) = target.rglob("samples_zen_mc2_*.jsonl")
    older = newest.with_name("samples_zen_mc2_2020-01-01T00-00-00.000000.jsonl")
    older.write_text(newest.read_text().replace('"target": "1"', '"target": "0"'))
    evaluation = evaluate_lm_eval(target)
    mc2 = next(t for t in evaluation.tasks if t.task == "zen_mc2")
    assert mc2.source == str(newest)
    assert f"out: 2 samples files of task 'zen_mc2'; using the newest, {newest.name}" in evaluation.notes


def test_inconsistent_logged_accuracy_is_a_warning(tmp_path):
    def flip(record):
        if record["doc_id"] == 3 and "acc" in record:
            record["acc"] = 1.0 - record["acc"]
        return record

    evaluation = evaluate_lm_eval(_rewrite(BASE, tmp_path, flip))
    mc4 = next(t for t in evaluation.tasks if t.task == "zen_mc4")
    (warning,) = [w for w in mc4.warnings if w.code == "inconsistent_samples"]
    assert warning.scope == "task=zen_mc4"
    assert warning.message.startswith("1 of 19 questions' logged acc differ from the recomputation")


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda r: r.update(target="7") if r["doc_id"] == 2 else None,
         "line 3, field 'target': '7' is not one of the 4 choices (an index 0..3 or a choice's text); "
         "fix the task's doc_to_target"),
        (lambda r: r["filtered_resps"][0].__setitem__(0, "0.5") if r["doc_id"] == 0 else None,
         "line 1, field 'filtered_resps': log-likelihood '0.5' is positive; log-likelihoods are ≤ 0"),
        (lambda r: r["filtered_resps"][1].__setitem__(0, "NaN") if r["doc_id"] == 1 else None,
         "line 2, field 'filtered_resps': log-likelihood 'NaN' is NaN"),
    ],
    ids=["target-outside-choices", "positive", "nan"],
)
def test_bad_samples_are_one_clear_error(tmp_path, change, message):
    (source,) = BASE.rglob("samples_zen_mc4_*.jsonl")
    path = tmp_path / source.name
    records = [json.loads(line) for line in source.read_text().splitlines()]
    for r in records:
        change(r)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    with pytest.raises(InputError, match=re.escape(f"{path}, {message}")):
        evaluate_lm_eval(path)


def test_not_json_and_not_a_samples_file(tmp_path):
    path = tmp_path / "samples_x_2024-01-01T00-00-00.jsonl"
    path.write_text('{"doc_id": 0}\n{oops\n')
    with pytest.raises(InputError, match=re.escape(f"{path}, line 2: not valid JSON")):
        evaluate_lm_eval(path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="holds no lm-eval samples"):
        evaluate_lm_eval(empty)


def test_checkpoints_in_folders_of_the_same_name_get_distinct_run_names(tmp_path):
    # lm-eval's usual layout: one --output_path per checkpoint, all called "out".
    shutil.copytree(BASE, tmp_path / "step1" / "out")
    shutil.copytree(TUNED, tmp_path / "step2" / "out")
    evaluation = evaluate_lm_eval([tmp_path / "step1" / "out", tmp_path / "step2" / "out"])
    names = [t.name for t in evaluation.tasks]
    assert len(names) == len(set(names)) and "out/zen_mc" in names and "out-2/zen_mc" in names
    mc = {c.candidate: c for c in evaluation.comparisons}["out-2/zen_mc"]
    assert (mc.reference, mc.n_paired) == ("out/zen_mc", 19)


def test_checkpoints_are_compared_task_by_task_paired_by_doc_id():
    evaluation = evaluate_lm_eval([BASE, TUNED])
    comparisons = {c.candidate: c for c in evaluation.comparisons}
    assert set(comparisons) == {"tuned/stdlib_docs", "tuned/zen_lambada", "tuned/zen_mc", "tuned/zen_mc2", "tuned/zen_mc4"}
    base = {t.task: t for t in evaluation.tasks if t.name.startswith("base/")}
    tuned = {t.task: t for t in evaluation.tasks if t.name.startswith("tuned/")}
    mc = comparisons["tuned/zen_mc"]
    assert mc.n_paired == 19
    expected = tuned["zen_mc"].classifier.runs[0].overall.log_loss - base["zen_mc"].classifier.runs[0].overall.log_loss
    assert mc.log_loss_delta == pytest.approx(expected, rel=1e-10)
    assert mc.worst_regressions[0]["delta"] == max(r["delta"] for r in mc.worst_regressions)
    # lambada: delta of mean −ll = log of the perplexity ratio
    lam = comparisons["tuned/zen_lambada"]
    assert lam.log_loss_delta == pytest.approx(
        math.log(tuned["zen_lambada"].metrics["perplexity"] / base["zen_lambada"].metrics["perplexity"]), rel=1e-10)
    # rolling: byte-weighted, so the delta is the change in nats per byte
    docs = comparisons["tuned/stdlib_docs"]
    per_byte = math.log(tuned["stdlib_docs"].metrics["byte_perplexity"] / base["stdlib_docs"].metrics["byte_perplexity"])
    assert docs.log_loss_delta == pytest.approx(per_byte, rel=1e-10)


def test_rolling_task_has_no_per_token_figures_and_to_dict_is_json_safe():
    evaluation = evaluate_lm_eval(BASE)
    rolling = next(t for t in evaluation.tasks if t.output_type == "loglikelihood_rolling")
    assert rolling.metrics["log_loss"] is None and rolling.metrics["perplexity"] is None
    text = json.dumps(evaluation.to_dict(), allow_nan=False)
    assert text == json.dumps(evaluate_lm_eval(BASE).to_dict(), allow_nan=False)


def test_is_lm_eval_output(tmp_path):
    from losslens.lm import is_lm_eval_output

    (single,) = BASE.rglob("samples_zen_mc_*.jsonl")
    assert is_lm_eval_output(BASE) and is_lm_eval_output(DATA) and is_lm_eval_output(single)
    assert not is_lm_eval_output(tmp_path) and not is_lm_eval_output(DATA / "data" / "zen_mc.json")


def test_a_folder_of_several_model_folders_names_runs_by_model():
    evaluation = evaluate_lm_eval(DATA)  # holds base/zen-ngram-base and tuned/zen-ngram-tuned
    names = [t.name for t in evaluation.tasks]
    assert "lm_eval/base/zen-ngram-base/zen_mc" in names and "lm_eval/tuned/zen-ngram-tuned/zen_mc" in names
    flat = evaluate_lm_eval(next(BASE.iterdir()))  # the model folder itself: samples directly inside
    assert [t.name for t in flat.tasks][0] == "zen-ngram-base/stdlib_docs"
