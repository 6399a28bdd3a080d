"""Write the gold files of tests/gold: one command, after a change of output that was meant.

    PYTHONPATH=src python tests/gold/regenerate.py

Each gold file is what the command line writes for fixed inputs, with the generation time
pinned and the losslens version masked (``<VERSION>``): one JSON document of each kind
(classifier, token file, sequence file, an lm-eval multiple-choice task, an inspect-ai log),
the markdown summary of an lm-eval job, the HTML pages of a language-model job, an lm-eval
job and a trend, and the trend's markdown. tests/test_gold.py compares the outputs of the
losslens under test with them, byte for byte (SVG charts aside when another matplotlib
version wrote them: ``matplotlib-version`` says which wrote the gold). Run from anywhere.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

GOLD = Path(__file__).resolve().parent
ROOT = GOLD.parents[1]
TESTS = ROOT / "tests"
PINNED = "2026-03-01T04:30:00Z"
#: The gold of the trend: nights at these times (the first a format_version 2 document).
NIGHTS = ["2026-03-01T04:30:00Z", "2026-03-02T04:30:00Z", "2026-03-03T04:30:00Z"]
MC_SAMPLES = "tests/data/lm_eval/base/zen-ngram-base/samples_zen_mc_2026-11-25T18-44-43.170675.jsonl"

#: Gold file -> arguments of `losslens`, run in a folder with the made inputs and links to the repository's
#: tests/ and example_data/, so that every path the outputs show is relative and the same on every machine.
COMMANDS = {
    "classifier.json": ["metrics", "example_data/wine_logits.csv", "--json", "{out}"],
    "tokens.json": ["metrics", "tuned.parquet", "base.parquet", "--json", "{out}"],
    "sequences.json": ["metrics", "seq.parquet", "--json", "{out}"],
    "lm_eval_multiple_choice.json": ["metrics", MC_SAMPLES, "--json", "{out}"],
    "harness_log.json": ["metrics", "tests/data/inspect_ai/base/zen_mc.eval", "--json", "{out}"],
    "lm_eval_summary.md": ["metrics", "tests/data/lm_eval/base", "tests/data/lm_eval/tuned", "--markdown", "{out}"],
    "language_model_page.html": ["report", "tuned.parquet", "base.parquet", "-o", "{out}"],
    "lm_eval_page.html": ["report", "tests/data/lm_eval/base", "tests/data/lm_eval/tuned", "-o", "{out}"],
    "trend_page.html": ["trend", "nights/*.json", "-o", "{out}"],
    "trend_summary.md": ["trend", "nights/*.json", "-o", "trend_page_unused.html", "--markdown", "{out}"],
}


def _environment() -> dict[str, str]:
    """The environment of the commands: the losslens this script imports, no step summary, fixed width."""
    import losslens

    env = {k: v for k, v in os.environ.items() if k not in ("GITHUB_STEP_SUMMARY", "SOURCE_DATE_EPOCH")}
    env["PYTHONPATH"] = os.pathsep.join([str(Path(losslens.__file__).resolve().parents[1]), str(TESTS)])
    env["COLUMNS"] = "100"
    return env


def _losslens(args: list[str], cwd: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "losslens", *args, "--generated-at", PINNED, "-q"],
                          cwd=cwd, env=_environment(), capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"losslens {' '.join(args)}: exit {done.returncode}\n{done.stderr}")


def _make_inputs(folder: Path) -> None:
    """The token pair and sequence file of the language-model tests, and three nights of lm-eval."""
    sys.path.insert(0, str(TESTS))
    from test_document import sequence_frame, token_frame

    token_frame(8).to_parquet(folder / "tuned.parquet")
    token_frame(3).to_parquet(folder / "base.parquet")
    sequence_frame().to_parquet(folder / "seq.parquet")
    for linked in ("tests", "example_data"):
        (folder / linked).symlink_to(ROOT / linked, target_is_directory=True)
    nights = folder / "nights"
    nights.mkdir()
    # A night of format_version 2 (written by losslens before issue 18), then two of this losslens.
    first = json.loads((TESTS / "data" / "json_v2" / "lm_eval.json").read_text())
    (nights / "2026-03-01.json").write_text(json.dumps({"generated_at": NIGHTS[0], **first}))
    for night in NIGHTS[1:]:
        done = subprocess.run([sys.executable, "-m", "losslens", "metrics", "tests/data/lm_eval/base", "--json",
                               str(nights / f"{night[:10]}.json"), "--generated-at", night, "-q"],
                              cwd=folder, env=_environment(), capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise RuntimeError(done.stderr)


def normalize(text: str) -> str:
    """Mask what legitimately changes between releases: the losslens version."""
    import losslens

    return text.replace(losslens.__version__, "<VERSION>")


def outputs() -> dict[str, str]:
    """Every gold file's text as the losslens under test writes it now."""
    with tempfile.TemporaryDirectory() as tmp:
        made = Path(tmp)
        _make_inputs(made)
        texts = {}
        for name, args in COMMANDS.items():
            (made / "out").mkdir(exist_ok=True)
            _losslens([a.replace("{out}", f"out/{name}") for a in args], made)
            texts[name] = normalize((made / "out" / name).read_text(encoding="utf-8"))
    return texts


def without_svg(text: str) -> str:
    """A page with its SVG charts emptied: another matplotlib version writes other SVG bytes."""
    return re.sub(r"<svg.*?</svg>", "<svg/>", text, flags=re.S)


def main() -> None:
    import matplotlib

    for name, text in outputs().items():
        (GOLD / name).write_text(text, encoding="utf-8", newline="\n")
        print(f"wrote tests/gold/{name} ({len(text.encode())} bytes)")
    (GOLD / "matplotlib-version").write_text(matplotlib.__version__ + "\n")
    shutil.rmtree(GOLD / "__pycache__", ignore_errors=True)


if __name__ == "__main__":
    main()
