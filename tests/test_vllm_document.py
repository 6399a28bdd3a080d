"""``losslens metrics COMPLETIONS.jsonl --document FIELD``: vLLM's document id from a field of each line.

The fixtures' lines carry the server's response ``id`` (``cmpl-base-0000``, ...). By default the
document id is the line number (response ids differ between servers and checkpoints);
``--document id`` takes the field. Expected ids are read from the file with json, not from losslens.
"""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from losslens.cli import app

DATA = Path(__file__).parent / "data"
BASE, TUNED = DATA / "vllm" / "base" / "completions_echo.jsonl", DATA / "vllm" / "tuned" / "completions_echo.jsonl"


def _run(tmp_path, *args, code: int = 0):
    out = tmp_path / "out.json"
    result = CliRunner().invoke(app, ["metrics", *map(str, args), "--json", str(out)], env={"COLUMNS": "120"})
    assert result.exit_code == code, result.output
    return (json.loads(out.read_text()) if code == 0 else None), result.output


def _ids(task: dict) -> set[str]:
    return {d["document"] for d in task["worst_documents"] + task["best_documents"]}


def test_document_field_names_each_document(tmp_path):
    response_ids = {json.loads(line)["id"] for line in BASE.read_text().splitlines()}
    document, output = _run(tmp_path, BASE, "--document", "id")
    (task,) = document["runs"]
    assert _ids(task) and _ids(task) <= response_ids
    assert "document id: field 'id' (--document)" in " ".join(task["notes"])
    # Without it: line numbers, and the note says how to name a field
    document, _ = _run(tmp_path, BASE)
    (task,) = document["runs"]
    assert _ids(task) <= {str(i) for i in range(1, len(response_ids) + 1)}
    assert "the line number (--document FIELD names a field instead)" in " ".join(task["notes"])


def test_checkpoints_pair_by_the_named_field(tmp_path):
    # The two servers' response ids differ: paired by id, nothing pairs; by line number, every line does.
    document, _ = _run(tmp_path, BASE, TUNED, "--document", "id")
    (comparison,) = document["comparisons"]
    n_lines = len(BASE.read_text().splitlines())
    assert comparison["n_paired"] == 0
    document, _ = _run(tmp_path, BASE, TUNED)
    (comparison,) = document["comparisons"]
    assert comparison["n_paired"] == n_lines


def test_bad_field_and_other_harnesses_exit_2(tmp_path):
    _, output = _run(tmp_path, BASE, "--document", "nope", code=2)
    assert "completions_echo.jsonl, line 1, field 'nope': not found" in output
    assert not (tmp_path / "out.json").exists()
    _, output = _run(tmp_path, DATA / "helm", "--document", "id", code=2)
    assert "HELM logs carry their own sample ids: drop --document" in output


def test_help_says_what_document_does_for_vllm():
    result = CliRunner().invoke(app, ["metrics", "--help"], env={"COLUMNS": "400"})
    assert "vLLM completions: the field of each line that is its id" in " ".join(result.output.split())
