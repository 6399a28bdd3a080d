"""Read lighteval's per-sample details files into plain data (no metrics computed here).

lighteval writes one ``details_<task>_<date>.parquet`` per task (``--save-details``). Since
lighteval 0.11 a row holds three structs: ``doc`` (``query``, ``choices``, ``gold_index``, ``id``,
``task_name``, ``sampling_methods``), ``model_response`` (``logprobs`` — one log-likelihood per
choice for log-likelihood tasks, one per token for perplexity tasks — ``input_tokens``,
``output_tokens``, ``argmax_logits_eq_gold``, ...) and ``metric`` (the per-sample scores).
Earlier versions wrote flat columns (``example``, ``choices``, ``gold_index``, ``predictions`` —
one ``[log-likelihood, is_greedy]`` pair per choice —, ``metrics``) and no document id.

Rows are not in dataset order (lighteval sorts requests by length), so documents are keyed by
``doc.id``. Ties between choices go to the first index, as lighteval's ``np.argmax`` does.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError

_NAME = re.compile(r"^details_(?P<task>.+)_(?P<date>\d{4}-\d{2}-\d{2}T[\d.\-]+)\.parquet$")


@dataclass(frozen=True)
class LightevalDoc:
    """One sample of a details file.

    ``logprobs`` holds one log-likelihood per choice (multiple choice) or one log-probability
    per token (perplexity). ``choice_chars`` is the length lighteval's ``acc_norm`` divides by
    (``len(choice)``, leading space included); ``choice_chars_stripped`` drops that one leading
    space, as lm-evaluation-harness's ``acc_norm`` counts; ``choice_bytes`` is the UTF-8 length of
    the choice as scored (leading space included).
    """

    doc_id: str
    row: int
    query: str
    choices: tuple[str, ...]
    gold: tuple[int, ...]
    logprobs: tuple[float, ...]
    choice_chars: tuple[int, ...]
    choice_chars_stripped: tuple[int, ...]
    choice_bytes: tuple[int, ...]
    text_bytes: int
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LightevalDetails:
    """A whole details file: its task, layout and documents in file order."""

    path: str
    task: str
    num_fewshot: int | None
    date: str | None
    layout: str
    kind: str
    docs: tuple[LightevalDoc, ...]

    def by_id(self) -> dict[str, LightevalDoc]:
        """The documents keyed by ``doc.id`` (the key to pair checkpoints on)."""
        return {d.doc_id: d for d in self.docs}


def read_lighteval_details(path: str | Path) -> LightevalDetails:
    """Read one lighteval ``details_<task>_<date>.parquet`` file.

    Parameters
    ----------
    path : str or Path
        The details file, as lighteval wrote it.

    Returns
    -------
    LightevalDetails
        Task name (``zen_mc`` of ``details_zen_mc|0_<date>.parquet``), few-shot count, date, layout
        (``"nested"`` for lighteval ≥ 0.11, ``"flat"`` before), kind (``"multiple_choice"`` or
        ``"perplexity"``) and one :class:`LightevalDoc` per row.

    Raises
    ------
    InputError
        When the file is not a details file, or a sample lacks its gold answer, has fewer
        log-likelihoods than choices, or a log-likelihood that is NaN, infinite or positive. The
        message names the file, the field and the document.
    """
    import pyarrow.parquet as pq  # heavy: imported only when a details file is read

    path = Path(path)
    try:
        rows = pq.read_table(path).to_pylist()
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: not a readable lighteval details parquet file ({exc})") from None
    if not rows:
        raise InputError(f"{path}: the details file holds no samples")
    nested = "doc" in rows[0] and "model_response" in rows[0]
    if not nested and "predictions" not in rows[0]:
        raise InputError(f"{path}: not a lighteval details file (expected the columns 'doc' and "
                         "'model_response' of lighteval ≥ 0.11, or 'predictions' of earlier versions)")
    name = _NAME.match(path.name)
    task = name["task"] if name else None
    docs = [(_nested if nested else _flat)(path, i, row) for i, row in enumerate(rows)]
    if nested and task is None:
        task = (rows[0]["doc"] or {}).get("task_name")
    task = task or path.stem
    base, _, shots = task.rpartition("|")
    num_fewshot = int(shots) if shots.isdigit() else None
    kinds = {kind for kind, _ in docs}
    if len(kinds) > 1:
        raise InputError(f"{path}: samples of several kinds ({', '.join(sorted(kinds))}) in one task")
    return LightevalDetails(str(path), base if num_fewshot is not None else task, num_fewshot,
                            name["date"] if name else None, "nested" if nested else "flat",
                            kinds.pop(), tuple(d for _, d in docs))


def read_lighteval_results(path: str | Path) -> dict[str, Any]:
    """Read lighteval's ``results_<date>.json``: the logged aggregates and task versions.

    Returns
    -------
    dict
        ``model_name``, ``results`` (task → metric → value, the ``all`` summary left out) and
        ``versions`` (task → the ``version`` of its task config).
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{path}: not a readable lighteval results file ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("results"), dict):
        raise InputError(f"{path}, field 'results': expected an object of tasks, as lighteval writes it")
    configs = data.get("config_tasks") or {}
    return {
        "model_name": (data.get("config_general") or {}).get("model_name"),
        "results": {t: m for t, m in data["results"].items() if t != "all"},
        "versions": {t: c.get("version") for t, c in configs.items() if isinstance(c, dict)},
    }


def _nested(path: Path, row: int, record: dict) -> tuple[str, LightevalDoc]:
    """One row of the lighteval ≥ 0.11 layout."""
    doc = record.get("doc") or {}
    response = record.get("model_response") or {}
    doc_id = str(doc.get("id")) if doc.get("id") not in (None, "") else str(row)
    methods = set(doc.get("sampling_methods") or [])
    logprobs = response.get("logprobs") or []
    metrics = record.get("metric") or {}
    if "LOGPROBS" in methods:
        return "multiple_choice", _choice_doc(path, row, doc_id, doc.get("query") or "", doc.get("choices"),
                                              doc.get("gold_index"), logprobs, "model_response.logprobs",
                                              metrics)
    if "PERPLEXITY" in methods:
        values = _finite(path, doc_id, "model_response.logprobs", logprobs)
        query = doc.get("original_query") or doc.get("query") or ""
        return "perplexity", LightevalDoc(doc_id, row, query, (), (), values, (), (), (),
                                          len(query.encode("utf-8")), metrics)
    raise InputError(f"{path}, field 'doc.sampling_methods', doc {doc_id!r}: {sorted(methods) or 'none'} — "
                     "a generate-only task keeps no log-likelihoods; give the task a log-likelihood "
                     "metric (e.g. loglikelihood_acc) or a perplexity metric to make it scoreable")


def _flat(path: Path, row: int, record: dict) -> tuple[str, LightevalDoc]:
    """One row of the flat layout written before lighteval 0.11 (no id: the row number is the id)."""
    doc_id = str(row)
    predictions = record.get("predictions") or []
    logprobs = [p[0] if isinstance(p, (list, tuple)) else p for p in predictions]
    metrics = record.get("metrics") or {}
    if isinstance(metrics, str):  # some versions stored the dicts as JSON text
        metrics = json.loads(metrics)
    return "multiple_choice", _choice_doc(path, row, doc_id, record.get("example") or "", record.get("choices"),
                                          record.get("gold_index"), logprobs, "predictions", metrics)


def _choice_doc(path: Path, row: int, doc_id: str, query: str, choices: Any, gold: Any,
                logprobs: list, field_name: str, metrics: dict) -> LightevalDoc:
    """Check and package one multiple-choice sample."""
    choices = tuple(str(c) for c in (choices or []))
    if not choices:
        raise InputError(f"{path}, field 'choices', doc {doc_id!r}: no choices; a multiple-choice sample "
                         "needs its choice texts")
    golds = [gold] if isinstance(gold, int) else list(gold or [])
    if not golds or any(not isinstance(g, int) or not 0 <= g < len(choices) for g in golds):
        raise InputError(f"{path}, field 'gold_index', doc {doc_id!r}: {gold!r} is not the index of one of "
                         f"the {len(choices)} choices; the sample needs its gold answer to be scored")
    if len(logprobs) < len(choices):
        raise InputError(f"{path}, field {field_name!r}, doc {doc_id!r}: {len(logprobs)} log-likelihoods "
                         f"for {len(choices)} choices; every choice needs one")
    # lighteval appends the unconditioned log-likelihoods (PMI) after the n conditioned ones.
    values = _finite(path, doc_id, field_name, logprobs[: len(choices)])
    return LightevalDoc(
        doc_id, row, query, choices, tuple(golds), values,
        tuple(len(c) for c in choices),
        tuple(len(c) - 1 if c.startswith(" ") else len(c) for c in choices),
        tuple(len(c.encode("utf-8")) for c in choices),
        len(query.encode("utf-8")), dict(metrics))


def _finite(path: Path, doc_id: str, field_name: str, values: list) -> tuple[float, ...]:
    """The log-probabilities as floats, each finite and ≤ 0."""
    out = []
    for i, value in enumerate(values):
        number = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan
        if not math.isfinite(number) or number > 0:
            problem = "is not a finite number" if not math.isfinite(number) else "is positive"
            raise InputError(f"{path}, field {field_name!r}, doc {doc_id!r}, item {i}: {value!r} {problem}; "
                             "log-probabilities are finite and ≤ 0")
        out.append(number)
    return tuple(out)
