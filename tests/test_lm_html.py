"""The language-model section of the HTML report: content, escaping, reproducibility."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lm_ngram import CharNGram, held_out_documents, zen_of_python
from losslens.html.lm import lm_section, render_lm_section
from losslens.lm import evaluate_lm


def _run():
    zen = zen_of_python()
    docs = held_out_documents()
    docs["<script>alert(1)</script>"] = zen  # a hostile document id, and the memorised text
    model = CharNGram(8, alpha=0.05).fit(zen, zen + "".join(docs.values()))
    rows = [(name, ch, lp) for name, text in docs.items() for ch, lp in zip(text, model.token_logprobs(text))]
    frame = pd.DataFrame(rows, columns=["doc_id", "token", "logprob"]).astype({"logprob": np.float32})
    return evaluate_lm(frame, name="zen 8-gram").runs[0]


def test_section_shows_memorised_documents_first_and_escapes_user_text():
    run = _run()
    section = lm_section(run)
    assert [c.label for c in section.cards][:4] == ["bits per byte", "perplexity", "tokens", "documents"]
    assert section.warnings[0].code == "memorized_documents"
    assert [t.key for t in section.tables][0] == "memorized"
    assert section.tables[0].rows[0][0] == "<script>alert(1)</script>"
    assert [c.key for c in section.charts] == ["token-loss", "document-loss"]
    html = render_lm_section(section)
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "How to read these numbers (language models)" in html
    assert html.count("<svg") == 2
    assert len(html.encode()) < 1_000_000


def test_section_is_byte_identical_for_the_same_input():
    assert render_lm_section(lm_section(_run())) == render_lm_section(lm_section(_run()))


def test_lm_eval_section_lists_tasks_and_checkpoints():
    from pathlib import Path

    from losslens.html.lm import lm_eval_section, render_lm_eval_section
    from losslens.lm import evaluate_lm_eval

    data = Path(__file__).parent / "data" / "lm_eval"
    evaluation = evaluate_lm_eval([data / "base", data / "tuned"])
    section = lm_eval_section(evaluation)
    tasks = section.tables[0]
    assert [row[0] for row in tasks.rows][:2] == ["base/stdlib_docs", "base/zen_lambada"]
    assert [c.label for c in tasks.columns][3:] == ["acc", "acc_norm", "brier_score", "log_loss", "ece", "perplexity",
                                                    "word_perplexity", "byte_perplexity", "bits_per_byte"]
    checkpoints = section.tables[1]
    assert [row[1] for row in checkpoints.rows] == [c.candidate for c in evaluation.comparisons]
    # The over-fitted 4-gram is significantly worse on held-out docstrings: flagged as a regression.
    assert checkpoints.row_classes[0] == "regression"
    html = render_lm_eval_section(section)
    assert "generate_until task skipped" in html and "questions that got worse most" in html
    assert html == render_lm_eval_section(lm_eval_section(evaluate_lm_eval([data / "base", data / "tuned"])))
