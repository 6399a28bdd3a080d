"""Multiple-choice log loss of lm-eval samples is the exact log-softmax, never clipped.

A question's loss is −log softmax(lls)[gold] = logsumexp(lls) − lls[gold], which is
``torch.nn.functional.cross_entropy`` with the log-likelihoods as logits. Scored as clipped
probabilities it would stop at −log(2.2e-16) = 36.04 nats. The samples below are written in
lm-evaluation-harness 0.4's record shape (as tests/data/lm_eval/ holds: ``arguments`` as
``gen_args_i``, numbers as strings, ``resps`` one level deeper than ``filtered_resps``), with
questions of very different likelihoods and of 2 to 5 choices.

Figures computed by different libraries (torch, numpy, the engine's float64 log-softmax) are
compared within 1e-12 relative, never bitwise: their exp/log and summation order differ in the
last bits.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest


from losslens.errors import InputError
from losslens.lm import evaluate_lm_eval
from losslens.engine import evaluate_lm_runs
from losslens.lm.compare import paired_documents
from losslens.layouts.multiple_choice import classifier_frame, classifier_of
from losslens.lm.lm_eval import questions_of, read_lm_eval
from losslens.lm.options import LMOptions
from losslens.options import DEFAULT_WORST, Options

torch = pytest.importorskip("torch")  # a reference (make test installs it)

REL = 1e-12

#: (context, choices, gold index, log-likelihood per choice) of each question, per checkpoint.
QUESTIONS = [
    ("The capital of France is", ["Paris", "Rome"], 0),
    ("Two plus two is", ["three", "four", "five"], 1),
    ("Water boils at", ["100 C", "50 C", "10 C", "0 C"], 0),
    ("The sky is", ["green", "blue", "red", "plaid", "loud"], 1),
    ("Cats are", ["mammals", "fish", "birds"], 0),
]
BASE_LLS = [
    [-3.25, -4.5],
    [-500.0, -650.0, -512.75],          # gold 150 nats below the best: far beyond clipping
    [-12.5, -2.0, -7.125, -9.0],        # gold 10.5 nats below
    [-1.5, -900.0, -3.0, -4.0, -2.5],   # gold at −900: ~898.5 nats
    [-0.25, -60.0, -45.0],
]
TUNED_LLS = [
    [-1.0, -6.0],
    [-410.0, -400.0, -430.5],
    [-3.0, -5.5, -4.0, -8.25],
    [-80.0, -20.0, -95.0, -70.0, -81.0],  # gold 50 nats above the rest
    [-2.0, -1.0, -40.0],
]


def _record(doc_id: int, question, lls) -> dict:
    """One lm-eval 0.4 ``--log_samples`` record of a multiple-choice question."""
    context, choices, gold = question
    probs = np.exp(np.array(lls) - max(lls))
    probs /= probs.sum()
    acc = float(int(np.argmax(lls)) == gold)
    acc_norm = float(int(np.argmax(np.array(lls) / [len(c) for c in choices])) == gold)
    return {
        "doc_id": doc_id,
        "doc": {"context": context, "choices": choices, "label": gold},
        "target": str(gold),
        "arguments": {f"gen_args_{j}": {"arg_0": context, "arg_1": " " + c} for j, c in enumerate(choices)},
        "resps": [[[repr(ll), "False"]] for ll in lls],
        "filtered_resps": [[repr(ll), "False"] for ll in lls],
        "filter": "none",
        "metrics": ["acc", "acc_norm", "brier_score"],
        "acc": acc,
        "acc_norm": acc_norm,
        "brier_score": [gold, str(probs)],
    }


def _write(folder: Path, all_lls) -> Path:
    model = folder / "model"
    model.mkdir(parents=True)
    path = model / "samples_hard_mc_2026-01-01T00-00-00.000000.jsonl"
    path.write_text("".join(json.dumps(_record(i, q, lls)) + "\n"
                            for i, (q, lls) in enumerate(zip(QUESTIONS, all_lls))), encoding="utf-8")
    return folder


@pytest.fixture()
def checkpoints(tmp_path):
    return _write(tmp_path / "base", BASE_LLS), _write(tmp_path / "tuned", TUNED_LLS)


def torch_losses(all_lls) -> np.ndarray:
    """Each question's ``cross_entropy`` in float64, on its own (ragged) logits: no padding involved."""
    return np.array([
        torch.nn.functional.cross_entropy(torch.tensor([lls], dtype=torch.float64),
                                          torch.tensor([q[2]]), reduction="sum").item()
        for q, lls in zip(QUESTIONS, all_lls)
    ])


def numpy_losses(all_lls) -> np.ndarray:
    """logsumexp(lls) − lls[gold] by hand: max-shifted, in numpy."""
    out = []
    for q, lls in zip(QUESTIONS, all_lls):
        z = np.array(lls)
        top = z.max()
        out.append(top + math.log(np.exp(z - top).sum()) - z[q[2]])
    return np.array(out)


def test_log_loss_is_cross_entropy_on_the_loglikelihoods_never_clipped(checkpoints):
    base, _ = checkpoints
    (task,) = evaluate_lm_eval(base).tasks
    reference = torch_losses(BASE_LLS)
    # Hand-worked: lls (−500, −650, −512.75), gold −650: 150 + log(1 + e^−150 + e^−12.75).
    assert reference[1] == pytest.approx(150.0 + math.log1p(math.exp(-150.0) + math.exp(-12.75)), rel=REL)
    assert reference.max() > 898  # far beyond the 36.04 nats of a clipped probability
    assert numpy_losses(BASE_LLS) == pytest.approx(reference, rel=REL)
    assert task.metrics["log_loss"] == pytest.approx(reference.mean(), rel=REL)
    assert task.metrics["cross_entropy_bits"] == pytest.approx(reference.mean() / math.log(2), rel=REL)
    # The same through torch on the padded batch (−inf for missing choices), reduction mean.
    padded = torch.full((5, 5), -math.inf, dtype=torch.float64)
    for i, lls in enumerate(BASE_LLS):
        padded[i, : len(lls)] = torch.tensor(lls, dtype=torch.float64)
    gold = torch.tensor([q[2] for q in QUESTIONS])
    assert task.metrics["log_loss"] == pytest.approx(torch.nn.functional.cross_entropy(padded, gold).item(), rel=REL)
    # Each question's loss, as the paired comparison uses it.
    assert task.document_losses == pytest.approx(reference, rel=REL)
    assert task.classifier.runs[0].overall.n_clipped == 0
    assert (task.metrics["n_choices_min"], task.metrics["n_choices_max"]) == (2, 5)


def test_lm_evals_own_figures_keep_their_meaning(checkpoints):
    base, _ = checkpoints
    (task,) = evaluate_lm_eval(base).tasks
    gold = [q[2] for q in QUESTIONS]
    assert task.metrics["acc"] == np.mean([np.argmax(lls) == g for lls, g in zip(BASE_LLS, gold)]) == 0.4
    softmax = [np.exp(np.array(lls) - max(lls)) / np.exp(np.array(lls) - max(lls)).sum() for lls in BASE_LLS]
    brier = np.mean([((p - np.eye(len(p))[g]) ** 2).sum() for p, g in zip(softmax, gold)])
    assert task.metrics["brier_score"] == pytest.approx(brier, rel=REL)
    assert "inconsistent_samples" not in [w.code for w in task.warnings]


def test_a_missing_choice_changes_no_figure(checkpoints):
    base, _ = checkpoints
    (samples,) = read_lm_eval(base)[0]
    questions = questions_of(samples)
    padded_eval, padded_losses = classifier_of(classifier_frame(questions), "padded")
    run = padded_eval.runs[0]
    assert run.layout.neg_inf_padding and "logit -inf (probability exactly 0)" in run.layout.notes[-1]
    for i, q in enumerate(questions):  # each question alone: no padding at all
        alone_eval, alone_losses = classifier_of(classifier_frame([q]), "alone")
        assert not alone_eval.runs[0].layout.neg_inf_padding
        assert padded_losses[i] == pytest.approx(alone_losses[0], rel=REL)
    # The probabilities the engine derives (calibration, confidence) are lm-eval's softmax, 0 for padding.
    assert run.overall.accuracy == pytest.approx(0.4, rel=REL)
    assert run.overall.log_loss == pytest.approx(torch_losses(BASE_LLS).mean(), rel=REL)


def test_paired_delta_agrees_with_the_headline_log_losses(checkpoints):
    base, tuned = checkpoints
    evaluation = evaluate_lm_eval([base, tuned])
    ref, cand = evaluation.tasks
    (comparison,) = evaluation.comparisons
    assert (comparison.reference, comparison.candidate) == ("base/hard_mc", "tuned/hard_mc")
    assert comparison.paired is True and comparison.n_paired == 5
    headline = cand.metrics["log_loss"] - ref.metrics["log_loss"]
    assert comparison.log_loss_delta == pytest.approx(headline, rel=REL)
    expected = (torch_losses(TUNED_LLS) - torch_losses(BASE_LLS)).mean()
    assert comparison.log_loss_delta == pytest.approx(expected, rel=REL)
    as_dict = comparison.to_dict()
    keys = list(as_dict)
    assert as_dict["paired"] is True and keys.index("paired") == keys.index("n_paired") - 1


def test_no_clipping_warning_and_no_advice_to_pass_logits(checkpoints):
    base, tuned = checkpoints
    evaluation = evaluate_lm_eval([base, tuned])
    for task in evaluation.tasks:
        assert "clipped_probabilities" not in [w.code for w in task.warnings]
    text = json.dumps(evaluation.to_dict())
    assert "clipped_probabilities" not in text and "pass logits" not in text
    done = subprocess.run([sys.executable, "-m", "losslens", "metrics", base, tuned],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "hard_mc" in done.stdout
    assert "clipped" not in done.stdout and "pass logits" not in done.stdout


def test_a_gold_choice_at_minus_infinity_is_one_clear_error(tmp_path):
    lls = [list(x) for x in BASE_LLS]
    lls[2][0] = -math.inf  # the gold of question 3
    folder = _write(tmp_path / "broken", lls)
    (path,) = folder.rglob("samples_*.jsonl")
    with pytest.raises(InputError, match=re.escape(
            f"{path}, line 3, field 'filtered_resps': the gold choice's log-likelihood is -inf")):
        evaluate_lm_eval(folder)
    lls[2][0] = BASE_LLS[2][0]
    lls[2][1] = -math.inf  # another choice at −inf: probability exactly 0, scored exactly
    (task,) = evaluate_lm_eval(_write(tmp_path / "fine", lls)).tasks
    expected = torch_losses(lls)
    assert np.isfinite(expected).all()
    assert task.metrics["log_loss"] == pytest.approx(expected.mean(), rel=REL)


def test_language_model_comparisons_have_paired_as_classifier_ones():
    import pandas as pd

    base = pd.DataFrame({"doc_id": ["a", "a", "b"], "logprob": [-1.0, -2.0, -0.5]})
    tuned = pd.DataFrame({"doc_id": ["a", "a", "b"], "logprob": [-0.5, -1.0, -0.5]})
    (c,) = evaluate_lm_runs([base, tuned], names=["base", "tuned"]).comparisons
    assert (c.paired, c.n_paired) == (True, 2)
    assert c.log_loss_delta == pytest.approx((1.5 + 0.5) / 3 - (3.0 + 0.5) / 3, rel=REL)
    none = paired_documents(("a",), np.array([1.0]), np.array([1.0]), ("b",), np.array([2.0]), "r", "c")
    assert (none.paired, none.n_paired, none.log_loss_delta) == (False, 0, None)
    assert none.to_dict()["paired"] is False


def test_worst_has_one_default_for_every_kind():
    # One options tree: the language-model options are the same class under their old name.
    assert LMOptions is Options and Options().worst == DEFAULT_WORST == 20
    from losslens.cli import COMMON_OPTIONS

    (default,) = [d for name, _, d in COMMON_OPTIONS if name == "worst"]
    assert default.default == DEFAULT_WORST


def test_user_logits_stay_strict_and_huge_finite_logits_are_scored():
    import pandas as pd

    import losslens

    # A −inf in a user's logit column is still an error: only the multiple-choice padding may hold it.
    bad = pd.DataFrame({"label": [0, 1], "logit_0": [0.0, -math.inf], "logit_1": [1.0, 2.0]})
    with pytest.raises(InputError, match=re.escape("column 'logit_0', row 2: infinite value -inf is not a finite logit")):
        losslens.evaluate(bad)
    # Finite logits whose row sum overflows (1e308 + 1e308) used to crash the check; they are valid.
    big = pd.DataFrame({"label": [0, 1], "logit_0": [1e308, 0.0], "logit_1": [1e308, 1.0]})
    logits = torch.tensor(big[["logit_0", "logit_1"]].to_numpy(), dtype=torch.float64)
    expected = torch.nn.functional.cross_entropy(logits, torch.tensor(big["label"].to_numpy())).item()
    assert losslens.evaluate(big).overall.log_loss == pytest.approx(expected, rel=REL)


def test_a_first_record_without_responses_is_refused_not_taken_for_generate_until(tmp_path):
    # Found by the fuzz test: the output type was inferred from the first record alone, so a
    # multiple-choice task whose first record lost its filtered_resps was skipped as
    # generate_until with a note and exit 0, while the same defect on line 2 exits 2.
    import json
    import subprocess
    import sys

    records = [
        {"doc_id": 0, "target": 0, "arguments": [["Q", " a0"], ["Q", " a1"]], "metrics": ["acc", "acc_norm"]},
        {"doc_id": 1, "target": 1, "arguments": [["Q", " a0"], ["Q", " a1"]],
         "filtered_resps": [["-3.0", "False"], ["-0.5", "False"]], "metrics": ["acc", "acc_norm"]},
    ]
    path = tmp_path / "samples_mc_2026-01-01T00-00-00.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    done = subprocess.run([sys.executable, "-m", "losslens", "metrics", str(path)], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip() == (f"losslens: error: {path}, line 1, field 'filtered_resps': "
                                   "expected one [loglikelihood, is_greedy] per choice")
