"""Write the lighteval fixtures of tests/test_lighteval_reader.py with lighteval itself.

Run in a separate virtual environment that has lighteval (0.13 was used; see README.md):

    python -m venv lighteval-venv && lighteval-venv/bin/pip install lighteval
    HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 lighteval-venv/bin/python tests/data/lighteval/make_fixtures.py

The model is the character n-gram of tests/lm_ngram.py trained on the Zen of Python, wrapped in
a lighteval custom model (a ``LightevalModel`` subclass passed to lighteval's ``Pipeline``, as
``lighteval custom`` does); its "tokens" are Unicode code points. The tasks are custom tasks
over local JSON files: ``zen_mc`` (multiple choice from the Zen's last words, scored by
log-likelihood with ``acc`` and ``acc_norm``) and ``stdlib_ppl`` (standard-library docstrings,
scored by rolling log-likelihood with lighteval's perplexity metrics). Two "checkpoints" are
written — ``base`` (a bigram) and ``tuned`` (a 4-gram) — each in the layout lighteval writes
(``<output_dir>/details/<model>/<date>/details_<task>_<date>.parquet`` and
``<output_dir>/results/<model>/results_<date>.json``). Machine-specific fields of the results
file (timings, paths, environment) are replaced by ``"<removed>"``; the numbers are lighteval's.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))  # tests/, for lm_ngram

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from lm_ngram import CharNGram, held_out_documents, zen_of_python  # noqa: E402

from lighteval.logging.evaluation_tracker import EvaluationTracker  # noqa: E402
from lighteval.metrics.dynamic_metrics import LogLikelihoodAccMetric  # noqa: E402
from lighteval.metrics.metrics import Metrics  # noqa: E402
from lighteval.metrics.normalizations import LogProbCharNorm  # noqa: E402
from lighteval.models.abstract_model import LightevalModel, ModelConfig  # noqa: E402
from lighteval.models.model_output import ModelResponse  # noqa: E402
from lighteval.pipeline import ParallelismManager, Pipeline, PipelineParameters  # noqa: E402
from lighteval.tasks.lighteval_task import LightevalTaskConfig  # noqa: E402
from lighteval.tasks.requests import Doc  # noqa: E402
from lighteval.tasks.registry import Registry  # noqa: E402
from lighteval.utils.cache_management import SampleCache  # noqa: E402

# lighteval 0.13 imports every bundled task file to build its registry; some reach the network at
# import time (tiny_benchmarks.py downloads a pickle from GitHub, mt_bench asks the Hub for a judge
# model and fails with huggingface_hub 1.x/2.x). Only our custom tasks are needed, so the bundled
# ones are not loaded at all; lighteval's own code runs unchanged from there on.
Registry._load_from_files = staticmethod(lambda files, module_prefix: {})
Registry._load_from_subdirs = staticmethod(lambda subdirs: {})


UNICODE = "Ünïcödé – naïve café: “quotes” and ½ ≠ ∞."  # multi-byte UTF-8: bytes ≠ characters


class NGramConfig(ModelConfig):
    """The model's configuration as lighteval logs it (only the name)."""


class NGramModel(LightevalModel):
    """lighteval's model interface over a character n-gram; tokens are code points."""

    def __init__(self, config: NGramConfig, model: CharNGram):
        self.config = config
        self.model = model
        self._cache = SampleCache(config)  # the pipeline registers its tasks with it

    @property
    def tokenizer(self):
        return None  # never used: tokens are code points, made below

    @property
    def add_special_tokens(self) -> bool:
        return False

    @property
    def max_length(self) -> int:
        return 1 << 20

    def _score(self, context: str, continuation: str) -> tuple[float, bool]:
        text = context + continuation
        logprobs = self.model.token_logprobs(text)[len(context):]
        greedy = True
        for i, char in enumerate(continuation):
            history = ("\x02" * self.model.order + text)[: self.model.order + len(context) + i]
            best = max(self.model.vocab, key=lambda c: self.model.prob(history, c))
            greedy &= best == char
        return sum(logprobs), greedy

    def loglikelihood(self, docs: list[Doc]) -> list[ModelResponse]:
        responses = []
        for doc in docs:
            scores = [self._score(doc.query, choice) for choice in doc.choices]
            responses.append(ModelResponse(
                input=doc.query, input_tokens=[ord(c) for c in doc.query],
                output_tokens=[[ord(c) for c in choice] for choice in doc.choices],
                logprobs=[s for s, _ in scores], argmax_logits_eq_gold=[g for _, g in scores]))
        return responses

    def loglikelihood_rolling(self, docs: list[Doc]) -> list[ModelResponse]:
        return [ModelResponse(input=doc.query, input_tokens=[ord(c) for c in doc.query],
                              logprobs=self.model.token_logprobs(doc.query)) for doc in docs]

    def greedy_until(self, docs: list[Doc]) -> list[ModelResponse]:
        return [ModelResponse(text=[""]) for _ in docs]


def zen_lines() -> list[str]:
    return [line for line in zen_of_python().splitlines()[2:] if line.strip()]


def datasets(folder: Path) -> None:
    """The local JSON data of both tasks: one folder per task, a single ``test`` split."""
    rng = random.Random(0)
    lines = zen_lines()
    last_words = list(dict.fromkeys(line.split()[-1] for line in lines))
    rows = []
    for i, line in enumerate(lines):
        words = line.split()
        context, gold = " ".join(words[:-1]), words[-1]
        choices = rng.sample([w for w in last_words if w != gold], 2 + i % 3)
        position = rng.randrange(len(choices) + 1)
        choices.insert(position, gold)
        if i == 3:  # two identical choice texts: ties go to the first index
            choices.append(choices[0])
        rows.append({"context": context, "choices": choices, "label": position})
    docs = [{"name": name, "text": text} for name, text in held_out_documents().items()]
    docs.append({"name": "unicode", "text": UNICODE})
    for name, data in (("zen_mc", rows), ("stdlib_ppl", docs)):
        (folder / name).mkdir()
        (folder / name / "test.json").write_text(json.dumps(data, indent=1, ensure_ascii=False))


def mc_prompt(line: dict, task_name: str | None = None) -> Doc:
    """Choices with a leading space, as lighteval's own multiple-choice prompts make them."""
    return Doc(task_name=task_name, query=line["context"], choices=[f" {c}" for c in line["choices"]],
               gold_index=line["label"])


def ppl_prompt(line: dict, task_name: str | None = None) -> Doc:
    return Doc(task_name=task_name, query=line["text"], choices=[], gold_index=0,
               specific={"name": line["name"]})


def task_configs(folder: Path) -> list[LightevalTaskConfig]:
    common = dict(hf_subset="default", hf_avail_splits=["test"], evaluation_splits=["test"],
                  few_shots_split=None, few_shots_select=None, generation_size=1, version=0)
    return [
        LightevalTaskConfig(name="zen_mc", prompt_function=mc_prompt, hf_repo=str(folder / "zen_mc"),
                            metrics=[Metrics.loglikelihood_acc, LogLikelihoodAccMetric(LogProbCharNorm())],
                            **common),
        LightevalTaskConfig(name="stdlib_ppl", prompt_function=ppl_prompt, hf_repo=str(folder / "stdlib_ppl"),
                            metrics=[Metrics.word_perplexity, Metrics.byte_perplexity, Metrics.bits_per_byte],
                            **common),
    ]


def scrub(results_file: Path, work: Path) -> None:
    """Drop machine-specific fields; keep the numbers, configs and versions."""
    text = results_file.read_text().replace(str(work), "<tmp>")
    text = re.sub(r" at 0x[0-9a-f]+>", ">", text)  # object addresses in the metrics' reprs
    data = json.loads(text)
    general = data.get("config_general", {})
    for key in ("start_time", "end_time", "total_evaluation_time_secondes", "job_id", "start_date",
                "end_date", "lighteval_sha"):
        if key in general:
            general[key] = "<removed>"
    results_file.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def main() -> None:
    zen = zen_of_python()
    vocabulary = zen + "".join(held_out_documents().values()) + UNICODE
    checkpoints = {"base": CharNGram(1).fit(zen, vocabulary),
                   "tuned": CharNGram(4, alpha=0.5).fit(zen, vocabulary)}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "data").mkdir()
        datasets(work / "data")
        module = type(sys)("zen_tasks")
        module.TASKS_TABLE = task_configs(work / "data")
        for checkpoint, ngram in checkpoints.items():
            config = NGramConfig(model_name=f"zen-ngram-{checkpoint}", cache_dir=str(work / "cache"))
            tracker = EvaluationTracker(output_dir=str(work / "out"), save_details=True)
            params = PipelineParameters(launcher_type=ParallelismManager.CUSTOM, custom_tasks_directory=module)
            pipeline = Pipeline(tasks="zen_mc|0,stdlib_ppl|0", pipeline_parameters=params,
                                evaluation_tracker=tracker, model=NGramModel(config, ngram))
            pipeline.evaluate()
            pipeline.save_and_push_results()
        out = HERE / "out"
        shutil.rmtree(out, ignore_errors=True)
        for checkpoint in checkpoints:
            name = f"zen-ngram-{checkpoint}"
            target = HERE / checkpoint
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir()
            for file in sorted((work / "out").rglob("*")):
                if file.is_file() and name in file.parts:
                    shutil.copy(file, target / file.name)
            for file in target.glob("results_*.json"):
                scrub(file, work)


if __name__ == "__main__":
    main()
