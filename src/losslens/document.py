"""The JSON document of a job: one writer, one shape for every kind of input.

Every kind of run (a classifier file, a token or sequence file, an lm-evaluation-harness
task or another harness's task, a Trainer log) is written as a run of one shape::

    {"format_version": 3, "generated_at": ...,            # generated_at only when pinned
     "runs": [{"name", "kind", "inputs", "layout", "overall", "by_split", "by_slice",
               ... the kind's own sections ..., "warnings": [{"code", "scope", "message"}]}],
     "comparisons": [{"reference", "candidate", "unit", "paired", "n_paired",
                      "log_loss_delta", "log_loss_delta_ci95", ...}],
     "warnings": [{"run", "code", "message", "scope"}], "notes": [...],
     "baseline": {...}, "gates": {...}}                   # only when asked for

A run's ``kind`` is its catalog layout (``classifier``, ``tokens``, ``sequences``,
``multiple_choice``, ``loglikelihood``; a kind this module does not know, such as
``trainer``, is written as its run gives it, with empty ``by_split`` and ``by_slice`` when it
has none). The per-run dictionaries come from the runs'
own ``to_dict`` methods; this module only puts them in the one shape, so that the writer and
the reader of older documents (:func:`upgrade_run`, :func:`upgrade_comparison`, used by
:mod:`losslens.json_documents`) cannot drift apart. Pure: no I/O, imports nothing of losslens.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

import numpy as np

from .catalog import LOG_LOSS_DELTA, LOG_LOSS_DELTA_CI95, N_DOCUMENTS

#: Version of the JSON document (see :func:`job_document`). Change log:
#: 1 -- first version: runs with overall / by_split / by_slice / by_class metrics.
#:      Compatible additions, present only when used: top-level "comparisons" (several
#:      inputs), "baseline" (--baseline) and "gates" (--fail-if, --fail-on-warning);
#:      "bootstrap" in a scope's metrics (--bootstrap N).
#:      Many classes (compatible additions): "top_5_accuracy" in a scope's metrics when there
#:      are more than 5 classes (absent otherwise), "classwise_ece" (null outside the run
#:      overall), "kl_empirical_bits_corrected" and "prior_shift_p_value" (null for soft
#:      targets); "worst_classes" and "confused_pairs" in each run; "excess_loss" and
#:      "most_confused_with" in each by_class entry.
#: 2 -- "classes" (and so per-class tables) keep the order of the prediction columns in
#:      the file, no longer numeric/alphabetical order; "layout" gains "eps" and
#:      "row_sum_tolerance" (they follow the input dtype, as scikit-learn's log_loss).
#:      Compatible additions of the third wave (readers of version 2 keep working):
#:      comparisons gain "paired" (every kind), "unit", "log_loss_delta_p_value",
#:      "log_loss_delta_p_value_adjusted", "minimum_detectable_effect", "verdict" (now
#:      "no detectable change" where it said "no clear difference"), "accuracy_delta",
#:      "accuracy_delta_ci95", "mcnemar", and with --cluster / --bootstrap "cluster",
#:      "log_loss_delta_se_clustered", "bootstrap"; lm-eval tasks gain "harness" and "basis"
#:      (samples or the results file), "logged" gains lm-eval's stderr entries; language-model
#:      runs gain layout "token_bytes" and "lists", per-document "zlib_ratio", "rank1_share",
#:      "min_k_plus_plus", and with --reference "contamination", "reference",
#:      "standout_documents"; the "baseline" section always has "notes"; a multiple-choice
#:      task's classifier layout is "logits" (exact log-softmax, no clipping).
#:      Calibration (compatible additions): "ece_equal_width", "ece_equal_mass", "rms_calibration_error",
#:      "max_calibration_error", "temperature", "log_loss_after_temperature",
#:      "calibration_loss", "refinement_loss", "brier_after_temperature" in every scope's
#:      metrics (null where not computed; see losslens.calibration_sample); with their "NAME_ci95"
#:      (four figures) and "calibration.equal_mass_bins"; comparisons gain "brier_score_delta",
#:      "p_gold_delta", "bits_per_byte_delta", each with "_ci95" and "_p_value" (losslens.paired_deltas).
#: 3 -- one shape for every kind (issue 18), written by losslens.document. What moved from 2:
#:      - The top-level "kind" (language_model, lm_eval, trainer) is gone; the document always has
#:        "runs", "comparisons", "warnings" (every run's, each with its "run") and "notes".
#:      - Every run has "kind": its catalog layout. Classifier runs: "classifier" (nothing
#:        else changed). Token and sequence runs: "tokens" / "sequences" (was
#:        "language_model"; the layout's "kind" says the same). Trainer runs: "trainer", as
#:        before, now with empty "by_split" and "by_slice" like every run.
#:      - An lm-eval (or inspect-ai, HELM, lighteval, vLLM) task is a run: top-level
#:        "tasks[]" became "runs[]". Its "kind" is the task's layout (multiple_choice,
#:        loglikelihood; a loglikelihood_rolling task is "sequences"), it keeps "name"
#:        (<checkpoint>/<task>), "task", "output_type", "harness", "basis", "n_documents",
#:        "logged", "notes", "warnings"; "source" became "inputs": [source]. The inner
#:        "classifier" / "language_model" run was lifted into the task's run: its "layout",
#:        "by_split", "by_slice" and its own sections ("classes", "by_class",
#:        "worst_examples", ..., or "worst_documents", ...) are the run's. "metrics" went into
#:        "overall": the inner run's overall with the harness's metrics over it (a harness
#:        metric wins where it has a value, so a multiple-choice "brier_score" is lm-eval's,
#:        summed over the choices, as before; a null never hides the inner run's number).
#:      - Every comparison has "unit" (classifier comparisons: "example") and "paired",
#:        "n_paired", "log_loss_delta", "log_loss_delta_ci95" first; every other key as before.
#:      Documents of versions 1 and 2 are read through losslens.json_documents.upgrade_document.
FORMAT_VERSION = 3

#: Per-run keys written first, in this order; the kind's own sections follow, then these last.
_FIRST = ("name", "kind", "task", "output_type", "harness", "basis", "inputs", "classes", "layout", "overall",
          "by_split", "by_slice")
_LAST = (N_DOCUMENTS, "logged", "notes", "warnings")

#: Comparison keys written first, in this order; every other key follows as the comparison gives it.
_COMPARISON_FIRST = ("reference", "candidate", "unit", "paired", "n_paired", LOG_LOSS_DELTA, LOG_LOSS_DELTA_CI95)

#: The unit of a comparison that does not say (documents older than version 2's "unit"), by the kind of its runs.
_UNIT_OF_KIND = {"classifier": "example", "tokens": "token", "sequences": "token", "multiple_choice": "question",
                 "loglikelihood": "question"}


def json_safe(value):
    """Replace NaN and infinities (which JSON cannot hold) by None, recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return json_safe(value.item())
    return value


def _ordered(data: dict, first: Iterable[str], last: Iterable[str] = ()) -> dict:
    """``data`` with the keys ``first`` first and ``last`` last (those present), the others between as given."""
    first, last = tuple(first), tuple(last)
    middle = [k for k in data if k not in first and k not in last]
    return {k: data[k] for k in (*first, *middle, *last) if k in data}


def is_task(run: dict) -> bool:
    """True for a version-2 harness task (``output_type``, ``metrics`` and an inner run slot)."""
    return "metrics" in run and "output_type" in run and ("classifier" in run or "language_model" in run)


def task_overall(task: dict) -> dict:
    """A version-2 task's metrics: its inner run's overall, with the harness's metrics over it.

    The harness's metrics win where they have a value; a ``null`` there (a rolling task's
    ``log_loss`` when tokens were not counted) never hides the inner run's number.
    """
    inner = task.get("classifier") or task.get("language_model") or {}
    overall = dict(inner.get("overall") or {})
    for key, value in (task.get("metrics") or {}).items():
        if value is not None or key not in overall:
            overall[key] = value
    return overall


def task_run(task: dict, kind: str) -> dict[str, Any]:
    """A version-2 harness task (``tasks[i]``) as a run of ``kind`` (its catalog layout)."""
    inner = task.get("classifier") or task.get("language_model") or {}
    lifted = {k: v for k, v in inner.items() if k not in ("name", "kind", "inputs", "overall", "warnings")}
    run = {"by_split": {}, "by_slice": {}, "layout": {}, **lifted,
           **{k: v for k, v in task.items() if k not in ("classifier", "language_model", "metrics", "source")},
           "kind": kind, "overall": task_overall(task)}
    source = task.get("source")
    run["inputs"] = [source] if source else list(inner.get("inputs") or [])
    if "warnings" not in task:
        run["warnings"] = list(inner.get("warnings") or [])
    return _ordered(run, _FIRST, _LAST)


def upgrade_run(run: dict, task_kind=None) -> dict[str, Any]:
    """A run dictionary of any version as a version-3 run.

    Parameters
    ----------
    run : dict
        A classifier run (no ``kind``), a language-model run (``"kind": "language_model"``),
        a version-2 harness task (see :func:`is_task`), or a version-3 run (left as it is,
        keys in the one order).
    task_kind : callable, optional
        A task's kind from its ``output_type`` (needed for harness tasks).
    """
    if is_task(run):
        return task_run(run, task_kind(run.get("output_type") or ""))
    kind = run.get("kind")
    if kind is None:
        run = {**run, "kind": "classifier"}
    elif kind == "language_model":
        run = {**run, "kind": str((run.get("layout") or {}).get("kind") or "tokens")}
    # Every run has its scopes, also a kind without splits or slices (a Trainer run).
    return _ordered({"by_split": {}, "by_slice": {}, **run}, _FIRST, _LAST)


def upgrade_comparison(comparison: dict, kinds: dict[str, str] | None = None) -> dict[str, Any]:
    """A comparison of any version in the one shape: ``unit`` and ``paired`` always there, keys in one order.

    ``kinds`` maps run names to their kinds, for the ``unit`` of a comparison that has none.
    """
    data = dict(comparison)
    if "unit" not in data:
        kind = (kinds or {}).get(data.get("reference"), "classifier")
        data["unit"] = _UNIT_OF_KIND.get(kind, "example")
    if "paired" not in data:
        data["paired"] = bool(data.get("n_paired"))
    data.setdefault("n_paired", None)
    return _ordered(data, _COMPARISON_FIRST)


def assemble(runs: list[dict], comparisons: list[dict] = (), *, notes: Iterable[str] = (),
             baseline: dict | None = None, gates: dict | None = None, generated_at: str | None = None) -> dict:
    """The version-3 document from runs and comparisons already in the one shape.

    ``warnings`` lists every run's warnings with the run's name, so that a job's log can grep
    one place for a code. ``generated_at`` is written after ``format_version`` only when given,
    so that the same input gives the same bytes.
    """
    document: dict[str, Any] = {"format_version": FORMAT_VERSION}
    if generated_at is not None:
        document["generated_at"] = generated_at
    document["runs"] = runs
    document["comparisons"] = list(comparisons)
    document["warnings"] = [{"run": r.get("name"), **w} for r in runs for w in r.get("warnings") or []]
    document["notes"] = list(notes)
    if baseline is not None:
        document["baseline"] = baseline
    if gates is not None:
        document["gates"] = gates
    return document


def _run_dicts(evaluation) -> list[dict]:
    """Every run of an evaluation as a version-3 run: harness tasks, or the runs' own dictionaries."""
    tasks = getattr(evaluation, "tasks", None)
    if tasks is not None:
        # NaN as None first: a harness metric that is None gives way to the inner run's number.
        return [task_run(json_safe(t.to_dict()), t.layout_kind) for t in tasks]
    return [upgrade_run(r.to_dict()) for r in evaluation.runs]


def job_document(evaluation, comparisons: Iterable = (), baseline=None, gates=None,
                 generated_at: str | None = None) -> dict[str, Any]:
    """The JSON document (format_version 3) of an evaluation of any kind and its job sections.

    Parameters
    ----------
    evaluation : Evaluation, LMEvaluation, LMEvalEvaluation or any object with ``runs``
        The runs (an lm-eval evaluation: its ``tasks``), each with ``to_dict()``.
    comparisons : iterable
        Comparison objects with ``to_dict()``.
    baseline, gates : objects with ``to_dict()``, optional
        The ``--baseline`` and gate sections, written only when given.
    generated_at : str, optional
        The pinned time (ISO), written only when given.

    Returns
    -------
    dict
        JSON-safe data (no NaN), keys in a fixed order: the same input gives the same bytes.
    """
    runs = _run_dicts(evaluation)
    kinds = {r["name"]: r["kind"] for r in runs}
    return json_safe(assemble(runs, [upgrade_comparison(c.to_dict(), kinds) for c in comparisons],
                              notes=getattr(evaluation, "notes", ()),
                              baseline=baseline.to_dict() if baseline is not None else None,
                              gates=gates.to_dict() if gates is not None else None, generated_at=generated_at))


__all__ = ["FORMAT_VERSION", "assemble", "is_task", "job_document", "json_safe", "task_overall", "task_run",
           "upgrade_comparison", "upgrade_run"]
