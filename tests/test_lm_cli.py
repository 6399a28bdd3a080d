"""``python -m losslens.lm``: the stop-gap command prints JSON, and bad input is one line, exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

DATA = Path(__file__).parent / "data" / "lm_eval"


def _run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "losslens.lm", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd)


def test_token_csv_written_by_to_csv_and_sequence_near_zero_rule(tmp_path):
    tokens = pd.DataFrame({"doc_id": [7, 7, 8], "logprob": [-1.0, -2.0, -0.5]})
    tokens.to_csv(tmp_path / "tokens.csv")  # default options: an unnamed index column too
    done = _run(tmp_path / "tokens.csv")
    assert done.returncode == 0, done.stderr
    overall = json.loads(done.stdout)["runs"][0]["overall"]
    assert overall["log_loss"] == 3.5 / 3 and overall["n_documents"] == 2
    sequences = pd.DataFrame({"doc_id": ["a", "b"], "nll": [0.001, 40.0], "n_tokens": [1, 20]})
    sequences.to_parquet(tmp_path / "seq.parquet")
    run = json.loads(_run(tmp_path / "seq.parquet").stdout)["runs"][0]
    assert run["overall"]["n_memorized"] == 1  # 0.001 nats/token <= --near-zero 0.01
    assert "mean token loss ≤ 0.01 nats" in run["warnings"][0]["message"]
    assert run["memorized_documents"][0]["min_k_prob"] is None  # no per-token detail


def test_bad_input_is_one_line_and_exit_2(tmp_path):
    path = tmp_path / "tokens.parquet"
    pd.DataFrame({"doc_id": [1, 1], "logprob": [-1.0, 0.25]}).to_parquet(path)
    before = path.read_bytes()
    done = _run(path)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == (f"losslens: error: {path}, column 'logprob', row 2: log-probability 0.25 is positive; "
                           "log-probabilities are ≤ 0 (if the column holds losses, pass --nll logprob)\n")
    assert path.read_bytes() == before


def test_lm_eval_folders():
    done = _run("--lm-eval", DATA / "base", DATA / "tuned")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert len(document["tasks"]) == 10 and len(document["comparisons"]) == 5
