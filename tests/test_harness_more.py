"""lighteval details and vLLM completions through ``losslens metrics`` (the one task evaluator).

The lighteval fixtures were written by lighteval itself; the vLLM ones from vLLM's protocol
definitions (see each fixture README). Every recomputed figure is checked against lighteval's
logged value or against numpy over the reader's own values. numpy and the engine's torch/libm
code differ in the last bit of exp/log, so floats are compared with rel=1e-12, never bitwise.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from losslens.cli import app
from losslens.lm.detect import harnesses_in
from losslens.readers.lighteval import read_lighteval_details
from losslens.readers.vllm import read_vllm_completions

DATA = Path(__file__).parent / "data"
LIGHT, VLLM = DATA / "lighteval", DATA / "vllm"
REL = 1e-12


def _metrics(tmp_path, *args) -> dict:
    out = tmp_path / "out.json"
    result = CliRunner().invoke(app, ["metrics", *map(str, args), "--json", str(out)], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    return json.loads(out.read_text())


def _details(folder: Path, task: str):
    (path,) = folder.glob(f"details_{task}|*.parquet")
    return read_lighteval_details(path)


def _gold_losses(details) -> dict:
    """Each question's −log-softmax of the gold choice, in numpy, keyed by doc id."""
    out = {}
    for d in details.docs:
        v = np.array(d.logprobs)
        out[d.doc_id] = -(v[d.gold[0]] - (v.max() + np.log(np.exp(v - v.max()).sum())))
    return out


def test_lighteval_multiple_choice_matches_lightevals_logged_values_and_numpy(tmp_path):
    tasks = {t["task"]: t for t in _metrics(tmp_path, LIGHT / "base")["runs"]}
    results = json.loads(next((LIGHT / "base").glob("results_*.json")).read_text())["results"]
    mc = tasks["zen_mc"]
    assert mc["name"] == "base/zen_mc" and mc["harness"] == "lighteval"
    assert mc["overall"]["acc"] == pytest.approx(results["zen_mc|0"]["acc"], rel=REL)
    # lighteval's acc_norm counts the leading space: 6/19 here, where lm-eval's count would differ.
    assert mc["overall"]["acc_norm"] == pytest.approx(results["zen_mc|0"]["acc_norm"], rel=REL)
    details = _details(LIGHT / "base", "zen_mc")
    stripped = np.mean([int(np.argmax(np.array(d.logprobs) / np.array(d.choice_chars_stripped))) == d.gold[0]
                        for d in details.docs])
    assert stripped != pytest.approx(mc["overall"]["acc_norm"])  # the test tells the two counts apart
    assert mc["overall"]["log_loss"] == pytest.approx(np.mean(list(_gold_losses(details).values())), rel=REL)
    assert "inconsistent_samples" not in [w["code"] for w in mc["warnings"]]
    ppl = tasks["stdlib_ppl"]
    for metric in ("word_perplexity", "byte_perplexity", "bits_per_byte"):
        assert ppl["overall"][metric] == pytest.approx(results["stdlib_ppl|0"][metric], rel=1e-9)
    docs = _details(LIGHT / "base", "stdlib_ppl").docs
    bpb = -sum(sum(d.logprobs) for d in docs) / np.log(2) / sum(d.text_bytes for d in docs)
    assert ppl["overall"]["bits_per_byte"] == pytest.approx(bpb, rel=REL)


def test_lighteval_checkpoints_pair_by_doc_id(tmp_path):
    document = _metrics(tmp_path, LIGHT / "base", LIGHT / "tuned")
    by_pair = {(c["reference"], c["candidate"]): c for c in document["comparisons"]}
    mc = by_pair[("base/zen_mc", "tuned/zen_mc")]
    assert mc["paired"] and mc["n_paired"] == 19
    base, tuned = _gold_losses(_details(LIGHT / "base", "zen_mc")), _gold_losses(_details(LIGHT / "tuned", "zen_mc"))
    # Rows are in a different order in each file: the pairs are by doc.id, not by row.
    assert mc["log_loss_delta"] == pytest.approx(np.mean([tuned[k] - base[k] for k in base]), rel=1e-9)
    assert by_pair[("base/stdlib_ppl", "tuned/stdlib_ppl")]["n_paired"] == 7


def test_lighteval_wrong_logged_aggregate_is_inconsistent(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    for path in (LIGHT / "base").iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    results = next(folder.glob("results_*.json"))
    data = json.loads(results.read_text())
    data["results"]["zen_mc|0"]["acc"] = 0.9
    results.write_text(json.dumps(data))
    mc = next(t for t in _metrics(tmp_path, folder)["runs"] if t["task"] == "zen_mc")
    (warning,) = [w for w in mc["warnings"] if w["code"] == "inconsistent_samples"]
    assert "acc 0.9" in warning["message"] and "lighteval" in warning["message"]


@pytest.mark.parametrize("name", ["completions_echo.jsonl", "completions_prompt_logprobs.jsonl"])
def test_vllm_prompt_tokens_match_numpy(tmp_path, name):
    path = VLLM / "base" / name
    docs = read_vllm_completions(path)
    (task,) = _metrics(tmp_path, path)["runs"]
    # One file is its own checkpoint: <file stem>/<task>, as for inspect-ai's single logs.
    assert task["name"] == f"{Path(name).stem}/{Path(name).stem}" and task["harness"] == "vLLM"
    # Null first log-prob unscored (its bytes too); generated tokens are not in the reader's prompt.
    values = np.array([v for d in docs for v in d.logprobs if v is not None])
    n_bytes = sum(b for d in docs for v, b in zip(d.logprobs, d.token_bytes) if v is not None)
    assert task["overall"]["log_loss"] == pytest.approx(-values.mean(), rel=REL)
    assert task["overall"]["bits_per_byte"] == pytest.approx(-values.sum() / np.log(2) / n_bytes, rel=REL)
    assert task["overall"]["n_tokens"] == len(values)


def test_vllm_checkpoints_pair_by_line_number(tmp_path):
    document = _metrics(tmp_path, VLLM / "base" / "completions_echo.jsonl", VLLM / "tuned" / "completions_echo.jsonl")
    (comparison,) = document["comparisons"]
    assert comparison["paired"] and comparison["n_paired"] == 7


def test_detection_is_strict(tmp_path):
    assert harnesses_in(LIGHT / "base") == ["lighteval"]
    assert harnesses_in(next((LIGHT / "base").glob("details_zen_mc*"))) == ["lighteval"]
    assert harnesses_in(VLLM / "base") == ["vLLM"]
    tokens = tmp_path / "tokens.jsonl"
    tokens.write_text('{"doc_id": 1, "logprob": -1.5, "choices": 3}\n')
    assert harnesses_in(tokens) == []
    chat = tmp_path / "chat.jsonl"  # a completion without log-probs is not one to score
    chat.write_text('{"id": "x", "object": "text_completion", "choices": [{"text": "hi", "logprobs": null}]}\n')
    assert harnesses_in(chat) == []


def _one_line_error(tmp_path, path, *words):
    result = CliRunner().invoke(app, ["metrics", str(path), "--json", str(tmp_path / "o.json")])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    for word in words:
        assert word in lines[0], lines[0]
    assert not (tmp_path / "o.json").exists()


def test_bad_files_exit_2_with_one_line(tmp_path):
    lines = (VLLM / "base" / "completions_echo.jsonl").read_text().splitlines()
    record = json.loads(lines[2])
    record["choices"][0]["logprobs"]["token_logprobs"][3] = 0.5
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join([*lines[:2], json.dumps(record), *lines[3:]]) + "\n")
    _one_line_error(tmp_path, bad, "bad.jsonl", "line 3", "token_logprobs", "positive")
    (source,) = (LIGHT / "base").glob("details_zen_mc*")
    table = pq.read_table(source).to_pylist()
    table[4]["model_response"]["logprobs"][1] = float("nan")
    nan = tmp_path / source.name
    import pyarrow as pa

    pq.write_table(pa.Table.from_pylist(table), nan)
    _one_line_error(tmp_path, nan, "model_response.logprobs", "finite")
