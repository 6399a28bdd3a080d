"""HELM plugin of make_fixtures.py: a scenario, a run spec and a client over the n-gram model.

Imported by ``helm-run --plugins ngram_plugin`` (run spec ``zen_mc``) and, through the model
deployments of ``make_fixtures.py``, as the client class ``ngram_plugin.NGramClient``.
"""

from __future__ import annotations

import random
from typing import List

from helm.benchmark.adaptation.adapter_spec import ADAPT_MULTIPLE_CHOICE_SEPARATE_ORIGINAL
from helm.benchmark.adaptation.common_adapter_specs import (
    get_language_modeling_adapter_spec, get_multiple_choice_separate_adapter_spec,
)
from helm.benchmark.metrics.common_metric_specs import (
    get_exact_match_metric_specs, get_language_modeling_metric_specs,
)
from helm.benchmark.run_spec import RunSpec, run_spec_function
from helm.benchmark.scenarios.scenario import (
    CORRECT_TAG, TEST_SPLIT, Input, Instance, Output, Reference, Scenario, ScenarioSpec,
)
from helm.clients.client import Client
from helm.common.cache import CacheConfig
from helm.common.request import GeneratedOutput, Request, RequestResult, Token

from lm_ngram import CharNGram, held_out_documents, zen_of_python


def checkpoints() -> dict[str, CharNGram]:
    """The two models, fitted on the Zen with the docstrings' characters in the vocabulary."""
    zen = zen_of_python()
    vocabulary = zen + "".join(held_out_documents().values())
    return {"base": CharNGram(1).fit(zen, vocabulary),
            "tuned": CharNGram(4, alpha=0.5).fit(zen, vocabulary)}


class ZenMCScenario(Scenario):
    """Last-word questions over Zen lines and docstring sentences (as the inspect fixtures)."""

    name = "zen_mc"
    description = "Pick the last word of a line of the Zen of Python or of a docstring sentence."
    tags = ["multiple_choice"]

    def get_instances(self, output_path: str) -> List[Instance]:
        rng = random.Random(0)
        zen = [line for line in zen_of_python().splitlines()[2:] if line.strip()]
        docs = [text.split(". ")[0] for text in held_out_documents().values()]
        lines = [("zen", line) for line in zen[:14]] + [("stdlib", line) for line in docs]
        last_words = list(dict.fromkeys(line.split()[-1] for _, line in lines))
        instances = []
        for i, (subject, line) in enumerate(lines):
            words = line.split()
            question, gold = " ".join(words[:-1]), words[-1]
            choices = rng.sample([w for w in last_words if w != gold], 1 + i % 3)
            position = rng.randrange(len(choices) + 1)
            choices.insert(position, gold)
            references = [Reference(Output(text=c), tags=[CORRECT_TAG] if j == position else [])
                          for j, c in enumerate(choices)]
            instances.append(Instance(Input(text=question), references=references, split=TEST_SPLIT,
                                      id=f"{subject}-{i:02d}"))
        # Two identical reference texts, the correct one second: HELM splits the tie.
        instances.append(Instance(Input(text="Beautiful is better than"), split=TEST_SPLIT,
                                  id="tie-00", references=[Reference(Output(text="ugly."), tags=[]),
                                                           Reference(Output(text="ugly."), tags=[CORRECT_TAG]),
                                                           Reference(Output(text="nested."), tags=[])]))
        return instances


@run_spec_function("zen_mc")
def get_zen_mc_spec() -> RunSpec:
    return RunSpec(
        name="zen_mc",
        scenario_spec=ScenarioSpec(class_name="ngram_plugin.ZenMCScenario"),
        adapter_spec=get_multiple_choice_separate_adapter_spec(ADAPT_MULTIPLE_CHOICE_SEPARATE_ORIGINAL),
        metric_specs=get_exact_match_metric_specs(),
        groups=["zen_mc"],
    )


class StdlibDocsScenario(Scenario):
    """Standard-library docstrings (the first 400 characters) as language-modelling documents."""

    name = "stdlib_lm"
    description = "Standard-library docstrings, scored token by token."
    tags = ["language_modeling"]

    def get_instances(self, output_path: str) -> List[Instance]:
        return [Instance(Input(text=text[:400]), references=[], split=TEST_SPLIT, id=name)
                for name, text in held_out_documents().items()]


@run_spec_function("stdlib_lm")
def get_stdlib_lm_spec() -> RunSpec:
    return RunSpec(
        name="stdlib_lm",
        scenario_spec=ScenarioSpec(class_name="ngram_plugin.StdlibDocsScenario"),
        adapter_spec=get_language_modeling_adapter_spec(),
        metric_specs=get_language_modeling_metric_specs([]),
        groups=["stdlib_lm"],
    )


class NGramClient(Client):
    """Scores the whole prompt (echo_prompt, max_tokens=0): one token per character."""

    def __init__(self, cache_config: CacheConfig, checkpoint: str = "base"):
        self.model = checkpoints()[checkpoint]

    def make_request(self, request: Request) -> RequestResult:
        assert request.echo_prompt and request.max_tokens == 0, "only scoring requests"
        values = self.model.token_logprobs(request.prompt)
        tokens = [Token(text=char, logprob=value) for char, value in zip(request.prompt, values)]
        output = GeneratedOutput(text=request.prompt, logprob=sum(values), tokens=tokens)
        return RequestResult(success=True, cached=False, request_time=0.0, completions=[output], embedding=[])
