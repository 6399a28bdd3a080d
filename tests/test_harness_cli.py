"""inspect-ai logs and HELM run folders through ``losslens metrics`` / ``report`` / ``trend``.

The fixtures were written by inspect-ai 0.3.285 and crfm-helm 0.5.16 themselves (see their
READMEs). Every recomputed figure is checked against numpy over the reader's own values and
against the harness's logged aggregate. Floats from numpy and the engine's torch/libm code are
compared with rel=1e-12, never bitwise: the last bit of exp/log differs between libraries.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from losslens.cli import app
from losslens.lm.detect import harness_of
from losslens.readers.helm import read_helm_runs
from losslens.readers.inspect_ai import LETTER_NOTE, read_inspect_log

DATA = Path(__file__).parent / "data"
INSPECT, HELM = DATA / "inspect_ai", DATA / "helm"
HELM_BASE, HELM_TUNED = HELM / "zen_mc:model=zen_ngram-base", HELM / "zen_mc:model=zen_ngram-tuned"
REL = 1e-12


def _metrics(tmp_path, *args) -> dict:
    out = tmp_path / "out.json"
    result = CliRunner().invoke(app, ["metrics", *map(str, args), "--json", str(out)], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    return json.loads(out.read_text())


def _log_loss(rows: list[tuple[list[float], int]]) -> float:
    """Mean −log-softmax of the gold choice, in numpy (independent of the engine)."""
    losses = []
    for values, gold in rows:
        v = np.array(values, dtype=float)
        losses.append(-(v[gold] - (v.max() + np.log(np.exp(v - v.max()).sum()))))
    return float(np.mean(losses))


@pytest.mark.parametrize("name", ["zen_mc.eval", "zen_mc.json"])
def test_inspect_multiple_choice_matches_numpy_and_inspects_accuracy(tmp_path, name):
    path = INSPECT / "base" / name
    (log,) = read_inspect_log(path)
    (task,) = _metrics(tmp_path, path)["runs"]
    assert task["name"] == "zen_mc/zen_mc" and task["harness"] == "inspect-ai 0.3.285"
    assert task["overall"]["log_loss"] == pytest.approx(
        _log_loss([(s.choice_logprobs, s.target) for s in log.samples]), rel=REL)
    assert task["overall"]["acc"] == pytest.approx(log.logged["choice/accuracy"], rel=REL)
    assert task["overall"]["acc"] == pytest.approx(8 / 21, rel=REL)
    assert task["overall"]["acc_norm"] is None  # inspect defines no length normalisation
    assert LETTER_NOTE in task["notes"]
    assert "inconsistent_samples" not in [w["code"] for w in task["warnings"]]


def test_inspect_wrong_logged_accuracy_is_inconsistent(tmp_path):
    data = json.loads((INSPECT / "base" / "zen_mc.json").read_text())
    data["results"]["scores"][0]["metrics"]["accuracy"]["value"] = 0.9
    path = tmp_path / "zen_mc.json"
    path.write_text(json.dumps(data))
    (task,) = _metrics(tmp_path, path)["runs"]
    (warning,) = [w for w in task["warnings"] if w["code"] == "inconsistent_samples"]
    assert "log's acc 0.9" in warning["message"] and "inspect-ai" in warning["message"]


def test_inspect_checkpoints_pair_by_sample_id_and_epochs_by_sample(tmp_path):
    document = _metrics(tmp_path, INSPECT / "base", INSPECT / "tuned")
    names = [t["name"] for t in document["runs"]]
    assert "base/zen_mc.eval/zen_mc" in names and "tuned/zen_mc_chunked.eval/zen_mc" in names
    by_pair = {(c["reference"], c["candidate"]): c for c in document["comparisons"]}
    mc = by_pair[("base/zen_mc.eval/zen_mc", "tuned/zen_mc.eval/zen_mc")]
    assert mc["paired"] and mc["n_paired"] == 21 and mc["unit"] == "question"
    # Independent: per-sample loss difference of the two checkpoints, from the reader's values.
    (base,), (tuned,) = read_inspect_log(INSPECT / "base/zen_mc.eval"), read_inspect_log(INSPECT / "tuned/zen_mc.eval")
    delta = [_log_loss([(t.choice_logprobs, t.target)]) - _log_loss([(b.choice_logprobs, b.target)])
             for b, t in zip(base.samples, tuned.samples)]
    assert mc["log_loss_delta"] == pytest.approx(np.mean(delta), rel=1e-9)
    # Two epochs of 8 samples: 16 questions, but 8 pairs (one per sample, its mean over epochs).
    epochs = by_pair[("base/zen_mc_epochs.eval/zen_mc_epochs", "tuned/zen_mc_epochs.eval/zen_mc_epochs")]
    assert epochs["n_paired"] == 8
    task = next(t for t in document["runs"] if t["name"] == "base/zen_mc_epochs.eval/zen_mc_epochs")
    assert task["n_documents"] == 16 and task["overall"]["acc"] == pytest.approx(0.5, rel=REL)
    ppl = by_pair[("base/stdlib_ppl.eval/stdlib_ppl", "tuned/stdlib_ppl.eval/stdlib_ppl")]
    assert ppl["n_paired"] == 4 and ppl["unit"] == "byte"


def test_inspect_perplexity_task_is_a_token_run(tmp_path):
    path = INSPECT / "base" / "stdlib_ppl.eval"
    (log,) = read_inspect_log(path)
    (task,) = _metrics(tmp_path, path)["runs"]
    nll = -sum(sum(s.token_logprobs) for s in log.samples)
    n = sum(len(s.token_logprobs) for s in log.samples)
    assert task["output_type"] == "tokens"
    assert task["overall"]["perplexity"] == pytest.approx(np.exp(nll / n), rel=REL)
    assert task["overall"]["perplexity"] == pytest.approx(log.logged["perplexity/perplexity_per_token"], rel=REL)
    assert task["overall"]["n_tokens"] == n


def test_helm_multiple_choice_matches_numpy_and_helms_predicted_index(tmp_path):
    (run,) = read_helm_runs(HELM_BASE)
    (task,) = _metrics(tmp_path, HELM_BASE)["runs"]
    assert task["name"] == "zen_ngram-base/zen_mc" and task["harness"] == "HELM"
    assert task["overall"]["log_loss"] == pytest.approx(
        _log_loss([(i.reference_logprobs, i.target) for i in run.instances]), rel=REL)
    # acc_norm: HELM's own predicted_index (per-token normalised arg-max) against the gold.
    helm_norm = np.mean([i.stats["predicted_index"] == i.target for i in run.instances])
    assert task["overall"]["acc_norm"] == pytest.approx(helm_norm, rel=REL)
    # exact_match counts tie-00's two tied references as 0.5: logged, not flagged.
    assert task["logged"]["test/exact_match"] == pytest.approx(task["overall"]["acc_norm"] + 0.5 / 21, rel=REL)
    assert "inconsistent_samples" not in [w["code"] for w in task["warnings"]]
    acc = np.mean([int(np.argmax(i.reference_logprobs)) == i.target for i in run.instances])
    assert task["overall"]["acc"] == pytest.approx(acc, rel=REL)


def test_helm_language_modelling_reproduces_helms_perplexity(tmp_path):
    folder = HELM / "stdlib_lm:model=zen_ngram-base"
    (run,) = read_helm_runs(folder)
    (task,) = _metrics(tmp_path, folder)["runs"]
    values = np.concatenate([i.token_logprobs for i in run.instances])
    assert task["overall"]["perplexity"] == pytest.approx(np.exp(-values.mean()), rel=REL)
    assert task["overall"]["perplexity"] == pytest.approx(run.logged["test/perplexity"], rel=1e-9)
    assert task["overall"]["bits_per_byte"] == pytest.approx(run.logged["test/bits_per_byte"], rel=1e-9)


def test_helm_checkpoints_and_folder_of_runs(tmp_path):
    document = _metrics(tmp_path, HELM_BASE, HELM_TUNED)
    (comparison,) = document["comparisons"]
    assert (comparison["reference"], comparison["candidate"]) == ("zen_ngram-base/zen_mc", "zen_ngram-tuned/zen_mc")
    assert comparison["n_paired"] == 21
    names = [t["name"] for t in _metrics(tmp_path, HELM)["runs"]]
    assert names == ["helm/zen_ngram-base/stdlib_lm", "helm/zen_ngram-tuned/stdlib_lm",
                     "helm/zen_ngram-base/zen_mc", "helm/zen_ngram-tuned/zen_mc"]


def test_detection():
    assert harness_of(INSPECT / "base") == "inspect-ai" and harness_of(INSPECT / "base/zen_mc.json") == "inspect-ai"
    assert harness_of(HELM) == "HELM" and harness_of(HELM_BASE / "scenario_state.json") == "HELM"
    assert harness_of(HELM_BASE / "stats.json") is None
    assert harness_of(DATA / "lm_eval" / "base") == "lm-evaluation-harness"


def test_report_names_the_harness(tmp_path):
    html = tmp_path / "r.html"
    result = CliRunner().invoke(app, ["report", str(HELM_BASE), "-o", str(html)])
    assert result.exit_code == 0, result.output
    page = html.read_text()
    assert "multiple_choice (HELM)" in page and "zen_ngram-base/zen_mc" in page
    assert "exact_match (logged) splits ties" in page  # the task's notes


def test_markdown_names_the_harness(tmp_path):
    out = tmp_path / "summary.md"
    result = CliRunner().invoke(app, ["metrics", str(HELM_BASE), "--markdown", str(out)])
    assert result.exit_code == 0, result.output
    assert "| zen\\_ngram-base/zen\\_mc | multiple\\_choice (HELM) |" in out.read_text()


def test_trend_reads_two_nights_of_harness_runs(tmp_path):
    # Each night one checkpoint (a different run name): the trend follows the task across them.
    nights = [(HELM_BASE, tmp_path / "2026-01-01.json"), (HELM_TUNED, tmp_path / "2026-01-02.json")]
    for folder, out in nights:
        result = CliRunner().invoke(app, ["metrics", str(folder), "--json", str(out),
                                          "--generated-at", out.stem + "T00:00:00Z"])
        assert result.exit_code == 0, result.output
    trend = tmp_path / "trend.json"
    result = CliRunner().invoke(app, ["trend", *(str(out) for _, out in nights), "--json", str(trend),
                                      "-o", str(tmp_path / "trend.html")])
    assert result.exit_code == 0, result.output
    document = json.loads(trend.read_text())
    for night, (_, out) in zip(document["nights"], nights):
        (run,) = night["runs"]
        (task,) = json.loads(out.read_text())["runs"]
        assert run["task"] == "zen_mc" and run["name"] == task["name"]
        assert run["overall"]["log_loss"] == task["overall"]["log_loss"]  # copied, not recomputed
        assert run["overall"]["acc_norm"] == task["overall"]["acc_norm"]


def _one_line_error(tmp_path, path, *needles):
    result = CliRunner().invoke(app, ["metrics", str(path), "--json", str(tmp_path / "o.json")])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    for needle in needles:
        assert needle in lines[0]
    assert not (tmp_path / "o.json").exists()


def test_bad_logs_exit_2_with_one_line(tmp_path):
    truncated = tmp_path / "cut.eval"
    data = (INSPECT / "base/zen_mc.eval").read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    _one_line_error(tmp_path, truncated, "cut.eval")
    log = json.loads((INSPECT / "base/zen_mc.json").read_text())
    log["samples"][2]["output"]["choices"][0]["logprobs"]["content"][-1]["top_logprobs"][0]["logprob"] = 0.5
    positive = tmp_path / "positive.json"
    positive.write_text(json.dumps(log))
    _one_line_error(tmp_path, positive, "positive.json", "top_logprobs[0].logprob", "positive")
    run = tmp_path / "zen_mc:model=x"
    shutil.copytree(HELM_BASE, run)
    state = json.loads((run / "scenario_state.json").read_text())
    state["request_states"][0]["instance"]["references"][1]["tags"] = []
    (run / "scenario_state.json").write_text(json.dumps(state))
    _one_line_error(tmp_path, run, "scenario_state.json", "tags")


def test_inspect_slices_by_metadata_subject(tmp_path):
    path = INSPECT / "base" / "zen_mc.eval"
    (log,) = read_inspect_log(path)
    (task,) = _metrics(tmp_path, path, "--by", "metadata.subject", "--by", "metadata.nothing")["runs"]
    slices = task["by_slice"]["metadata.subject"]
    assert set(slices) == {"zen", "stdlib", "tie"}
    for subject, scope in slices.items():
        rows = [(s.choice_logprobs, s.target) for s in log.samples if s.metadata["subject"] == subject]
        assert scope["log_loss"] == pytest.approx(_log_loss(rows), rel=REL)
    assert "--by metadata.nothing: no sample of this task has this field; not sliced by it" in task["notes"]


def test_inspect_comparison_clustered_by_metadata(tmp_path):
    document = _metrics(tmp_path, INSPECT / "base/zen_mc.eval", INSPECT / "tuned/zen_mc.eval",
                        "--name", "base", "--name", "tuned", "--cluster", "metadata.subject")
    (comparison,) = document["comparisons"]
    assert comparison["n_paired"] == 21
    assert comparison["cluster"] == {"column": "metadata.subject", "n_clusters": 3}
    # McNemar counts from the readers' values: wrong → right and right → wrong per sample.
    (base,), (tuned,) = read_inspect_log(INSPECT / "base/zen_mc.eval"), read_inspect_log(INSPECT / "tuned/zen_mc.eval")
    right = [(int(np.argmax(b.choice_logprobs)) == b.target, int(np.argmax(t.choice_logprobs)) == t.target)
             for b, t in zip(base.samples, tuned.samples)]
    assert comparison["mcnemar"]["improved"] == sum(1 for b, t in right if t and not b)
    assert comparison["mcnemar"]["worsened"] == sum(1 for b, t in right if b and not t)


def test_a_folder_of_several_harnesses_gives_one_run_per_task(tmp_path):
    folder = tmp_path / "night"
    shutil.copytree(HELM_BASE, folder / "helm" / HELM_BASE.name)
    (folder / "inspect").mkdir()
    shutil.copy(INSPECT / "base/zen_mc.eval", folder / "inspect")
    (folder / "inspect" / "notes.json").write_text('{"not": "a log"}')  # other JSON is left alone
    tasks = _metrics(tmp_path, folder)["runs"]
    # Both tasks are called zen_mc: the harness tells the runs apart (baselines find runs by name).
    assert [(t["name"], t["harness"]) for t in tasks] == [
        ("night/helm/zen_mc", "HELM"), ("night/inspect-ai/zen_mc", "inspect-ai 0.3.285")]


def test_helm_run_names_keep_their_arguments_without_the_model():
    from losslens.lm.harness import helm_model_of, helm_task_of

    run = "mmlu:subject=anatomy,method=multiple_choice_joint,model=openai_gpt2"
    assert helm_task_of(run) == "mmlu:subject=anatomy,method=multiple_choice_joint"
    assert helm_model_of(run) == "openai_gpt2" and helm_task_of("zen_mc:model=x") == "zen_mc"


def test_a_log_without_log_probs_says_what_would_make_it_scoreable(tmp_path):
    log = json.loads((INSPECT / "base/zen_mc.json").read_text())
    for sample in log["samples"]:
        sample["output"]["choices"][0]["logprobs"] = None  # a model run without logprobs=True
    path = tmp_path / "nolp.json"
    path.write_text(json.dumps(log))
    _one_line_error(tmp_path, path, "nolp.json", "nothing to score", "logprobs=True")


def test_the_report_heading_names_the_harness_that_wrote_the_logs(tmp_path):
    # The tasks section said "lm-evaluation-harness tasks" for inspect-ai and HELM logs too.
    import losslens

    page = losslens.evaluate(DATA / "inspect_ai" / "base").to_html()
    assert "<h2>inspect-ai 0.3.285 tasks</h2>" in page
    assert "lm-evaluation-harness tasks" not in page
