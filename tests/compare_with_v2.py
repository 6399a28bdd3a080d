"""Proof that format_version 3 changed the shape of the JSON and nothing else (issue 18).

Runs a losslens that writes version 2 (a checkout of ``main`` before issue 18) and this one on
every bundled example, every harness fixture under tests/data and a token and a sequence file,
reads the version-2 document through the adapter (losslens.json_documents.upgrade_document)
and compares it, whole, with the version-3 document: keys, names, counts equal, floats within
1e-12 relative (tests/json_close.py). Usage::

    git -C /work/main worktree add /tmp/v2 <commit before issue 18> --detach
    PYTHONPATH=src python tests/compare_with_v2.py /tmp/v2

Prints one line per input; exits 1 if any differs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from json_close import assert_json_close  # noqa: E402

#: Each case: a name and its inputs (relative to the repository; token files made in a temporary folder).
CASES = [
    ("example breast_cancer_binary.csv", ["example_data/breast_cancer_binary.csv"]),
    ("example digits_multiclass.parquet by ink", ["example_data/digits_multiclass.parquet", "--by", "ink"]),
    ("example wine_logits.csv", ["example_data/wine_logits.csv", "--logits", "logit_"]),
    ("example iris_soft_targets.csv", ["example_data/iris_soft_targets.csv", "--targets", "t_"]),
    ("two classifier runs compared", ["example_data/wine_logits.csv", "example_data/wine_logits.csv"]),
    ("lm_eval", ["tests/data/lm_eval/base", "tests/data/lm_eval/tuned"]),
    ("inspect_ai", ["tests/data/inspect_ai/base", "tests/data/inspect_ai/tuned"]),
    ("helm multiple choice", ["tests/data/helm/zen_mc:model=zen_ngram-base", "tests/data/helm/zen_mc:model=zen_ngram-tuned"]),
    ("helm language model", ["tests/data/helm/stdlib_lm:model=zen_ngram-base",
                             "tests/data/helm/stdlib_lm:model=zen_ngram-tuned"]),
    ("lighteval", ["tests/data/lighteval/base", "tests/data/lighteval/tuned"]),
    ("vllm", ["tests/data/vllm/base", "tests/data/vllm/tuned"]),
    ("lm_eval against a v2 baseline, with gates", ["tests/data/lm_eval/tuned", "--name", "base", "--baseline",
                                                   "tests/data/json_v2/lm_eval.json", "--fail-if", "delta.acc < -1"]),
    ("classifier runs bootstrapped", ["example_data/digits_multiclass.parquet",
                                      "example_data/digits_multiclass.parquet", "--bootstrap", "50", "--seed", "3"]),
    ("trainer", ["tests/data/trainer/zen", "tests/data/trainer/memorise"]),
    ("tokens", ["{tmp}/tuned.parquet", "{tmp}/base.parquet"]),
    ("tokens bootstrapped", ["{tmp}/tuned.parquet", "{tmp}/base.parquet", "--bootstrap", "50", "--seed", "3"]),
    ("sequences", ["{tmp}/seq.parquet"]),
]


def _write(source: Path, inputs: list[str], target: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(source / "src")}
    return subprocess.run([sys.executable, "-m", "losslens", "metrics", *inputs, "--json", str(target), "-q"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def main(old_checkout: str) -> int:
    from losslens.json_documents import upgrade_document
    from test_document import sequence_frame, token_frame

    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        token_frame(8).to_parquet(f"{tmp}/tuned.parquet")
        token_frame(3).to_parquet(f"{tmp}/base.parquet")
        sequence_frame().to_parquet(f"{tmp}/seq.parquet")
        for name, inputs in CASES:
            inputs = [i.format(tmp=tmp) for i in inputs]
            old, new = Path(tmp, "old.json"), Path(tmp, "new.json")
            done = [_write(Path(old_checkout), inputs, old), _write(ROOT, inputs, new)]
            if any(d.returncode for d in done):
                print(f"{name}: exit {[d.returncode for d in done]} {done[0].stderr[-200:]} {done[1].stderr[-200:]}")
                failed += 1
                continue
            v2, v3 = json.loads(old.read_text()), json.loads(new.read_text())
            try:
                assert v2["format_version"] == 2 and v3["format_version"] == 3
                assert_json_close(upgrade_document(v2, "v2"), v3)
                print(f"{name}: equal ({len(v3['runs'])} runs, {len(v3['comparisons'])} comparisons)")
            except AssertionError as exc:
                print(f"{name}: DIFFERS {exc}")
                failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
