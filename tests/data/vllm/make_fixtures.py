"""Write the vLLM completions fixtures of tests/test_vllm_reader.py (vLLM cannot run here).

    python tests/data/vllm/make_fixtures.py

Each line is one ``CompletionResponse`` as vLLM's OpenAI-compatible server returns it for a
``/v1/completions`` request with ``echo=true``, ``logprobs=1``, ``max_tokens=3`` and (in
``completions_prompt_logprobs.jsonl``) ``prompt_logprobs=1``; the shapes and the way each field is
filled follow vLLM's own code (see README.md for the files and commits). The "model" is the
character n-gram of tests/lm_ngram.py (one token per character; token id = index in its
vocabulary), ``base`` a bigram and ``tuned`` a 4-gram, prompted with the start of standard-library
docstrings and one line of multi-byte UTF-8 text, and decoding greedily for 3 tokens.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))  # tests/, for lm_ngram

from lm_ngram import CharNGram, held_out_documents, zen_of_python  # noqa: E402

UNICODE = "Ünïcödé – naïve café: “quotes” and ½ ≠ ∞."
PROMPT_CHARS = 64
GENERATED = 3


def prompts() -> list[str]:
    return [text[:PROMPT_CHARS] for text in held_out_documents().values()] + [UNICODE]


def distribution(model: CharNGram, history: str) -> list[tuple[int, float]]:
    """(token id, log-prob) of the whole vocabulary after ``history``, best first (ties: lower id)."""
    padded = "\x02" * model.order + history
    scored = [(i, math.log(model.prob(padded, c))) for i, c in enumerate(model.vocab)]
    return sorted(scored, key=lambda t: (-t[1], t[0]))


def position(model: CharNGram, history: str, token_id: int) -> dict[int, dict]:
    """vLLM's ``dict[int, Logprob]`` for one position with logprobs=1: the token and the top-1."""
    ranked = distribution(model, history)
    rank = next(r for r, (i, _) in enumerate(ranked, 1) if i == token_id)
    entries = {token_id: {"logprob": ranked[rank - 1][1], "rank": rank, "decoded_token": model.vocab[token_id]}}
    best_id, best_lp = ranked[0]
    entries.setdefault(best_id, {"logprob": best_lp, "rank": 1, "decoded_token": model.vocab[best_id]})
    return entries


def response(model: CharNGram, name: str, number: int, prompt: str, prompt_logprobs: bool) -> dict:
    """One CompletionResponse, filled as serving_completion.py fills it for echo + logprobs."""
    index = {c: i for i, c in enumerate(model.vocab)}
    prompt_ids = [index[c] for c in prompt]
    positions: list[dict | None] = [None]  # vLLM: the first prompt token has no context, so no logprob
    positions += [position(model, prompt[:i], prompt_ids[i]) for i in range(1, len(prompt))]
    generated = ""
    for _ in range(GENERATED):
        best_id = distribution(model, prompt + generated)[0][0]
        positions.append(position(model, prompt + generated, best_id))
        generated += model.vocab[best_id]
    ids = prompt_ids + [index[c] for c in generated]
    tokens, token_logprobs, top_logprobs, offsets = [], [], [], []
    for token_id, entries in zip(ids, positions):
        token = model.vocab[token_id]
        offsets.append(offsets[-1] + len(tokens[-1]) if offsets else 0)  # characters, as vLLM counts
        tokens.append(token)
        if entries is None:
            token_logprobs.append(None)
            top_logprobs.append(None)
        else:
            token_logprobs.append(max(entries[token_id]["logprob"], -9999.0))
            top_logprobs.append({e["decoded_token"]: max(e["logprob"], -9999.0) for e in entries.values()})
    choice = {
        "index": 0, "text": prompt + generated,
        "logprobs": {"text_offset": offsets, "token_logprobs": token_logprobs, "tokens": tokens,
                     "top_logprobs": top_logprobs},
        "finish_reason": "length", "stop_reason": None,
        "prompt_logprobs": ([None] + [{str(k): v for k, v in p.items()} for p in positions[1:len(prompt)]]
                            if prompt_logprobs else None),
        "prompt_token_ids": None, "token_ids": None,
    }
    return {"id": f"cmpl-{name}-{number:04d}", "object": "text_completion", "created": 1764900000 + number,
            "model": f"zen-ngram-{name}", "choices": [choice], "service_tier": None, "system_fingerprint": None,
            "usage": {"prompt_tokens": len(prompt), "total_tokens": len(prompt) + GENERATED,
                      "completion_tokens": GENERATED, "prompt_tokens_details": None},
            "kv_transfer_params": None}


def main() -> None:
    zen = zen_of_python()
    vocabulary = zen + "".join(held_out_documents().values()) + UNICODE
    models = {"base": CharNGram(1).fit(zen, vocabulary), "tuned": CharNGram(4, alpha=0.5).fit(zen, vocabulary)}
    for name, model in models.items():
        for file, with_prompt in (("completions_prompt_logprobs.jsonl", True), ("completions_echo.jsonl", False)):
            lines = [json.dumps(response(model, name, n, p, with_prompt), ensure_ascii=False,
                                separators=(",", ":"))  # compact, as pydantic's model_dump_json
                     for n, p in enumerate(prompts())]
            (HERE / name).mkdir(exist_ok=True)
            (HERE / name / file).write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
