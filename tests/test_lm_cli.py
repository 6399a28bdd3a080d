"""Language models through `losslens metrics` and `losslens report`: detection, JSON, exit codes, errors.

The token files come from a real model on real text: a character 8-gram trained on the Zen of
Python (tests/lm_ngram.py), scoring held-out standard-library docstrings and the Zen itself
(memorised). Every number the command prints must be the library's (`losslens.lm`), which
tests/test_lm_tokens.py and tests/test_lm_eval.py check against lm-eval and hand-worked values.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.csv as pacsv
import pytest

from lm_ngram import CharNGram, held_out_documents, zen_of_python
from losslens.evaluation import FORMAT_VERSION
from losslens.lm import evaluate_lm, evaluate_lm_eval
from losslens.lm.export import per_document_table

DATA = Path(__file__).parent / "data" / "lm_eval"
PINNED = "2026-01-01T00:00:00Z"


def _losslens(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "losslens", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=120)


def _token_frame(order: int = 8) -> pd.DataFrame:
    zen = zen_of_python()
    docs = held_out_documents()
    docs["zen"] = zen  # the training text: memorised
    model = CharNGram(order, alpha=0.05).fit(zen, zen + "".join(docs.values()))
    rows = [(name, ch, lp) for name, text in docs.items() for ch, lp in zip(text, model.token_logprobs(text))]
    # float32 log-probs, as torch gives them.
    return pd.DataFrame(rows, columns=["doc_id", "token", "logprob"]).astype({"logprob": np.float32})


@pytest.fixture(scope="module")
def token_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tokens")
    _token_frame(8).to_parquet(folder / "tuned.parquet")  # DataFrame.to_parquet, default names
    _token_frame(3).to_parquet(folder / "base.parquet")
    return folder


def test_metrics_detects_a_token_file_and_prints_the_librarys_json(token_files):
    done = _losslens("metrics", token_files / "tuned.parquet", "--json", "-")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["runs"][0]["kind"] == "tokens" and document["format_version"] == FORMAT_VERSION
    library = evaluate_lm(token_files / "tuned.parquet").runs[0]
    run = document["runs"][0]
    assert run["name"] == "tuned" and run["layout"]["kind"] == "tokens"
    # The same code on the same file: equal, not merely close.
    assert run["overall"] == json.loads(json.dumps(library.overall.to_dict()))
    assert run["unigram_entropy_bits"] == library.unigram_entropy_bits
    # The summary went to stderr (stdout is the JSON), memorised documents first.
    assert "memorized_documents" in document["warnings"][0]["code"]
    assert document["warnings"][0]["run"] == "tuned"
    assert run["memorized_documents"][0]["document"] == "zen"
    assert "run 'tuned':" in done.stderr and "bits/byte" in done.stderr


def test_terminal_summary_fits_the_width(token_files):
    done = subprocess.run([sys.executable, "-m", "losslens", "metrics", str(token_files / "tuned.parquet")],
                          capture_output=True, text=True, env={**__import__("os").environ, "COLUMNS": "60"})
    assert done.returncode == 0, done.stderr
    assert max(len(line) for line in done.stdout.splitlines()) <= 60
    assert "memorised documents (highest Min-K% Prob first):" in done.stdout
    warnings = [line.strip() for line in done.stdout.splitlines() if line.strip().startswith("! ")]
    assert warnings[0].startswith("! memorized_documents [overall]:")  # first: it changes how to read the rest


def test_two_checkpoints_are_compared_paired_by_document(token_files):
    done = _losslens("metrics", token_files / "base.parquet", token_files / "tuned.parquet", "--json", "-", "-q")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    library = evaluate_lm_runs_of(token_files)
    assert document["comparisons"] == json.loads(json.dumps([c.to_dict() for c in library.comparisons]))
    (comparison,) = document["comparisons"]
    assert comparison["reference"] == "base" and comparison["candidate"] == "tuned"
    assert comparison["n_paired"] == len(held_out_documents()) + 1
    # By hand with pandas: per-document mean token loss, candidate − reference, weighted by the
    # reference's token counts (one tokenizer: characters).
    base, tuned = (pd.read_parquet(token_files / f"{n}.parquet").astype({"logprob": "float64"}).groupby("doc_id")["logprob"].agg(["sum", "size"])
                   for n in ("base", "tuned"))
    delta = (-tuned["sum"] / tuned["size"]) - (-base["sum"] / base["size"])
    expected = float((delta * base["size"]).sum() / base["size"].sum())
    assert comparison["log_loss_delta"] == pytest.approx(expected, rel=1e-12)  # float64 sums in another order


def evaluate_lm_runs_of(folder):
    from losslens.lm import evaluate_lm_runs

    return evaluate_lm_runs([folder / "base.parquet", folder / "tuned.parquet"])


def test_gates_read_language_model_metrics_from_the_catalog(token_files):
    path = token_files / "tuned.parquet"
    bpb = evaluate_lm(path).runs[0].overall.bits_per_byte
    failed = _losslens("metrics", path, "-q", "--fail-if", f"bits_per_byte > {bpb - 0.01}")
    assert failed.returncode == 1
    assert failed.stderr == f"losslens: gate failed: bits_per_byte > {bpb - 0.01} [run tuned]: {bpb:.6g}\n"
    assert _losslens("metrics", path, "-q", "--fail-if", f"bits_per_byte > {bpb + 0.01}").returncode == 0
    warned = _losslens("metrics", path, "-q", "--fail-on-warning", "memorized_documents")
    assert warned.returncode == 1 and "memorized_documents" in warned.stderr
    wrong = _losslens("metrics", path, "--fail-if", "accuracy < 0.5")
    assert wrong.returncode == 2 and wrong.stdout == ""
    assert wrong.stderr.startswith("losslens: error: --fail-if 'accuracy < 0.5': tokens runs have no accuracy; "
                                   "their metrics: log_loss, cross_entropy_bits, perplexity,")


def test_baseline_of_a_language_model_run(token_files, tmp_path):
    path = token_files / "tuned.parquet"
    assert _losslens("metrics", path, "-q", "--json", tmp_path / "before.json").returncode == 0
    done = _losslens("metrics", path, "--json", "-", "-q", "--baseline", tmp_path / "before.json",
                     "--fail-if", "delta.bits_per_byte > 0")
    assert done.returncode == 0, done.stderr
    deltas = json.loads(done.stdout)["baseline"]["runs"][0]["overall"]
    assert deltas["bits_per_byte"]["delta"] == 0.0 and deltas["n_documents"]["delta"] == 0


def test_per_example_writes_one_row_per_document(token_files, tmp_path):
    path = token_files / "tuned.parquet"
    out = tmp_path / "docs.csv"
    done = _losslens("metrics", path, "-q", "--per-example", out)
    assert done.returncode == 0, done.stderr
    written = pacsv.read_csv(out)
    expected = per_document_table(evaluate_lm(path).runs[0])
    assert written.column_names == expected.column_names  # doc_id: the input's own column name
    assert written.column("doc_id").to_pylist() == expected.column("doc_id").to_pylist()
    # CSV round trip of doubles: Arrow writes the shortest repr, so the values come back exactly.
    assert written.column("bits_per_byte").to_pylist() == expected.column("bits_per_byte").to_pylist()
    assert written.column("memorized").to_pylist() == expected.column("memorized").to_pylist()


def test_token_csv_written_by_to_csv_and_sequence_near_zero_rule(tmp_path):
    tokens = pd.DataFrame({"doc_id": [7, 7, 8], "logprob": [-1.0, -2.0, -0.5]})
    tokens.to_csv(tmp_path / "tokens.csv")  # default options: an unnamed index column too
    done = _losslens("metrics", tmp_path / "tokens.csv", "--json", "-", "-q")
    assert done.returncode == 0, done.stderr
    overall = json.loads(done.stdout)["runs"][0]["overall"]
    assert overall["log_loss"] == 3.5 / 3 and overall["n_documents"] == 2
    sequences = pd.DataFrame({"doc_id": ["a", "b"], "nll": [0.001, 40.0], "n_tokens": [1, 20]})
    sequences.to_parquet(tmp_path / "seq.parquet")
    run = json.loads(_losslens("metrics", tmp_path / "seq.parquet", "--json", "-", "-q").stdout)["runs"][0]
    assert run["overall"]["n_memorized"] == 1  # 0.001 nats/token <= --near-zero 0.01
    assert "mean token loss ≤ 0.01 nats" in run["warnings"][0]["message"]
    assert run["memorized_documents"][0]["min_k_prob"] is None  # no per-token detail


def test_reading_options_reach_the_lm_engine(tmp_path):
    # A token file without a known ending, semicolon-separated with decimal commas, in
    # Latin-1: --format, --sep, --decimal and --encoding must reach the reading of the run,
    # not only the detection of its kind.
    text = "doc_id;token;logprob\n7;é;-1,0\n7;b;-2,0\n8;c;-0,5\n"
    (tmp_path / "tokens.dat").write_bytes(text.encode("latin-1"))
    done = _losslens("metrics", tmp_path / "tokens.dat", "--format", "csv", "--sep", ";", "--decimal", ",",
                     "--encoding", "latin-1", "--json", "-", "-q")
    assert done.returncode == 0, done.stderr
    overall = json.loads(done.stdout)["runs"][0]["overall"]
    assert overall["log_loss"] == 3.5 / 3 and overall["n_documents"] == 2


def test_options_reach_the_lm_engine(tmp_path):
    # Losses in bits under custom column names, with a mask: --document, --nll, --log-base, --mask.
    frame = pd.DataFrame({"seq": [1, 1, 1, 2], "bits": [1.0, 3.0, 0.0, 2.0], "keep": [1, 1, 0, 1]})
    frame.to_parquet(tmp_path / "bits.parquet")
    done = _losslens("metrics", tmp_path / "bits.parquet", "--document", "seq", "--nll", "bits", "--log-base", "2",
                     "--mask", "keep", "--min-k", "0.5", "--memorized-prob", "0.9", "--json", "-", "-q")
    assert done.returncode == 0, done.stderr
    run = json.loads(done.stdout)["runs"][0]
    assert run["overall"]["n_tokens"] == 3  # the masked row is not scored
    assert math.isclose(run["overall"]["log_loss"], 6.0 * math.log(2) / 3, rel_tol=1e-15)
    assert math.isclose(run["overall"]["cross_entropy_bits"], 2.0, rel_tol=1e-15)
    assert run["min_k"] == 0.5 and run["overall"]["n_memorized"] == 0


def test_bad_input_is_one_line_and_exit_2_with_no_output(tmp_path):
    path = tmp_path / "tokens.parquet"
    pd.DataFrame({"doc_id": [1, 1], "logprob": [-1.0, 0.25]}).to_parquet(path)
    before = path.read_bytes()
    done = _losslens("metrics", path, "--json", tmp_path / "out.json")
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == (f"losslens: error: {path}, column 'logprob', row 2: log-probability 0.25 is positive; "
                           "log-probabilities are ≤ 0 (if the column holds losses, pass --nll logprob)\n")
    assert path.read_bytes() == before
    assert not (tmp_path / "out.json").exists()


def test_a_mix_of_classifier_and_language_model_inputs_is_a_usage_error(tmp_path):
    pd.DataFrame({"doc_id": [1, 1], "logprob": [-1.0, -0.5]}).to_parquet(tmp_path / "tokens.parquet")
    pd.DataFrame({"label": [0, 1], "y_prob": [0.2, 0.7]}).to_csv(tmp_path / "preds.csv", index=False)
    done = _losslens("metrics", "tokens.parquet", "preds.csv", cwd=tmp_path)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == ("losslens: error: INPUT preds.csv is a classifier prediction file but tokens.parquet is a "
                           "language-model token or sequence file; evaluate each kind in its own command\n")
    refused = _losslens("metrics", DATA / "base", "--bootstrap", "100")
    assert refused.returncode == 2
    assert refused.stderr.startswith("losslens: error: --bootstrap is for classifier files")
    dask = _losslens("metrics", DATA / "base", "--engine", "dask")
    assert dask.returncode == 2 and "--engine dask reads token and sequence files" in dask.stderr
    per_example = _losslens("metrics", DATA / "base", "--per-example", tmp_path / "x.csv")
    assert per_example.returncode == 2 and "lm-eval's samples_*.jsonl files already are that" in per_example.stderr
    assert not (tmp_path / "x.csv").exists()


def logged_results(folder: Path) -> dict:
    (path,) = folder.rglob("results_*.json")
    return json.loads(path.read_text())["results"]


@pytest.mark.parametrize("folder", ["base", "tuned"])
def test_lm_eval_aggregates_through_the_command_match_lm_evals_results(folder):
    done = _losslens("metrics", DATA / folder, "--json", "-", "-q")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["format_version"] == FORMAT_VERSION
    logged = logged_results(DATA / folder)
    checked = 0
    for task in document["runs"]:
        for key, value in logged[task["task"]].items():
            metric = key.split(",")[0]
            if "_stderr" in key or metric in ("name", "alias", "sample_len"):
                continue
            # lm-eval sums in its own order (numpy means, Python sums): equal to the last few ulps.
            assert task["overall"][metric] == pytest.approx(value, rel=1e-12), (task["name"], metric)
            checked += 1
    assert checked == 13
    assert document["runs"] == json.loads(json.dumps(evaluate_lm_eval(DATA / folder).job_result().to_dict()["runs"]))


def test_lm_eval_checkpoints_and_gates_per_task_type():
    done = _losslens("metrics", DATA / "base", DATA / "tuned", "--json", "-", "-q", "--fail-if", "acc_norm < 0.5")
    assert done.returncode == 1
    document = json.loads(done.stdout)
    assert len(document["runs"]) == 10 and len(document["comparisons"]) == 5
    # acc_norm exists for the three multiple-choice tasks of each checkpoint only.
    results = document["gates"]["results"]
    assert [r["run"] for r in results] == ["base/zen_mc", "base/zen_mc2", "base/zen_mc4",
                                           "tuned/zen_mc", "tuned/zen_mc2", "tuned/zen_mc4"]
    assert [r["outcome"] for r in results] == ["fail", "pass", "fail", "pass", "pass", "pass"]
    named = _losslens("metrics", DATA / "base", "--name", "ckpt", "--json", "-", "-q")
    assert json.loads(named.stdout)["runs"][0]["name"] == "ckpt/stdlib_docs"


def test_report_of_token_runs_is_self_contained_escaped_and_reproducible(tmp_path):
    frame = _token_frame(8)
    frame.loc[frame.doc_id == "zen", "doc_id"] = "<script>alert(1)</script>"
    frame.to_parquet(tmp_path / "tuned.parquet")
    _token_frame(3).replace({"doc_id": {"zen": "<script>alert(1)</script>"}}).to_parquet(tmp_path / "base.parquet")
    args = ["report", "../base.parquet", "../tuned.parquet", "--generated-at", PINNED, "-q", "-o", "r.html"]
    for again in ("a", "b"):
        (tmp_path / again).mkdir()
        assert _losslens(*args, cwd=tmp_path / again).returncode == 0
    html = (tmp_path / "a" / "r.html").read_text()
    assert html == (tmp_path / "b" / "r.html").read_text()
    assert len(html.encode()) < 1_000_000
    assert "<script" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "Checkpoint comparison" in html and "How to read these numbers (language models)" in html
    # Memorised documents first among the warnings, listed before the worst documents.
    assert html.index("memorized_documents") < html.index("Worst documents")
    assert html.count("<svg") == 4  # per-token and per-document loss of each run


def test_report_of_lm_eval_folders(tmp_path):
    done = _losslens("report", DATA / "base", DATA / "tuned", "-o", tmp_path / "r.html", "--generated-at", PINNED,
                     "-q", "--fail-if", "acc_norm < 0.5")
    assert done.returncode == 1
    html = (tmp_path / "r.html").read_text()
    assert "lm-evaluation-harness tasks" in html and "questions that got worse most" in html
    assert "QUALITY GATES" in html.upper() and "generate_until task skipped" in html
    # Each multiple-choice task is also a classifier run with its own section (reliability included).
    assert html.count("<h2>Run ") == 6 and "Run tuned/zen_mc4" in html and "Reliability diagram" in html
    assert len(html.encode()) < 1_000_000


def test_lm_eval_baseline_pairs_tasks_by_name_and_gates_on_deltas(tmp_path):
    assert _losslens("metrics", DATA / "base", "--json", tmp_path / "base.json", "-q").returncode == 0
    done = _losslens("metrics", DATA / "tuned", "--name", "base", "--baseline", tmp_path / "base.json",
                     "--fail-if", "delta.acc_norm < 0", "--json", "-", "-q")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    runs = {r["run"]: r["overall"] for r in document["baseline"]["runs"]}
    base = {t["name"]: t["metrics"] for t in evaluate_lm_eval(DATA / "base").to_dict()["tasks"]}
    tuned = {t["name"]: t["metrics"] for t in evaluate_lm_eval(DATA / "tuned", names=["base"]).to_dict()["tasks"]}
    assert runs["base/zen_mc"]["acc_norm"]["delta"] == tuned["base/zen_mc"]["acc_norm"] - base["base/zen_mc"]["acc_norm"]
    assert runs["base/stdlib_docs"]["bits_per_byte"]["baseline"] == base["base/stdlib_docs"]["bits_per_byte"]
    assert [r["outcome"] for r in document["gates"]["results"]] == ["pass"] * 3  # acc_norm: 3 multiple-choice tasks


def test_report_shows_the_baseline_of_a_token_run(token_files, tmp_path):
    path = token_files / "tuned.parquet"
    assert _losslens("metrics", path, "-q", "--json", tmp_path / "before.json").returncode == 0
    done = _losslens("report", path, "-q", "--baseline", tmp_path / "before.json", "-o", tmp_path / "r.html")
    assert done.returncode == 0, done.stderr
    html = (tmp_path / "r.html").read_text()
    assert "tuned: metrics now and in the baseline" in html and "No regressions" in html
    text = _losslens("metrics", path, "--baseline", tmp_path / "before.json").stdout
    assert "overall  bits_per_byte" in text and "no regressions" in text


def test_language_model_options_from_a_config_file(tmp_path):
    pd.DataFrame({"seq": [1, 1, 2], "bits": [1.0, 3.0, 2.0]}).to_parquet(tmp_path / "b.parquet")
    (tmp_path / "pyproject.toml").write_text('[tool.losslens]\ndocument = "seq"\nnll = "bits"\nlog_base = 2\nmin_k = 0.5\n')
    done = _losslens("metrics", "b.parquet", "--json", "-", "-q", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    run = json.loads(done.stdout)["runs"][0]
    assert run["min_k"] == 0.5 and run["layout"]["document"] == "seq"
    assert math.isclose(run["overall"]["cross_entropy_bits"], 2.0, rel_tol=1e-15)  # 6 bits over 3 tokens
