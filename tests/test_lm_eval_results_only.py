"""lm-eval outputs beyond the samples: results_*.json alone (no --log_samples), and group tasks.

The fixtures are lm-eval's own files (tests/data/lm_eval, written by lm-eval 0.4.x), copied into
a temporary folder: only the results file for a run without ``--log_samples``; for a group, the
results file of two of its multiple-choice tasks with a group entry added whose figures are
computed here, in numpy, with lm-eval's formulas (``lm_eval/api/metrics.py``:
``aggregate_subtask_metrics`` with ``weight_by_size``, ``mean_stderr``, ``pooled_sample_stderr``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from losslens.cli import app
from losslens.errors import InputError
from losslens.lm import evaluate_lm_eval, is_lm_eval_output

from typer.testing import CliRunner

MODEL = Path(__file__).parent / "data" / "lm_eval" / "base" / "zen-ngram-base"
(RESULTS,) = MODEL.glob("results_*.json")
# Different libraries' float sums (Python's sum in lm-eval, numpy here) may differ in the last
# bits: compare to 1e-12, not bitwise.
REL = 1e-12


def samples_file(task: str) -> Path:
    (path,) = MODEL.glob(f"samples_{task}_*.jsonl")
    return path


def logged_values(lines: list[str], metric: str) -> np.ndarray:
    """lm-eval's per-question values of ``metric``, as its samples file logs them."""
    return np.array([float(json.loads(line)[metric]) for line in lines])


def lm_eval_group(values, stderrs, sizes, weight_by_size=True):
    """lm-eval's group figure and standard error, in numpy (aggregate_subtask_metrics, pooled_sample_stderr)."""
    n = np.asarray(sizes, dtype=float)
    weights = n if weight_by_size else np.ones_like(n)
    value = float(np.sum(np.asarray(values) * weights) / weights.sum())
    s = np.asarray(stderrs, dtype=float)
    pooled = float(np.sqrt(np.sum((n - 1) * s**2 * n) / (n.sum() - len(n)) / n.sum()))
    return value, pooled


def group_output(tmp_path: Path, limit: int = 11, weight_by_size: bool = True, samples: bool = True) -> tuple[Path, dict]:
    """An lm-eval output of group ``zen_group`` = zen_mc (19 questions) + zen_mc4 (--limit ``limit``).

    Returns the output folder and the group's figures as lm-eval computes them.
    """
    out = tmp_path / "out"
    folder = out / "zen-ngram-base"
    folder.mkdir(parents=True)
    data = json.loads(RESULTS.read_text())
    keep = ("zen_mc", "zen_mc4")
    for key in ("results", "configs", "versions", "n-shot", "higher_is_better", "n-samples"):
        data[key] = {task: v for task, v in data[key].items() if task in keep}
    per_task = {}
    for task in keep:
        lines = samples_file(task).read_text().splitlines()
        if task == "zen_mc4":
            lines = lines[:limit]  # as lm-eval --limit writes it: its entry is recomputed below
        if samples:
            (folder / samples_file(task).name).write_text("\n".join(lines) + "\n")
        entry = data["results"][task]
        for metric in ("acc", "acc_norm"):
            x = logged_values(lines, metric)
            # lm-eval's mean and mean_stderr (sample standard deviation / √n)
            entry[f"{metric},none"] = float(np.mean(x))
            entry[f"{metric}_stderr,none"] = float(np.std(x, ddof=1) / np.sqrt(len(x)))
            per_task.setdefault(metric, []).append((entry[f"{metric},none"], entry[f"{metric}_stderr,none"], len(x)))
        entry["sample_len"] = len(lines)
        data["n-samples"][task] = {"original": 19, "effective": len(lines)}
        if task == "zen_mc4":  # its logged Brier score was for 19 questions
            del entry["brier_score,none"], entry["brier_score_stderr,none"]
    group = {"alias": "zen_group"}
    for metric, rows in per_task.items():
        values, stderrs, sizes = zip(*rows)
        group[f"{metric},none"], group[f"{metric}_stderr,none"] = lm_eval_group(values, stderrs, sizes, weight_by_size)
    data["results"]["zen_group"] = group
    data["groups"] = {"zen_group": dict(group)}
    data["group_subtasks"] = {"zen_group": list(keep)}
    (folder / RESULTS.name).write_text(json.dumps(data, indent=2))
    return out, group


# -- results_*.json alone -----------------------------------------------------------------------
def results_only(tmp_path: Path) -> Path:
    folder = tmp_path / "nosamples" / "zen-ngram-base"
    folder.mkdir(parents=True)
    shutil.copy(RESULTS, folder / RESULTS.name)
    return tmp_path / "nosamples"


def test_results_only_folder_shows_lm_evals_own_figures(tmp_path):
    out = results_only(tmp_path)
    assert is_lm_eval_output(out)
    evaluation = evaluate_lm_eval(out)
    logged = json.loads(RESULTS.read_text())["results"]
    assert [t.task for t in evaluation.tasks] == sorted(logged)
    for task in evaluation.tasks:
        assert task.basis == "results"
        assert task.n_documents == logged[task.task]["sample_len"]
        for key, value in logged[task.task].items():
            if "," in key and value != "N/A":
                name = key.split(",")[0]
                assert task.logged[name] == value and task.metrics[name] == value, (task.name, key)
    mc = next(t for t in evaluation.tasks if t.task == "zen_mc")
    assert mc.output_type == "multiple_choice" and mc.type_label == "multiple_choice (logged)"
    assert mc.logged["acc_stderr"] == logged["zen_mc"]["acc_stderr,none"]
    assert "brier_score_stderr" not in next(t for t in evaluation.tasks if t.task == "zen_mc2").logged  # "N/A"
    assert evaluation.notes == (
        f"nosamples: only {RESULTS.name} (lm-eval ran without --log_samples): its own figures are shown; "
        "rerun lm-eval with --log_samples for per-sample scoring",)
    rows = {(task, metric): (value, stderr) for task, metric, value, stderr in evaluation.logged_rows()}
    assert rows[("nosamples/zen_mc", "acc")] == (logged["zen_mc"]["acc,none"], logged["zen_mc"]["acc_stderr,none"])
    assert rows[("nosamples/zen_mc2", "brier_score")] == (logged["zen_mc2"]["brier_score,none"], None)
    assert rows[("nosamples/zen_gen", "exact_match")] == (0.0, 0.0)


def test_results_only_through_the_command_line(tmp_path):
    out = results_only(tmp_path)
    json_path, html_path = tmp_path / "r.json", tmp_path / "r.html"
    result = CliRunner().invoke(app, ["report", str(out), "-o", str(html_path), "--json", str(json_path)],
                                env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    assert "rerun lm-eval with --log_samples for per-sample scoring" in result.output
    assert "lm-eval's own figures" in result.output
    document = json.loads(json_path.read_text())
    mc = next(t for t in document["runs"] if t["task"] == "zen_mc")
    assert mc["basis"] == "results" and mc["overall"]["acc"] == pytest.approx(0.47368421052631576, rel=REL)
    assert mc["logged"]["acc_stderr"] == pytest.approx(0.1176877882894626, rel=REL)
    page = html_path.read_text()
    assert "rerun lm-eval with --log_samples" in page and "0.1177" in page  # zen_mc's stderr, 4 decimals
    # A gate reads the logged figure: acc 47.37 % < 50 %.
    gated = CliRunner().invoke(app, ["metrics", str(out), "--fail-if", "acc < 0.5"])
    assert gated.exit_code == 1, gated.output


def test_a_results_file_given_alone_is_read(tmp_path):
    out = results_only(tmp_path)
    (path,) = out.rglob("results_*.json")
    evaluation = evaluate_lm_eval(path)
    assert {t.task for t in evaluation.tasks} == set(json.loads(RESULTS.read_text())["results"])
    assert all(t.name.startswith("results_") for t in evaluation.tasks)


def test_empty_folder_names_both_files(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    with pytest.raises(InputError, match="no lm-eval samples_<task>_<date>.jsonl or results_"):
        evaluate_lm_eval(tmp_path / "empty")


def test_some_tasks_without_samples(tmp_path):
    folder = tmp_path / "mixed" / "zen-ngram-base"
    folder.mkdir(parents=True)
    shutil.copy(RESULTS, folder / RESULTS.name)
    shutil.copy(samples_file("zen_mc"), folder / samples_file("zen_mc").name)
    evaluation = evaluate_lm_eval(tmp_path / "mixed")
    bases = {t.task: t.basis for t in evaluation.tasks}
    assert bases.pop("zen_mc") == "samples" and set(bases.values()) == {"results"}
    assert any("no samples file for stdlib_docs, zen_gen, zen_lambada, zen_mc2, zen_mc4" in n for n in evaluation.notes)


# -- groups -------------------------------------------------------------------------------------
def group_row(evaluation):
    (row,) = [t for t in evaluation.tasks if t.basis == "group"]
    return row


def test_group_row_is_lm_evals_size_weighted_mean(tmp_path):
    out, logged = group_output(tmp_path)
    evaluation = evaluate_lm_eval(out)
    row = group_row(evaluation)
    assert row.name == "out/zen_group" and row.type_label == "group of multiple_choice"
    assert row.n_documents == 19 + 11
    for metric in ("acc", "acc_norm", "acc_stderr", "acc_norm_stderr"):
        assert row.metrics[metric] == pytest.approx(logged[f"{metric.replace('_stderr', '')}"
                                                           f"{'_stderr' if 'stderr' in metric else ''},none"],
                                                    rel=REL), metric
    # The fixture tells weighted from plain: the two tasks' sizes differ and so do their means.
    mc, mc4 = (next(t for t in evaluation.tasks if t.task == name) for name in ("zen_mc", "zen_mc4"))
    assert abs(row.metrics["acc"] - (mc.metrics["acc"] + mc4.metrics["acc"]) / 2) > 1e-3
    assert "inconsistent_samples" not in [w.code for w in row.warnings]
    (note,) = row.notes
    assert "weighted by their numbers of samples (19, 11)" in note and "pooled_sample_stderr" in note
    assert note in evaluation.notes


def test_group_with_unweighted_logged_figures(tmp_path):
    out, logged = group_output(tmp_path, weight_by_size=False)
    row = group_row(evaluate_lm_eval(out))
    assert row.metrics["acc"] == pytest.approx(logged["acc,none"], rel=REL)
    assert row.metrics["acc_stderr"] == pytest.approx(logged["acc_stderr,none"], rel=REL)
    assert "plain mean" in row.notes[0] and not row.warnings


def test_group_disagreeing_with_its_logged_figure_is_a_warning(tmp_path):
    out, _ = group_output(tmp_path)
    (path,) = out.rglob("results_*.json")
    data = json.loads(path.read_text())
    data["groups"]["zen_group"]["acc,none"] = data["results"]["zen_group"]["acc,none"] = 0.9
    path.write_text(json.dumps(data))
    (warning,) = group_row(evaluate_lm_eval(out)).warnings
    assert warning.code == "inconsistent_samples" and "results file's acc 0.9" in warning.message


def test_group_from_a_results_file_alone(tmp_path):
    out, logged = group_output(tmp_path, samples=False)
    evaluation = evaluate_lm_eval(out)
    row = group_row(evaluation)
    assert row.metrics["acc"] == pytest.approx(logged["acc,none"], rel=REL)
    assert row.metrics["acc_norm_stderr"] == pytest.approx(logged["acc_norm_stderr,none"], rel=REL)
    assert not row.warnings
    assert {t.basis for t in evaluation.tasks} == {"results", "group"}


def test_group_in_the_json_and_terminal(tmp_path):
    out, logged = group_output(tmp_path)
    json_path = tmp_path / "g.json"
    result = CliRunner().invoke(app, ["metrics", str(out), "--json", str(json_path)], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    assert "group of multiple_choice" in result.output and "pooled_sample_stderr" in result.output
    (group,) = [t for t in json.loads(json_path.read_text())["runs"] if t["basis"] == "group"]
    assert group["overall"]["acc"] == pytest.approx(logged["acc,none"], rel=REL)
    assert group["logged"]["acc"] == logged["acc,none"]


# The command takes a folder for lm-eval's when its results_*.json opens as lm-eval's ({"results":);
# other JSON of that name leaves the folder to the classifier reader, which finds no predictions.
NOT_LM_EVAL = "folder holds no .csv"


@pytest.mark.parametrize("content, message, command_message", [
    ("[1, 2]", "not an lm-eval results file", NOT_LM_EVAL),
    ('{"results": [1]}', "field 'results': expected an object", None),
    ('{"results": {}}', "holds no task with a numeric figure", None),
    ("{not json", "not a readable lm-eval results file", NOT_LM_EVAL),
])
def test_bad_results_file_is_one_line_exit_2(tmp_path, content, message, command_message):
    folder = tmp_path / "bad"
    folder.mkdir()
    path = folder / "results_2026-01-01T00-00-00.json"
    path.write_text(content)
    with pytest.raises(InputError, match=message):
        evaluate_lm_eval(folder)
    result = CliRunner().invoke(app, ["metrics", str(folder)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert (command_message or message) in result.output and path.read_text() == content
    assert len(result.output.strip().splitlines()) == 1


def test_nested_group_aggregates_over_leaf_tasks(tmp_path):
    out, logged = group_output(tmp_path)
    (path,) = out.rglob("results_*.json")
    data = json.loads(path.read_text())
    # lm-eval aggregates a group of groups over the leaf tasks (not the subgroups' means).
    data["group_subtasks"] = {"zen_group": ["zen_mc", "zen_mc4"], "zen_all": ["zen_group"]}
    data["groups"]["zen_all"] = data["results"]["zen_all"] = dict(logged, alias="zen_all")
    path.write_text(json.dumps(data))
    rows = {t.task: t for t in evaluate_lm_eval(out).tasks if t.basis == "group"}
    assert set(rows) == {"zen_all", "zen_group"}
    assert rows["zen_all"].metrics == rows["zen_group"].metrics
    assert rows["zen_all"].metrics["acc"] == pytest.approx(logged["acc,none"], rel=REL)
    assert rows["zen_all"].n_documents == 30 and not rows["zen_all"].warnings


def test_group_without_aggregate_gets_a_note_not_a_row(tmp_path):
    out, _ = group_output(tmp_path)
    (path,) = out.rglob("results_*.json")
    data = json.loads(path.read_text())
    data["results"]["zen_group"] = {" ": " ", "alias": "zen_group"}  # what lm-eval writes then
    del data["groups"]
    path.write_text(json.dumps(data))
    evaluation = evaluate_lm_eval(out)
    assert [t.basis for t in evaluation.tasks] == ["samples", "samples"]
    assert "out/zen_group: lm-eval logs no aggregate for this group (no aggregate_metric_list); its tasks are shown " \
           "one by one" in evaluation.notes


def test_other_json_named_results_is_not_taken_for_lm_eval(tmp_path):
    other = tmp_path / "results_2026-01-01.json"
    other.write_text(json.dumps({"runs": [], "kind": "classifier"}))
    assert not is_lm_eval_output(other) and not is_lm_eval_output(tmp_path)
    assert is_lm_eval_output(RESULTS) and is_lm_eval_output(results_only(tmp_path / "x"))
