"""The JSON document of format_version 3 (losslens.document) and the reader of versions 1 and 2 (issue 18).

tests/data/json_v2/ holds documents written by losslens before version 3 (the ``main`` of
issue 18) for the bundled wine example, a token pair and a sequence file, the lm-eval, HELM
and inspect-ai fixtures. Each is read through the adapter and must equal, whole, what this
losslens writes for the same input: the same runs, metrics, comparisons and warnings, only in
the one shape (the Trainer log of tests/data/trainer too, written by main once it read them).
Floats are compared to 1e-12 relative (tests/json_close.py): the numbers come
from the same sums, but the two versions need not add them in the same order.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from json_close import assert_json_close
from losslens.document import FORMAT_VERSION, assemble, job_document, upgrade_comparison, upgrade_run
from losslens.errors import InputError
from losslens.json_documents import document_runs, upgrade_document
from losslens.markdown import metrics_markdown

ROOT = Path(__file__).resolve().parents[1]
V2 = ROOT / "tests" / "data" / "json_v2"


def losslens(*args, cwd):
    # The losslens this test imported, wherever the command runs (a relative PYTHONPATH would not follow cwd).
    import losslens as package

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(package.__file__).parents[1]),
                                                        os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "losslens", *map(str, args)], capture_output=True, text=True,
                          timeout=180, cwd=cwd, env=env)


def token_frame(order: int) -> pd.DataFrame:
    from test_lm_cli import _token_frame  # the token files of the language-model tests: a real n-gram model

    return _token_frame(order)


def sequence_frame() -> pd.DataFrame:
    return pd.DataFrame({"doc_id": ["a", "b", "c"], "nll": [0.001, 40.0, 12.5], "n_tokens": [1, 20, 9]})


#: Each v2 document: how it was made (the inputs, relative to the folder it was run in).
CASES = {
    "classifier": (ROOT, ["example_data/wine_logits.csv"]),
    "lm_eval": (ROOT, ["tests/data/lm_eval/base"]),
    "helm": (ROOT, ["tests/data/helm/zen_mc:model=zen_ngram-base", "tests/data/helm/zen_mc:model=zen_ngram-tuned"]),
    "inspect_ai": (ROOT, ["tests/data/inspect_ai/base/zen_mc.eval"]),
    "tokens": (None, ["tuned.parquet", "base.parquet"]),
    "sequences": (None, ["seq.parquet"]),
    "trainer": (ROOT, ["tests/data/trainer/zen"]),
}


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """What this losslens writes for each case's input (the token and sequence files made as before)."""
    folder = tmp_path_factory.mktemp("inputs")
    token_frame(8).to_parquet(folder / "tuned.parquet")  # DataFrame.to_parquet defaults, float32 log-probs
    token_frame(3).to_parquet(folder / "base.parquet")
    sequence_frame().to_parquet(folder / "seq.parquet")
    out = {}
    for name, (cwd, inputs) in CASES.items():
        target = folder / f"{name}.json"
        done = losslens("metrics", *inputs, "--json", target, "-q", cwd=cwd or folder)
        assert done.returncode == 0, done.stderr
        out[name] = target.read_text()
    return out


#: Comparison figures added after tests/data/json_v2 was written (the Brier delta of
#: multiple-choice questions): a v2 document cannot have them, so they are left out of the
#: comparison with it (and only they: any other difference fails).
LATER = ("brier_score_delta", "brier_score_delta_ci95", "brier_score_delta_p_value")


def _as_of_v2(document: dict) -> dict:
    """``document`` without the figures of :data:`LATER` in multiple-choice comparisons."""
    document = json.loads(json.dumps(document))
    for comparison in document["comparisons"]:
        if comparison.get("unit") == "question":
            for key in LATER:
                comparison.pop(key, None)
                comparison.get("bootstrap", {}).pop(key, None)
    return document


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_version_2_document_reads_as_what_version_3_writes(written, name):
    old = json.loads((V2 / f"{name}.json").read_text())
    assert old["format_version"] == 2
    new = _as_of_v2(json.loads(written[name]))
    assert new["format_version"] == FORMAT_VERSION == 3
    assert_json_close(upgrade_document(old, name), new)
    assert upgrade_document(new, name) is new  # version 3 is read as it is
    assert_json_close(document_runs(old, name), document_runs(new, name))


def test_every_kind_has_the_one_shape(written):
    for name, text in written.items():
        document = json.loads(text)
        assert list(document) == ["format_version", "runs", "comparisons", "warnings", "notes"], name
        for run in document["runs"]:
            assert list(run)[:2] == ["name", "kind"] and list(run)[-1] == "warnings", name
            assert {"inputs", "layout", "overall", "by_split", "by_slice"} <= set(run), name
            assert all(list(w) == ["code", "message", "scope"] for w in run["warnings"])
        assert document["warnings"] == [{"run": r["name"], **w} for r in document["runs"] for w in r["warnings"]]
        for comparison in document["comparisons"]:
            assert list(comparison)[:7] == ["reference", "candidate", "unit", "paired", "n_paired",
                                            "log_loss_delta", "log_loss_delta_ci95"], name
            assert {comparison["reference"], comparison["candidate"]} <= {r["name"] for r in document["runs"]}
    kinds = {name: sorted({r["kind"] for r in json.loads(text)["runs"]}) for name, text in written.items()}
    assert kinds == {"classifier": ["classifier"], "tokens": ["tokens"], "sequences": ["sequences"],
                     "lm_eval": ["loglikelihood", "multiple_choice", "sequences"],
                     "helm": ["multiple_choice"], "inspect_ai": ["multiple_choice"], "trainer": ["trainer"]}
    units = {name: sorted({c["unit"] for c in json.loads(text)["comparisons"]}) for name, text in written.items()}
    assert units["tokens"] == ["token"] and units["helm"] == ["question"]


def test_a_classifier_run_keeps_its_sections(written):
    run = json.loads(written["classifier"])["runs"][0]
    old = json.loads((V2 / "classifier.json").read_text())["runs"][0]
    # Version 2's run with "kind" after its name: every other key where it was.
    assert list(run) == ["name", "kind", *list(old)[1:]] and run["kind"] == "classifier"
    for key in ("classes", "by_class", "worst_classes", "confused_pairs", "label_distribution", "warnings"):
        assert key in run
    assert run["layout"]["notes"] == old["layout"]["notes"]
    # The wine logits' overall log loss, by scikit-learn from the file (an independent reference).
    from scipy.special import log_softmax
    from sklearn.metrics import log_loss

    frame = pd.read_csv(ROOT / "example_data" / "wine_logits.csv")
    logits = frame[[c for c in frame if c.startswith("logit_")]].to_numpy()
    labels = frame["label"].map({c: i for i, c in enumerate(run["classes"])}).to_numpy()
    expected = log_loss(labels, np.exp(log_softmax(logits, axis=1)), labels=[0, 1, 2])
    assert run["overall"]["log_loss"] == pytest.approx(expected, rel=1e-12)  # numpy vs scipy/sklearn logs


def test_an_lm_eval_task_is_a_run_with_its_metrics_in_overall(written):
    runs = {r["name"]: r for r in json.loads(written["lm_eval"])["runs"]}
    old = {t["name"]: t for t in json.loads((V2 / "lm_eval.json").read_text())["tasks"]}
    mc = runs["base/zen_mc2"]
    assert (mc["kind"], mc["task"], mc["output_type"], mc["harness"]) == (
        "multiple_choice", "zen_mc2", "multiple_choice", "lm-evaluation-harness")
    assert mc["inputs"] == [old["base/zen_mc2"]["source"]]
    for key in ("n_examples", "accuracy", "acc_norm", "brier_score", "log_loss"):
        assert mc["overall"][key] is not None, key
    # Today's meanings: acc is lm-eval's, the brier score lm-eval's sum over the choices, which
    # for two choices is twice the one-column (binary) Brier score of the inner classifier run.
    assert mc["overall"]["acc"] == mc["overall"]["accuracy"]
    inner = old["base/zen_mc2"]["classifier"]["overall"]["brier_score"]
    assert mc["overall"]["brier_score"] == pytest.approx(2 * inner, rel=1e-15)
    assert mc["logged"] == old["base/zen_mc2"]["logged"]
    lambada = runs["base/zen_lambada"]  # no inner run: lm-eval's metrics alone
    assert lambada["overall"] == old["base/zen_lambada"]["metrics"] and lambada["layout"] == {}


def test_the_same_input_gives_the_same_bytes(tmp_path):
    for i in (1, 2):
        done = losslens("metrics", "tests/data/lm_eval/base", "tests/data/lm_eval/tuned", "--json",
                        tmp_path / f"{i}.json", "-q", cwd=ROOT)
        assert done.returncode == 0, done.stderr
    assert (tmp_path / "1.json").read_bytes() == (tmp_path / "2.json").read_bytes()


class _Run:
    """A run of a kind this module does not know (a harness of tomorrow), with its own to_dict."""

    name = "new-run"

    def to_dict(self):
        return {"name": self.name, "kind": "future", "inputs": ["log.json"], "layout": {"kind": "future"},
                "overall": {"log_loss": float("nan"), "eval_loss": 0.5}, "steps": [1, 2], "warnings": []}


def test_a_run_of_an_unknown_kind_passes_through():
    evaluation = type("E", (), {"runs": (_Run(),)})()
    document = job_document(evaluation)
    # Every key as the run gives it (NaN as null), and the scopes every run has.
    assert document["runs"] == [{"name": "new-run", "kind": "future", "inputs": ["log.json"],
                                 "layout": {"kind": "future"}, "overall": {"log_loss": None, "eval_loss": 0.5},
                                 "by_split": {}, "by_slice": {}, "steps": [1, 2], "warnings": []}]
    assert upgrade_run(document["runs"][0]) == document["runs"][0]
    assert document_runs(document, "x")[0]["layout_kind"] == "future"


def test_a_comparison_keeps_every_key_and_gains_unit_and_paired():
    old = {"reference": "a", "candidate": "b", "n_paired": 3, "log_loss_delta": -0.1, "p_value_new": 0.5}
    new = upgrade_comparison(old, {"a": "tokens"})
    assert new == {"reference": "a", "candidate": "b", "unit": "token", "paired": True, "n_paired": 3,
                   "log_loss_delta": -0.1, "p_value_new": 0.5}
    assert upgrade_comparison({"reference": "a", "candidate": "b"})["unit"] == "example"


def test_a_version_1_classifier_document_is_read():
    v2 = json.loads((V2 / "classifier.json").read_text())
    v1 = {**v2, "format_version": 1}  # version 1 differs only in compatible additions
    runs = document_runs(v1, "v1.json")
    assert runs[0]["kind"] == runs[0]["layout_kind"] == "classifier"
    assert runs[0]["overall"] == v2["runs"][0]["overall"]


def test_refusals_name_the_file():
    with pytest.raises(InputError, match=r"^x.json: runs\[0\] has no name or overall metrics"):
        upgrade_document({"format_version": 3, "runs": [{"name": "a"}]}, "x.json")
    with pytest.raises(InputError, match=r"^x.json: format_version 4 document without runs"):
        upgrade_document({"format_version": 4, "results": []}, "x.json")


def test_markdown_of_a_document_of_every_version(written):
    for name in CASES:
        old = metrics_markdown(json.loads((V2 / f"{name}.json").read_text()))
        assert old == metrics_markdown(_as_of_v2(json.loads(written[name]))), name
    text = metrics_markdown(json.loads(written["lm_eval"]))
    assert "| base/zen\\_mc2 | multiple\\_choice |" in text
    assert "`worse_than_prior`" in text


def test_assemble_lists_every_warning_with_its_run():
    runs = [{"name": "a", "kind": "classifier", "warnings": [{"code": "c", "message": "m", "scope": "overall"}]}]
    assert assemble(runs)["warnings"] == [{"run": "a", "code": "c", "message": "m", "scope": "overall"}]


def test_the_evaluation_of_a_library_user_writes_version_3():
    import losslens

    frame = pd.DataFrame({"label": [1, 0, 1], "y_prob": [0.9, 0.2, 0.6]})
    document = losslens.evaluate(frame).to_dict()
    assert document["format_version"] == 3 and document["runs"][0]["kind"] == "classifier"
    expected = -(np.log(0.9) + np.log(0.8) + np.log(0.6)) / 3
    assert document["runs"][0]["overall"]["log_loss"] == pytest.approx(expected, rel=1e-12)


def test_a_lm_eval_checkpoint_folder_copied_keeps_its_run_names(tmp_path):
    shutil.copytree(ROOT / "tests" / "data" / "lm_eval" / "base", tmp_path / "base")
    done = losslens("metrics", "base", "--json", "n.json", "-q", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    old = {r["name"] for r in document_runs(json.loads((V2 / "lm_eval.json").read_text()), "v2")}
    assert {r["name"] for r in json.loads((tmp_path / "n.json").read_text())["runs"]} == old


# --------------------------------------------------------------------------- a history that spans the upgrade


@pytest.fixture(scope="module")
def mixed_week(tmp_path_factory):
    """Seven lm-eval nights of the base checkpoint: three of format_version 2 (written before
    version 3, tests/data/json_v2), four of version 3; the last with the right answers'
    log-likelihoods of zen_mc lowered by 20 nats (as tests/test_trend_kinds.py perturbs them)."""
    from test_trend_kinds import _perturb, _rewrite

    root = tmp_path_factory.mktemp("mixed")
    reports = root / "reports"
    reports.mkdir()
    old = json.loads((V2 / "lm_eval.json").read_text())
    for day in (1, 2, 3):
        (reports / f"2026-03-0{day}.json").write_text(json.dumps({"generated_at": f"2026-03-0{day}T04:30:00Z", **old}))
    records = None
    for day in (4, 5, 6, 7):
        night = root / f"night{day}"
        shutil.copytree(ROOT / "tests" / "data" / "lm_eval" / "base", night / "base")
        if day == 7:
            records = _rewrite(night / "base" / "zen-ngram-base", "zen_mc", lambda r: _perturb(r, -20.0))
        done = losslens("metrics", "base", "--json", reports / f"2026-03-0{day}.json",
                        "--generated-at", f"2026-03-0{day}T04:30:00Z", "-q", cwd=night)
        assert done.returncode == 0, done.stderr
    return reports, records


def test_a_week_of_mixed_version_lm_eval_nights_gives_a_trend_shift_and_gates(mixed_week, tmp_path):
    from test_trend_kinds import hand_accuracy

    reports, records = mixed_week
    versions = [json.loads(p.read_text())["format_version"] for p in sorted(reports.glob("*.json"))]
    assert versions == [2, 2, 2, 3, 3, 3, 3]
    done = losslens("trend", reports / "*.json", "-o", tmp_path / "t.html", "--json", tmp_path / "t.json",
                    "--markdown", tmp_path / "t.md", "--fail-if", "acc < 0.4", cwd=tmp_path)
    assert done.returncode == 1, done.stderr  # the gate fails on the last night
    trend = json.loads((tmp_path / "t.json").read_text())
    assert len(trend["nights"]) == 7
    # Nights of both versions are one series per run: the same names, kinds and numbers.
    first, fourth = ({r["name"]: r for r in trend["nights"][i]["runs"]} for i in (0, 3))
    assert sorted(first) == sorted(fourth) and len(first) == 5
    assert first["base/zen_mc"]["layout_kind"] == fourth["base/zen_mc"]["layout_kind"] == "multiple_choice"
    assert_json_close(first["base/zen_mc"]["overall"], fourth["base/zen_mc"]["overall"])
    shifts = {w["run"] for w in trend["warnings"] if w["code"] == "trend_shift"}
    assert "base/zen_mc" in shifts
    gate = next(r for r in trend["gates"]["results"] if r["run"] == "base/zen_mc")
    assert gate["outcome"] == "fail" and gate["value"] == pytest.approx(hand_accuracy(records), abs=1e-15)
    assert "trend_shift" in (tmp_path / "t.md").read_text() and "base/zen\\_mc" in (tmp_path / "t.md").read_text()


def test_a_version_2_baseline_of_an_lm_eval_job(tmp_path):
    # The v2 document of the same folder as --baseline: every run matched, every delta 0.
    done = losslens("metrics", "tests/data/lm_eval/base", "--baseline", V2 / "lm_eval.json", "--json",
                    tmp_path / "b.json", "-q", "--fail-if", "delta.acc > 0.000001", cwd=ROOT)
    assert done.returncode == 0, done.stderr
    document = json.loads((tmp_path / "b.json").read_text())
    baseline = document["baseline"]
    assert baseline["unmatched_runs"] == [] and len(baseline["runs"]) == 5
    results = document["gates"]["results"]
    assert {r["outcome"] for r in results} == {"pass"} and any(r["run"] == "base/zen_mc" for r in results)
    assert all(abs(r["value"]) <= 1e-12 for r in results if r["value"] is not None)


def test_markdown_of_a_job_whose_tasks_were_all_skipped():
    # lm-eval generate_until tasks only: no run to score, yet the summary is written (with the notes' job).
    document = {"format_version": 3, "runs": [], "comparisons": [], "warnings": [], "notes": ["x: skipped"]}
    assert metrics_markdown(document).startswith("## losslens: \n")
    with pytest.raises(InputError, match="document without runs"):
        document_runs(document, "night.json")
