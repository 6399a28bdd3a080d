"""What a careful user notices: --help width, input paths, histogram bins, comparison units, progress."""

from __future__ import annotations

import io
import os
import signal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from losslens.cli import app
from losslens.progress import Progress, clock_time, known_rows

LM_EVAL = Path(__file__).parent / "data" / "lm_eval"


# -- --help in 80 columns -----------------------------------------------------------------------
def commands() -> list[list[str]]:
    group = typer.main.get_command(app)
    return [[]] + [[name] for name in sorted(group.commands)]


@pytest.mark.parametrize("command", commands(), ids=lambda c: " ".join(c) or "losslens")
def test_help_fits_80_columns(command):
    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "80"}, terminal_width=80)
    assert result.exit_code == 0, result.output
    long = [line for line in result.output.splitlines() if len(line) > 80]
    assert long == []
    assert len(result.output.splitlines()) > 10


def test_every_command_is_checked():
    assert {"metrics", "report", "trend"} <= {c[0] for c in commands() if c}


# -- the lm-eval page names the samples files ---------------------------------------------------
def test_lm_eval_page_shows_the_samples_path_not_dataframe(tmp_path):
    page = tmp_path / "r.html"
    result = CliRunner().invoke(app, ["report", str(LM_EVAL / "base"), "-o", str(page), "-q"])
    assert result.exit_code == 0, result.output
    html = page.read_text()
    assert "DataFrame" not in html
    (samples,) = (LM_EVAL / "base").rglob("samples_zen_mc2_*.jsonl")
    assert f"<dd><code>{samples}</code></dd>" in html


def test_lm_eval_task_run_inputs_and_worst_questions_name_the_file():
    from losslens.lm import evaluate_lm_eval

    evaluation = evaluate_lm_eval(LM_EVAL / "base")
    task = next(t for t in evaluation.tasks if t.task == "zen_mc4")
    run = task.classifier.runs[0]
    assert run.inputs == (task.source,) and task.source.endswith(".jsonl")
    assert run.worst and {e.source for e in run.worst} == {task.source}


# -- histogram bins -----------------------------------------------------------------------------
def fd_width_decades(values: np.ndarray) -> float:
    """Freedman–Diaconis's bin width of log10(values), by numpy (the reference)."""
    edges = np.histogram_bin_edges(np.log10(values), bins="fd")
    return float(edges[1] - edges[0])


@pytest.mark.parametrize("n, sigma", [(40, 1.0), (2000, 0.3), (200_000, 0.1)])
def test_bin_merge_follows_freedman_diaconis(n, sigma):
    from losslens.accumulate import HIST_EDGES
    from losslens.batch_figures import histogram_bins
    from losslens.html.log_bins import log_bin_group

    rng = np.random.default_rng(n)
    values = np.exp(rng.normal(0.5, sigma, n))
    counts = np.bincount(histogram_bins(values), minlength=len(HIST_EDGES) + 1)
    group = log_bin_group(counts, HIST_EDGES)
    fine = np.log10(HIST_EDGES[1] / HIST_EDGES[0])
    width = fd_width_decades(values)
    # The widest allowed merge (1, 2, 4 or 5 bins of 1/20 decade) not wider than numpy's FD
    # width; the quartiles come from binned counts, so allow a tenth of a bin of slack.
    allowed = [m for m in (1, 2, 4, 5) if m * fine <= width * 1.1 + 1e-12]
    assert group in allowed[-2:] if len(allowed) > 1 else group == 1


def test_narrow_per_document_losses_get_enough_bins():
    from losslens.html.charts import rebin
    from losslens.html.log_bins import log_bin_group, log_histogram

    rng = np.random.default_rng(0)
    per_document = np.exp(rng.normal(1.0, 0.05, 5000))  # every document near e nats/token
    counts, edges = log_histogram(per_document)
    assert counts.sum() == 5000
    heights, _, _ = rebin(counts.astype(float), edges, log_bin_group(counts, edges))
    drawn = np.flatnonzero(heights)
    assert drawn[-1] - drawn[0] + 1 >= 12
    # The old drawing: the accumulated 20-a-decade bins merged by 5 showed this as 1 or 2 bars.
    from losslens.accumulate import HIST_EDGES
    from losslens.batch_figures import histogram_bins

    old = np.bincount(histogram_bins(per_document), minlength=len(HIST_EDGES) + 1)
    old_heights, _, _ = rebin(old.astype(float), HIST_EDGES, 5)
    assert np.count_nonzero(old_heights) <= 2


def test_lm_section_bins_both_histograms_by_freedman_diaconis(monkeypatch):
    from losslens.html import log_bins
    from losslens.html.lm import lm_section
    from losslens.lm import evaluate_lm

    calls = []
    original = log_bins.log_bin_group

    def spy(counts, edges):
        calls.append((int(np.sum(counts)), len(edges)))
        return original(counts, edges)

    monkeypatch.setattr(log_bins, "log_bin_group", spy)
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"doc_id": np.repeat(np.arange(50), 40),
                          "logprob": -np.exp(rng.normal(0, 1, 2000)).astype(np.float32)})
    section = lm_section(evaluate_lm(frame, name="t").runs[0])
    assert [c.key for c in section.charts] == ["token-loss", "document-loss"]
    # Tokens: the accumulated (mergeable) 20-a-decade histogram; documents: 100 a decade.
    assert calls == [(2000, 381), (50, 1901)]


# -- comparison units ---------------------------------------------------------------------------
def test_lm_eval_checkpoint_units_in_terminal_and_page(tmp_path):
    page = tmp_path / "r.html"
    result = CliRunner().invoke(app, ["report", str(LM_EVAL / "base"), str(LM_EVAL / "tuned"), "-o", str(page)],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "tuned/zen_mc vs base/zen_mc: Δ log loss -3.9778 nats per question" in result.output
    assert "paired over 19 questions" in result.output
    assert "tuned/stdlib_docs vs base/stdlib_docs: Δ log loss " in result.output
    assert [line for line in result.output.splitlines() if "tuned/stdlib_docs vs" in line][0].count("nats per byte") == 1
    html = page.read_text()
    assert "Δ log loss, nats" in html and "<td>question</td>" in html.replace(' class="text"', "")


def test_token_runs_and_classifier_units():
    from losslens.engine import evaluate_lm_runs
    from losslens.terminal import comparisons_text, lm_comparisons_text

    frame = pd.DataFrame({"doc_id": [1, 1, 2, 2], "logprob": [-1.0, -2.0, -0.5, -0.5]})
    other = frame.assign(logprob=frame.logprob * 2)
    evaluation = evaluate_lm_runs([frame, other], names=["a", "b"])
    (c,) = evaluation.comparisons
    assert c.unit == "token"
    # Hand-worked: per-token losses double; reference 3.0 nats / 2 tokens and 1.0 / 2 → Δ = 1.0 per token.
    assert c.log_loss_delta == pytest.approx(1.0, rel=1e-12)
    assert "b vs a: Δ log loss +1.0000 nats per token" in lm_comparisons_text(evaluation.comparisons, 200)

    import losslens

    y = [0, 1, 1, 0]
    ev = losslens.evaluate_runs([pd.DataFrame({"id": range(4), "label": y, "p_1": [0.2, 0.7, 0.6, 0.4]}),
                                 pd.DataFrame({"id": range(4), "label": y, "p_1": [0.1, 0.8, 0.9, 0.3]})],
                                names=["r0", "r1"], id="id")
    from losslens.comparison import compare_runs

    text = comparisons_text(ev, compare_runs(ev), 200)
    assert "r1 vs r0: Δ log loss" in text and "nats per example" in text


# -- progress with a known total ----------------------------------------------------------------
class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Batch:
    def __init__(self, n):
        self.n = n


def test_progress_shows_percent_and_time_left():
    stream, clock = Terminal(), Clock()
    progress = Progress(stream=stream, clock=clock, total=10_000)
    clock.now += 4.0
    progress("preds", None, Batch(2_500))
    # 2,500 rows in 4 s: 625 rows/s; 7,500 rows left → 12 s.
    assert stream.getvalue() == "\rpreds: 2,500 rows (625 rows/s) 25%, 0:12 left"
    clock.now += 16.0
    progress("preds", None, Batch(5_000))
    # 7,500 rows in 20 s; 2,500 left at 375 rows/s → 6.67 s, shown rounded up.
    assert stream.getvalue().endswith("\rpreds: 7,500 rows (375 rows/s) 75%, 0:07 left")


def test_progress_without_total_is_unchanged():
    stream, clock = Terminal(), Clock()
    progress = Progress(stream=stream, clock=clock)
    clock.now += 2.0
    progress("preds", None, Batch(3_000))
    assert stream.getvalue() == "\rpreds: 3,000 rows (1,500 rows/s)"


def test_clock_time():
    assert [clock_time(s) for s in (0, 0.2, 59.5, 61, 3599.5, 3600, 7322)] == [
        "0:00", "0:01", "1:00", "1:01", "1:00:00", "1:00:00", "2:02:02"]


def test_known_rows_from_parquet_metadata(tmp_path):
    frame = pd.DataFrame({"label": [0, 1] * 50, "p_1": np.linspace(0.01, 0.99, 100)})
    frame.to_parquet(tmp_path / "a.parquet")
    parts = tmp_path / "parts"
    parts.mkdir()
    frame.iloc[:30].to_parquet(parts / "part-0.parquet")
    frame.iloc[30:].to_parquet(parts / "part-1.parquet")
    frame.to_csv(tmp_path / "a.csv", index=False)
    assert known_rows([str(tmp_path / "a.parquet")]) == 100
    assert known_rows([str(tmp_path / "a.parquet"), str(parts)]) == 200
    assert known_rows([str(tmp_path / "parts" / "part-*.parquet")]) == 100
    assert known_rows([str(tmp_path / "a.csv")]) is None  # rows unknown until read
    assert known_rows(["-"]) is None
    assert known_rows([frame]) is None


def test_known_rows_never_opens_a_fifo(tmp_path):
    fifo = tmp_path / "preds.parquet"
    os.mkfifo(fifo)

    def hung(*_):
        raise AssertionError("known_rows opened the FIFO")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(5)
    try:
        assert known_rows([str(fifo)]) is None
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_language_model_scopes_name_missing_values_as_classifier_scopes_do(tmp_path):
    # Null, NaN and an empty CSV cell are one "(missing)" scope; a real "(missing)" stays apart.
    import pandas as pd

    from losslens.lm import evaluate_lm

    rows = []
    for doc, split in enumerate(["a", None, "", "(missing)", float("nan"), "a"]):
        rows += [{"doc_id": doc, "logprob": -0.5 - doc / 10, "split": split}] * 3
    run = evaluate_lm(pd.DataFrame(rows), split="split").runs[0]
    assert sorted(run.by_split) == ['"(missing)"', "(missing)", "a"]
    assert run.by_split["(missing)"].n_documents == 3


def test_single_empty_or_memorised_document_is_counted_in_the_singular():
    import pandas as pd

    from losslens.lm import evaluate_lm

    frame = pd.DataFrame({"doc_id": [0, 0, 1, 1], "logprob": [-0.001, -0.002, -2.0, -1.5],
                          "mask": [1, 1, 0, 0]})
    run = evaluate_lm(frame, mask="mask").runs[0]
    messages = {w.code: w.message for w in run.warnings}
    assert messages["empty_documents"].startswith("1 document has no scored token")
    assert messages["memorized_documents"].startswith("1 of 1 document (100.0%)")
    assert "looks memorised" in messages["memorized_documents"]
