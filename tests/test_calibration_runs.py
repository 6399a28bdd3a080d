"""Calibration that says what is fixable, through whole runs (``losslens.evaluate`` and the CLI).

References: HELM's equal-mass ECE (the reference of tests/test_calibration_fit.py), torchmetrics'
``multiclass_calibration_error`` (l2 and max norms) and scipy's ``minimize_scalar`` for the
temperature, each on the same numbers the run reads.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, logsumexp
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from test_calibration_fit import _reference_ece_em

import losslens
from losslens import calibration_sample
from losslens.calibration_sample import CalibrationSample

SRC = str(Path(__file__).resolve().parents[1] / "src")


@pytest.fixture(scope="module")
def digits():
    """An overconfident digits classifier (weak regularisation): logits of its train and test halves."""
    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.5, random_state=0)
    model = LogisticRegression(C=10.0, max_iter=5000).fit(x_train, y_train)
    return model.decision_function(x_train), y_train, model.decision_function(x_test), y_test


def _probability_frame(logits, y, split=None) -> pd.DataFrame:
    p = np.exp(log_softmax(logits, axis=1))
    frame = pd.DataFrame(p, columns=[f"p_{c}" for c in range(p.shape[1])])
    frame["label"] = y
    if split is not None:
        frame["split"] = split
    return frame


def _nll(z, y, t, w=None):
    zt = z / t
    losses = logsumexp(zt, axis=1) - zt[np.arange(len(y)), y]
    return float(np.average(losses, weights=w))


def _scipy_temperature(z, y):
    return minimize_scalar(lambda t: _nll(z, y, t), bounds=(0.01, 100), method="bounded",
                           options={"xatol": 1e-12}).x


def test_every_figure_against_its_reference_on_digits(digits):
    _, _, logits, y = digits
    frame = _probability_frame(logits, y)
    m = losslens.evaluate(frame).overall
    p = frame[[f"p_{c}" for c in range(10)]].to_numpy()
    conf, correct = p.max(axis=1), p.argmax(axis=1) == y
    assert m.ece_equal_mass == pytest.approx(_reference_ece_em(conf.tolist(), correct.astype(int).tolist()),
                                             rel=1e-12)
    assert m.ece_equal_width == m.ece
    # The temperature of the probability file: fitted on log(p), the same fit as on the logits.
    z = np.log(np.clip(p, np.finfo(float).eps, 1))
    t = _scipy_temperature(z, y)
    assert m.temperature == pytest.approx(t, rel=1e-6)
    assert m.temperature > 1  # C = 10: overconfident
    # log loss = calibration + refinement; in-sample the calibration part is never negative.
    assert m.calibration_loss >= 0
    assert m.log_loss_after_temperature == pytest.approx(_nll(z, y, t), rel=1e-9)
    assert m.refinement_loss == m.log_loss_after_temperature
    assert m.calibration_loss + m.refinement_loss == pytest.approx(m.log_loss, rel=1e-12)
    q = np.exp(log_softmax(z / m.temperature, axis=1))
    assert m.brier_after_temperature == pytest.approx(np.mean(((q - np.eye(10)[y]) ** 2).sum(axis=1)), rel=1e-9)


def test_rms_and_max_calibration_error_equal_torchmetrics(digits):
    # torchmetrics bins confidence with bucketize(right=True): a confidence of exactly 1.0 gets
    # an extra bin past the last, where losslens puts it in the last bin. These probabilities
    # stay below 1 (checked), so both bin the same way.
    torch = pytest.importorskip("torch")
    mcce = pytest.importorskip("torchmetrics.functional.classification").multiclass_calibration_error
    _, _, logits, y = digits
    frame = _probability_frame(logits / 3, y)  # softened so that no probability rounds to 1.0
    p = frame[[f"p_{c}" for c in range(10)]].to_numpy()
    assert p.max() < 1.0
    for bins in (15, 10):
        m = losslens.evaluate(frame, bins=bins).overall
        preds, target = torch.tensor(p), torch.tensor(y)
        for norm, ours in (("l1", m.ece_equal_width), ("l2", m.rms_calibration_error),
                           ("max", m.max_calibration_error)):
            ref = float(mcce(preds, target, num_classes=10, n_bins=bins, norm=norm))
            # torchmetrics casts confidences and accuracies to float32 before binning
            # (calibration_error.py: ``confidences.float()``): equal to float32's precision.
            assert ours == pytest.approx(ref, rel=1e-5), (norm, bins)


def test_logit_columns_fit_on_the_logits_themselves(digits):
    _, _, logits, y = digits
    frame = pd.DataFrame(logits, columns=[f"logit_{c}" for c in range(10)])
    frame["label"] = y
    m = losslens.evaluate(frame, logits="logit_").overall
    assert m.temperature == pytest.approx(_scipy_temperature(logits, y), rel=1e-6)
    assert m.log_loss_after_temperature == pytest.approx(_nll(logits, y, m.temperature), rel=1e-12)


def test_each_split_and_the_honest_fit_with_a_training_split(digits):
    train_logits, y_train, test_logits, y_test = digits
    frame = pd.concat([_probability_frame(train_logits, y_train, "train"),
                       _probability_frame(test_logits, y_test, "test")], ignore_index=True)
    run = losslens.evaluate(frame).run
    z = np.log(np.clip(frame[[f"p_{c}" for c in range(10)]].to_numpy(), np.finfo(float).eps, 1))
    y = frame["label"].to_numpy()
    test = (frame["split"] == "test").to_numpy()
    # The held-out split: its own in-sample fit.
    t_test = _scipy_temperature(z[test], y[test])
    assert run.by_split["test"].temperature == pytest.approx(t_test, rel=1e-6)
    assert run.by_split["test"].calibration_loss >= 0
    # The training split and overall take the held-out temperature (fitted on train it would run
    # to 0 for this memorising model); on the training split it makes the loss worse.
    for scope, mask in ((run.by_split["train"], ~test), (run.overall, np.ones(len(y), bool))):
        assert scope.temperature == pytest.approx(t_test, rel=1e-6)
        before, after = _nll(z[mask], y[mask], 1.0), _nll(z[mask], y[mask], scope.temperature)
        assert scope.calibration_loss == pytest.approx(before - after, rel=1e-6)
    assert run.by_split["train"].calibration_loss < 0
    assert any("fitted on the held-out splits" in note for note in run.layout.notes)
    conf = np.exp(z[test]).max(axis=1)
    correct = (z[test].argmax(axis=1) == y[test]).astype(int)
    assert run.by_split["test"].ece_equal_mass == pytest.approx(_reference_ece_em(conf.tolist(), correct.tolist()),
                                                                rel=1e-12)


def test_slices_get_their_own_figures(digits):
    _, _, logits, y = digits
    frame = _probability_frame(logits, y)
    frame["group"] = np.where(np.arange(len(y)) % 3 == 0, "a", "b")
    run = losslens.evaluate(frame, by=["group"]).run
    mask = (frame["group"] == "a").to_numpy()
    z = np.log(np.clip(frame[[f"p_{c}" for c in range(10)]].to_numpy(), np.finfo(float).eps, 1))
    assert run.by_slice["group"]["a"].temperature == pytest.approx(_scipy_temperature(z[mask], y[mask]), rel=1e-6)


def _synthetic(n: int, seed: int = 0) -> pd.DataFrame:
    """3 classes, labels drawn from softmax(logits / 2): overconfident by a factor of about 2."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 2, (n, 3))
    true_p = np.exp(log_softmax(logits / 2, axis=1))
    y = (rng.random(n)[:, None] > np.cumsum(true_p, axis=1)).sum(axis=1)
    frame = pd.DataFrame(np.exp(log_softmax(logits, axis=1)), columns=["p_a", "p_b", "p_c"])
    frame["label"] = np.array(["a", "b", "c"])[y]
    return frame


def test_a_run_over_the_sample_size_is_fitted_on_a_sample_and_says_so():
    frame = _synthetic(230_000)
    run = losslens.evaluate(frame).run
    notes = [n for n in run.layout.notes if "sample" in n]
    assert notes == ["ece_equal_mass and the temperature split are computed on a fixed-seed uniform sample of "
                     "200,000 of 230,000 examples"]
    # Close to the exact figures over all examples (a uniform sample of 200,000).
    p = frame[["p_a", "p_b", "p_c"]].to_numpy()
    y = frame["label"].map({"a": 0, "b": 1, "c": 2}).to_numpy()
    z = np.log(p)
    assert run.overall.temperature == pytest.approx(_scipy_temperature(z, y), rel=0.01)
    assert run.overall.temperature == pytest.approx(2.0, rel=0.03)
    exact_ece = _reference_ece_em(p.max(axis=1).tolist(), (p.argmax(axis=1) == y).astype(int).tolist())
    assert run.overall.ece_equal_mass == pytest.approx(exact_ece, abs=0.005)
    # Reproducible: the same file gives the same sample and figures.
    again = losslens.evaluate(frame).run
    assert again.overall.temperature == run.overall.temperature
    assert again.overall.ece_equal_mass == run.overall.ece_equal_mass


def test_the_sample_does_not_depend_on_batch_sizes():
    class Batch:  # the ScoredBatch fields the sample reads
        def __init__(self, probs, label, rows):
            self.probs, self.label, self.log_probs, self.targets = probs, label, None, None
            self.prob_columns, self.has_rows = None, True
            self.predicted, self.confidence = probs.argmax(axis=1), probs.max(axis=1)
            self.weight, self.split, self.slices, self.rows = np.ones(len(label)), None, None, rows

        @property
        def n(self):
            return len(self.label)

    frame = _synthetic(5000, seed=3)
    p = frame[["p_a", "p_b", "p_c"]].to_numpy()
    y = frame["label"].map({"a": 0, "b": 1, "c": 2}).to_numpy()
    kept = []
    for step in (5000, 977, 64):
        sample = CalibrationSample(3, 1e-15, size=1000)
        for start in range(0, 5000, step):
            sample(Batch(p[start:start + step], y[start:start + step], np.arange(start, min(start + step, 5000))))
        order = np.argsort(sample.keys)
        kept.append((sample.keys[order], sample.z[order]))
    for keys, z in kept[1:]:
        np.testing.assert_array_equal(keys, kept[0][0])
        np.testing.assert_array_equal(z, kept[0][1])
    # The 1,000 smallest of 5,000 uniform keys: a uniform sample without replacement.
    assert sample.n_seen == 5000 and sample.sampled


def test_many_classes_keep_float32_rows_within_the_byte_budget(monkeypatch):
    sample = CalibrationSample(1000, 1e-7)
    assert sample.dtype == np.float32
    assert sample.capacity * 1000 * 4 <= calibration_sample.SAMPLE_BYTES
    assert CalibrationSample(10, 1e-15).capacity == 200_000


def test_the_cli_writes_the_figures_and_gates_on_them(digits, tmp_path):
    _, _, logits, y = digits
    path = tmp_path / "digits.parquet"
    _probability_frame(logits, y).to_parquet(path)
    out = tmp_path / "out.json"
    env = {"PYTHONPATH": SRC, "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-m", "losslens", "metrics", str(path), "--json", str(out),
                           "--fail-if", "calibration_loss > 0.005"], capture_output=True, text=True, env=env,
                          timeout=120)
    assert proc.returncode == 1, proc.stderr  # the overconfident model fails the gate
    overall = json.loads(out.read_text())["runs"][0]["overall"]
    api = losslens.evaluate(str(path)).overall
    for name in ("ece_equal_width", "ece_equal_mass", "rms_calibration_error", "max_calibration_error",
                 "temperature", "log_loss_after_temperature", "calibration_loss", "refinement_loss",
                 "brier_after_temperature"):
        assert overall[name] == getattr(api, name), name
    assert overall["calibration_loss"] > 0.005
    assert "0.0536 of your 0.1940 nats are miscalibration that one temperature" in proc.stdout


def test_multiple_choice_lm_eval_tasks_get_them(tmp_path):
    from losslens.lm import evaluate_lm_eval
    from losslens.lm.lm_eval import questions_of, read_lm_eval

    tuned = Path(__file__).parent / "data" / "lm_eval" / "tuned"
    task = {t.task: t for t in evaluate_lm_eval(tuned).tasks}["zen_mc"]
    (samples,) = [t for t in read_lm_eval(tuned)[0] if t.task == "zen_mc"]
    questions = questions_of(samples)
    width = max(len(q.loglikelihoods) for q in questions)
    z = np.full((len(questions), width), -np.inf)
    for i, q in enumerate(questions):
        z[i, :len(q.loglikelihoods)] = q.loglikelihoods
    y = np.array([q.gold for q in questions])
    t = minimize_scalar(lambda t: _nll(z, y, t), bounds=(0.01, 100), method="bounded", options={"xatol": 1e-12}).x
    assert task.metrics["temperature"] == pytest.approx(t, rel=1e-6)
    assert task.metrics["calibration_loss"] >= 0
    assert task.metrics["calibration_loss"] + task.metrics["refinement_loss"] == pytest.approx(
        task.metrics["log_loss"], rel=1e-12)
    p = np.exp(log_softmax(z, axis=1))
    conf, correct = p.max(axis=1), (p.argmax(axis=1) == y).astype(int)
    assert task.metrics["ece_equal_mass"] == pytest.approx(_reference_ece_em(conf.tolist(), correct.tolist()),
                                                           rel=1e-12)
    assert task.classifier.runs[0].overall.temperature == task.metrics["temperature"]


def test_a_model_worse_than_uniform_gets_an_unbounded_temperature():
    # The base checkpoint's choice log-likelihoods point away from the gold answers: the best
    # temperature flattens them completely (T stops at 1e6) and the loss after it is the
    # uniform guess's, the mean of ln(number of choices).
    from losslens.lm import evaluate_lm_eval
    from losslens.lm.lm_eval import questions_of, read_lm_eval

    base = Path(__file__).parent / "data" / "lm_eval" / "base"
    task = {t.task: t for t in evaluate_lm_eval(base).tasks}["zen_mc"]
    (samples,) = [t for t in read_lm_eval(base)[0] if t.task == "zen_mc"]
    uniform = float(np.mean([np.log(len(q.loglikelihoods)) for q in questions_of(samples)]))
    assert task.metrics["temperature"] == 1e6
    assert task.metrics["log_loss_after_temperature"] == pytest.approx(uniform, rel=1e-5)
    assert task.metrics["calibration_loss"] > 0.5 * task.metrics["log_loss"]


def test_report_and_markdown_show_the_split_in_words(digits, tmp_path):
    from losslens.markdown import markdown_summary

    train_logits, y_train, test_logits, y_test = digits
    frame = pd.concat([_probability_frame(train_logits, y_train, "train"),
                       _probability_frame(test_logits, y_test, "<b>test</b>")], ignore_index=True)
    evaluation = losslens.evaluate(frame, name="a|b")
    test = evaluation.run.by_split["<b>test</b>"]
    page = tmp_path / "report.html"
    evaluation.to_html(page, generated_at="2026-01-01T00:00:00Z")
    html = page.read_text()
    assert "What one temperature fixes" in html and "Calibration: what one temperature fixes" in html
    assert "<b>test</b>" not in html and "&lt;b&gt;test&lt;/b&gt;" in html  # split names escaped
    # The held-out split's row: its own temperature and calibration loss, as the catalog prints them.
    assert f"<td class=\"num\">{test.temperature:.3f}</td>" in html
    assert f"<td class=\"num\">{test.calibration_loss:.4f}</td>" in html
    overall = evaluation.overall
    # Overall takes the held-out temperature: it gains on the test half more than it loses on train.
    assert overall.temperature == test.temperature and overall.calibration_loss > 0
    assert (f"{overall.calibration_loss:.4f} of your {overall.log_loss:.4f} nats are miscalibration that one "
            f"temperature fixes (T = {overall.temperature:.3f})") in html
    assert "the model is overconfident" in html
    text = markdown_summary(evaluation.document())
    assert "### Calibration" in text
    section = text.split("### Calibration")[1]
    row = next(line for line in section.splitlines() if line.startswith("| a\\|b | "))
    assert row.split(" | ")[5] == f"{overall.temperature:.3f}"  # after ECE equal-width, equal-mass, its interval, RMS


def test_in_words_for_a_fixable_run():
    from losslens.formatting import fixable
    from losslens.evaluation import Metrics

    m = Metrics.__new__(Metrics)
    object.__setattr__(m, "log_loss", 0.58)
    object.__setattr__(m, "calibration_loss", 0.12)
    object.__setattr__(m, "temperature", 1.7)
    assert fixable(m) == ("0.1200 of your 0.5800 nats are miscalibration that one temperature fixes (T = 1.700); "
                          "the other 0.4600 nats are refinement it cannot fix")
    object.__setattr__(m, "temperature", None)
    assert fixable(m) == ""
