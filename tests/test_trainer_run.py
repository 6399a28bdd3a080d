"""Hugging Face Trainer runs end to end: ``losslens metrics`` / ``report`` / ``trend`` on trainer_state.json.

The fixtures were written by transformers' Trainer (tests/data/trainer/README.md). Every figure is
checked against the fixture's own JSON read here with json and numpy, independent of losslens.
Bits and perplexity are compared with rel=1e-12, never bitwise: log/exp may differ in the last bit
between numpy and libm.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from losslens.cli import app
from losslens.lm.detect import input_kind, is_trainer_output
from losslens.readers.trainer import NEAR_ZERO_LOSS

DATA = Path(__file__).parent / "data" / "trainer"
REL = 1e-12


def _history(run: str) -> list[dict]:
    return json.loads((DATA / run / "trainer_state.json").read_text())["log_history"]


def _invoke(*args, code: int = 0):
    result = CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "120"})
    assert result.exit_code == code, result.output
    return result


def _metrics(tmp_path, *args) -> dict:
    out = tmp_path / "out.json"
    _invoke("metrics", *args, "--json", out, "-q")
    return json.loads(out.read_text())


def _expected(run: str) -> dict:
    """The figures, by hand from the file: numpy over the logged losses."""
    history = _history(run)
    train = [(e["step"], e["loss"]) for e in history if "loss" in e]
    evals = {}
    for e in history:
        if "eval_loss" in e:
            evals.setdefault(e["step"], e["eval_loss"])  # trainer.evaluate() repeats the last one
    steps = sorted(evals)
    losses = np.array([evals[s] for s in steps])
    best = int(np.argmin(losses))  # the first of equal minima, as numpy's argmin
    last_train_before = [max((t for t in train if t[0] <= s), key=lambda t: t[0])[1] for s in steps]
    return {"eval_loss": losses[-1], "best_eval_loss": losses.min(), "best_step": steps[best],
            "evals_since_best": len(steps) - 1 - best, "train_loss": train[-1][1],
            "train_loss_min": min(loss for _, loss in train), "n_evaluations": len(steps),
            "gap": [[s, e - t] for s, e, t in zip(steps, losses, last_train_before)]}


@pytest.mark.parametrize("run", ["zen", "memorise"])
def test_figures_are_the_logged_curves(tmp_path, run):
    document = _metrics(tmp_path, DATA / run)
    assert document["format_version"] == 3
    (got,) = document["runs"]
    want = _expected(run)
    o = got["overall"]
    assert set(got) == {"name", "kind", "inputs", "layout", "overall", "by_split", "by_slice", "curves", "warnings"}
    assert got["by_split"] == got["by_slice"] == {}  # every run has its scopes; a Trainer log has none
    assert (got["name"], got["kind"], got["layout"]["kind"]) == (run, "trainer", "trainer")
    for key in ("eval_loss", "best_eval_loss", "best_step", "evals_since_best", "train_loss", "train_loss_min",
                "n_evaluations"):
        assert o[key] == want[key], key  # the logged numbers themselves: exact
    assert o["eval_cross_entropy_bits"] == pytest.approx(want["eval_loss"] / np.log(2), rel=REL)
    assert o["eval_perplexity"] == pytest.approx(np.exp(want["eval_loss"]), rel=REL)
    assert o["eval_loss_above_best"] == pytest.approx(want["eval_loss"] - want["best_eval_loss"], rel=REL)
    assert [s for s, _ in got["curves"]["gap"]] == [s for s, _ in want["gap"]]
    assert [g for _, g in got["curves"]["gap"]] == pytest.approx([g for _, g in want["gap"]], rel=REL)
    assert o["train_eval_gap"] == pytest.approx(want["gap"][-1][1], rel=REL)
    # Trainer's own figures beside them: eval_results.json and the summary's mean training loss
    logged = got["layout"]["logged"]
    assert logged["eval_results"]["eval_loss"] == json.loads((DATA / run / "eval_results.json").read_text())["eval_loss"]
    assert logged["train_loss_mean"] == next(e["train_loss"] for e in _history(run) if "train_loss" in e)


def test_zen_eval_loss_stopped_improving_at_step_10(tmp_path):
    (run,) = _metrics(tmp_path, DATA / "zen")["runs"]
    codes = [w["code"] for w in run["warnings"]]
    assert codes == ["train_eval_gap", "eval_loss_rising"]  # 2.19 nats at the end: not memorised
    rising = run["warnings"][1]["message"]
    assert rising.startswith("eval loss has not improved for 5 evaluations since step 10")
    result = _invoke("metrics", DATA / "zen")
    assert "zen: eval loss has not improved for 5 evaluations since step 10" in result.output


def test_memorised_run_warns_near_zero_training_loss_first(tmp_path):
    (run,) = _metrics(tmp_path, DATA / "memorise")["runs"]
    first = next(e["step"] for e in _history("memorise") if "loss" in e and e["loss"] < NEAR_ZERO_LOSS)
    assert first == 55
    near = [w for w in run["warnings"] if w["code"] == "near_zero_train_loss"]
    assert len(near) == 1 and f"at step {first}," in near[0]["message"] and near[0]["scope"] == "train"
    result = _invoke("metrics", DATA / "memorise")
    warnings = result.output[result.output.index("warnings ("):]
    assert warnings.splitlines()[1].lstrip().startswith("! near_zero_train_loss")  # memorisation first


def test_eval_results_that_disagree_are_inconsistent(tmp_path):
    folder = tmp_path / "out"
    shutil.copytree(DATA / "zen", folder)
    (run,) = _metrics(tmp_path, folder)["runs"]
    assert "inconsistent_samples" not in [w["code"] for w in run["warnings"]]  # Trainer wrote both: they agree
    results = json.loads((folder / "eval_results.json").read_text())
    results["eval_loss"] = 3.5  # a later trainer.evaluate() on another eval set
    (folder / "eval_results.json").write_text(json.dumps(results))
    (run,) = _metrics(tmp_path, folder)["runs"]
    (bad,) = [w for w in run["warnings"] if w["code"] == "inconsistent_samples"]
    assert "eval_results.json's eval_loss 3.5 ≠" in bad["message"] and "3.8652" in bad["message"]


def _checkpoints(tmp_path) -> Path:
    """An output folder of two checkpoints, as Trainer saves them (save_steps=30): the state grows."""
    out = tmp_path / "zen-run"
    state = json.loads((DATA / "zen" / "trainer_state.json").read_text())
    for step in (30, 60):
        folder = out / f"checkpoint-{step}"
        folder.mkdir(parents=True)
        part = {**state, "global_step": step, "log_history": [e for e in state["log_history"][:-2]
                                                              if e["step"] <= step]}
        (folder / "trainer_state.json").write_text(json.dumps(part, indent=2))
    return out


def test_detection_file_folder_checkpoints(tmp_path):
    out = _checkpoints(tmp_path)
    for spec in (DATA / "zen", DATA / "zen" / "trainer_state.json", out, out / "checkpoint-30"):
        assert is_trainer_output(spec) and input_kind([spec]) == "trainer", spec
    assert is_trainer_output(DATA / "zen" / "eval_results.json")  # the state beside it is the run
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(DATA / "zen" / "eval_results.json", alone)
    assert not is_trainer_output(alone / "eval_results.json") and not is_trainer_output(alone)
    (run,) = _metrics(tmp_path, DATA / "zen" / "eval_results.json")["runs"]
    assert run["name"] == "zen" and run["overall"]["eval_loss"] == _expected("zen")["eval_loss"]
    assert not is_trainer_output(tmp_path / "missing")
    # The output folder: the latest checkpoint's state, which holds every step up to it
    (run,) = _metrics(tmp_path, out)["runs"]
    assert run["overall"]["global_step"] == 60 and run["overall"]["n_evaluations"] == 6
    assert any("read the latest checkpoint, checkpoint-60" in n for n in run["layout"]["notes"])
    assert any("no eval_results.json or all_results.json" in n for n in run["layout"]["notes"])
    (run,) = _metrics(tmp_path, out / "checkpoint-30")["runs"]
    assert run["name"] == "zen-run/checkpoint-30"
    assert run["overall"]["global_step"] == 30 and run["overall"]["eval_loss"] == _history("zen")[8]["eval_loss"]
    assert any("step 30 of max_steps 60" in n for n in run["layout"]["notes"])


def test_trend_follows_eval_loss_over_nights_of_a_growing_state(tmp_path):
    out = _checkpoints(tmp_path)
    nights = []
    for day, step in ((1, 30), (2, 60)):
        night = tmp_path / f"night{day}.json"
        _invoke("metrics", out / f"checkpoint-{step}", "--name", "zen", "--json", night,
                "--generated-at", f"2026-12-0{day}T03:00:00Z", "-q")
        nights.append(night)
    trend = tmp_path / "trend.json"
    _invoke("trend", *nights, "--json", trend, "-o", tmp_path / "trend.html", "--markdown", tmp_path / "t.md",
            "-q")
    document = json.loads(trend.read_text())
    evals = {e["step"]: e["eval_loss"] for e in _history("zen") if "eval_loss" in e}
    got = [night["runs"][0]["overall"]["eval_loss"] for night in document["nights"]]
    assert got == [evals[30], evals[60]]
    assert [night["runs"][0]["layout_kind"] for night in document["nights"]] == ["trainer", "trainer"]
    assert "3.7180" in (tmp_path / "t.md").read_text()  # step 30's eval loss in the nights table
    # Gates on the latest night read the run's own figures
    # (-o in tmp_path: the default trend.html would land in the folder the tests run from)
    _invoke("trend", *nights, "-o", tmp_path / "g.html", "--fail-if", "eval_loss > 3.8", "-q", code=1)
    _invoke("trend", *nights, "-o", tmp_path / "g.html", "--fail-if", "eval_loss > 3.9", "-q")


def test_gates(tmp_path):
    _invoke("metrics", DATA / "zen", "--fail-if", "eval_loss > 2", "-q", code=1)
    _invoke("metrics", DATA / "zen", "--fail-if", "eval_loss > 4", "--fail-if", "train_eval_gap > 2", "-q")
    _invoke("metrics", DATA / "zen", "--fail-on-warning", "near_zero_train_loss", "-q")
    _invoke("metrics", DATA / "memorise", "--fail-on-warning", "near_zero_train_loss", "-q", code=1)
    result = _invoke("metrics", DATA / "zen", "--fail-if", "accuracy < 0.5", code=2)
    assert "trainer runs have no accuracy" in result.output
    # Against a baseline written the night before
    base = tmp_path / "base.json"
    _invoke("metrics", DATA / "zen", "--name", "run", "--json", base, "-q")
    _invoke("metrics", DATA / "memorise", "--name", "run", "--baseline", base, "--fail-if", "delta.eval_loss > 0.1",
            "-q", code=1)


def test_report_and_markdown(tmp_path):
    page, md = tmp_path / "r.html", tmp_path / "r.md"
    _invoke("report", DATA / "zen", DATA / "memorise", "--name", "<b>zen</b>", "--name", "mem", "-o", page,
            "--markdown", md, "-q")
    html = page.read_text()
    assert "<b>zen</b>" not in html and "&lt;b&gt;zen&lt;/b&gt;" in html  # names escaped
    assert html.count("<svg class=\"chart\"") == 2 and "Loss curves" in html
    assert "near_zero_train_loss" in html and "eval_loss_rising" in html
    assert "eval loss has not improved for 5 evaluations since step 10" in html
    assert "Trainer&#39;s own figures" in html or "Trainer's own figures" in html
    text = md.read_text()
    assert "| 3.8652 | 47.713 | 3.5922 | 10 | 5 | 2.1894 | 1.6758 |" in text
    assert "`near_zero_train_loss`" in text


def test_training_curve_alone(tmp_path):
    state = {"global_step": 10, "max_steps": 10, "log_history": [{"step": 5, "loss": 2.0}, {"step": 10, "loss": 1.5}]}
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "trainer_state.json").write_text(json.dumps(state))
    (run,) = _metrics(tmp_path, tmp_path / "run")["runs"]
    assert run["overall"]["eval_loss"] is None and run["overall"]["train_loss"] == 1.5
    assert run["warnings"] == [] and any("no eval_loss in log_history" in n for n in run["layout"]["notes"])


def _one_line_error(tmp_path, path, *needles):
    out = tmp_path / "o.json"
    result = _invoke("metrics", path, "--json", out, code=2)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert not out.exists()


def test_bad_inputs_exit_2_with_one_line(tmp_path):
    text = (DATA / "zen" / "trainer_state.json").read_text()
    for name, content, needles in [
        ("cut", text[: len(text) // 2], ["cut/trainer_state.json", "not a readable JSON file", "line"]),
        ("nolog", json.dumps({"global_step": 3}), ["nolog/trainer_state.json", "'log_history': missing"]),
        # json.dumps writes nan as NaN, as Trainer's own json.dumps does for a diverged run
        ("nan", json.dumps({"log_history": [{"step": 5, "loss": 2.0}, {"step": 10, "loss": math.nan}]}),
         ["nan/trainer_state.json", "'log_history[1].loss'", "step 10", "not a finite loss"]),
        ("empty", json.dumps({"log_history": []}), ["empty/trainer_state.json", "no entry with loss"]),
    ]:
        folder = tmp_path / name
        folder.mkdir()
        (folder / "trainer_state.json").write_text(content)
        _one_line_error(tmp_path, folder, *needles)


def test_a_folder_of_runs_gives_one_run_each(tmp_path):
    document = _metrics(tmp_path, DATA)
    assert [r["name"] for r in document["runs"]] == ["trainer/memorise", "trainer/zen"]
    assert [r["overall"]["eval_loss"] for r in document["runs"]] == [_expected("memorise")["eval_loss"],
                                                                    _expected("zen")["eval_loss"]]


def test_notebook_card_and_report():
    import losslens

    result = losslens.evaluate(str(DATA / "zen"))
    card = result._repr_html_()
    assert "Trainer runs" in card and "3.8652" in card and "eval_loss_rising" in card
    assert result.document()["runs"][0]["overall"]["best_step"] == 10


def test_per_example_writes_the_curves_one_row_per_step(tmp_path):
    out = tmp_path / "curves.csv"
    _invoke("metrics", DATA / "zen", "--per-example", out, "-q")
    import pandas as pd

    table = pd.read_csv(out)
    history = _history("zen")
    train = {e["step"]: e["loss"] for e in history if "loss" in e}
    assert list(table.columns) == ["run", "step", "train_loss", "eval_loss", "train_eval_gap"]
    assert table["step"].tolist() == sorted(train)  # every eval step also logged a training loss
    assert table["train_loss"].tolist() == pytest.approx([train[s] for s in sorted(train)], rel=1e-15)
    assert table["eval_loss"].notna().sum() == _expected("zen")["n_evaluations"]


def test_options_a_trainer_run_has_nothing_for_are_refused(tmp_path):
    result = _invoke("metrics", DATA / "zen", "--by", "split", "--bootstrap", "100", code=2)
    assert "--by, --bootstrap: a Trainer run is its logged loss curves" in result.output
    result = _invoke("metrics", DATA / "zen", "--engine", "dask", code=2)
    assert "--engine dask:" in result.output and "Traceback" not in result.output


def test_report_against_a_baseline_shows_the_regressions(tmp_path):
    base, page = tmp_path / "base.json", tmp_path / "r.html"
    _invoke("metrics", DATA / "zen", "--name", "run", "--json", base, "-q")
    _invoke("report", DATA / "memorise", "--name", "run", "--baseline", base, "-o", page, "-q")
    html = page.read_text()
    assert "Metrics now and in the baseline" in html and "regression" in html
    assert "7.1866" in html and "3.8652" in html  # eval loss now and in the baseline


def test_named_eval_sets_give_one_run_each(tmp_path):
    # eval_dataset={"zen": ..., "docs": ...} makes Trainer log eval_zen_loss and eval_docs_loss.
    state = json.loads((DATA / "zen" / "trainer_state.json").read_text())
    for entry in state["log_history"]:
        if "eval_loss" in entry:
            loss = entry.pop("eval_loss")
            entry.update(eval_docs_loss=loss, eval_zen_loss=loss / 2)
    folder = tmp_path / "two-sets"
    folder.mkdir()
    (folder / "trainer_state.json").write_text(json.dumps(state))
    (folder / "all_results.json").write_text(json.dumps({"eval_docs_loss": 3.8652048110961914,
                                                         "eval_zen_loss": 1.0, "train_loss": 2.58}))
    runs = {r["name"]: r for r in _metrics(tmp_path, folder)["runs"]}
    assert sorted(runs) == ["two-sets/docs", "two-sets/zen"]
    want = _expected("zen")
    assert runs["two-sets/docs"]["overall"]["eval_loss"] == want["eval_loss"]
    assert runs["two-sets/zen"]["overall"]["eval_loss"] == want["eval_loss"] / 2
    assert runs["two-sets/zen"]["overall"]["train_loss"] == want["train_loss"]  # one training curve for both
    # all_results.json (save_metrics' combined file) is checked per set
    assert "inconsistent_samples" not in [w["code"] for w in runs["two-sets/docs"]["warnings"]]
    (bad,) = [w for w in runs["two-sets/zen"]["warnings"] if w["code"] == "inconsistent_samples"]
    assert "all_results.json's eval_zen_loss 1 ≠ the last eval_zen_loss" in bad["message"]
