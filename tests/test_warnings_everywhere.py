"""Every warning code in a job's JSON shows in its terminal summary, HTML report and markdown.

One input of each kind, each made to warn the way real data does: a scikit-learn model on the
iris data with a few hard 0/1 outputs (classifier), a character n-gram scoring the Zen of Python
it was trained on and a model no better than letter frequencies (token files), and lm-eval
output of the n-gram checkpoints with one logged accuracy flipped (lm-eval samples folders).

The convention, the same in every reporter: a warning is shown by its code, verbatim --
``! code [scope]: message`` in the terminal, ``<code>code</code>`` in the HTML, `` `code` `` in
the markdown. The codes are collected from everywhere in the JSON document (runs, tasks, the
classifier run inside a multiple-choice task, the top-level list), so a warning nested
anywhere in the JSON must reach every reporter.
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lm_ngram import CharNGram, held_out_documents, zen_of_python
from losslens import terminal
from losslens.html import render_report
from losslens.job import run_job
from losslens.markdown import job_markdown

LM_EVAL = Path(__file__).parent / "data" / "lm_eval"
PINNED = datetime(2026, 1, 1, tzinfo=timezone.utc)


def warning_codes(document) -> set[str]:
    """Every ``code`` of a warning (an object with ``code`` and ``message``) anywhere in the document."""
    found = set()
    if isinstance(document, dict):
        if "code" in document and "message" in document:
            found.add(document["code"])
        for value in document.values():
            found |= warning_codes(value)
    elif isinstance(document, list):
        for value in document:
            found |= warning_codes(value)
    return found


def _classifier_file(folder: Path) -> Path:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    data = load_iris()
    names = np.asarray(data.target_names)
    order = np.random.default_rng(0).permutation(len(data.target))
    train = np.zeros(len(data.target), bool)
    train[order[:100]] = True
    model = LogisticRegression(C=1e4, max_iter=5000).fit(data.data[train], data.target[train])
    frame = pd.DataFrame(model.predict_proba(data.data), columns=[f"p_{n}" for n in names])
    # Hard 0/1 outputs, wrong, on three held-out rows (a tree, a rounding step): clipped, confident errors.
    for i in order[100:103]:
        frame.loc[i, :] = 0.0
        frame.loc[i, f"p_{names[(data.target[i] + 1) % 3]}"] = 1.0
    frame["p_unseen"] = 0.0  # a class the data never has: missing_classes
    frame.insert(0, "label", names[data.target])
    frame["split"] = np.where(train, "train", "test")
    frame["petal"] = np.where(data.data[:, 2] > 6.5, "long", "short")  # a slice of 9 rows: small_sample
    path = folder / "iris.csv"
    frame.to_csv(path, index=False)
    return path


def _token_files(folder: Path) -> list[Path]:
    zen = zen_of_python()
    docs = held_out_documents()
    docs["zen"] = zen  # the training text: memorised
    model = CharNGram(8, alpha=0.05).fit(zen, zen + "".join(docs.values()))
    rows = [(name, ch, lp, True) for name, text in docs.items() for ch, lp in zip(text, model.token_logprobs(text))]
    rows += [("masked", "x", -1.0, False)]  # a document with no scored token: empty_documents
    tuned = pd.DataFrame(rows, columns=["doc_id", "token", "logprob", "mask"]).astype({"logprob": np.float32})
    # A model that spreads its mass evenly over 1,000 tokens: worse than the text's letter frequencies.
    flat = tuned.assign(logprob=np.float32(-np.log(1000.0)))
    paths = [folder / "tuned.parquet", folder / "flat.parquet"]
    tuned.to_parquet(paths[0])
    flat.to_parquet(paths[1])
    return paths


def _lm_eval_folders(folder: Path) -> list[Path]:
    """The two n-gram checkpoints; the base's logged acc of one question flipped (inconsistent_samples)."""
    base = folder / "zen-ngram-base"
    shutil.copytree(LM_EVAL / "base" / "zen-ngram-base", base)
    for path in base.glob("samples_zen_mc4_*.jsonl"):
        records = [json.loads(line) for line in path.read_text().splitlines()]
        for r in records:
            if r["doc_id"] == 3:
                r["acc"] = 1.0 - r["acc"]
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return [base, LM_EVAL / "tuned" / "zen-ngram-tuned"]


@pytest.fixture(scope="module")
def jobs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("kinds")
    return {
        "classifier": run_job([_classifier_file(folder)], near_zero=0.05, by=("petal",)),
        "language_model": run_job(_token_files(folder), id="doc_id", mask="mask"),
        "lm_eval": run_job(_lm_eval_folders(folder)),
    }


#: The codes each input must produce: the test is only as strong as the warnings it sees.
EXPECTED = {
    "classifier": {"clipped_probabilities", "confident_errors", "missing_classes", "worse_than_prior",
                   "near_zero_loss", "small_sample"},
    "language_model": {"memorized_documents", "worse_than_prior", "empty_documents"},
    "lm_eval": {"inconsistent_samples", "worse_than_prior", "missing_classes", "small_sample"},
}


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_the_inputs_produce_the_warnings_they_were_made_for(jobs, kind):
    result = jobs[kind]
    assert result.kind == kind
    assert EXPECTED[kind] <= warning_codes(result.to_dict())


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_every_warning_code_shows_in_the_terminal(jobs, kind):
    result = jobs[kind]
    text = terminal.job_text(result, 100)
    missing = {c for c in warning_codes(result.to_dict()) if f"! {c} " not in text}
    assert not missing, text


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_every_warning_code_shows_in_the_html(jobs, kind):
    result = jobs[kind]
    page = render_report(result, generated_at=PINNED, command_line="losslens report")
    missing = {c for c in warning_codes(result.to_dict()) if f"<code>{c}</code>" not in page}
    assert not missing


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_every_warning_code_shows_in_the_markdown(jobs, kind):
    result = jobs[kind]
    text = job_markdown(result)
    missing = {c for c in warning_codes(result.to_dict()) if f"`{c}`" not in text}
    assert not missing, text


def test_each_tasks_warnings_are_in_the_terminal_and_the_tasks_section(jobs):
    """Not just the code somewhere: each lm-eval task's warning under that task's name, in the
    terminal (in full, or named on the line of further warnings of its code) and in the page's
    tasks section (the classifier sections after it cover only the first tasks)."""
    from losslens.html.lm import lm_eval_section

    result = jobs["lm_eval"]
    lines = terminal.job_text(result, 10_000).splitlines()
    section = lm_eval_section(result.evaluation)
    for task in result.evaluation.tasks:
        for w in task.warnings:
            full = [line for line in lines if line.startswith(f"  ! {w.code} [{task.name} ")]
            named = [line for line in lines if line.startswith(f"    … ") and f" more {w.code}: " in line
                     and f"{task.name} {w.scope}" in line]
            assert len(full) + len(named) >= 1, (task.name, w.code)
            assert any(s.code == w.code and s.scope.startswith(task.name) and s.message == w.message
                       for s in section.warnings), (task.name, w.code)
    shown = [line for line in lines if line.startswith("  ! small_sample ")]
    assert len(shown) == terminal.MAX_WARNINGS_PER_CODE  # the rest are named on one line
