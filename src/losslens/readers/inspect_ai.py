"""inspect-ai evaluation logs as plain data: tasks, samples, log-probabilities, logged metrics.

Reads the two log formats inspect-ai writes (checked against inspect-ai 0.3.285):

- the ``.eval`` archive: a zip with ``header.json`` (``eval`` spec, ``results``, ``status``),
  ``samples/<id>_epoch_<n>.json`` per sample, or the newer per-sample folder layout
  ``samples/<id>_epoch_<n>/sample.json`` (+ ``metadata.json`` when the sample has metadata).
  An archive still being written has no ``header.json``: its ``_journal/start.json`` is used
  and it has no results. Members are zstd-compressed (see :mod:`.ziparchive`);
- the single-file ``.json`` log (``log_format="json"``): one object with ``eval``,
  ``results`` and ``samples``.

What a sample can give:

- multiple choice (the sample has ``choices``): inspect's ``multiple_choice()`` solver keeps no
  per-choice log-likelihood. What there is, when the model API returned log-probs, is the answer
  letter token's ``top_logprobs``: the model's log-probability of each choice *letter* at the
  answer position (tokens spelling the same letter, such as ``"B"`` and ``" B"``, are summed in
  probability). Letters missing from ``top_logprobs`` stay ``None``.
- token scored (perplexity-style): ``output.choices[0].prompt_logprobs`` — each prompt token's
  log-probability and bytes.

Epochs: each epoch of a sample is one :class:`InspectSample`; inspect reduces the epochs of a
sample with the task's ``epochs_reducer`` (``mean`` by default) before its metrics.

Nothing here computes metrics; this module only turns a log into validated plain data.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError
from .logprobs import checked_logprob as _checked
from .ziparchive import read_members

LETTER_NOTE = ("choice log-probs are the answer letter's top_logprobs over the choice letters "
               "(the model's letter log-probabilities), not per-choice log-likelihoods")
SAMPLE_MEMBER = re.compile(r"^samples/(?P<key>[^/]+_epoch_\d+)(?:\.json|/(?P<part>sample|metadata)\.json)$")


@dataclass(frozen=True)
class InspectSample:
    """One sample of one epoch, as logged."""

    id: str | int
    epoch: int
    input: str | None  # the sample's input text (user messages joined) before any solver
    choices: tuple[str, ...] | None
    target: int | None  # index into choices; None for a sample without choices
    target_text: str | tuple[str, ...] | None  # the logged target (a letter for multiple choice)
    choice_logprobs: tuple[float | None, ...] | None  # per choice letter; see LETTER_NOTE
    answer: str | None  # the answer the first scorer extracted (a letter for choice())
    score: object  # the first scorer's logged value ("C"/"I", a number, ...)
    scores: dict  # scorer name -> logged value
    metadata: dict
    token_logprobs: tuple[float, ...] | None = None  # prompt_logprobs, for token-scored samples
    token_bytes: tuple[bytes, ...] | None = None


@dataclass(frozen=True)
class InspectTask:
    """One inspect log: one task run by one model."""

    source: str
    task: str
    model: str
    inspect_version: str | None
    status: str | None
    epochs: int
    epochs_reducer: tuple[str, ...]
    logged: dict  # "<score name>/<metric>" -> value, from the log's results
    samples: tuple[InspectSample, ...]
    notes: tuple[str, ...] = field(default=())


def read_inspect_log(path: str | Path) -> list[InspectTask]:
    """Read an inspect-ai log (``.eval`` or ``.json``), or every log in a folder.

    Parameters
    ----------
    path : str or Path
        A ``.eval`` archive, a ``.json`` log, or a folder searched recursively for both.

    Returns
    -------
    list of InspectTask
        One per log file, in path order; samples sorted by the dataset's sample order
        (``eval.dataset.sample_ids``), then epoch.

    Raises
    ------
    InputError
        Naming the file, the field and the sample: an unreadable or truncated file, a
        multiple-choice sample without a target, a log-probability that is positive or not a
        finite number.
    """
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix in (".eval", ".json") and p.is_file())
        if not files:
            raise InputError(f"{path}: folder holds no inspect-ai log (*.eval or *.json)")
        return [_read_file(p) for p in files]
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    return [_read_file(path)]


def _read_file(path: Path) -> InspectTask:
    header, raw_samples = _read_eval(path) if path.suffix == ".eval" else _read_json(path)
    spec = header.get("eval")
    if not isinstance(spec, dict) or "task" not in spec:
        raise InputError(f"{path}, field 'eval': missing; not an inspect-ai log "
                         "(expected the 'eval' header with 'task' and 'model')")
    order = {sid: i for i, sid in enumerate((spec.get("dataset") or {}).get("sample_ids") or [])}
    samples = sorted((_sample(path, raw) for raw in raw_samples),
                     key=lambda s: (order.get(s.id, len(order)), str(s.id), s.epoch))
    config = spec.get("config") or {}
    reducer = config.get("epochs_reducer") or (["mean"] if (config.get("epochs") or 1) > 1 else [])
    return InspectTask(
        source=str(path), task=str(spec["task"]), model=str(spec.get("model", "")),
        inspect_version=(spec.get("packages") or {}).get("inspect_ai"),
        status=header.get("status"), epochs=int(config.get("epochs") or 1),
        epochs_reducer=tuple(str(r) for r in reducer), logged=_logged(header.get("results")),
        samples=tuple(samples), notes=_notes(samples, int(config.get("epochs") or 1), reducer))


def _read_json(path: Path) -> tuple[dict, list]:
    """The single-file log: header fields and samples in one object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}, line {exc.lineno}: not valid JSON ({exc.msg}); the file may "
                         "be truncated") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the file ({exc})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: not an inspect-ai log (expected a JSON object with 'eval')")
    samples = data.get("samples") or []
    if not isinstance(samples, list):
        raise InputError(f"{path}, field 'samples': expected a list")
    return data, samples


def _read_eval(path: Path) -> tuple[dict, list]:
    """The archive: header (or the journal's start record) and one dict per sample."""
    members = read_members(path, lambda name: name in ("header.json", "_journal/start.json")
                           or SAMPLE_MEMBER.match(name) is not None)
    header = members.get("header.json") or members.get("_journal/start.json")
    if header is None:
        raise InputError(f"{path}: no header.json or _journal/start.json; not an inspect-ai .eval log")
    parsed: dict[str, dict] = {}
    for name, data in members.items():
        match = SAMPLE_MEMBER.match(name)
        if match is None:
            continue
        value = _json_member(path, name, data)
        record = parsed.setdefault(match["key"], {})
        if match["part"] == "metadata":  # the per-sample folder layout keeps metadata apart
            record["metadata"] = value
        else:
            record.update(value)
    return _json_member(path, "header.json", header), list(parsed.values())


def _json_member(path: Path, name: str, data: bytes) -> dict:
    try:
        value = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}, member {name!r}: not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise InputError(f"{path}, member {name!r}: expected a JSON object")
    return value


def _logged(results: dict | None) -> dict:
    """inspect's own aggregates: ``{"choice/accuracy": 0.38, ...}``."""
    logged = {}
    for score in (results or {}).get("scores") or []:
        for metric, value in (score.get("metrics") or {}).items():
            logged[f"{score.get('name')}/{metric}"] = value.get("value") if isinstance(value, dict) else value
    return logged


def _notes(samples: list[InspectSample], epochs: int, reducer) -> tuple[str, ...]:
    notes = []
    if any(s.choice_logprobs is not None for s in samples):
        notes.append(LETTER_NOTE)
    if any(s.choices and s.choice_logprobs is None for s in samples):
        notes.append("some multiple-choice samples carry no answer-letter log-probs (run the model "
                     "with logprobs=True and top_logprobs of at least the number of choices)")
    if any(s.choice_logprobs is not None and None in s.choice_logprobs for s in samples):
        notes.append("some choice letters are missing from top_logprobs (raise top_logprobs)")
    if any(s.token_logprobs is not None for s in samples):
        notes.append("token log-probs are the prompt tokens' prompt_logprobs")
    if epochs > 1:
        notes.append(f"{epochs} epochs: one record per sample and epoch; inspect reduces a sample's "
                     f"epochs with {', '.join(reducer)} before its metrics")
    return tuple(notes)


def _sample(path: Path, raw) -> InspectSample:
    """Validate one logged sample and keep what can be scored."""
    if not isinstance(raw, dict) or "id" not in raw:
        raise InputError(f"{path}, field 'samples[].id': a sample without an id")
    sid, epoch = raw["id"], int(raw.get("epoch") or 1)
    place = f"{path}, sample {sid!r} epoch {epoch}"
    choices = raw.get("choices") or None
    output = ((raw.get("output") or {}).get("choices") or [{}])[0] or {}
    target, choice_logprobs = None, None
    if choices is not None:
        choices = tuple(str(c) for c in choices)
        target = _target_index(place, raw.get("target"), len(choices))
        choice_logprobs = _letter_logprobs(place, output.get("logprobs"), len(choices))
    scores = {name: (s.get("value") if isinstance(s, dict) else s)
              for name, s in (raw.get("scores") or {}).items()}
    first = next(iter((raw.get("scores") or {}).values()), None)
    tokens, token_bytes = _prompt_tokens(place, output.get("prompt_logprobs"))
    return InspectSample(
        id=sid, epoch=epoch, input=_input_text(raw.get("input")), choices=choices, target=target,
        target_text=_target_text(raw.get("target")), choice_logprobs=choice_logprobs,
        answer=first.get("answer") if isinstance(first, dict) else None,
        score=next(iter(scores.values()), None), scores=scores,
        metadata=dict(raw.get("metadata") or {}), token_logprobs=tokens, token_bytes=token_bytes)


def _input_text(value) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, list):  # chat messages: the user turns' text
        parts = [m.get("content") for m in value if isinstance(m, dict) and m.get("role") == "user"]
        return "\n".join(p for p in parts if isinstance(p, str))
    return None


def _target_text(value):
    return tuple(value) if isinstance(value, list) else value


def _target_index(place: str, target, n_choices: int) -> int | None:
    """The 0-based index of the target letter; None when several letters are correct."""
    letters = [target] if isinstance(target, str) else target
    if not letters or not all(isinstance(x, str) and x.strip() for x in letters):
        raise InputError(f"{place}, field 'target': missing; a multiple-choice sample needs the "
                         "letter of its correct choice (e.g. \"B\")")
    if len(letters) > 1:
        return None
    index = ord(letters[0].strip().upper()) - ord("A")
    if len(letters[0].strip()) != 1 or not 0 <= index < n_choices:
        raise InputError(f"{place}, field 'target': {letters[0]!r} is not one of the letters "
                         f"A–{chr(ord('A') + n_choices - 1)} of the sample's {n_choices} choices")
    return index


def _letter_logprobs(place: str, logprobs, n_choices: int) -> tuple[float | None, ...] | None:
    """Per choice letter, from the last generated token that is a letter with top_logprobs."""
    content = (logprobs or {}).get("content") or []
    letters = [chr(ord("A") + i) for i in range(n_choices)]
    for position in range(len(content) - 1, -1, -1):
        token = content[position]
        if str(token.get("token", "")).strip() in letters and token.get("top_logprobs"):
            break
    else:
        return None
    base = f"output.choices[0].logprobs.content[{position}]"
    _checked(place, f"{base}.logprob", token.get("logprob"))
    found: dict[str, list[float]] = {}
    for k, top in enumerate(token["top_logprobs"]):
        value = _checked(place, f"{base}.top_logprobs[{k}].logprob", top.get("logprob"))
        letter = str(top.get("token", "")).strip()
        if letter in letters:
            found.setdefault(letter, []).append(value)
    return tuple(_logsumexp(found[x]) if x in found else None for x in letters)


def _logsumexp(values: list[float]) -> float:
    if len(values) == 1:
        return values[0]
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


def _prompt_tokens(place: str, prompt_logprobs) -> tuple[tuple | None, tuple | None]:
    content = (prompt_logprobs or {}).get("content")
    if not content:
        return None, None
    values, data = [], []
    for i, token in enumerate(content):
        values.append(_checked(place, f"output.choices[0].prompt_logprobs.content[{i}].logprob",
                               token.get("logprob")))
        raw = token.get("bytes")
        data.append(bytes(raw) if raw is not None else str(token.get("token", "")).encode("utf-8"))
    return tuple(values), tuple(data)
