"""The trend page in a real browser, with the report's browser check (tests/test_browser.py):
no console output, no fetches, no scripts, every chart visible, no sideways scroll.

Skipped without Chromium, failed without it when CI=true (the `chromium` fixture decides).
``LOSSLENS_UPDATE_SCREENSHOT=1`` also writes the screenshot to ``docs/trend.png``.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from test_browser import assert_healthy_page, chromium, inspect_page  # noqa: F401 - chromium is a fixture

pytestmark = pytest.mark.browser


def test_trend_page_in_headless_chromium(chromium, tmp_path):  # noqa: F811 - the imported fixture
    for night in range(1, 15):
        loss = 0.40 + 0.002 * (night % 3) + (0.25 if night >= 13 else 0.0)
        metrics = lambda value, half: {"log_loss": value, "log_loss_ci95": [value - half, value + half],  # noqa: E731
                                       "accuracy": 0.9, "ece": 0.02, "kl_empirical_bits": 0.01, "label_entropy_bits": 3.3}
        document = {"format_version": 1, "runs": [{
            "name": f"2026-03-{night:02d}", "overall": metrics(loss, 0.02),
            "by_split": {"train": metrics(0.2, 0.01), "validation": metrics(loss + 0.1, 0.03)},
            "by_slice": {"region": {r: metrics(loss + 0.05 * i, 0.05) for i, r in enumerate(["north", "south", "<east>"])}},
            "warnings": [{"code": "prior_shift", "scope": "overall", "message": "m"}] if night % 4 == 0 else []}]}
        (tmp_path / f"2026-03-{night:02d}.json").write_text(json.dumps(document))
    proc = subprocess.run([sys.executable, "-m", "losslens", "trend", "2026-03-*.json", "-o", "trend.html",
                           "--generated-at", "2026-03-15T00:00:00Z"], capture_output=True, text=True, timeout=60,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    facts = inspect_page(chromium, tmp_path / "trend.html", tmp_path / "profile")
    assert facts["title"].startswith("losslens trend")
    # Log loss bands, the small multiples, the slices that moved, the warning strip.
    assert_healthy_page(facts, n_charts=4, screenshot=tmp_path / "trend.png", docs_name="trend.png")
