"""Read OpenAI-compatible completions (vLLM and others) with prompt log-probabilities.

A request to ``/v1/completions`` with ``echo=true`` and ``logprobs=k`` returns, per choice,
``logprobs.tokens`` / ``token_logprobs`` / ``top_logprobs`` / ``text_offset`` over the prompt *and*
the generated tokens, ``token_logprobs[0]`` being ``null`` (the first token has no context).
vLLM adds ``prompt_logprobs`` when asked: a list over the prompt tokens of
``{token_id: {logprob, rank, decoded_token}}`` (the prompt token plus the top k), ``null`` first.
Only the prompt is scored: the generated tokens at the end are left out. ``text_offset`` counts
characters (vLLM adds ``len(token)``), so bytes are the UTF-8 length of each token's text.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError
from .json_lines import json_lines


@dataclass(frozen=True)
class VllmDocument:
    """The prompt of one response line, token by token.

    ``logprobs[i]`` is ``None`` where the server gave no log-probability (the first token): that
    token is unscored. ``token_bytes[i]`` is the UTF-8 length of token ``i``'s text. ``generated``
    counts the tokens after the prompt that were left out. Without ``echo`` the first token's
    text is not in the response (``prompt_logprobs`` starts with ``null``): it is ``""``, 0 bytes.
    """

    doc_id: str
    line: int
    text: str
    tokens: tuple[str, ...]
    logprobs: tuple[float | None, ...]
    token_bytes: tuple[int, ...]
    generated: int
    source: str


def read_vllm_completions(path: str | Path, document: str | None = None) -> tuple[VllmDocument, ...]:
    """Read a JSON-lines file of completion responses, one document per line.

    Parameters
    ----------
    path : str or Path
        One ``CompletionResponse`` object per line, as the server returned it.
    document : str, optional
        A top-level field naming the document (dotted for nested fields). By default the
        document id is the line number, since response ids differ between servers and runs.

    Returns
    -------
    tuple of VllmDocument
        The prompt tokens of ``choices[0]`` of each line. Log-probabilities come from
        ``prompt_logprobs`` when present (vLLM does not clamp them), otherwise from the echoed
        ``logprobs.token_logprobs`` (clamped at -9999 by vLLM).

    Raises
    ------
    InputError
        A line that is not a completion with prompt log-probabilities, or a log-probability that
        is NaN or positive, or a null after the first token; the message names the file, line and
        field.
    """
    path = Path(path)
    docs = [_document(path, number, record, document) for number, record in json_lines(path)]
    if not docs:
        raise InputError(f"{path}: the file holds no responses")
    ids = [d.doc_id for d in docs]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise InputError(f"{path}, field {document!r}: document {dup!r} appears on more than one line; "
                         "name a field that is unique per line, or leave the line number as the id")
    return tuple(docs)


def _document(path: Path, number: int, record: Any, document: str | None) -> VllmDocument:
    """One response line → its prompt."""
    place = f"{path}, line {number}"
    choices = record.get("choices") if isinstance(record, dict) else None
    if not choices or not isinstance(choices[0], dict):
        raise InputError(f"{place}, field 'choices': not a completion response (expected a JSON object "
                         "with a non-empty \"choices\" list, as /v1/completions returns)")
    choice = choices[0]
    echo = choice.get("logprobs") or {}
    prompt = choice.get("prompt_logprobs")
    tokens = list(echo.get("tokens") or [])
    # With echo the first token is the prompt's, and it has no log-probability (null); without
    # echo, logprobs covers only the generated tokens, whose first one is scored.
    echoed = bool(tokens) and (echo.get("token_logprobs") or [0.0])[0] is None
    if not echoed and not prompt:
        raise InputError(f"{place}, field 'choices[0].logprobs': no prompt log-probabilities; request the "
                         "completion with echo=true and logprobs=0 (or vLLM's prompt_logprobs=0)")
    n_prompt = _prompt_length(place, record, choice, echo, prompt)
    if not echoed:
        tokens = []  # generated only: nothing in them describes the prompt
    if prompt:
        values, prompt_tokens = _from_prompt_logprobs(place, prompt, choice.get("prompt_token_ids"), tokens)
        source = "prompt_logprobs"
    else:
        values, prompt_tokens = list(echo.get("token_logprobs") or [])[:n_prompt], tokens[:n_prompt]
        source = "echo"
    if len(prompt_tokens) != n_prompt or len(values) != n_prompt:
        raise InputError(f"{place}, field 'choices[0].logprobs.tokens': {len(prompt_tokens)} tokens for a "
                         f"prompt of {n_prompt}; the response is cut short")
    checked = _check(place, "choices[0].prompt_logprobs" if prompt else "choices[0].logprobs.token_logprobs",
                     values)
    pieces = _token_texts(echo, choice.get("text") or "", n_prompt) if echoed else None
    if pieces is None:  # no offsets: the decoded tokens are the text
        pieces = prompt_tokens
    doc_id = str(number) if document is None else _field(place, record, document)
    generated = len(echo.get("tokens") or []) - (n_prompt if echoed else 0)
    return VllmDocument(doc_id, number, "".join(pieces), tuple(prompt_tokens), checked,
                        tuple(len(p.encode("utf-8")) for p in pieces), max(generated, 0), source)


def _token_texts(echo: dict, text: str, n_prompt: int) -> list[str] | None:
    """The text of each prompt token, cut from the echoed ``text`` at its ``text_offset``s."""
    offsets = echo.get("text_offset") or []
    if len(offsets) < n_prompt or not all(isinstance(o, int) for o in offsets):
        return None
    end = offsets[n_prompt] if len(offsets) > n_prompt else len(text)
    bounds = list(offsets[:n_prompt]) + [end]
    if any(b < a for a, b in zip(bounds, bounds[1:])) or end > len(text):
        return None
    return [text[a:b] for a, b in zip(bounds, bounds[1:])]


def _prompt_length(place: str, record: dict, choice: dict, echo: dict, prompt: list | None) -> int:
    """How many leading tokens are the prompt's (the rest were generated)."""
    if prompt:
        return len(prompt)
    if choice.get("prompt_token_ids"):
        return len(choice["prompt_token_ids"])
    usage = record.get("usage") or {}
    if isinstance(usage.get("prompt_tokens"), int) and len(record["choices"]) == 1:
        return usage["prompt_tokens"]
    if isinstance(echo.get("tokens"), list) and not (usage.get("completion_tokens") or 0):
        return len(echo["tokens"])
    raise InputError(f"{place}, field 'usage.prompt_tokens': cannot tell the prompt tokens from the "
                     "generated ones; send one prompt per request (or max_tokens=0)")


def _from_prompt_logprobs(place: str, prompt: list, token_ids: list | None,
                          echo_tokens: list) -> tuple[list, list[str]]:
    """The prompt token's log-prob and text at each position of vLLM's ``prompt_logprobs``."""
    values, texts = [], []
    for i, entries in enumerate(prompt):
        if entries is None:
            values.append(None)
            texts.append(echo_tokens[i] if i < len(echo_tokens) else "")
            continue
        if not isinstance(entries, dict) or not entries:
            raise InputError(f"{place}, field 'choices[0].prompt_logprobs', token {i}: expected "
                             "{token_id: {logprob, rank, decoded_token}}")
        chosen = _pick(entries, token_ids[i] if token_ids and i < len(token_ids) else None,
                       echo_tokens[i] if i < len(echo_tokens) else None)
        if chosen is None:
            raise InputError(f"{place}, field 'choices[0].prompt_logprobs', token {i}: {len(entries)} "
                             "candidates and no way to tell the prompt's own token; request "
                             "prompt_logprobs=0, or echo=true, or return_token_ids=true")
        values.append(chosen.get("logprob"))
        texts.append(chosen.get("decoded_token") or "")
    return values, texts


def _pick(entries: dict, token_id: int | None, echo_token: str | None) -> dict | None:
    """The entry of the prompt's own token among the top-k candidates of one position."""
    if token_id is not None and str(token_id) in entries:
        return entries[str(token_id)]
    if len(entries) == 1:
        return next(iter(entries.values()))
    if echo_token is not None:
        matches = [e for e in entries.values() if isinstance(e, dict) and e.get("decoded_token") == echo_token]
        if len(matches) == 1:
            return matches[0]
    return None


def _check(place: str, field: str, values: list) -> tuple[float | None, ...]:
    """Null only first; every other value a finite number ≤ 0."""
    out: list[float | None] = []
    for i, value in enumerate(values):
        if value is None and i == 0:
            out.append(None)
            continue
        number = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan
        if value is None or not math.isfinite(number) or number > 0:
            problem = ("is null after the first token" if value is None else
                       "is not a finite number" if not math.isfinite(number) else "is positive")
            raise InputError(f"{place}, field {field!r}, token {i}: {value!r} {problem}; "
                             "log-probabilities are finite and ≤ 0")
        out.append(number)
    return tuple(out)


def _field(place: str, record: dict, name: str) -> str:
    """A (dotted) top-level field of the line, as the document id."""
    value: Any = record
    for part in name.split("."):
        if not isinstance(value, dict) or part not in value:
            raise InputError(f"{place}, field {name!r}: not found; name a field every line has, or "
                             "leave the line number as the document id")
        value = value[part]
    if value is None or isinstance(value, (dict, list)):
        raise InputError(f"{place}, field {name!r}: {value!r} cannot be a document id")
    return str(value)
