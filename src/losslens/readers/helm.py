"""HELM run folders as plain data: instances, per-reference log-likelihoods, HELM's own stats.

Reads what ``helm-run`` writes for one run (checked against crfm-helm 0.5.16), in a folder
named like ``mmlu:subject=anatomy,model=openai_gpt2``:

- ``scenario_state.json``: ``adapter_spec`` and ``request_states[]``, each with ``instance``
  (``id``, ``input.text``, ``references[]`` with ``output.text`` and ``tags``, ``split``,
  ``sub_split``), ``reference_index``, ``request_mode``, ``train_trial_index`` and
  ``result.completions[0]`` (``logprob``, ``tokens[]`` of ``text`` and ``logprob``);
- ``per_instance_stats.json``: per ``instance_id`` and ``train_trial_index`` the stats HELM
  computed (``exact_match``, ``predicted_index``, ``max_prob``, ...), each a ``sum``/``count``;
- ``stats.json``: HELM's aggregates (kept under ``logged``).

Multiple choice with the separate-references adapters (``multiple_choice_separate_original``,
``..._calibrated``) makes one request per reference whose prompt ends with ``" " + reference``
(``echo_prompt``, ``max_tokens=0``). ``completions[0].logprob`` is the sum over the *whole*
prompt; a reference's log-likelihood is the sum of its *last* tokens. HELM counts those tokens
by re-tokenising ``" " + reference``; a reader has no tokenizer, so it takes the shortest run of
final tokens whose text covers ``" " + reference`` (the same count whenever the reference starts
a token, as with HELM's tokenizers on a leading space). Only ``original`` requests are kept.
Language modelling (``language_modeling``): a long document is split into windows, one request
each, whose first ``num_conditioning_tokens`` tokens are context only; the scored tokens of all
windows, in order, are the document's tokens (as HELM's ``compute_language_modeling_metrics``
counts them; a ``bytes:\\xe2\\x80`` token is the bytes it spells). Other adapters (joint
multiple choice, generation) keep their instances without log-probabilities, and a note says so.

Nothing here computes metrics; this module only turns a run into validated plain data.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError
from .logprobs import checked_logprob as _checked

SEPARATE = ("multiple_choice_separate_original", "multiple_choice_separate_calibrated")
LANGUAGE_MODELING = "language_modeling"
STATE, PER_INSTANCE, STATS = "scenario_state.json", "per_instance_stats.json", "stats.json"


@dataclass(frozen=True)
class HelmInstance:
    """One instance of one train trial, with its references' log-likelihoods when scored."""

    id: str
    train_trial_index: int
    split: str | None
    sub_split: str | None
    input: str
    references: tuple[str, ...]
    correct: tuple[int, ...]  # indices of the references tagged "correct"
    target: int | None  # the correct index when exactly one reference is correct
    reference_logprobs: tuple[float, ...] | None  # Σ log-prob of each " <reference>"'s last tokens
    reference_tokens: tuple[int, ...] | None  # how many final tokens each sum covers
    prompt_logprobs: tuple[float, ...] | None  # completions[0].logprob: the whole prompt's sum
    stats: dict  # HELM's per-instance stats, unperturbed: name -> sum over the instance's entries
    stat_counts: dict  # name -> count (HELM's mean of a stat is stats[name] / stat_counts[name])
    token_logprobs: tuple[float, ...] | None = None  # language modelling: the scored tokens
    token_bytes: tuple[bytes, ...] | None = None


@dataclass(frozen=True)
class HelmRun:
    """One HELM run folder."""

    source: str
    run: str  # the folder name, e.g. "zen_mc:model=zen_ngram-base"
    model: str
    adapter_method: str
    logged: dict  # "<split>/<stat>" -> mean, from stats.json (no sub-split, no perturbation)
    instances: tuple[HelmInstance, ...]
    notes: tuple[str, ...] = field(default=())


def read_helm_runs(path: str | Path) -> list[HelmRun]:
    """Read a HELM run folder, its ``scenario_state.json``, or every run under a folder.

    Parameters
    ----------
    path : str or Path
        A run folder (holding ``scenario_state.json``), that file itself, or a folder such as
        ``benchmark_output/runs/<suite>`` searched recursively for run folders.

    Returns
    -------
    list of HelmRun
        One per run folder, in path order; instances in the order of their first request.

    Raises
    ------
    InputError
        Naming the file, the field and the instance: unreadable or truncated JSON, a
        multiple-choice instance without a reference tagged ``correct``, a token log-probability
        that is positive or not a finite number.
    """
    path = Path(path)
    if path.is_file():
        return [_read_run(path.parent)]
    if (path / STATE).is_file():
        return [_read_run(path)]
    if path.is_dir():
        folders = sorted(p.parent for p in path.rglob(STATE))
        if not folders:
            raise InputError(f"{path}: folder holds no HELM run (no {STATE} inside)")
        return [_read_run(folder) for folder in folders]
    raise InputError(f"{path}: no such file or folder")


def _load(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}, line {exc.lineno}: not valid JSON ({exc.msg}); the file may be "
                         "truncated") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the file ({exc})") from None


def _read_run(folder: Path) -> HelmRun:
    state_path = folder / STATE
    state = _load(state_path)
    if not isinstance(state, dict) or not isinstance(state.get("request_states"), list):
        raise InputError(f"{state_path}, field 'request_states': missing; not a HELM scenario state")
    adapter = state.get("adapter_spec") or {}
    method = str(adapter.get("method", ""))
    stats = _per_instance(folder / PER_INSTANCE) if (folder / PER_INSTANCE).is_file() else {}
    no_stats: tuple[dict, dict] = ({}, {})
    groups: dict[tuple[str, int], list[tuple[int, dict]]] = {}
    for position, request_state in enumerate(state["request_states"]):
        instance = (request_state or {}).get("instance") or {}
        key = (str(instance.get("id", f"#{position}")), int(request_state.get("train_trial_index") or 0))
        groups.setdefault(key, []).append((position, request_state))
    instances = tuple(_instance(state_path, method, key, group, stats.get(key, no_stats))
                      for key, group in groups.items())
    notes = [] if method in SEPARATE + (LANGUAGE_MODELING,) else [
        f"adapter {method!r} makes no request per reference: no per-reference log-likelihoods "
        "(a separate-references multiple-choice run, multiple_choice_separate_original, has them)"]
    if method == LANGUAGE_MODELING:
        notes.append("token log-probs are each window's tokens after its num_conditioning_tokens")
    if method in SEPARATE:
        notes.append("reference log-likelihoods are the sums of each request's last tokens "
                     "covering \" <reference>\"; completions[0].logprob is the whole prompt's sum")
    return HelmRun(source=str(folder), run=folder.name, model=str(adapter.get("model", "")),
                   adapter_method=method, instances=instances, notes=tuple(notes),
                   logged=_logged(folder / STATS) if (folder / STATS).is_file() else {})


def _instance(path: Path, method: str, key, group, stats: tuple[dict, dict]) -> HelmInstance:
    """One instance from its request states (one per reference for separate adapters)."""
    instance = group[0][1].get("instance") or {}
    place = f"{path}, instance {key[0]!r}"
    raw_references = [r or {} for r in instance.get("references") or []]
    references = tuple(str((r.get("output") or {}).get("text", "")) for r in raw_references)
    correct = tuple(i for i, r in enumerate(raw_references) if "correct" in (r.get("tags") or []))
    if references and not correct and method in SEPARATE:
        raise InputError(f"{place}, field 'instance.references[].tags': no reference tagged "
                         "'correct'; a multiple-choice instance needs its correct reference")
    scores = _separate_scores(place, group, references) if method in SEPARATE else (None, None, None)
    tokens = _document_tokens(place, group) if method == LANGUAGE_MODELING else (None, None)
    return HelmInstance(
        id=key[0], train_trial_index=key[1], split=instance.get("split"),
        sub_split=instance.get("sub_split"), input=str((instance.get("input") or {}).get("text", "")),
        references=references, correct=correct, target=correct[0] if len(correct) == 1 else None,
        reference_logprobs=scores[0], reference_tokens=scores[1], prompt_logprobs=scores[2],
        stats=stats[0], stat_counts=stats[1], token_logprobs=tokens[0], token_bytes=tokens[1])


def _separate_scores(place: str, group, references: tuple[str, ...]) -> tuple[tuple, tuple, tuple]:
    """Per reference: (log-likelihood of " <reference>", its token count, the prompt's sum)."""
    by_reference = {}
    for position, request_state in group:
        if request_state.get("request_mode", "original") != "original":
            continue  # calibration requests score the reference without the input
        index = request_state.get("reference_index")
        if not isinstance(index, int) or not 0 <= index < len(references):
            raise InputError(f"{place}, field 'request_states[{position}].reference_index': {index!r} "
                             f"is not the index of one of its {len(references)} references")
        by_reference[index] = _reference_score(place, position, request_state, references[index])
    missing = [i for i in range(len(references)) if i not in by_reference]
    if missing:
        raise InputError(f"{place}, field 'request_states': no request scores reference {missing[0]}")
    return tuple(tuple(by_reference[i][k] for i in range(len(references))) for k in range(3))


def _completion(place: str, position: int, request_state: dict) -> tuple[str, dict]:
    """The field path and the first completion of a request state."""
    base = f"request_states[{position}].result.completions[0]"
    completions = ((request_state.get("result") or {}).get("completions")) or []
    if not completions:
        raise InputError(f"{place}, field '{base}': missing; the request has no scored completion")
    return base, completions[0]


def _document_tokens(place: str, group) -> tuple[tuple[float, ...], tuple[bytes, ...]]:
    """The scored tokens of a language-modelling instance: each window after its context."""
    values, data = [], []
    for position, request_state in group:
        base, completion = _completion(place, position, request_state)
        tokens = completion.get("tokens") or []
        skip = int(request_state.get("num_conditioning_tokens") or 0)
        if skip and tokens and tokens[0].get("text") == "":
            skip += 1  # HELM drops an empty first token (AI21's) before skipping the context
        for i in range(skip, len(tokens)):
            values.append(_checked(place, f"{base}.tokens[{i}].logprob", (tokens[i] or {}).get("logprob")))
            data.append(_token_bytes(str(tokens[i].get("text", ""))))
    return tuple(values), tuple(data)


def _token_bytes(text: str) -> bytes:
    """A token's bytes; HELM writes a partial UTF-8 byte token as ``bytes:\\xe2\\x80``."""
    if text.startswith("bytes:"):
        return bytes(int(part[:2], 16) for part in text[len("bytes:"):].split("\\x")[1:])
    return text.encode("utf-8")


def _reference_score(place: str, position: int, request_state: dict, reference: str):
    """(Σ log-prob of the final tokens covering " <reference>", their count, the prompt's sum)."""
    base, completion = _completion(place, position, request_state)
    tokens = completion.get("tokens") or []
    values = [_checked(place, f"{base}.tokens[{i}].logprob", (t or {}).get("logprob"))
              for i, t in enumerate(tokens)]
    total = _checked(place, f"{base}.logprob", completion.get("logprob"))
    wanted, covered, count = len(" " + reference), 0, 0
    while covered < wanted and count < len(tokens):
        count += 1
        covered += len(str(tokens[-count].get("text", "")))
    if covered < wanted:
        raise InputError(f"{place}, field '{base}.tokens': the tokens do not cover the reference "
                         f"{reference!r}")
    return math.fsum(values[-count:]), count, total


def _per_instance(path: Path) -> dict:
    """(instance id, train trial) -> ({stat: sum}, {stat: count}), unperturbed stats only.

    A language-modelling instance has one entry per window (request); its stats add up.
    """
    data = _load(path)
    if not isinstance(data, list):
        raise InputError(f"{path}: expected a list of per-instance stats")
    out: dict = {}
    for entry in data:
        if not isinstance(entry, dict) or entry.get("perturbation"):
            continue
        key = (str(entry.get("instance_id")), int(entry.get("train_trial_index") or 0))
        sums, counts = out.setdefault(key, ({}, {}))
        for stat in entry.get("stats") or []:
            name = stat.get("name") or {}
            if stat.get("count") and not name.get("perturbation"):
                sums[name["name"]] = sums.get(name["name"], 0) + stat["sum"]
                counts[name["name"]] = counts.get(name["name"], 0) + stat["count"]
    return out


def _logged(path: Path) -> dict:
    """HELM's aggregates by split: ``{"test/exact_match": 0.45, ...}``."""
    data = _load(path)
    return {(f"{s['name']['split']}/" if s["name"].get("split") else "") + s["name"]["name"]: s.get("mean")
            for s in data if isinstance(s, dict) and isinstance(s.get("name"), dict)
            and not s["name"].get("sub_split") and not s["name"].get("perturbation")}
