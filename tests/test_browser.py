"""The HTML report in a real browser: headless Chromium over the DevTools protocol.

Chromium is driven through ``--remote-debugging-pipe`` (JSON messages separated by NUL
bytes on file descriptors 3 and 4), so the test needs only the browser binary and the
standard library: no websocket client, no Selenium, no Playwright.

Without Chromium the test is skipped locally; with ``CI=true`` a missing browser fails.
``LOSSLENS_UPDATE_SCREENSHOT=1`` also writes the screenshots to ``docs/report.png`` (one run)
and ``docs/report-compare.png`` (two runs, a baseline and a failing gate).
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "example_data" / "digits_multiclass.parquet"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
#: Whole-test budget: a browser that hangs must fail the test, not the CI job.
TIMEOUT = 30.0
WIDTH = 1280

pytestmark = pytest.mark.browser


def find_chromium() -> str | None:
    """Path of a Chromium binary: ``$CHROMIUM``, /usr/bin/chromium, or one on PATH."""
    candidates = [os.environ.get("CHROMIUM"), "/usr/bin/chromium", *map(shutil.which, CHROMIUM_NAMES)]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


class DevTools:
    """A headless Chromium and a DevTools session over its debugging pipe."""

    def __init__(self, binary: str, profile: Path, deadline: float):
        self.deadline = deadline
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()

        def wire_pipes():
            # In the child: the protocol wants commands on fd 3 and replies on fd 4. Move the
            # pipe ends above 10 first, so that neither dup2 overwrites the other's source.
            high_r = fcntl.fcntl(to_child_r, fcntl.F_DUPFD, 10)
            high_w = fcntl.fcntl(from_child_w, fcntl.F_DUPFD, 10)
            os.dup2(high_r, 3)
            os.dup2(high_w, 4)

        self.process = subprocess.Popen(
            [
                binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-extensions", "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio",
                f"--user-data-dir={profile}", "--remote-debugging-pipe", f"--window-size={WIDTH},900",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            # close_fds would also close 3 and 4, made in preexec_fn; Python's own descriptors
            # are not inheritable anyway, so only 3 and 4 (dup2 makes them inheritable) pass.
            preexec_fn=wire_pipes, close_fds=False,
        )
        os.close(to_child_r)
        os.close(from_child_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []

    def close(self) -> None:
        """Stop the browser we started (by its process, never by name)."""
        try:
            self.send("Browser.close", timeout=3)
        except Exception:
            pass
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for fd in (self._to_child, self._from_child):
            try:
                os.close(fd)
            except OSError:
                pass

    def _read_message(self, until: float) -> dict:
        while b"\0" not in self._buffer:
            left = until - time.monotonic()
            if left <= 0:
                raise TimeoutError("Chromium did not answer in time")
            ready, _, _ = select.select([self._from_child], [], [], left)
            if ready:
                chunk = os.read(self._from_child, 1 << 20)
                if not chunk:
                    raise RuntimeError("Chromium closed the debugging pipe")
                self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        return json.loads(message)

    def send(self, method: str, session: str | None = None, timeout: float | None = None, **params) -> dict:
        """Send one command and return its result; events met meanwhile are kept."""
        self._next_id += 1
        command = {"id": self._next_id, "method": method, "params": params}
        if session:
            command["sessionId"] = session
        os.write(self._to_child, json.dumps(command).encode() + b"\0")
        until = min(self.deadline, time.monotonic() + timeout) if timeout else self.deadline
        while True:
            message = self._read_message(until)
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)


def inspect_page(binary: str, page: Path, profile: Path) -> dict:
    """Load ``page`` and return console problems, requests, chart sizes and a screenshot."""
    browser = DevTools(binary, profile, time.monotonic() + TIMEOUT)
    try:
        target = browser.send("Target.createTarget", url="about:blank")["targetId"]
        session = browser.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            browser.send(f"{domain}.enable", session)
        browser.send("Emulation.setDeviceMetricsOverride", session, width=WIDTH, height=900,
                     deviceScaleFactor=1, mobile=False)
        url = page.resolve().as_uri()
        browser.send("Page.navigate", session, url=url)
        # Poll rather than wait for Page.loadEventFired: a late load event of the first
        # about:blank page would otherwise pass for the report's.
        ready = f"document.readyState === 'complete' && location.href === {json.dumps(url)}"
        while not browser.send("Runtime.evaluate", session, expression=ready, returnByValue=True)["result"]["value"]:
            time.sleep(0.05)
        measured = browser.send(
            "Runtime.evaluate", session, returnByValue=True,
            expression="""JSON.stringify({
                charts: [...document.querySelectorAll('svg')].map(s => {
                    const r = s.getBoundingClientRect();
                    return {width: r.width, height: r.height,
                            visible: getComputedStyle(s).visibility !== 'hidden'
                                     && getComputedStyle(s).display !== 'none'};
                }),
                height: document.documentElement.scrollHeight,
                width: document.documentElement.scrollWidth,
                scripts: document.scripts.length,
                title: document.title,
            })""",
        )
        facts = json.loads(measured["result"]["value"])
        browser.send("Emulation.setDeviceMetricsOverride", session, width=WIDTH, height=facts["height"],
                     deviceScaleFactor=1, mobile=False)
        shot = browser.send("Page.captureScreenshot", session, format="png", captureBeyondViewport=True)
        facts["png"] = base64.b64decode(shot["data"])
        events = browser.events
    finally:
        browser.close()
    facts["console"] = [
        e["params"] for e in events
        if (e.get("method") == "Runtime.consoleAPICalled" and e["params"].get("type") in ("error", "warning", "assert"))
        or e.get("method") == "Runtime.exceptionThrown"
        or (e.get("method") == "Log.entryAdded" and e["params"]["entry"].get("level") in ("error", "warning"))
    ]
    facts["requests"] = [
        e["params"]["request"]["url"] for e in events
        if e.get("method") == "Network.requestWillBeSent" and e["params"]["request"]["url"] != url
    ]
    return facts


@pytest.fixture(scope="module")
def chromium() -> str:
    binary = find_chromium()
    if binary is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true but no Chromium found (set $CHROMIUM or install chromium)")
        pytest.skip("headless Chromium not found (install chromium or set $CHROMIUM)")
    return binary


def test_example_report_in_headless_chromium(chromium, tmp_path):
    # Run where the README's command runs, so the footer shows that command (for docs/report.png).
    (tmp_path / "example_data").mkdir()
    shutil.copy(EXAMPLE, tmp_path / "example_data" / EXAMPLE.name)
    report = tmp_path / "report.html"
    proc = subprocess.run(
        [sys.executable, "-m", "losslens", "report", f"example_data/{EXAMPLE.name}", "--by", "ink",
         "-o", "report.html", "--generated-at", "2026-01-01T00:00:00Z"],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "NO_COLOR": "1"}, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr

    facts = inspect_page(chromium, report, tmp_path / "profile")

    assert facts["title"].startswith("losslens report")
    # Seven charts for this example: distribution, loss histogram, class loss, reliability
    # (equal-width and equal-mass),
    # splits and the `ink` slice; the confusion matrix (10 classes) is a table beside them.
    assert_healthy_page(facts, n_charts=7, screenshot=tmp_path / "report.png", docs_name="report.png")


def perturbed_example(directory: Path) -> tuple[Path, Path]:
    """The example as an "old" run and a noisier "new" one over the same ids (seeded)."""
    import numpy as np
    import pandas as pd

    old = pd.read_parquet(EXAMPLE)
    columns = [c for c in old.columns if c.startswith("p_")]
    rng = np.random.default_rng(1)
    logits = np.log(np.clip(old[columns].to_numpy(), 1e-12, 1)) * 0.6 + rng.normal(size=(len(old), len(columns)))
    q = np.exp(logits - logits.max(axis=1, keepdims=True))
    new = old.copy()
    new[columns] = q / q.sum(axis=1, keepdims=True)
    paths = directory / "old.parquet", directory / "new.parquet"
    old.to_parquet(paths[0], index=False)
    new.to_parquet(paths[1], index=False)
    return paths


def test_compare_report_with_baseline_and_failing_gate_in_headless_chromium(chromium, tmp_path):
    perturbed_example(tmp_path)
    env = {**os.environ, "NO_COLOR": "1"}
    common = ["--id", "id", "--by", "ink"]
    proc = subprocess.run([sys.executable, "-m", "losslens", "metrics", "old.parquet", *common, "--json", "previous.json"],
                          capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    proc = subprocess.run(
        [sys.executable, "-m", "losslens", "report", "old.parquet", "new.parquet", "--name", "old", "--name", "new",
         *common, "--baseline", "previous.json", "--fail-if", "validation.log_loss > 0.12",
         "--fail-if", "delta.log_loss > 0.01", "--generated-at", "2026-01-01T00:00:00Z", "-o", "report.html"],
        capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path,
    )
    assert proc.returncode == 1, proc.stderr  # a gate failed, and the report is still written

    facts = inspect_page(chromium, tmp_path / "report.html", tmp_path / "profile")

    # The runs chart, then seven charts per run.
    assert_healthy_page(facts, n_charts=15, screenshot=tmp_path / "report.png", docs_name="report-compare.png")


def test_thousand_class_report_in_headless_chromium(chromium, tmp_path):
    """A 1,000-class float32 model (as torch gives it) with awkward class names: readable, small."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(3)
    n, k = 3000, 1000
    prior = 1.0 / np.arange(1, k + 1) ** 1.1
    logits = rng.normal(size=(n, k)) + np.log(prior / prior.sum())
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs = (probs / probs.sum(axis=1, keepdims=True)).astype(np.float32)
    cumulative = np.cumsum(probs.astype(np.float64), axis=1)
    labels = np.minimum((cumulative < (rng.random(n) * cumulative[:, -1])[:, None]).sum(axis=1), k - 1)
    names = [f"<b>class {j} & “{'x' * 60}”" if j % 50 == 0 else f"n{j:04d}" for j in range(k)]
    frame = pd.DataFrame(probs, columns=[f"p_{c}" for c in names])
    frame.insert(0, "label", [names[j] for j in labels])
    frame.to_parquet(tmp_path / "wide.parquet")
    proc = subprocess.run(
        [sys.executable, "-m", "losslens", "report", "wide.parquet", "-o", "report.html",
         "--generated-at", "2026-01-01T00:00:00Z"],
        capture_output=True, text=True, timeout=120, env={**os.environ, "NO_COLOR": "1"}, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    page = (tmp_path / "report.html").read_text()
    assert len(page.encode()) < 1_000_000 and "<b>class" not in page

    facts = inspect_page(chromium, tmp_path / "report.html", tmp_path / "profile")

    # Distribution and excess-loss charts of the chosen classes, histogram, reliability; no heat map.
    assert_healthy_page(facts, n_charts=5, screenshot=tmp_path / "report.png", docs_name="report-many.png")


def assert_healthy_page(facts: dict, n_charts: int, screenshot: Path, docs_name: str) -> None:
    """No console output, no fetches, no scripts; every chart visible; no sideways scroll.

    Saves the screenshot beside the test, and into docs/ when LOSSLENS_UPDATE_SCREENSHOT=1.
    """
    assert facts["console"] == [], f"console messages: {facts['console']}"
    assert facts["requests"] == [], f"the report fetched: {facts['requests']}"
    assert facts["scripts"] == 0
    assert len(facts["charts"]) == n_charts
    for chart in facts["charts"]:
        assert chart["visible"] and chart["width"] > 200 and chart["height"] > 100, chart
    assert facts["width"] <= WIDTH, "the page scrolls sideways at 1280 px"
    png = facts["png"]
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    screenshot.write_bytes(png)
    if os.environ.get("LOSSLENS_UPDATE_SCREENSHOT") == "1":
        (REPO / "docs").mkdir(exist_ok=True)
        (REPO / "docs" / docs_name).write_bytes(png)
