"""Reading JSON documents losslens wrote earlier: one reader for ``--baseline`` and ``trend``.

losslens has written three shapes of metrics document, and nightly histories and baselines
hold all of them:

- a classifier job (format_version 1 and 2): ``{"format_version", "runs": [...]}``, each run
  with ``name``, ``overall``, ``by_split``, ``by_slice``, ``warnings``;
- a token or sequence job (format_version 2): the same with ``"kind": "language_model"``,
  each run with ``"kind": "language_model"`` and its ``layout.kind`` (``tokens``,
  ``sequences``);
- an lm-evaluation-harness job (format_version 2): ``{"kind": "lm_eval", "tasks": [...]}``,
  each task with ``name`` (``<checkpoint>/<task>``), ``task``, ``output_type``, lm-eval's
  ``metrics``, ``warnings`` and the inner ``classifier`` or ``language_model`` run.

:func:`document_runs` turns any of them into one list of runs of one shape (see
:func:`_run`), so that the baseline and the trend read every kind and every version through
the same adapters and cannot drift apart. A shape is recognised by its keys, not by its
version: a newer document that keeps ``runs`` with a ``name`` and ``overall`` metrics is read
(format_version 3 keeps them), anything else is refused with one line naming the file.

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


def _run(name, kind: str, layout_kind: str, overall: dict, run: dict, **extra) -> dict[str, Any]:
    """A run in the one shape both readers use.

    ``name``, ``kind`` (``classifier``, ``language_model`` or ``lm_eval_task``),
    ``layout_kind`` (the catalog layout: which metrics its gates and deltas read),
    ``overall``, ``by_split``, ``by_slice`` (metrics by scope), ``warnings`` (each with
    ``code``, ``scope``, ``message``), and for lm-eval tasks ``task`` and ``output_type``.
    """
    return {"name": name, "kind": kind, "layout_kind": layout_kind, "overall": overall,
            "by_split": _dict(run.get("by_split")), "by_slice": _dict(run.get("by_slice")),
            "warnings": [w for w in _list(run.get("warnings")) if isinstance(w, dict)], **extra}


def _runs_adapter(document: dict, shown: str) -> list[dict]:
    """Classifier and language-model documents (format_version 1 and 2, and newer with ``runs``)."""
    runs = []
    for i, run in enumerate(document["runs"]):
        if not isinstance(run, dict) or not isinstance(run.get("name"), str) or not isinstance(run.get("overall"), dict):
            raise InputError(f"{shown}: runs[{i}] has no name or overall metrics; give a document written by "
                             "'losslens metrics --json'")
        kind = str(run.get("kind") or CLASSIFIER)
        layout = _dict(run.get("layout"))
        # A language-model run's gates and deltas read its layout's metrics (tokens, sequences).
        layout_kind = str(layout.get("kind")) if kind in ("language_model", "trainer") and layout.get("kind") else \
            str(run.get("layout_kind") or CLASSIFIER)
        runs.append(_run(run["name"], kind, layout_kind, run["overall"], run))
    return runs


def _task_overall(task: dict) -> dict:
    """A task's metrics: its inner run's overall, with lm-eval's own metrics over it.

    lm-eval's metrics win where they have a value; a ``null`` there (a rolling task's
    ``log_loss`` when tokens were not counted) never hides the inner run's number.
    """
    inner = _dict(task.get("classifier")) or _dict(task.get("language_model"))
    overall = dict(_dict(inner.get("overall")))
    for key, value in _dict(task.get("metrics")).items():
        if value is not None or key not in overall:
            overall[key] = value
    return overall


def _tasks_adapter(document: dict, shown: str) -> list[dict]:
    """lm-evaluation-harness documents (format_version 2): each task becomes a run."""
    runs = []
    for i, task in enumerate(document["tasks"]):
        if not isinstance(task, dict) or not isinstance(task.get("name"), str) or not isinstance(task.get("metrics"), dict):
            raise InputError(f"{shown}: tasks[{i}] has no name or metrics; give a document written by "
                             "'losslens metrics LM_EVAL_FOLDER --json'")
        inner = _dict(task.get("classifier")) or _dict(task.get("language_model"))
        output_type = str(task.get("output_type") or "")
        # The task's own warnings are its inner run's (one list); the inner's splits and slices go along.
        runs.append(_run(task["name"], "lm_eval_task", TASK_LAYOUTS.get(output_type, output_type or CLASSIFIER),
                         _task_overall(task), {**inner, "warnings": task.get("warnings", inner.get("warnings"))},
                         task=str(task.get("task") or task["name"].rsplit("/", 1)[-1]), output_type=output_type))
    return runs


def document_runs(document, shown: str) -> list[dict]:
    """The runs of a metrics document of any kind and version, in one shape (see :func:`_run`).

    Parameters
    ----------
    document : object
        Parsed JSON.
    shown : str
        How messages name the file (``--baseline old.json``, or the path alone).

    Returns
    -------
    list of dict
        At least one run.

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
    if isinstance(document.get("runs"), list) and document["runs"]:
        return _runs_adapter(document, shown)
    if isinstance(document.get("tasks"), list) and document["tasks"]:
        return _tasks_adapter(document, shown)
    from .evaluation import FORMAT_VERSION  # the newest this losslens writes (and reads)

    raise InputError(
        f"{shown}: format_version {document['format_version']!r} document without runs (or lm-eval tasks) "
        f"holding a name and metrics; this losslens reads format_version {FORMAT_VERSION} and older "
        "(upgrade losslens for newer documents)"
    )


__all__ = ["document_runs", "find_copies", "natural_key", "order_documents", "parse_time", "read_json_document"]
