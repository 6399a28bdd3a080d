"""A language-model report in a real browser, with the report's browser check (tests/test_browser.py):
no console output, no fetches, no scripts, every chart visible, no sideways scroll.

Two checkpoints of a character n-gram model on text that ships with Python (tests/lm_ngram.py),
one of them having memorised the Zen of Python. Skipped without Chromium, failed without it when
CI=true. ``LOSSLENS_UPDATE_SCREENSHOT=1`` also writes the screenshot to ``docs/report-lm.png``.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from lm_ngram import CharNGram, held_out_documents, zen_of_python
from test_browser import assert_healthy_page, chromium, inspect_page  # noqa: F401 - chromium is a fixture

pytestmark = pytest.mark.browser


def _tokens(order: int) -> pd.DataFrame:
    zen = zen_of_python()
    docs = {**held_out_documents(), "zen <b>memorised</b>": zen}
    model = CharNGram(order, alpha=0.05).fit(zen, zen + "".join(docs.values()))
    rows = [(name, ch, lp) for name, text in docs.items() for ch, lp in zip(text, model.token_logprobs(text))]
    return pd.DataFrame(rows, columns=["doc_id", "token", "logprob"]).astype({"logprob": np.float32})


def test_language_model_report_in_headless_chromium(chromium, tmp_path):  # noqa: F811 - the imported fixture
    _tokens(3).to_parquet(tmp_path / "base.parquet")
    _tokens(8).to_parquet(tmp_path / "tuned.parquet")
    proc = subprocess.run([sys.executable, "-m", "losslens", "report", "base.parquet", "tuned.parquet",
                           "-o", "lm.html", "--generated-at", "2026-03-15T00:00:00Z", "-q",
                           "--fail-if", "bits_per_byte > 2"], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path)
    assert proc.returncode in (0, 1), proc.stderr
    facts = inspect_page(chromium, tmp_path / "lm.html", tmp_path / "profile")
    assert facts["title"] == "losslens report: base, tuned"
    # Per-token and per-document loss histograms of each run.
    assert_healthy_page(facts, n_charts=4, screenshot=tmp_path / "lm.png", docs_name="report-lm.png")
