"""Which kind of input a job has: a classifier's predictions, a language model's tokens or sequences,
or lm-evaluation-harness samples.

Light on purpose: every ``losslens metrics`` run asks this before reading, so it imports
neither the language-model engine nor lm-eval's reader (:mod:`losslens.lm.engine`,
:mod:`losslens.lm.lm_eval`); a classifier job never loads them.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Sequence

from ..errors import UsageError

SAMPLES_FILE = re.compile(r"^samples_(?P<task>.+?)(?:_(?P<date>\d{4}-\d{2}-\d{2}T[\d.\-:]+))?\.jsonl$")
#: lm-eval's aggregates, written with or without ``--log_samples``.
RESULTS_FILE = re.compile(r"^results_.+\.json$")
#: The harnesses whose logs are read, as their names are printed.
LM_EVAL, INSPECT, HELM = "lm-evaluation-harness", "inspect-ai", "HELM"
LIGHTEVAL, VLLM = "lighteval", "vLLM"
#: lighteval's per-task details (``--save-details``).
LIGHTEVAL_DETAILS = re.compile(r"^details_.+\.parquet$")


def is_lm_eval_output(spec) -> bool:
    """True for a samples or results file of lm-eval, or a folder holding such files."""
    path = Path(os.fspath(spec))
    if path.is_file():
        return SAMPLES_FILE.match(path.name) is not None or _is_results_file(path)
    return path.is_dir() and (next(path.rglob("samples_*.jsonl"), None) is not None
                              or any(_is_results_file(p) for p in path.rglob("results_*.json")))


def _head(path: Path) -> bytes:
    """The first 4 kB of a file that may be a harness log (empty when it cannot be read)."""
    try:
        with open(path, "rb") as handle:
            return handle.read(4096)
    except OSError:
        return b""


def _is_results_file(path: Path) -> bool:
    """A ``results_*.json`` that opens as lm-eval's does (``{"results": ...``), not any JSON of that name."""
    if not (RESULTS_FILE.match(path.name) and path.is_file()):
        return False
    head = _head(path)
    # lighteval's results file is named alike; it opens with its ``config_general``.
    return b'"results"' in head and b'"config_general"' not in head


def harness_of(spec) -> str | None:
    """Which harness wrote ``spec``: lm-eval, inspect-ai, HELM, lighteval, vLLM, or None.

    The first of :func:`harnesses_in` (a folder can hold logs of several).
    """
    found = harnesses_in(spec)
    return found[0] if found else None


def harnesses_in(spec) -> list[str]:
    """Every harness whose logs ``spec`` is or holds, lm-eval first.

    inspect-ai: a ``.eval`` archive, a ``.json`` log opening with its top-level ``"version"`` /
    ``"status"`` / ``"eval"`` keys, or a folder holding either; HELM: a run folder (with
    ``scenario_state.json``), that file, or a folder of run folders; lighteval: a
    ``details_*.parquet`` file or a folder holding one; vLLM: a completions ``.jsonl``
    (:func:`_is_vllm_jsonl`) or a folder holding one.
    """
    path = Path(os.fspath(spec))
    found = [LM_EVAL] if is_lm_eval_output(path) else []
    if path.is_file():
        if path.name == HELM_STATE:
            return [HELM]
        if LIGHTEVAL_DETAILS.match(path.name):
            return [LIGHTEVAL]
        if _is_vllm_jsonl(path):
            return [VLLM]
        return found or ([INSPECT] if path.suffix == ".eval" or _is_inspect_json(path) else [])
    if not path.is_dir():
        return found
    if next(path.rglob(HELM_STATE), None) is not None:
        found.append(HELM)
    if inspect_logs_in(path):
        found.append(INSPECT)
    if lighteval_details_in(path):
        found.append(LIGHTEVAL)
    if vllm_logs_in(path):
        found.append(VLLM)
    return found


def lighteval_details_in(folder: Path) -> list[Path]:
    """lighteval's ``details_*.parquet`` files under a folder, in path order."""
    return sorted(p for p in folder.rglob("details_*.parquet") if p.is_file() and LIGHTEVAL_DETAILS.match(p.name))


def vllm_logs_in(folder: Path) -> list[Path]:
    """The completions JSON-lines files (see :func:`_is_vllm_jsonl`) under a folder, in path order."""
    return sorted(p for p in folder.rglob("*.jsonl") if _is_vllm_jsonl(p))


#: The longest first line read to recognise a completions file (a long prompt's log-probs).
_FIRST_LINE = 1 << 24


def _is_vllm_jsonl(path: Path) -> bool:
    """A ``.jsonl`` whose first line is a completion response with prompt log-probabilities.

    Strict, so that no token or classifier JSON-lines file is taken for one: a JSON object with
    ``object == "text_completion"`` or a ``choices`` list whose first choice holds
    ``logprobs.token_logprobs`` (a list) or ``prompt_logprobs`` (a list).
    """
    if path.suffix != ".jsonl" or not path.is_file():
        return False
    try:
        with open(path, "rb") as handle:
            head = handle.read(64)
            if b'"choices"' not in head and b'"object"' not in head and b'"id"' not in head:
                return False
            line = head + handle.readline(_FIRST_LINE)
        import json

        record = json.loads(line)
    except (OSError, ValueError):
        return False
    choices = record.get("choices") if isinstance(record, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return False
    echo = choices[0].get("logprobs")
    return ((isinstance(echo, dict) and isinstance(echo.get("token_logprobs"), list))
            or isinstance(choices[0].get("prompt_logprobs"), list))


def inspect_logs_in(folder: Path) -> list[Path]:
    """The inspect-ai logs under a folder (``.eval`` archives, ``.json`` logs), in path order."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and (p.suffix == ".eval" or _is_inspect_json(p)))


HELM_STATE = "scenario_state.json"
#: The keys inspect-ai's single-file log starts with (``EvalLog``'s first fields).
_INSPECT_KEYS = re.compile(rb'^\s*\{\s*"(version|status|eval)"\s*:')


def _is_inspect_json(path: Path) -> bool:
    """A ``.json`` file that opens as inspect-ai's log does, not any JSON file."""
    if path.suffix != ".json" or not path.is_file():
        return False
    head = _head(path)
    return _INSPECT_KEYS.match(head) is not None and b'"eval"' in head


#: Hugging Face Trainer's state file (``save_state()`` and every ``checkpoint-N`` folder).
TRAINER_STATE = "trainer_state.json"
#: The files ``trainer.save_metrics("eval", ...)`` writes beside it.
TRAINER_RESULTS = ("eval_results.json", "all_results.json")
_CHECKPOINT = re.compile(r"^checkpoint-\d+$")


def is_trainer_output(spec) -> bool:
    """True for a ``trainer_state.json``, a Trainer output folder, or a folder of such folders.

    A file counts by its name (or a ``.json`` whose head holds Trainer's ``log_history`` and
    ``global_step`` keys), so that no other JSON is read as a Trainer run; a folder when it
    holds ``trainer_state.json`` or ``checkpoint-N/trainer_state.json`` (:func:`trainer_runs_in`).
    """
    path = Path(os.fspath(spec))
    if path.is_file():
        if path.name in TRAINER_RESULTS:  # save_metrics' file: the run is the state beside it
            return (path.parent / TRAINER_STATE).is_file()
        return path.name == TRAINER_STATE or (path.suffix == ".json" and b'"log_history"' in _head(path)
                                               and b'"global_step"' in _head(path))
    return bool(trainer_runs_in(path))


def _is_trainer_run(folder: Path) -> bool:
    """A Trainer output folder: ``trainer_state.json`` in it or in one of its ``checkpoint-N`` folders."""
    if (folder / TRAINER_STATE).is_file():
        return True
    try:
        return any(_CHECKPOINT.match(p.name) and (p / TRAINER_STATE).is_file() for p in folder.iterdir())
    except OSError:
        return False


def trainer_runs_in(folder: Path) -> list[Path]:
    """The Trainer runs of a folder: itself when it is one, else its sub-folders that are (one level), by name."""
    if not folder.is_dir():
        return []
    if _is_trainer_run(folder):
        return [folder]
    try:
        return sorted(p for p in folder.iterdir() if p.is_dir() and _is_trainer_run(p))
    except OSError:
        return []


_KIND_WORDS = {"classifier": "a classifier prediction file",
               "language_model": "a language-model token or sequence file",
               "lm_eval": "an evaluation harness's log (lm-eval, inspect-ai, HELM, lighteval, vLLM)",
               "trainer": "a Hugging Face Trainer output (trainer_state.json)"}


def _kind_of(item, forced: bool, read=None) -> str:
    from ..options import DEFAULT_LABEL_COLUMNS
    from ..reading import read_columns, read_schema, resolve

    if isinstance(item, (list, tuple)) and item:
        return _kind_of(item[0], forced, read)
    if isinstance(item, (str, os.PathLike)):
        if str(item) == "-":
            # Standard input can be read once only: it is a classifier's unless a
            # language-model column was named on the command line.
            return "language_model" if forced else "classifier"
        if is_trainer_output(item):
            return "trainer"
        if is_lm_eval_output(item) or harness_of(item) is not None:
            return "lm_eval"
        if forced:
            return "language_model"
        source = resolve(item, read)[0]
        schema = read_schema(source)
        names = read_columns(source, schema)
        lists = _list_columns_of(None, schema)
    elif forced:
        return "language_model"
    else:
        schema = getattr(item, "schema", None)  # Arrow tables and batches; pandas: columns
        given = getattr(schema, "names", None)
        given = given() if callable(given) else given  # polars: Schema.names() is a method
        names = [str(c) for c in (given if given is not None else getattr(item, "columns", []))]
        lists = _list_columns_of(item, schema)
    # A document id and a log-prob / loss column (or a list of log-probs per row), and no
    # classifier label: a language model's.
    if looks_like_lm(names, lists) and not any(n in DEFAULT_LABEL_COLUMNS for n in names):
        return "language_model"
    return "classifier"


def _list_columns_of(item, schema) -> list[str]:
    """The columns of an in-memory table that hold a list per row (Arrow types; pandas: first value)."""
    if hasattr(schema, "names") and hasattr(schema, "field"):
        from ..arrow_values import is_list_type

        return [f.name for f in schema if is_list_type(f.type)]
    columns = getattr(item, "columns", [])
    if not hasattr(item, "iloc") or len(item) == 0:
        return []
    import numpy as np

    return [str(c) for c in columns if isinstance(item[c].iloc[0], (list, tuple, np.ndarray))]


def looks_like_lm(names, list_columns=()) -> bool:
    """True when the header has a document id and a log-prob or loss column, or a list column of
    log-probs / losses (one row per document; see :data:`losslens.lm.options.LIST_LOGPROB_COLUMNS`).

    Here, not beside the token layout it announces: every classifier run asks it, and needs
    no layout module for that (:mod:`losslens.lm.layout`: 1.3 ms of start-up).
    """
    from .options import (DEFAULT_DOCUMENT_COLUMNS, DEFAULT_LOGPROB_COLUMNS, DEFAULT_NLL_COLUMNS,
                          LIST_LOGPROB_COLUMNS, LIST_NLL_COLUMNS)

    losses = DEFAULT_LOGPROB_COLUMNS + DEFAULT_NLL_COLUMNS + LIST_LOGPROB_COLUMNS + LIST_NLL_COLUMNS
    if any(c in list_columns for c in losses):
        return True
    return any(c in names for c in DEFAULT_DOCUMENT_COLUMNS) and any(
        c in names for c in DEFAULT_LOGPROB_COLUMNS + DEFAULT_NLL_COLUMNS)


def input_kind(inputs: Sequence, forced: bool = False, read=None) -> str:
    """What the job's inputs are: ``classifier``, ``language_model``, ``lm_eval`` or ``trainer``.

    Token and sequence files are recognised by their header (:func:`looks_like_lm`,
    and no classifier label column), lm-eval outputs by their ``samples_*.jsonl`` files;
    ``forced`` (a language-model column named on the command line) makes every file a
    language model's; a Trainer output (:func:`is_trainer_output`) is ``trainer``; ``read``
    (:class:`losslens.reading.ReadOptions`) is how to read the headers (``--encoding``,
    ``--sep``, ``--format``).

    Raises
    ------
    UsageError
        When the inputs are of different kinds: one command evaluates one kind.
    """
    kinds = [_kind_of(item, forced, read) for item in inputs]
    for item, kind in zip(inputs, kinds):
        if kind != kinds[0]:
            first = inputs[0] if isinstance(inputs[0], (str, bytes)) or hasattr(inputs[0], "__fspath__") else "<data>"
            shown = item if isinstance(item, (str, bytes)) or hasattr(item, "__fspath__") else "<data>"
            raise UsageError(f"INPUT {shown} is {_KIND_WORDS[kind]} but {first} is {_KIND_WORDS[kinds[0]]}; "
                             "evaluate each kind in its own command")
    return kinds[0] if kinds else "classifier"
