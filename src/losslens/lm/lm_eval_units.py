"""lm-evaluation-harness records as the neutral :class:`~losslens.lm.harness.HarnessTask`.

The lm-eval producer of :func:`losslens.lm.lm_eval.evaluate_task`'s input: each record of a task
becomes a question (choice log-likelihoods, gold, choice lengths), a loglikelihood request or a
rolling document, validated with the file and line named. See :mod:`losslens.lm.lm_eval` for
what is computed from them; it re-exports these.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING

from ..errors import InputError
from .harness import LM_EVAL, ChoiceUnit, DocumentUnit, HarnessTask, LikelihoodUnit

if TYPE_CHECKING:
    from .task_result import TaskSamples

OUTPUT_TYPES = ("multiple_choice", "loglikelihood", "loglikelihood_rolling", "generate_until")


# -- reading ------------------------------------------------------------------------------------
def arguments_of(record: dict, path) -> list[tuple]:
    """Each request's arguments, from either layout lm-eval has written."""
    args = record.get("arguments")
    if isinstance(args, dict):
        def number(key):
            match = re.search(r"(\d+)$", key)
            return int(match.group(1)) if match else 0

        out = []
        for key in sorted(args, key=number):
            item = args[key]
            out.append(tuple(item[k] for k in sorted(item, key=number)) if isinstance(item, dict) else (item,))
        return out
    if isinstance(args, list):
        return [tuple(a) if isinstance(a, (list, tuple)) else (a,) for a in args]
    raise InputError(f"{path}, line {record.get('__line__')}, field 'arguments': expected a list or an "
                     "object of gen_args_i; is this an lm-eval samples file?")


def _is_number(value) -> bool:
    try:
        float(value)
        return not isinstance(value, bool)
    except (TypeError, ValueError):
        return False


def infer_output_type(records, config: dict) -> str:
    """The task's output type: from results_*.json when present, else from its records."""
    if config.get("output_type") in OUTPUT_TYPES:
        return config["output_type"]
    # The first record that has responses: one broken record must not make a multiple-choice
    # task look like generate_until (skipped with a note, exit 0); scoring then names its line.
    first = next((r for r in records if r.get("filtered_resps")), records[0])
    metrics = set(first.get("metrics") or ())
    if metrics & {"word_perplexity", "byte_perplexity", "bits_per_byte"}:
        return "loglikelihood_rolling"
    responses = first.get("filtered_resps") or []
    if responses and all(isinstance(r, (list, tuple)) and len(r) == 2 for r in responses):
        if "perplexity" in metrics:
            return "loglikelihood"
        return "multiple_choice" if len(responses) > 1 or "acc_norm" in metrics else "loglikelihood"
    if responses and all(_is_number(r) for r in responses):
        return "loglikelihood_rolling"
    return "generate_until"


def _float(value, path, line, what) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{path}, line {line}, field 'filtered_resps': {what} {value!r} is not a number") from None
    if math.isnan(number) or number > 0:
        raise InputError(f"{path}, line {line}, field 'filtered_resps': {what} {value!r} is "
                         f"{'NaN' if math.isnan(number) else 'positive'}; log-likelihoods are ≤ 0 — "
                         "check the model's scoring")
    return number


def _bool(value) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "1.0")
    return bool(value)


def choice_units(samples: TaskSamples) -> list[ChoiceUnit]:
    """lm-eval's multiple-choice records as questions: log-likelihoods, gold, choice lengths."""
    out = []
    for record in samples.records:
        line = record["__line__"]
        responses = record.get("filtered_resps")
        if not isinstance(responses, list) or not responses:
            raise InputError(f"{samples.path}, line {line}, field 'filtered_resps': expected one "
                             "[loglikelihood, is_greedy] per choice")
        lls = [_float(r[0] if isinstance(r, (list, tuple)) else r, samples.path, line, "log-likelihood")
               for r in responses]
        args = arguments_of(record, samples.path)
        continuations = [a[1] if len(a) > 1 else "" for a in args]
        delimiter = samples.target_delimiter
        choices = [c[len(delimiter):] if delimiter and isinstance(c, str) and c.startswith(delimiter) else str(c)
                   for c in continuations]
        if len(choices) != len(lls):
            raise InputError(f"{samples.path}, line {line}: {len(lls)} responses for {len(choices)} arguments")
        target = record.get("target")
        gold = None
        # A choice's text may read as a number that is no index ("NaN", "inf"): never int() it.
        if _is_number(target) and math.isfinite(float(target)) and float(target).is_integer():
            gold = int(float(target))
        elif isinstance(target, str) and target in choices:
            gold = choices.index(target)
        if gold is None or not 0 <= gold < len(lls):
            raise InputError(
                f"{samples.path}, line {line}, field 'target': {target!r} is not one of the "
                f"{len(lls)} choices (an index 0..{len(lls) - 1} or a choice's text); fix the task's doc_to_target"
            )
        if lls[gold] == -math.inf:  # another choice at −inf is fine: probability exactly 0
            raise InputError(f"{samples.path}, line {line}, field 'filtered_resps': the gold choice's "
                             "log-likelihood is -inf, an infinite loss; check the model's scoring")
        logged = {m: float(record[m]) for m in ("acc", "acc_norm") if _is_number(record.get(m))}
        doc_id = record.get("doc_id", line)
        out.append(ChoiceUnit(doc_id, gold, tuple(lls), tuple(float(len(c)) for c in choices), logged, doc_id,
                              metadata={"doc": record.get("doc")}))
    return out


def _likelihood_units(samples: TaskSamples) -> list[LikelihoodUnit]:
    out = []
    for record in samples.records:
        responses = record.get("filtered_resps") or []
        pair = responses[0] if responses else None
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise InputError(f"{samples.path}, line {record['__line__']}, field 'filtered_resps': "
                             "expected [[loglikelihood, is_greedy]]")
        logged = {"acc": float(record["acc"])} if _is_number(record.get("acc")) else {}
        out.append(LikelihoodUnit(record.get("doc_id", record["__line__"]),
                                  _float(pair[0], samples.path, record["__line__"], "log-likelihood"),
                                  _bool(pair[1]), logged))
    return out


def _rolling_units(samples: TaskSamples) -> list[DocumentUnit]:
    out = []
    for record in samples.records:
        line = record["__line__"]
        responses = record.get("filtered_resps") or []
        ll = _float(responses[0][0] if responses and isinstance(responses[0], list) else (responses or [None])[0],
                    samples.path, line, "log-likelihood")
        words = record.get("word_perplexity")
        nbytes = record.get("byte_perplexity") or record.get("bits_per_byte")
        out.append(DocumentUnit(record.get("doc_id", line), nll=-ll,
                                n_words=float(words[1]) if isinstance(words, list) else None,
                                n_bytes=float(nbytes[1]) if isinstance(nbytes, list) else None))
    return out


#: lm-eval's aggregates that the recomputation must reproduce, per output type.
_CHECKED = {"multiple_choice": ("acc", "acc_norm", "brier_score"), "loglikelihood": ("acc", "perplexity"),
            "loglikelihood_rolling": ("word_perplexity", "byte_perplexity", "bits_per_byte")}


def harness_task_of(samples: TaskSamples) -> HarnessTask:
    """lm-eval's records of one task as the neutral :class:`~losslens.lm.harness.HarnessTask`."""
    kind = samples.output_type
    make = {"multiple_choice": choice_units, "loglikelihood": _likelihood_units,
            "loglikelihood_rolling": _rolling_units}.get(kind)
    units = tuple(make(samples)) if make else ()
    checks = {k: k for k in samples.logged if k in _CHECKED.get(kind, ())}
    return HarnessTask(LM_EVAL, None, samples.task, samples.group, str(samples.path), kind, units,
                       samples.logged, (), checks)
