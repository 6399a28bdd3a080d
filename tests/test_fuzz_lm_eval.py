"""Fuzzing the lm-evaluation-harness samples reader through the command line.

Hypothesis writes ``samples_<task>_<date>.jsonl`` files of multiple-choice questions in lm-eval
0.4's record shape (as tests/data/lm_eval holds: ``arguments`` as ``gen_args_i`` or as a list,
numbers as strings or numbers, a target as an index, its string or the choice's text), with
log-likelihoods of every scale and choices at −inf, then spoils some: a positive, NaN or textual
log-likelihood, the gold choice at −inf, a target that is no choice, no responses, arguments of
the wrong shape or number, a line that is no JSON object.

The property (as for token files, tests/test_fuzz_lm.py): exit 0 and lm-eval's ``acc`` /
``acc_norm`` and the log loss (the log-softmax of the log-likelihoods, never clipped) equal a
direct numpy computation, or exit 2 with one line naming the file (and the field or line), no
output written, the input unchanged, no traceback, no hang.
"""

from __future__ import annotations

import json
import math
import string
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from fuzz_cli import EPS64, fuzz_settings, pick, refused, run_metrics


# -- lm-evaluation-harness samples files ---------------------------------------------------------
LM_EVAL_SPOILERS = ("positive", "text", "nan", "gold_minus_inf", "no_responses", "arguments_number",
                    "broken_json", "fewer_arguments", "not_an_object", "target_out_of_range")
CHOICE = st.text(alphabet=string.ascii_letters + " .,'é中😀", min_size=1, max_size=8)


@st.composite
def lm_eval_files(draw):
    """Multiple-choice records as lm-eval 0.4 logs them, with log-likelihoods of every scale."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scale = draw(st.sampled_from([0.5, 10.0, 300.0]))
    questions = []
    for _ in range(draw(st.integers(1, 6))):
        k = draw(st.integers(2, 5))
        lls = -rng.exponential(scale, k)
        gold = int(rng.integers(0, k))
        if draw(st.integers(0, 5)) == 0:  # a choice the model gives probability 0 (not the gold one)
            lls[(gold + 1) % k] = -math.inf
        questions.append(dict(choices=draw(st.lists(CHOICE, min_size=k, max_size=k, unique=True)), lls=lls.tolist(), gold=gold))
    return dict(questions=questions, strings=draw(st.booleans()), target=draw(st.sampled_from(["int", "str", "text"])),
                arguments=draw(st.sampled_from(["gen_args", "list"])), logged=draw(st.booleans()),
                task=draw(st.text(alphabet=string.ascii_lowercase + "_", min_size=1, max_size=10)),
                spoil=pick(rng, LM_EVAL_SPOILERS) if draw(st.integers(0, 2)) == 0 else None,
                at=draw(st.integers(0, 5)))


def lm_eval_record(i: int, q: dict, case: dict) -> dict:
    """One record in lm-eval 0.4's shape (numbers as strings when ``case['strings']``)."""
    number = repr if case["strings"] else (lambda v: v)
    context = f"Question {i}:"
    if case["arguments"] == "gen_args":
        arguments = {f"gen_args_{j}": {"arg_0": context, "arg_1": " " + c} for j, c in enumerate(q["choices"])}
    else:
        arguments = [[context, " " + c] for c in q["choices"]]
    target = {"int": q["gold"], "str": str(q["gold"]), "text": q["choices"][q["gold"]]}[case["target"]]
    record = {"doc_id": i, "doc": {"query": context, "choices": q["choices"], "gold": q["gold"]}, "target": target,
              "arguments": arguments, "resps": [[[number(v), "False"]] for v in q["lls"]],
              "filtered_resps": [[number(v), "False"] for v in q["lls"]], "filter": "none",
              "metrics": ["acc", "acc_norm"]}
    if case["logged"]:
        record["acc"] = float(int(np.argmax(q["lls"])) == q["gold"])
    return record


def write_lm_eval(case: dict, folder: Path) -> tuple[Path, str | None]:
    """Write the samples file; return it and the field a refusal must name (None: a good file)."""
    questions = case["questions"]
    records = [lm_eval_record(i, q, case) for i, q in enumerate(questions)]
    spoil, at = case["spoil"], case["at"] % len(records)
    record, q = records[at], questions[at]
    field = "filtered_resps"
    if spoil == "target_out_of_range":
        record["target"], field = len(q["choices"]) + at, "target"
    elif spoil in ("positive", "text", "nan"):
        value = {"positive": "0.5", "text": "abc", "nan": "nan"}[spoil]
        record["filtered_resps"][at % len(q["lls"])][0] = value if spoil == "text" or case["strings"] else float(value)
    elif spoil == "gold_minus_inf":
        record["filtered_resps"][q["gold"]][0] = "-inf"
    elif spoil == "no_responses":
        del record["filtered_resps"]
    elif spoil == "arguments_number":
        record["arguments"], field = 5, "arguments"
    elif spoil == "fewer_arguments":
        record["arguments"], field = {"gen_args_0": {"arg_0": "x", "arg_1": " y"}}, None
    lines = [json.dumps(r) for r in records]
    if spoil == "broken_json":
        lines[at], field = lines[at][:-1], f"line {at + 1}"
    elif spoil == "not_an_object":
        lines[at], field = "[1, 2]", f"line {at + 1}"
    model = folder / "model"
    model.mkdir()
    path = model / f"samples_{case['task']}_2026-01-01T00-00-00.000000.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, (field if spoil else None)


def reference_lm_eval(questions: list) -> dict:
    """lm-eval's acc and acc_norm, and the log loss as log-softmax of the log-likelihoods, in numpy."""
    losses, acc, acc_norm = [], [], []
    for q in questions:
        z = np.array(q["lls"])
        d = z - z[q["gold"]]  # the loss is log Σ exp(d): log1p when the gold choice is the most likely
        top = d.max()
        rest = np.exp(np.delete(d, q["gold"]) - top).sum()
        losses.append(math.log1p(rest) if top == 0 else top + math.log(math.exp(-top) + rest))
        acc.append(int(np.argmax(z)) == q["gold"])
        acc_norm.append(int(np.argmax(z / [len(c) for c in q["choices"]])) == q["gold"])
    return dict(log_loss=float(np.mean(losses)), acc=float(np.mean(acc)), acc_norm=float(np.mean(acc_norm)))


@fuzz_settings(0.175)
@given(lm_eval_files())
def test_lm_eval_samples_give_numpys_numbers_or_one_line(case):
    with tempfile.TemporaryDirectory() as folder:
        path, field = write_lm_eval(case, Path(folder))
        out = Path(folder) / "out.json"
        code, _, stderr = run_metrics(path, out)
        if code != 0:
            refused(code, stderr, path, out, *([field] if field else []))
            event(f"refused ({case['spoil'] or 'good file!'})")
            assert case["spoil"] is not None, f"a good samples file was refused: {stderr}"
            return
        document = json.loads(out.read_text(encoding="utf-8"))
    assert case["spoil"] in (None, "fewer_arguments", "no_responses"), f"spoiled ({case['spoil']}) but accepted"
    assert document["format_version"] == 3
    if case["spoil"] == "no_responses" and case["at"] % len(case["questions"]) == 0:
        # The first record decides the output type: without responses the task reads as generate_until.
        event("skipped: first record without responses")
        assert not document["runs"]
        return
    assert case["spoil"] is None, f"spoiled ({case['spoil']}) but accepted"
    (task,) = document["runs"]
    expected = reference_lm_eval(case["questions"])
    event("figures checked")
    assert task["output_type"] == "multiple_choice" and task["n_documents"] == len(case["questions"])
    metrics = task["overall"]  # lm-eval's metrics over the recomputed ones
    # logsumexp(z) − z[gold] of log-likelihoods near −300 cancels: float64 keeps it to a few
    # epsilons of |z| (absolute), whatever the library; a near-certain question's loss (~1e-12)
    # has no 12 correct digits in any float64 log-softmax.
    scale = max(abs(v) for q in case["questions"] for v in q["lls"] if math.isfinite(v))
    assert metrics["log_loss"] == pytest.approx(expected["log_loss"], rel=1e-12, abs=16 * EPS64 * scale)
    assert metrics["acc"] == expected["acc"] and metrics["acc_norm"] == expected["acc_norm"]


@pytest.mark.parametrize("text", ["NaN", "inf", "-Infinity"])
def test_a_target_given_as_a_choice_text_that_reads_as_a_number_is_that_choice(tmp_path, text):
    # Found by the fuzzer: int(float("NaN")) raised ValueError (a traceback) instead of matching
    # the choice by its text, as lm-eval does for a string target.
    case = dict(questions=[dict(choices=["yes", text], lls=[-2.0, -0.5], gold=1)], strings=True, target="text",
                arguments="gen_args", logged=True, task="odd", spoil=None, at=0)
    path, _ = write_lm_eval(case, tmp_path)
    code, _, stderr = run_metrics(path, tmp_path / "out.json")
    assert code == 0, stderr
    (task,) = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))["runs"]
    # −log softmax([−2, −0.5])[1] = log(1 + e^−1.5), by hand.
    assert task["overall"]["log_loss"] == pytest.approx(math.log1p(math.exp(-1.5)), rel=1e-12)
    assert task["overall"]["acc"] == 1.0
