"""The outputs of losslens against the gold files of tests/gold (exact text equality).

One JSON document of each kind, the markdown summaries, the language-model, lm-eval and trend
pages, written by the command line with the time pinned and the version masked. After a
change that was meant, regenerate them with one command and review the diff::

    PYTHONPATH=src python tests/gold/regenerate.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib
import pytest

GOLD = Path(__file__).resolve().parent / "gold"
sys.path.insert(0, str(GOLD))

import regenerate  # noqa: E402

HINT = "output changed; if meant, run: PYTHONPATH=src python tests/gold/regenerate.py"


@pytest.fixture(scope="module")
def outputs():
    return regenerate.outputs()


@pytest.mark.parametrize("name", sorted(regenerate.COMMANDS))
def test_output_equals_its_gold_file(outputs, name):
    expected = (GOLD / name).read_text(encoding="utf-8")
    written = outputs[name]
    if name.endswith(".html") and (GOLD / "matplotlib-version").read_text().strip() != matplotlib.__version__:
        # Another matplotlib writes other SVG bytes; the rest of the page must still match.
        written, expected = regenerate.without_svg(written), regenerate.without_svg(expected)
    assert written == expected, f"tests/gold/{name}: {HINT}"


def test_gold_json_documents_are_version_3_of_each_kind():
    kinds = {name: sorted({r["kind"] for r in json.loads((GOLD / name).read_text())["runs"]})
             for name in regenerate.COMMANDS if name.endswith(".json")}
    assert kinds == {"classifier.json": ["classifier"], "tokens.json": ["tokens"], "sequences.json": ["sequences"],
                     "lm_eval_multiple_choice.json": ["multiple_choice"], "harness_log.json": ["multiple_choice"]}
    for name in kinds:
        document = json.loads((GOLD / name).read_text())
        assert document["format_version"] == 3 and document["generated_at"] == regenerate.PINNED


@pytest.mark.slow
def test_the_same_input_gives_byte_identical_outputs(outputs):
    # losslens against itself: a second run of every command writes the same bytes.
    assert regenerate.outputs() == outputs
