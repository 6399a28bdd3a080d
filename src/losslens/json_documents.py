"""Reading JSON documents losslens wrote earlier: one reader for ``--baseline``, ``trend`` and markdown.

The document of version 3 has one shape for every kind of run (see :mod:`losslens.document`).
Nightly histories and baselines also hold the older shapes:

- a classifier job (format_version 1 and 2): ``{"format_version", "runs": [...]}``, each run
  with ``name``, ``overall``, ``by_split``, ``by_slice``, ``warnings``;
- a token or sequence job (format_version 2): the same with ``"kind": "language_model"``,
  each run with ``"kind": "language_model"`` and its ``layout.kind`` (``tokens``,
  ``sequences``);
- an lm-evaluation-harness job (format_version 2): ``{"kind": "lm_eval", "tasks": [...]}``,
  each task with ``name`` (``<checkpoint>/<task>``), ``task``, ``output_type``, lm-eval's
  ``metrics``, ``warnings`` and the inner ``classifier`` or ``language_model`` run.

:func:`upgrade_document` reads any of them as a version-3 document, through the reshaping the
writer itself uses, and :func:`document_runs` gives its runs, so that the baseline, the trend
and markdown read every kind and every version through one adapter and cannot drift apart.
A document without runs (or tasks) holding a name and metrics is refused with one line naming
the file.

For nightly histories, :func:`order_documents` orders documents by ``generated_at`` or file
name and :func:`find_copies` finds the documents that copy another (a ``baseline.json`` in
the nightly folder), which the trend skips.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

from .catalog import CLASSIFIER
from .document import FORMAT_VERSION, assemble, upgrade_comparison, upgrade_run
from .errors import InputError
from .formatting import plural
from .lm.task_result import TASK_LAYOUTS  # lm-eval output types as catalog layouts: one table


def read_json_document(path, shown: str, hint: str = ""):
    """The parsed JSON of a document losslens wrote earlier (a baseline, a night of a trend).

    Parameters
    ----------
    path : str or path
        The file.
    shown : str
        How messages name it (``--baseline old.json``, or the path alone).
    hint : str
        Added to the "not JSON" message: what the user should give instead.

    Raises
    ------
    InputError
        The file is missing, a folder, unreadable or not JSON; one line naming ``shown``.
    """
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        raise InputError(f"{shown}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{shown}: is a folder; give a JSON file written by losslens --json") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{shown}: cannot read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{shown}: not JSON ({exc.msg} at line {exc.lineno}){hint}") from None


def natural_key(text: str) -> tuple:
    """Sort key that orders the digits in ``text`` as numbers: ``n2`` before ``n10``."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", text) if part)


def parse_time(value) -> datetime | None:
    """``generated_at`` as an aware datetime (naive means UTC); None if absent or unreadable."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"  # Python 3.10's fromisoformat does not take "Z"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def order_documents(documents: Sequence[tuple[str, dict]]) -> tuple[list[int], list[datetime | None], list[str]]:
    """The order of ``(source, document)`` pairs as nights, their ``generated_at`` times, and notes.

    By ``generated_at`` when every document has one (ties by file name), else by the natural
    order of the file names, with a note when only some have a time.
    """
    times = [parse_time(d.get("generated_at")) for _, d in documents]
    by_name = lambda i: (natural_key(Path(documents[i][0]).name), natural_key(documents[i][0]))  # noqa: E731
    if all(t is not None for t in times):
        return sorted(range(len(documents)), key=lambda i: (times[i], *by_name(i))), times, []
    notes = []
    if any(t is not None for t in times):
        missing = [documents[i][0] for i, t in enumerate(times) if t is None]
        notes.append(f"{plural(len(missing), 'document')} without generated_at (e.g. {missing[0]}): "
                     "every night is placed by the order of its file name")
    return sorted(range(len(documents)), key=by_name), times, notes


def find_copies(documents, order, times) -> tuple[set[int], list[str]]:
    """Documents that copy an earlier one in ``order``, and a note naming each.

    A copy is the same content, or the same runs with the same ``generated_at``: the
    nightly recipe of old copied tonight's JSON to ``reports/baseline.json``, which the
    trend would then take for the latest night (its name sorts after the dates). The first
    in night order is kept, so the copy never moves a night.
    """
    seen: dict[str, str] = {}
    skipped, notes = set(), []
    for i in order:
        source, document = documents[i]
        keys = [("the same content", json.dumps(document, sort_keys=True, default=str))]
        if times[i] is not None:  # the runs as written (inputs too), whatever else the document holds
            runs = document.get("runs") or document.get("tasks")
            keys.append(("the same runs and generated_at",
                         f"{times[i].isoformat()} {json.dumps(runs, sort_keys=True, default=str)}"))
        found = next(((why, seen[key]) for why, key in keys if key in seen), None)
        if found is not None:
            skipped.add(i)
            notes.append(f"{source}: a copy of {found[1]} ({found[0]}); skipped, so that it is not taken for "
                         "another night (keep baselines out of the nightly folder)")
            continue
        for _, key in keys:
            seen[key] = source
    return skipped, notes


def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def _list(value) -> list:
    return value if isinstance(value, list) else []


def _task_kind(output_type: str) -> str:
    """A version-2 harness task's kind: the catalog layout of its output type."""
    return TASK_LAYOUTS.get(output_type, output_type or CLASSIFIER)


def _check_runs(document: dict, shown: str) -> None:
    """Refuse a document whose runs (or version-2 tasks) lack a name or metrics, naming the first bad one."""
    if isinstance(document.get("runs"), list) and document["runs"]:
        for i, run in enumerate(document["runs"]):
            if not isinstance(run, dict) or not isinstance(run.get("name"), str) or \
                    not isinstance(run.get("overall"), dict):
                raise InputError(f"{shown}: runs[{i}] has no name or overall metrics; give a document written by "
                                 "'losslens metrics --json'")
        return
    if isinstance(document.get("tasks"), list) and document["tasks"]:
        for i, task in enumerate(document["tasks"]):
            if not isinstance(task, dict) or not isinstance(task.get("name"), str) or \
                    not isinstance(task.get("metrics"), dict):
                raise InputError(f"{shown}: tasks[{i}] has no name or metrics; give a document written by "
                                 "'losslens metrics LM_EVAL_FOLDER --json'")
        return
    raise InputError(
        f"{shown}: format_version {document['format_version']!r} document without runs (or lm-eval tasks) "
        f"holding a name and metrics; this losslens reads format_version {FORMAT_VERSION} and older "
        "(upgrade losslens for newer documents)"
    )


def upgrade_document(document, shown: str, require_runs: bool = True) -> dict[str, Any]:
    """A metrics document of any version in the shape of version 3 (see :mod:`losslens.document`).

    Version 3 is returned as it is. Versions 1 and 2 (classifier and language-model ``runs``,
    lm-eval ``tasks``) go through the same reshaping the writer uses
    (:func:`losslens.document.upgrade_run`), so an old document reads as what this losslens
    writes for the same input: baselines and nightly histories keep working. With
    ``require_runs=False`` (the markdown summary) a document without runs is read too (a job
    whose lm-eval tasks were all skipped).

    Raises
    ------
    InputError
        Not a losslens metrics document (a trend document, no ``format_version``, neither
        ``runs`` nor ``tasks``, a run without a name or metrics); one line naming ``shown``.
    """
    if isinstance(document, dict) and document.get("kind") == "trend":
        raise InputError(f"{shown}: a trend document, not a metrics document; give the nightly JSON files "
                         "written by 'losslens metrics --json'")
    if not isinstance(document, dict) or "format_version" not in document:
        raise InputError(f"{shown}: not a JSON report written by losslens (no format_version); "
                         "give files written by 'losslens metrics --json'")
    if require_runs or document.get("runs") or document.get("tasks"):
        _check_runs(document, shown)
    if document["format_version"] == FORMAT_VERSION and "tasks" not in document:
        return document
    runs = [upgrade_run(r, _task_kind) for r in _list(document.get("runs")) or _list(document.get("tasks"))]
    kinds = {r["name"]: r["kind"] for r in runs}
    return assemble(runs, [upgrade_comparison(c, kinds) for c in _list(document.get("comparisons"))
                               if isinstance(c, dict)],
                        notes=_list(document.get("notes")), baseline=document.get("baseline"),
                        gates=document.get("gates"), generated_at=document.get("generated_at"))


def _run(run: dict) -> dict[str, Any]:
    """A version-3 run as the baseline and the trend read it.

    The run with ``by_split``, ``by_slice`` (metrics by scope) and ``warnings`` (each with
    ``code``, ``scope``, ``message``) always there, and ``layout_kind``: the catalog layout
    (which metrics its gates and deltas read), which in version 3 is the run's ``kind``.
    """
    return {**run, "kind": str(run.get("kind") or CLASSIFIER), "layout_kind": str(run.get("kind") or CLASSIFIER),
            "by_split": _dict(run.get("by_split")), "by_slice": _dict(run.get("by_slice")),
            "warnings": [w for w in _list(run.get("warnings")) if isinstance(w, dict)]}


def document_runs(document, shown: str) -> list[dict]:
    """The runs of a metrics document of any kind and version, in the one shape of version 3.

    Parameters
    ----------
    document : object
        Parsed JSON.
    shown : str
        How messages name the file (``--baseline old.json``, or the path alone).

    Returns
    -------
    list of dict
        At least one run (see :func:`_run`); an lm-eval task's run has ``task`` and ``output_type``.

    Raises
    ------
    InputError
        As :func:`upgrade_document`.
    """
    return [_run(r) for r in upgrade_document(document, shown)["runs"]]


__all__ = ["document_runs", "find_copies", "natural_key", "order_documents", "parse_time", "read_json_document",
           "upgrade_document"]
