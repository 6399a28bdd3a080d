"""The Trainer state reader against trainer_state.json files transformers wrote (tests/data/trainer)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from losslens.errors import InputError
from losslens.readers.trainer import NEAR_ZERO_LOSS, read_trainer_state

DATA = Path(__file__).parent / "data" / "trainer"


def history(run: str) -> list[dict]:
    return json.loads((DATA / run / "trainer_state.json").read_text())["log_history"]


def test_curves_are_the_logged_numbers():
    run = read_trainer_state(DATA / "zen")  # the folder, as Trainer's output_dir
    logged = history("zen")
    assert run.train == tuple((e["step"], e["loss"]) for e in logged if "loss" in e)
    assert [s for s, _ in run.train] == list(range(5, 61, 5))
    # trainer.evaluate() after train() logs step 60 a second time: kept once
    assert [e["step"] for e in logged if "eval_loss" in e] == [10, 20, 30, 40, 50, 60, 60]
    assert [s for s, _ in run.eval] == [10, 20, 30, 40, 50, 60]
    assert (run.global_step, run.max_steps) == (60, 60)
    assert run.eval_results["eval_loss"] == run.eval[-1][1]


def test_train_loss_mean_is_the_mean_of_the_logged_losses():
    """Each logged loss averages the 5 steps since the last log, so their mean is Trainer's train_loss."""
    run = read_trainer_state(DATA / "zen" / "trainer_state.json")
    # Trainer sums float32 losses step by step; the logged values are rounded to float64 reprs
    assert np.mean([loss for _, loss in run.train]) == pytest.approx(run.train_loss_mean, rel=1e-6)


def test_gap_best_step_and_where_eval_stopped_improving():
    run = read_trainer_state(DATA / "zen")
    logged = history("zen")
    train = {e["step"]: e["loss"] for e in logged if "loss" in e}
    evals = {e["step"]: e["eval_loss"] for e in logged if "eval_loss" in e}
    assert run.gap() == tuple((s, evals[s] - train[s]) for s in (10, 20, 30, 40, 50, 60))
    assert run.gap()[0] == (10, 3.592231273651123 - 3.1812000274658203)
    assert run.best_eval_step() == min(evals, key=evals.get) == 10
    assert run.stopped_improving_step() == 10
    assert run.near_zero_training_loss() is None  # 2.19 nats at the end: not memorised


def test_memorised_run_is_flagged():
    run = read_trainer_state(DATA / "memorise")
    logged = [(e["step"], e["loss"]) for e in history("memorise") if "loss" in e]
    first = next(s for s, loss in logged if loss < NEAR_ZERO_LOSS)
    assert run.near_zero_training_loss() == first == 55  # 0.0438 nats, read off the file
    assert run.near_zero_training_loss(threshold=0.01) == 100  # 0.0099 nats
    assert run.stopped_improving_step() == 10  # eval loss 3.7265, then up to 7.28
    assert run.gap()[-1][1] > 3  # eval far above a near-zero training loss


def test_gap_uses_the_last_training_loss_before_an_eval(tmp_path):
    state = {"global_step": 7, "max_steps": 7, "log_history": [
        {"step": 2, "loss": 2.0}, {"step": 3, "eval_loss": 2.5}, {"step": 1, "eval_loss": 3.0},
        {"step": 6, "loss": 1.0, "learning_rate": 0.1}, {"step": 7, "learning_rate": 0.1},
        {"step": 7, "eval_loss": 2.5}]}
    path = tmp_path / "trainer_state.json"
    path.write_text(json.dumps(state))
    run = read_trainer_state(path)
    assert run.gap() == ((3, 0.5), (7, 1.5))  # the eval at step 1 precedes every training log
    assert run.best_eval_step() == 3 and run.stopped_improving_step() == 3  # ties: the first
    assert run.eval_results is None


@pytest.mark.parametrize("state, message", [
    ({"global_step": 3}, "field 'log_history': missing; not a Trainer state file"),
    ({"log_history": [{"loss": 1.0}]}, "field 'log_history[0].step': None is not a step number"),
    ({"log_history": [{"step": 1, "loss": 1.0}, {"step": 2, "eval_loss": "high"}]},
     "field 'log_history[1].eval_loss': 'high' is not a number"),
])
def test_bad_input(tmp_path, state, message):
    path = tmp_path / "trainer_state.json"
    path.write_text(json.dumps(state))
    with pytest.raises(InputError, match=re.escape(f"{path}, {message}")):
        read_trainer_state(path)


def test_missing_and_unreadable(tmp_path):
    with pytest.raises(InputError, match=re.escape(f"{tmp_path / 'trainer_state.json'}: no such file")):
        read_trainer_state(tmp_path)
    bad = tmp_path / "trainer_state.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match=re.escape(f"{bad}: not a readable JSON file")):
        read_trainer_state(bad)
