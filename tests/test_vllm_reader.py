"""The OpenAI-compatible / vLLM completions reader against tests/data/vllm (see its README)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from lm_ngram import CharNGram, held_out_documents, zen_of_python
from losslens.errors import InputError
from losslens.readers.vllm import read_vllm_completions

DATA = Path(__file__).parent / "data" / "vllm"
UNICODE = "Ünïcödé – naïve café: “quotes” and ½ ≠ ∞."


def ngram(checkpoint: str) -> CharNGram:
    zen = zen_of_python()
    vocabulary = zen + "".join(held_out_documents().values()) + UNICODE
    return CharNGram(1).fit(zen, vocabulary) if checkpoint == "base" else CharNGram(4, alpha=0.5).fit(zen, vocabulary)


def prompts() -> list[str]:
    return [text[:64] for text in held_out_documents().values()] + [UNICODE]


@pytest.mark.parametrize("checkpoint", ["base", "tuned"])
@pytest.mark.parametrize("file", ["completions_prompt_logprobs.jsonl", "completions_echo.jsonl"])
def test_prompt_logprobs_equal_the_ngram_and_generated_tokens_are_left_out(checkpoint, file):
    docs = read_vllm_completions(DATA / checkpoint / file)
    model = ngram(checkpoint)
    assert [d.doc_id for d in docs] == [str(i) for i in range(1, 8)]  # line numbers
    for doc, prompt in zip(docs, prompts()):
        assert doc.text == prompt and "".join(doc.tokens) == prompt
        assert doc.generated == 3
        assert doc.logprobs[0] is None  # vLLM: the first token has no context
        # same formula, same libm, but written to JSON and read back: compare to 1e-12, not bitwise
        assert doc.logprobs[1:] == pytest.approx(model.token_logprobs(prompt)[1:], rel=1e-12)
        assert doc.source == ("prompt_logprobs" if "prompt" in file else "echo")


def test_bytes_per_token_are_exact_utf8_lengths():
    docs = read_vllm_completions(DATA / "base" / "completions_prompt_logprobs.jsonl")
    for doc in docs:
        assert sum(doc.token_bytes) == len(doc.text.encode("utf-8"))
        assert list(doc.token_bytes) == [len(c.encode("utf-8")) for c in doc.text]
    multibyte = docs[-1]
    # by hand: 41 characters; Ü ï ö é ï é ½ take 2 bytes (+7), – “ ” ≠ ∞ take 3 (+10): 58 bytes
    assert multibyte.text == UNICODE and len(UNICODE) == 41 and sum(multibyte.token_bytes) == 58
    assert sorted(set(multibyte.token_bytes)) == [1, 2, 3]


def _rewrite(tmp_path: Path, change, file="completions_prompt_logprobs.jsonl") -> Path:
    lines = (DATA / "tuned" / file).read_text(encoding="utf-8").splitlines()
    record = json.loads(lines[2])
    change(record)
    lines[2] = json.dumps(record, ensure_ascii=False)
    path = tmp_path / "responses.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_bytes_from_decoded_tokens_without_text_offset(tmp_path):
    path = _rewrite(tmp_path, lambda r: r["choices"][0]["logprobs"].update(text_offset=[]))
    doc = read_vllm_completions(path)[2]
    assert sum(doc.token_bytes) == len(doc.text.encode()) and doc.text == prompts()[2]


def test_prompt_token_ids_pick_the_prompt_token_among_candidates(tmp_path):
    """With echo off there are no echoed tokens: prompt_token_ids (return_token_ids) tell them apart."""
    model = ngram("tuned")
    index = {c: i for i, c in enumerate(model.vocab)}

    def change(record):
        choice = record["choices"][0]
        choice["prompt_token_ids"] = [index[c] for c in prompts()[2]]
        choice["logprobs"] = None
    doc = read_vllm_completions(_rewrite(tmp_path, change))[2]
    assert doc.logprobs[1:] == pytest.approx(model.token_logprobs(prompts()[2])[1:], rel=1e-12)
    assert doc.generated == 0

    def ambiguous(record):
        record["choices"][0]["logprobs"] = None
    multi = next(i for i, p in enumerate(json.loads(
        (DATA / "tuned" / "completions_prompt_logprobs.jsonl").read_text().splitlines()[2])
        ["choices"][0]["prompt_logprobs"]) if p and len(p) > 1)
    path = _rewrite(tmp_path, ambiguous)
    with pytest.raises(InputError, match=re.escape(
            f"{path}, line 3, field 'choices[0].prompt_logprobs', token {multi}: 2 candidates")):
        read_vllm_completions(path)


def test_document_field_names_the_document(tmp_path):
    docs = read_vllm_completions(DATA / "base" / "completions_echo.jsonl", document="id")
    assert [d.doc_id for d in docs][:2] == ["cmpl-base-0000", "cmpl-base-0001"]
    with pytest.raises(InputError, match=re.escape("line 1, field 'nope': not found")):
        read_vllm_completions(DATA / "base" / "completions_echo.jsonl", document="nope")
    with pytest.raises(InputError, match=re.escape("field 'model': document 'zen-ngram-base' appears on")):
        read_vllm_completions(DATA / "base" / "completions_echo.jsonl", document="model")


@pytest.mark.parametrize("file, change, message", [
    ("completions_echo.jsonl", lambda r: r["choices"][0]["logprobs"]["token_logprobs"].__setitem__(4, None),
     "field 'choices[0].logprobs.token_logprobs', token 4: None is null after the first token"),
    ("completions_echo.jsonl", lambda r: r["choices"][0]["logprobs"]["token_logprobs"].__setitem__(5, float("nan")),
     "field 'choices[0].logprobs.token_logprobs', token 5: nan is not a finite number"),
    ("completions_prompt_logprobs.jsonl",
     lambda r: [e.update(logprob=0.5) for e in r["choices"][0]["prompt_logprobs"][6].values()],
     "field 'choices[0].prompt_logprobs', token 6: 0.5 is positive"),
    ("completions_echo.jsonl", lambda r: r.pop("choices"), "field 'choices': not a completion response"),
    ("completions_echo.jsonl", lambda r: r["choices"][0].update(logprobs=None),
     "field 'choices[0].logprobs': no prompt log-probabilities; request the completion with echo=true"),
])
def test_bad_input_names_file_line_and_field(tmp_path, file, change, message):
    path = _rewrite(tmp_path, change, file)
    with pytest.raises(InputError, match=re.escape(f"{path}, line 3, {message}")):
        read_vllm_completions(path)


def test_not_json(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text('{"choices": []}\nnot json\n')
    with pytest.raises(InputError, match=re.escape(f"{path}, line 1, field 'choices'")):
        read_vllm_completions(path)
    path.write_text("not json\n")
    with pytest.raises(InputError, match=re.escape(f"{path}, line 1: not valid JSON")):
        read_vllm_completions(path)


def test_prompt_logprobs_without_echo_ignore_the_generated_tokens(tmp_path):
    """echo=false, prompt_logprobs=0: logprobs covers only the 3 generated tokens (first one
    scored); the prompt is read from prompt_logprobs alone, its texts from decoded_token."""
    index = {c: i for i, c in enumerate(ngram("tuned").vocab)}

    def change(record):
        positions = record["choices"][0]["prompt_logprobs"]
        for i, char in enumerate(prompts()[2][1:], 1):  # prompt_logprobs=0: the prompt token only
            positions[i] = {str(index[char]): positions[i][str(index[char])]}
        lp = record["choices"][0]["logprobs"]
        record["choices"][0]["logprobs"] = {k: v[-3:] for k, v in lp.items()}
        record["choices"][0]["logprobs"]["text_offset"] = [0, 1, 2]
        record["choices"][0]["text"] = record["choices"][0]["text"][-3:]
    doc = read_vllm_completions(_rewrite(tmp_path, change))[2]
    prompt = prompts()[2]
    # the first prompt token has neither a log-prob nor, without echo, a text
    assert doc.tokens[0] == "" and doc.token_bytes[0] == 0 and doc.logprobs[0] is None
    assert doc.text == prompt[1:] and doc.generated == 3
    assert doc.logprobs[1:] == pytest.approx(ngram("tuned").token_logprobs(prompt)[1:], rel=1e-12)
    assert sum(doc.token_bytes) == len(prompt[1:].encode())


def test_generated_only_logprobs_are_not_a_prompt(tmp_path):
    def change(record):
        lp = record["choices"][0]["logprobs"]
        record["choices"][0]["logprobs"] = {k: v[-3:] for k, v in lp.items()}
    path = _rewrite(tmp_path, change, "completions_echo.jsonl")
    with pytest.raises(InputError, match=re.escape(f"{path}, line 3, field 'choices[0].logprobs': no prompt")):
        read_vllm_completions(path)
