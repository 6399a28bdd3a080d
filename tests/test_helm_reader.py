"""The HELM run reader against run folders crfm-helm 0.5.16 wrote itself (tests/data/helm).

The fixtures' client is the character n-gram of tests/lm_ngram.py; expected numbers come from
HELM's own per-instance stats and aggregates (``predicted_index``, ``exact_match``) and from an
independent numpy computation of the same n-gram model.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from lm_ngram import CharNGram, held_out_documents, zen_of_python
from losslens.errors import InputError
from losslens.readers.helm import read_helm_runs

DATA = Path(__file__).parent / "data" / "helm"
RUNS = {c: DATA / f"zen_mc:model=zen_ngram-{c}" for c in ("base", "tuned")}
LM_RUNS = {c: DATA / f"stdlib_lm:model=zen_ngram-{c}" for c in ("base", "tuned")}


def models() -> dict[str, CharNGram]:
    """The fixtures' two checkpoints, fitted exactly as ngram_plugin.py fits them."""
    zen = zen_of_python()
    vocabulary = zen + "".join(held_out_documents().values())
    return {"base": CharNGram(1).fit(zen, vocabulary), "tuned": CharNGram(4, alpha=0.5).fit(zen, vocabulary)}


def numpy_char_logprobs(model: CharNGram, text: str) -> np.ndarray:
    padded = "\x02" * model.order + text
    return np.log(np.array([model.prob(padded[: model.order + i], c) for i, c in enumerate(text)]))


def read_one(path: Path):
    [run] = read_helm_runs(path)
    return run


@pytest.mark.parametrize("checkpoint", list(RUNS))
def test_run_folder(checkpoint):
    run = read_one(RUNS[checkpoint])
    assert (run.run, run.model) == (RUNS[checkpoint].name, f"zen/ngram-{checkpoint}")
    assert run.adapter_method == "multiple_choice_separate_original" and len(run.instances) == 21
    first = run.instances[0]
    assert (first.id, first.split, first.input) == ("zen-00", "test", "Beautiful is better than")
    assert (first.references, first.correct, first.target) == (("Dutch.", "ugly."), (1,), 1)
    assert [i.id for i in run.instances][-2:] == ["stdlib-19", "tie-00"]
    assert read_one(RUNS[checkpoint] / "scenario_state.json") == run  # the file names its run


def test_a_suite_folder_gives_one_run_per_folder():
    assert [r.run for r in read_helm_runs(DATA)] == [p.name for p in (*LM_RUNS.values(), *RUNS.values())]


@pytest.mark.parametrize("checkpoint", list(RUNS))
def test_reference_loglikelihoods_match_numpy_from_the_ngram_model(checkpoint):
    model = models()[checkpoint]
    for instance in read_one(RUNS[checkpoint]).instances:
        expected, totals = [], []
        for reference in instance.references:
            chars = numpy_char_logprobs(model, instance.input + " " + reference)
            expected.append(chars[len(instance.input):].sum())
            totals.append(chars.sum())
        # numpy's log/sum against the client's math.log path: equal to rounding, not bitwise
        assert instance.reference_logprobs == pytest.approx(expected, rel=1e-9)
        # HELM's completions[0].logprob is the whole prompt's sum, not the reference's
        assert instance.prompt_logprobs == pytest.approx(totals, rel=1e-9)
        assert instance.reference_tokens == tuple(len(" " + r) for r in instance.references)


@pytest.mark.parametrize("checkpoint", list(RUNS))
def test_helms_predicted_index_and_exact_match_from_the_recovered_numbers(checkpoint):
    run = read_one(RUNS[checkpoint])
    for instance in run.instances:
        scores = np.array(instance.reference_logprobs) / np.array(instance.reference_tokens)  # HELM normalises
        tied = np.flatnonzero(scores >= scores.max())
        assert instance.stats["predicted_index"] == tied[0]  # the first arg-max
        assert instance.stats["exact_match"] == len(set(instance.correct) & set(tied)) / len(tied)
    # a mean of values that are multiples of 1/2 over 21 instances: one rounding, same in both
    recomputed = sum(i.stats["exact_match"] for i in run.instances) / len(run.instances)
    assert run.logged["test/exact_match"] == recomputed
    assert 0 < recomputed < 1


def test_tie_and_length_normalisation_are_helms_not_argmax_accuracy():
    base, tuned = (next(i for i in read_one(RUNS[c]).instances if i.id == "tie-00") for c in RUNS)
    assert base.reference_logprobs[0] == base.reference_logprobs[1]
    assert base.stats["exact_match"] == 0.5  # two tied arg-max references, one correct
    # tuned: "ugly." has the larger log-likelihood, "nested." the larger per-token one
    assert int(np.argmax(tuned.reference_logprobs)) == 0
    assert (tuned.stats["predicted_index"], tuned.stats["exact_match"]) == (2, 0)


# -- language modelling: documents split into windows -----------------------------------------

@pytest.mark.parametrize("checkpoint", list(LM_RUNS))
def test_language_modelling_tokens_match_numpy_window_by_window(checkpoint):
    run = read_one(LM_RUNS[checkpoint])
    assert run.adapter_method == "language_modeling" and len(run.instances) == 6
    state = json.loads((LM_RUNS[checkpoint] / "scenario_state.json").read_text())
    windows = {}
    for request_state in state["request_states"]:
        windows.setdefault(request_state["instance"]["id"], []).append(request_state)
    assert max(len(w) for w in windows.values()) == 3  # 400 characters in windows of 160
    model = models()[checkpoint]
    for instance in run.instances:
        # the client scores each window's prompt from its start; its first tokens are context only
        expected = np.concatenate([numpy_char_logprobs(model, w["request"]["prompt"])[w["num_conditioning_tokens"]:]
                                   for w in windows[instance.id]])
        assert instance.token_logprobs == pytest.approx(expected.tolist(), rel=1e-9)
        assert b"".join(instance.token_bytes) == instance.input.encode("utf-8")
        assert len(instance.token_logprobs) == instance.stats["num_perplexity_tokens"]
        assert math.fsum(instance.token_logprobs) == pytest.approx(instance.stats["logprob"], rel=1e-12)


@pytest.mark.parametrize("checkpoint", list(LM_RUNS))
def test_language_modelling_aggregates_equal_helms(checkpoint):
    run = read_one(LM_RUNS[checkpoint])
    total = math.fsum(v for i in run.instances for v in i.token_logprobs)
    tokens = sum(len(i.token_logprobs) for i in run.instances)
    n_bytes = sum(len(b) for i in run.instances for b in i.token_bytes)
    # HELM adds the same numbers in another order (plain sum per window): equal to rounding
    assert run.logged["test/perplexity"] == pytest.approx(math.exp(-total / tokens), rel=1e-12)
    assert run.logged["test/bits_per_byte"] == pytest.approx(-total / n_bytes / math.log(2), rel=1e-12)


def test_byte_tokens_are_the_bytes_they_spell(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    state = json.loads((LM_RUNS["base"] / "scenario_state.json").read_text())
    state["request_states"][0]["result"]["completions"][0]["tokens"][3]["text"] = "bytes:\\xe2\\x80"
    (folder / "scenario_state.json").write_text(json.dumps(state))
    first = read_one(folder).instances[0]
    assert first.token_bytes[3] == b"\xe2\x80" and first.stats == {}


# -- bad inputs ------------------------------------------------------------------------------------

def edited_run(tmp_path: Path, edit) -> Path:
    folder = tmp_path / RUNS["base"].name
    folder.mkdir()
    for source in RUNS["base"].iterdir():
        (folder / source.name).write_bytes(source.read_bytes())
    state = json.loads((folder / "scenario_state.json").read_text())
    edit(state["request_states"])
    (folder / "scenario_state.json").write_text(json.dumps(state))  # NaN as the NaN literal
    return folder


def raises_one_line(path: Path, *fragments: str):
    with pytest.raises(InputError) as info:
        read_helm_runs(path)
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


def test_instance_without_a_correct_reference(tmp_path):
    def edit(states):
        for state in states:
            if state["instance"]["id"] == "zen-03":
                for reference in state["instance"]["references"]:
                    reference["tags"] = []
    folder = edited_run(tmp_path, edit)
    raises_one_line(folder, str(folder / "scenario_state.json"), "instance 'zen-03'",
                    "field 'instance.references[].tags': no reference tagged 'correct'")


@pytest.mark.parametrize("value, message", [(0.25, "log-probability 0.25 is positive"),
                                            (math.nan, "nan is not a finite number")])
def test_bad_token_logprob(tmp_path, value, message):
    def edit(states):
        states[4]["result"]["completions"][0]["tokens"][7]["logprob"] = value
    folder = edited_run(tmp_path, edit)
    instance = json.loads((RUNS["base"] / "scenario_state.json").read_text())["request_states"][4]["instance"]["id"]
    raises_one_line(folder, f"instance {instance!r}",
                    "field 'request_states[4].result.completions[0].tokens[7].logprob'", message)


def test_truncated_scenario_state(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    text = (RUNS["tuned"] / "scenario_state.json").read_text()
    (folder / "scenario_state.json").write_text(text[: len(text) // 3])
    raises_one_line(folder, str(folder / "scenario_state.json"), "not valid JSON", "truncated")


def test_folder_without_runs(tmp_path):
    raises_one_line(tmp_path, str(tmp_path), "no HELM run")


def test_a_reference_without_its_request(tmp_path):
    def edit(states):
        states[:] = [s for s in states if not (s["instance"]["id"] == "zen-05" and s["reference_index"] == 1)]
    raises_one_line(edited_run(tmp_path, edit), "instance 'zen-05'",
                    "field 'request_states': no request scores reference 1")


def test_other_adapters_keep_instances_without_logprobs(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    state = json.loads((RUNS["base"] / "scenario_state.json").read_text())
    state["adapter_spec"]["method"] = "generation"
    (folder / "scenario_state.json").write_text(json.dumps(state))
    run = read_one(folder)
    assert len(run.instances) == 21 and run.instances[0].reference_logprobs is None
    assert run.instances[0].target == 1 and run.logged == {}
    assert run.notes and "'generation' makes no request per reference" in run.notes[0]
