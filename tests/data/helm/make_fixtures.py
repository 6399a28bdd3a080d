"""Write the HELM fixtures of tests/test_helm_reader.py with HELM (crfm-helm) itself.

Run in a separate virtual environment that has crfm-helm (no network, no API key needed):

    python -m venv helm-venv && helm-venv/bin/pip install crfm-helm
    helm-venv/bin/python tests/data/helm/make_fixtures.py

``ngram_plugin.py`` registers two scenarios with their run specs — ``zen_mc`` (last-word
questions over the Zen of Python and docstring sentences, separate-references multiple-choice
adapter ``multiple_choice_separate_original``) and ``stdlib_lm`` (docstrings, HELM's
language-modelling adapter) — and a client over the character n-gram of tests/lm_ngram.py.
Two model deployments — ``zen/ngram-base`` (bigram) and ``zen/ngram-tuned`` (4-gram) — use
HELM's character tokenizer without a prefix token and windows of 160 tokens. From each run folder the
files a reader needs are kept: ``scenario_state.json``, ``per_instance_stats.json``,
``stats.json`` and ``run_spec.json``; machine paths would be replaced by ``"<removed>"``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent.parent
KEEP = ("scenario_state.json", "per_instance_stats.json", "stats.json", "run_spec.json")

DEPLOYMENTS = """model_deployments:
{entries}"""
DEPLOYMENT = """  - name: zen/ngram-{c}
    model_name: zen/ngram-{c}
    tokenizer_name: zen/chars
    max_sequence_length: 160
    client_spec:
      class_name: "ngram_plugin.NGramClient"
      args:
        checkpoint: {c}
"""
METADATA = """models:
{entries}"""
MODEL = """  - name: zen/ngram-{c}
    display_name: Zen n-gram ({c})
    description: Character n-gram trained on the Zen of Python.
    creator_organization_name: losslens tests
    access: open
    release_date: 2026-01-01
    tags: [TEXT_MODEL_TAG, FULL_FUNCTIONALITY_TEXT_MODEL_TAG]
"""
# HELM's SimpleTokenizer (one token per character) without the "<s>" prefix token of
# simple/tokenizer1, which a character tokenizer would split into three scored characters.
TOKENIZERS = """tokenizer_configs:
  - name: zen/chars
    tokenizer_spec:
      class_name: "helm.tokenizers.simple_tokenizer.SimpleTokenizer"
    end_of_text_token: ""
    prefix_token: ""
"""
CHECKPOINTS = ("base", "tuned")
TASKS = ("zen_mc", "stdlib_lm")


def scrub(value, root: str):
    if isinstance(value, dict):
        return {k: scrub(v, root) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v, root) for v in value]
    if isinstance(value, str) and root in value:  # not every "/": the tokenizer has a "/" token
        return "<removed>"
    return value


def main() -> None:
    helm_run = Path(sys.executable).with_name("helm-run")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        env_dir = work / "prod_env"
        env_dir.mkdir()
        (env_dir / "model_deployments.yaml").write_text(
            DEPLOYMENTS.format(entries="".join(DEPLOYMENT.format(c=c) for c in CHECKPOINTS)))
        (env_dir / "tokenizer_configs.yaml").write_text(TOKENIZERS)
        (env_dir / "model_metadata.yaml").write_text(
            METADATA.format(entries="".join(MODEL.format(c=c) for c in CHECKPOINTS)))
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE), str(TESTS)]), HELM_CACHE="off")
        entries = [f"{task}:model=zen/ngram-{c}" for task in TASKS for c in CHECKPOINTS]
        subprocess.run([str(helm_run), "--run-entries", *entries, "--suite", "fixtures",
                        "--max-eval-instances", "50", "--local-path", str(env_dir), "--output-path",
                        str(work / "out"), "--plugins", "ngram_plugin", "--disable-cache", "-n", "1"],
                       cwd=work, env=env, check=True)
        for run in sorted((work / "out" / "runs" / "fixtures").iterdir()):
            if not run.is_dir() or not (run / "scenario_state.json").exists():
                continue
            target = HERE / run.name
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir()
            for name in KEEP:
                data = scrub(json.loads((run / name).read_text()), str(work))
                (target / name).write_text(json.dumps(data, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
