"""Write the lm-evaluation-harness fixtures of tests/test_lm_eval.py with lm-eval itself.

Run in a separate virtual environment that has lm-eval (it needs no torch for a custom model):

    python -m venv lmeval-venv && lmeval-venv/bin/pip install lm-eval
    lmeval-venv/bin/python tests/data/lm_eval/make_fixtures.py

The model is the character n-gram of tests/lm_ngram.py trained on the Zen of Python, wrapped
in a custom ``lm_eval.api.model.LM``; the tasks are YAML files over local JSON files made from
the Zen and standard-library docstrings, evaluated offline with ``log_samples``. Two
"checkpoints" are written — ``base`` (a bigram) and ``tuned`` (a 4-gram) — each in the folder
layout lm-eval writes (``<output_path>/<model>/samples_<task>_<date>.jsonl`` and
``results_<date>.json``). Machine-specific fields of the results file (environment dumps,
paths, timings) are replaced by ``"<removed>"``; the numbers are lm-eval's own.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))  # tests/, for lm_ngram

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from lm_ngram import CharNGram, held_out_documents, zen_of_python  # noqa: E402

from lm_eval import simple_evaluate  # noqa: E402
from lm_eval.api.model import LM  # noqa: E402
from lm_eval.loggers import EvaluationTracker  # noqa: E402
from lm_eval.tasks import TaskManager  # noqa: E402


class NGramLM(LM):
    """lm-eval's model interface over a character n-gram model."""

    def __init__(self, model: CharNGram):
        super().__init__()
        self.model = model

    def _score(self, context: str, continuation: str) -> tuple[float, bool]:
        text = context + continuation
        logprobs = self.model.token_logprobs(text)[len(context):]
        greedy = True
        for i, char in enumerate(continuation):
            history = ("\x02" * self.model.order + text)[: self.model.order + len(context) + i]
            best = max(self.model.vocab, key=lambda c: self.model.prob(history, c))
            greedy &= best == char
        return sum(logprobs), greedy

    def loglikelihood(self, requests):
        return [self._score(*r.args) for r in requests]

    def loglikelihood_rolling(self, requests):
        return [sum(self.model.token_logprobs(r.args[0])) for r in requests]

    def generate_until(self, requests):
        return ["" for _ in requests]


def zen_lines() -> list[str]:
    return [line for line in zen_of_python().splitlines()[2:] if line.strip()]


def datasets(folder: Path) -> None:
    """The local JSON data of every task (same data for both checkpoints)."""
    rng = random.Random(0)
    lines = zen_lines()
    last_words = [line.split()[-1] for line in lines]
    mc, mc2, mc4, lambada = [], [], [], []
    for i, line in enumerate(lines):
        words = line.split()
        context, gold = " ".join(words[:-1]), words[-1]
        others = [w for w in dict.fromkeys(last_words) if w != gold]
        distractors = rng.sample(others, 4)
        for size, rows in ((2 + i % 4, mc), (2, mc2), (4, mc4)):
            choices = distractors[: size - 1]
            position = rng.randrange(size)
            choices.insert(position, gold)
            rows.append({"context": context, "choices": choices, "label": position})
        lambada.append({"context": context, "word": gold})
    docs = [{"page": text} for text in held_out_documents().values()]
    for name, rows in (("zen_mc", mc), ("zen_mc2", mc2), ("zen_mc4", mc4), ("zen_lambada", lambada),
                       ("stdlib_docs", docs)):
        (folder / f"{name}.json").write_text(json.dumps(rows, indent=1))


TASKS = {
    "zen_mc": """output_type: multiple_choice
doc_to_text: "{{context}}"
doc_to_choice: "{{choices}}"
doc_to_target: label
metric_list:
  - metric: acc
  - metric: acc_norm
""",
    "zen_mc2": """output_type: multiple_choice
doc_to_text: "{{context}}"
doc_to_choice: "{{choices}}"
doc_to_target: label
metric_list:
  - metric: acc
  - metric: acc_norm
  - metric: brier_score
""",
    "zen_mc4": """output_type: multiple_choice
doc_to_text: "{{context}}"
doc_to_choice: "{{choices}}"
doc_to_target: label
metric_list:
  - metric: acc
  - metric: acc_norm
  - metric: brier_score
""",
    "zen_lambada": """output_type: loglikelihood
doc_to_text: "{{context}}"
doc_to_target: "{{' ' + word}}"
target_delimiter: ""
metric_list:
  - metric: perplexity
  - metric: acc
""",
    "stdlib_docs": """output_type: loglikelihood_rolling
doc_to_text: ""
doc_to_target: "{{page}}"
metric_list:
  - metric: word_perplexity
  - metric: byte_perplexity
  - metric: bits_per_byte
""",
    "zen_gen": """output_type: generate_until
doc_to_text: "{{context}}"
doc_to_target: "{{' ' + word}}"
generation_kwargs:
  until: ["\\n"]
metric_list:
  - metric: exact_match
""",
}


def task_files(folder: Path) -> None:
    for name, body in TASKS.items():
        data = "zen_lambada" if name == "zen_gen" else name
        header = (f"task: {name}\ndataset_path: json\ndataset_kwargs:\n  data_files:\n"
                  f"    test: {data}.json\ntest_split: test\n")
        (folder / f"{name}.yaml").write_text(header + body)


def scrub(results_file: Path) -> None:
    """Drop machine-specific fields; keep the numbers, configs and versions."""
    data = json.loads(results_file.read_text())
    for key in ("pretty_env_info", "transformers_version", "upper_git_hash", "git_hash", "date",
                "start_time", "end_time", "total_evaluation_time_seconds", "tokenizer_pad_token",
                "tokenizer_eos_token", "tokenizer_bos_token", "eot_token_id", "max_length",
                "task_hashes", "model_source"):
        if key in data:
            data[key] = "<removed>"
    for config in data.get("configs", {}).values():
        metadata = config.get("metadata") or {}
        if "config_source" in metadata:  # the temporary folder the YAML was in
            metadata["config_source"] = Path(metadata["config_source"]).name
    results_file.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def main() -> None:
    zen = zen_of_python()
    vocabulary = zen + "".join(held_out_documents().values())
    checkpoints = {"base": CharNGram(1).fit(zen, vocabulary), "tuned": CharNGram(4, alpha=0.5).fit(zen, vocabulary)}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        datasets(work)
        task_files(work)
        cwd = os.getcwd()
        os.chdir(work)  # data_files are relative, so no machine path reaches the results
        try:
            for checkpoint, model in checkpoints.items():
                manager = TaskManager(include_path=str(work))
                results = simple_evaluate(
                    model=NGramLM(model), model_args=f"pretrained=zen-ngram-{checkpoint}",
                    tasks=list(TASKS), task_manager=manager, log_samples=True,
                    evaluation_tracker=EvaluationTracker(output_path=str(work / "out" / checkpoint)),
                    random_seed=0, numpy_random_seed=0, torch_random_seed=0, fewshot_random_seed=0,
                )
                samples = results.pop("samples")
                tracker = EvaluationTracker(output_path=str(work / "out" / checkpoint))
                tracker.general_config_tracker.model_name_sanitized = f"zen-ngram-{checkpoint}"
                tracker.general_config_tracker.model_name = f"zen-ngram-{checkpoint}"
                tracker.save_results_aggregated(results=results, samples=samples)
                for task in results["configs"]:
                    tracker.save_results_samples(task_name=task, samples=samples[task])
        finally:
            os.chdir(cwd)
        for checkpoint in checkpoints:
            target = HERE / checkpoint
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(work / "out" / checkpoint, target)
            for results_file in target.rglob("results_*.json"):
                scrub(results_file)
        (HERE / "data").mkdir(exist_ok=True)
        for name in ("zen_mc", "zen_mc2", "zen_mc4", "zen_lambada", "stdlib_docs"):
            shutil.copy(work / f"{name}.json", HERE / "data" / f"{name}.json")
            shutil.copy(work / f"{name}.yaml", HERE / "data" / f"{name}.yaml")


if __name__ == "__main__":
    main()
