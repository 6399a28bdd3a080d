"""The notebook front end for every kind of input: token files, lm-eval folders and comparisons.

``losslens.evaluate(token_file)``, ``losslens.evaluate(lm_eval_folder)`` and
``losslens.compare(a, b)`` return results whose ``_repr_html_`` is a small card with the kind's
headline figures (formatted as the terminal prints them) and the full run names, escaped;
``to_json()`` is the document ``losslens metrics --json`` writes and ``to_html()`` the page
``losslens report`` writes. The token files come from a real character n-gram on real text
(tests/lm_ngram.py); the lm-eval folders are the n-gram checkpoints in tests/data/lm_eval.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import losslens
from lm_ngram import CharNGram, held_out_documents, zen_of_python
from losslens import formatting as fmt
from losslens import terminal
from losslens.lm.evaluation import LMEvaluation
from losslens.lm.lm_eval import LMEvalEvaluation

DATA = Path(__file__).parent / "data" / "lm_eval"
BASE, TUNED = DATA / "base" / "zen-ngram-base", DATA / "tuned" / "zen-ngram-tuned"
HOSTILE = "<script>alert(1)</script>"
PINNED = "2026-01-01T00:00:00Z"
#: The footer's "how this report was made" differs between the CLI and the notebook on purpose.
COMMAND = re.compile(r'<pre class="command"><code>.*?</code></pre>', re.S)


def _frame(order: int) -> pd.DataFrame:
    zen = zen_of_python()
    docs = held_out_documents()
    docs["zen"] = zen  # the training text: memorised
    model = CharNGram(order, alpha=0.05).fit(zen, zen + "".join(docs.values()))
    rows = [(name, ch, lp) for name, text in docs.items() for ch, lp in zip(text, model.token_logprobs(text))]
    return pd.DataFrame(rows, columns=["doc_id", "token", "logprob"]).astype({"logprob": np.float32})


@pytest.fixture(scope="module")
def tokens(tmp_path_factory):
    folder = tmp_path_factory.mktemp("notebook_tokens")
    _frame(8).to_parquet(folder / "tuned.parquet")  # DataFrame.to_parquet defaults
    _frame(3).to_parquet(folder / "base.parquet")
    return folder


def _masked(document: dict) -> dict:
    document.pop("generated_at", None)
    return document


def test_evaluate_a_token_file_is_a_language_model_evaluation(tokens):
    path = tokens / "tuned.parquet"
    evaluation = losslens.evaluate(path)
    assert isinstance(evaluation, LMEvaluation)
    o = evaluation.runs[0].overall
    frame = pd.read_parquet(path)
    nll = -frame["logprob"].astype(np.float64).to_numpy()
    n_bytes = sum(len(t.encode("utf-8")) for t in frame["token"])
    # Independent sums (pandas/numpy against the engine's batch order): equal to a few ulps.
    assert o.log_loss == pytest.approx(nll.mean(), rel=1e-12)
    assert o.perplexity == pytest.approx(math.exp(nll.mean()), rel=1e-12)
    assert o.bits_per_byte == pytest.approx(nll.sum() / n_bytes / math.log(2), rel=1e-12)
    assert evaluation.runs[0].name == "tuned"


def test_evaluate_an_lm_eval_folder_is_an_lm_eval_evaluation():
    evaluation = losslens.evaluate(BASE)
    assert isinstance(evaluation, LMEvalEvaluation)
    assert {t.name for t in evaluation.tasks} >= {"zen-ngram-base/zen_mc", "zen-ngram-base/stdlib_docs"}
    # The same numbers as lm-eval's own results file.
    results = json.loads(next(BASE.glob("results_*.json")).read_text())["results"]
    mc = next(t for t in evaluation.tasks if t.task == "zen_mc")
    assert mc.metrics["acc"] == pytest.approx(results["zen_mc"]["acc,none"], rel=1e-12)


def test_token_card_has_bits_per_byte_and_perplexity_as_the_terminal_prints_them(tokens):
    long_name = "checkpoints/2026-11-25/zen-8gram-tuned-on-the-zen-of-python/step-120000"
    evaluation = losslens.evaluate(tokens / "tuned.parquet", name=long_name)
    card = evaluation._repr_html_()
    o = evaluation.runs[0].overall
    text = terminal.lm_run_summary(evaluation.runs[0], 200)
    for name, value in (("bits_per_byte", o.bits_per_byte), ("perplexity", o.perplexity), ("log_loss", o.log_loss)):
        shown = fmt.value(name, value)
        assert shown in text and f">{shown}" in card, name
    assert "Bits per byte" in card and "Perplexity" in card
    assert long_name in card  # in full, though longer than the terminal's names
    assert "<code>memorized_documents</code>" in card
    assert len(card.encode()) < 100_000 and "<script" not in card.lower()


def test_hostile_run_names_are_escaped_in_every_card(tokens):
    cards = [losslens.evaluate(tokens / "tuned.parquet", name=HOSTILE)._repr_html_(),
             losslens.evaluate(BASE, name=HOSTILE)._repr_html_(),
             losslens.compare(tokens / "base.parquet", tokens / "tuned.parquet", names=["a", HOSTILE])._repr_html_()]
    for card in cards:
        assert "<script" not in card.lower()
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in card


def test_lm_eval_card_has_acc_and_log_loss_per_task_and_every_warning():
    evaluation = losslens.evaluate(BASE)
    card = evaluation._repr_html_()
    assert len(card.encode()) < 100_000
    for task in evaluation.tasks:
        assert f">{task.name}<" in card
        if task.output_type == "multiple_choice":
            for name in ("acc", "log_loss"):
                assert f">{fmt.value(name, task.metrics[name])}<" in card, (task.name, name)
    for code in {w.code for t in evaluation.tasks for w in t.warnings}:
        assert f"<code>{code}</code>" in card


@pytest.mark.parametrize("kind", ["tokens", "lm_eval"])
def test_to_json_is_the_clis_document_and_to_html_a_full_page(tokens, kind, run_cli, tmp_path):
    inputs = [tokens / "base.parquet", tokens / "tuned.parquet"] if kind == "tokens" else [BASE, TUNED]
    result = losslens.compare(*inputs)
    done = run_cli("report", *inputs, "--json", tmp_path / "cli.json", "-o", tmp_path / "cli.html",
                   "--generated-at", PINNED, "--quiet")
    assert done.returncode == 0, done.stderr
    cli = json.loads((tmp_path / "cli.json").read_text())
    assert _masked(json.loads(result.to_json())) == _masked(dict(cli))
    assert json.loads(result.to_json(generated_at=PINNED)) == cli
    page = result.to_html(generated_at=PINNED)
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert COMMAND.sub("", page) == COMMAND.sub("", (tmp_path / "cli.html").read_text())
    # Written to a file: the same bytes.
    assert result.to_html(tmp_path / "api.html", generated_at=PINNED) is None
    assert (tmp_path / "api.html").read_text() == page


def test_compare_token_files_is_the_paired_comparison_with_a_card(tokens):
    comparison = losslens.compare(tokens / "base.parquet", tokens / "tuned.parquet")
    reference = LMEvaluation  # the comparison's runs, as the job evaluated them
    job = comparison.job_result()
    assert isinstance(job.evaluation, reference)
    base, tuned = (run.documents for run in job.evaluation.runs)
    # Hand-worked: the token-weighted mean of per-document loss differences.
    ref = dict(zip(base.keys, base.nll / base.n_tokens))
    cand = dict(zip(tuned.keys, tuned.nll / tuned.n_tokens))
    weights = dict(zip(base.keys, base.n_tokens))
    expected = sum(weights[k] * (cand[k] - ref[k]) for k in ref) / sum(weights.values())
    assert comparison.log_loss_delta == pytest.approx(expected, rel=1e-12)
    card = comparison._repr_html_()
    assert len(card.encode()) < 100_000
    assert fmt.signed(comparison.log_loss_delta) in card and ">base<" in card.replace(" ", "")
    assert fmt.value("bits_per_byte", job.evaluation.runs[1].overall.bits_per_byte) in card
    # Two finished evaluations compare the same way.
    again = losslens.compare(losslens.evaluate(tokens / "base.parquet"), losslens.evaluate(tokens / "tuned.parquet"))
    assert again == comparison and again.to_json() == comparison.to_json()


def test_compare_lm_eval_folders_compares_task_by_task():
    result = losslens.compare(BASE, TUNED)
    assert isinstance(result, LMEvalEvaluation)
    assert [c.candidate for c in result.comparisons][:1] == ["zen-ngram-tuned/stdlib_docs"]
    card = result._repr_html_()
    for c in result.comparisons:
        assert f">{c.candidate}<" in card and fmt.signed(c.log_loss_delta) in card


def test_classifier_comparison_has_the_same_front_end(tmp_path, run_cli_json):
    example = Path(__file__).resolve().parents[1] / "example_data" / "digits_multiclass.parquet"
    old = pd.read_parquet(example)
    new = old.copy()
    columns = [c for c in old.columns if c.startswith("p_")]
    new[columns] = 0.8 * old[columns].to_numpy() + 0.2 / len(columns)
    old.to_parquet(tmp_path / "old.parquet", index=False)
    new.to_parquet(tmp_path / "new.parquet", index=False)
    comparison = losslens.compare(tmp_path / "old.parquet", tmp_path / "new.parquet", id="id")
    document = run_cli_json(tmp_path / "old.parquet", tmp_path / "new.parquet", "--id", "id")
    assert _masked(json.loads(comparison.to_json())) == _masked(document)
    card = comparison._repr_html_()
    assert len(card.encode()) < 100_000 and fmt.signed(comparison.log_loss_delta) in card
    assert card.count('class="lc-grid"') == 2  # both runs' headline figures


def test_a_comparison_made_outside_compare_falls_back_to_its_repr():
    from losslens.lm.compare import paired_documents

    c = paired_documents(("a",), np.array([1.0]), np.array([1.0]), ("a",), np.array([0.5]), "r", "c")
    assert c._repr_html_() is None
    with pytest.raises(losslens.UsageError, match="not made by losslens.compare"):
        c.to_json()


def test_token_frames_of_pandas_and_polars_are_detected_too(tokens):
    import polars as pl

    frame = pd.read_parquet(tokens / "tuned.parquet")
    expected = -frame["logprob"].astype(np.float64).mean()
    for data in (frame, pl.from_pandas(frame)):  # polars' schema.names is a method, pandas has columns
        evaluation = losslens.evaluate(data, name="frame")
        assert isinstance(evaluation, LMEvaluation)
        assert evaluation.runs[0].overall.log_loss == pytest.approx(expected, rel=1e-12)
