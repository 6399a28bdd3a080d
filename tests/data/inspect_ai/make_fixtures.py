"""Write the inspect-ai fixtures of tests/test_inspect_reader.py with inspect-ai itself.

Run in a separate virtual environment that has inspect-ai (it needs no network and no API key):

    python -m venv inspect-venv && inspect-venv/bin/pip install inspect-ai
    inspect-venv/bin/python tests/data/inspect_ai/make_fixtures.py

The model is the character n-gram of tests/lm_ngram.py trained on the Zen of Python, wrapped in
a custom inspect model API registered with ``@modelapi("ngram")``. It answers a multiple-choice
prompt (inspect's ``multiple_choice()`` solver) with ``ANSWER: <letter>`` and returns the
answer letter's ``top_logprobs`` over the choice letters: the log-softmax over the choices of
each choice text's n-gram log-likelihood given the question. It picks the arg-max letter (ties:
the first), so inspect's ``choice()`` scorer counts exactly the arg-max hits. For the perplexity
task it returns ``prompt_logprobs`` (one token per character of the document) for inspect's
``perplexity()`` scorer.

Two "checkpoints" — ``base`` (a bigram) and ``tuned`` (a 4-gram) — each write three tasks in
both of inspect's log formats (``.eval`` archive, zstd-compressed members, and ``.json``).
inspect 0.3.285 records no machine paths here; the git ``revision`` field is cleared and any
absolute path would be replaced by ``"<removed>"``. The numbers are inspect's own, and
inspect's ``read_eval_log`` reads every fixture back. ``tuned/zen_mc_chunked.eval`` is
``tuned/zen_mc.eval`` converted by inspect to its newer per-sample folder ("chunked") layout.
"""

from __future__ import annotations

import io
import json
import math
import re
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))  # tests/, for lm_ngram

from lm_ngram import CharNGram, held_out_documents, zen_of_python  # noqa: E402

from inspect_ai import Epochs, Task, eval as inspect_eval  # noqa: E402
from inspect_ai.dataset import MemoryDataset, Sample  # noqa: E402
from inspect_ai.log import read_eval_log  # noqa: E402
from inspect_ai.model import (  # noqa: E402
    ChatCompletionChoice, ChatMessageAssistant, GenerateConfig, Logprob, Logprobs, ModelAPI,
    ModelOutput, TopLogprob, modelapi,
)
from inspect_ai.scorer import choice, perplexity  # noqa: E402
from inspect_ai.solver import generate, multiple_choice  # noqa: E402

CHOICE_LINE = re.compile(r"^([A-Z])\) (.*)$")


def checkpoints() -> dict[str, CharNGram]:
    """The two models, fitted on the Zen with the docstrings' characters in the vocabulary."""
    zen = zen_of_python()
    vocabulary = zen + "".join(held_out_documents().values())
    return {"base": CharNGram(1).fit(zen, vocabulary),
            "tuned": CharNGram(4, alpha=0.5).fit(zen, vocabulary)}


def log_likelihood(model: CharNGram, context: str, continuation: str) -> float:
    """Sum of the log-probabilities of ``continuation``'s characters after ``context``."""
    return sum(model.token_logprobs(context + continuation)[len(context):])


def letter_logprobs(model: CharNGram, question: str, choices: list[str]) -> list[float]:
    """Log-softmax over the choices of each choice's log-likelihood (with a leading space)."""
    scores = [log_likelihood(model, question, " " + text) for text in choices]
    top = max(scores)
    log_norm = top + math.log(sum(math.exp(s - top) for s in scores))
    return [s - log_norm for s in scores]


def token(text: str, logprob: float, top: list[tuple[str, float]] | None = None) -> Logprob:
    tops = [TopLogprob(token=t, logprob=lp, bytes=list(t.encode())) for t, lp in top or []]
    return Logprob(token=text, logprob=logprob, bytes=list(text.encode()), top_logprobs=tops or None)


def parse_prompt(prompt: str) -> tuple[str, list[str]]:
    """The question and the choice texts of inspect's single-answer template."""
    lines = prompt.split("\n")
    choices = [m.group(2) for m in map(CHOICE_LINE.match, lines) if m]
    first = next(i for i, line in enumerate(lines) if CHOICE_LINE.match(line))
    question = "\n".join(lines[2:first]).strip()  # line 0 is the instruction, line 1 blank
    return question, choices


@modelapi(name="ngram")
class NGramAPI(ModelAPI):
    """inspect's model interface over a character n-gram model (``ngram/zen-ngram-<checkpoint>``)."""

    def __init__(self, model_name: str, base_url: str | None = None, api_key: str | None = None,
                 config: GenerateConfig = GenerateConfig(), **model_args):
        super().__init__(model_name=model_name, base_url=base_url, api_key=api_key, config=config)
        self.model = checkpoints()[model_name.rsplit("-", 1)[-1]]

    async def generate(self, input, tools, tool_choice, config) -> ModelOutput:
        prompt = "\n".join(message.text for message in input if message.role == "user")
        if config.prompt_logprobs:
            return self._prompt_scores(prompt)
        question, choices = parse_prompt(prompt)
        letters = [chr(ord("A") + i) for i in range(len(choices))]
        logprobs = letter_logprobs(self.model, question, choices)
        best = max(range(len(choices)), key=lambda i: (logprobs[i], -i))  # ties: first index
        ranked = sorted(zip(letters, logprobs), key=lambda pair: -pair[1])  # stable: ties keep order
        content = [token("ANSWER", 0.0), token(":", 0.0), token(" ", 0.0),
                   token(letters[best], logprobs[best], ranked[: config.top_logprobs or len(ranked)])]
        return self._output("ANSWER: " + letters[best], Logprobs(content=content))

    def _prompt_scores(self, prompt: str) -> ModelOutput:
        """One token per character of the prompt, each scored given the characters before it."""
        values = self.model.token_logprobs(prompt)
        output = self._output("", None)
        output.choices[0].prompt_logprobs = Logprobs(
            content=[token(char, lp) for char, lp in zip(prompt, values)])
        return output

    def _output(self, text: str, logprobs: Logprobs | None) -> ModelOutput:
        message = ChatMessageAssistant(content=text, model=self.model_name, source="generate")
        return ModelOutput(model=self.model_name, completion=text, choices=[
            ChatCompletionChoice(message=message, stop_reason="stop", logprobs=logprobs)])


def mc_samples() -> list[Sample]:
    """Last-word questions over Zen lines and docstring sentences (same data for both checkpoints)."""
    import random

    rng = random.Random(0)
    zen = [line for line in zen_of_python().splitlines()[2:] if line.strip()]
    docs = [text.split(". ")[0] for text in held_out_documents().values()]
    lines = [("zen", line) for line in zen[:14]] + [("stdlib", line) for line in docs]
    last_words = list(dict.fromkeys(line.split()[-1] for _, line in lines))
    samples = []
    for i, (subject, line) in enumerate(lines):
        words = line.split()
        question, gold = " ".join(words[:-1]), words[-1]
        choices = rng.sample([w for w in last_words if w != gold], 1 + i % 3)
        position = rng.randrange(len(choices) + 1)
        choices.insert(position, gold)
        metadata = {"subject": subject}
        if i % 4 == 0:
            metadata["line"] = i + 1
        samples.append(Sample(id=f"{subject}-{i:02d}", input=question, choices=choices,
                              target=chr(ord("A") + position), metadata=metadata))
    # Two identical choice texts: equal letter log-probs, the first wins, the target is the second.
    samples.append(Sample(id="tie-00", input="Beautiful is better than", choices=["ugly", "ugly", "nested"],
                          target="B", metadata={"subject": "tie"}))
    return samples


def tasks() -> dict[str, Task]:
    config = GenerateConfig(logprobs=True, top_logprobs=5)
    samples = mc_samples()
    docs = [Sample(id=name, input=text[:120], metadata={"subject": "stdlib"})
            for name, text in held_out_documents().items()][:4]
    return {
        "zen_mc": Task(dataset=MemoryDataset(samples, name="zen_mc"), solver=multiple_choice(),
                       scorer=choice(), config=config, name="zen_mc"),
        "zen_mc_epochs": Task(dataset=MemoryDataset(samples[:8], name="zen_mc_epochs"),
                              solver=multiple_choice(), scorer=choice(), config=config,
                              epochs=Epochs(2, "mean"), name="zen_mc_epochs"),
        "stdlib_ppl": Task(dataset=MemoryDataset(docs, name="stdlib_ppl"), solver=generate(),
                           scorer=perplexity(), config=GenerateConfig(prompt_logprobs=1),
                           name="stdlib_ppl"),
    }


def scrub(value, key: str = ""):
    """Drop what could name this machine: the git revision of the working directory and paths.

    Everything else is kept as inspect wrote it (times, random ids, package versions), so that
    inspect's own ``read_eval_log`` still reads every fixture (checked in ``main``).
    """
    if isinstance(value, dict):
        return {k: (None if k == "revision" else scrub(v, k)) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v, key) for v in value]
    if isinstance(value, str) and value.startswith(("/", "file://")):
        return "<removed>"
    return value


def rewrite_json(path: Path) -> None:
    path.write_text(json.dumps(scrub(json.loads(path.read_text())), ensure_ascii=False) + "\n")


def rewrite_eval(path: Path) -> None:
    """Scrub every JSON member of an .eval archive, keeping inspect's zstd compression."""
    from inspect_ai._util.zipfile import zipfile_compress_kwargs

    with zipfile.ZipFile(path) as src:
        members = [(info.filename, src.read(info)) for info in src.infolist()]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", **zipfile_compress_kwargs) as dst:
        for name, data in members:
            if name.endswith(".json"):
                data = json.dumps(scrub(json.loads(data)), ensure_ascii=False).encode()
            info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
            info.compress_type = zipfile_compress_kwargs["compression"]
            dst.writestr(info, data)
    path.write_bytes(buffer.getvalue())


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        for checkpoint in checkpoints():
            for log_format in ("eval", "json"):
                logs = inspect_eval(list(tasks().values()), model=f"ngram/zen-ngram-{checkpoint}",
                                    log_dir=str(out / checkpoint / log_format), log_format=log_format,
                                    display="none", max_connections=1, log_samples=True)
                assert all(log.status == "success" for log in logs), [log.error for log in logs]
        for checkpoint in checkpoints():
            target = HERE / checkpoint
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir()
            for log_format in ("eval", "json"):
                for log in sorted((out / checkpoint / log_format).glob(f"*.{log_format}")):
                    task = next(t for t in tasks() if f"_{t.replace('_', '-')}_" in log.name)
                    path = target / f"{task}.{log_format}"
                    shutil.copy(log, path)
                    (rewrite_eval if log_format == "eval" else rewrite_json)(path)
                    assert read_eval_log(str(path)).status == "success", path
        chunked(HERE / "tuned" / "zen_mc.eval", HERE / "tuned" / "zen_mc_chunked.eval")


def chunked(source: Path, target: Path) -> None:
    """inspect's newer per-sample folder layout (``samples/<id>_epoch_<n>/sample.json``, ...)."""
    from inspect_ai.log._recorders.chunked import convert_eval_logs_to_chunked

    with tempfile.TemporaryDirectory() as tmp:
        convert_eval_logs_to_chunked(str(source), tmp)
        shutil.copy(Path(tmp) / source.name, target)
    # inspect 0.3.285 writes this layout (its converter) but its readers do not read it yet:
    # read_eval_log takes every samples/*.json member for a sample. Check the shape instead.
    with zipfile.ZipFile(target) as archive:
        assert "samples/zen-00_epoch_1/sample.json" in archive.namelist(), target


if __name__ == "__main__":
    main()
