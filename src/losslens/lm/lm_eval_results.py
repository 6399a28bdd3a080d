"""lm-eval's own aggregates (``results_*.json``): tasks without samples, and group rows.

Two things the samples files cannot give on their own:

- **Tasks run without** ``--log_samples``: only ``results_*.json`` exists. Its figures (``acc``,
  ``acc_norm``, their ``_stderr``, ``perplexity``, whatever lm-eval logged) become a task row
  marked ``basis="results"``; nothing can be recomputed, so a note asks for ``--log_samples``.
- **Groups** (MMLU-style: ``group_subtasks`` maps a group to its tasks and subgroups): a row
  aggregated as lm-eval's ``consolidate_group_results`` does, over the group's leaf tasks — each
  metric the group logs is ``aggregate_subtask_metrics`` (the mean of the tasks' values weighted
  by their numbers of samples, or unweighted when the group's logged figure says
  ``weight_by_size`` was off) and its standard error ``pooled_sample_stderr``
  (``lm_eval/api/metrics.py``). With samples, the tasks' values are losslens's recomputations
  and each task's ``acc`` / ``acc_norm`` standard error is lm-eval's ``mean_stderr`` of 0/1
  values, √(p(1 − p)/(n − 1)); the group's logged figures are then a check.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from .lm_eval_units import _is_number
from .task_result import TaskResult, _consistency

#: Metrics whose per-question values are 0 or 1, so their sample standard error follows from
#: the mean and the count alone (lm-eval's ``mean_stderr``).
BINARY = ("acc", "acc_norm")
#: A logged group figure matches an aggregation within this (lm-eval's float arithmetic).
MATCH = 1e-9


@dataclass(frozen=True)
class ResultsFile:
    """The newest ``results_*.json`` of one model folder of an lm-eval output."""

    group: str  # the model folder, as in the run names ("" when there is one)
    path: Path
    data: dict


def split_key(key: str) -> tuple[str, str]:
    """lm-eval's ``"metric,filter"`` key as ``(metric, filter)`` (filter ``none`` when absent)."""
    metric, _, filter_name = key.partition(",")
    return metric, filter_name or "none"


def figures(entry: dict) -> dict:
    """The numeric figures of one ``results`` entry, by losslens name.

    ``"acc,none"`` is ``acc`` and ``"acc_stderr,none"`` is ``acc_stderr``; a filter other than
    ``none`` stays in the name (``"exact_match,strict-match"``), so filters never collide.
    Non-numbers (``"N/A"`` standard errors, aliases) are left out.
    """
    out = {}
    for key, value in (entry or {}).items():
        if "," not in key or not _is_number(value):
            continue
        metric, filter_name = split_key(key)
        out[metric if filter_name == "none" else key] = float(value)
    return out


def stderr_name(name: str) -> str:
    """The name of a figure's standard error: ``acc`` → ``acc_stderr``, ``em,strict`` → ``em_stderr,strict``."""
    metric, _, filter_name = name.partition(",")
    return f"{metric}_stderr" + (f",{filter_name}" if filter_name else "")


def group_members(data: dict) -> dict[str, list[str]]:
    """Each group of a results file with its leaf tasks (subgroups expanded, as lm-eval does)."""
    tree = {g: list(members) for g, members in (data.get("group_subtasks") or {}).items()
            if isinstance(members, list) and members}

    def leaves(name, seen=()):
        if name not in tree or name in seen:
            return [name]
        return [leaf for member in tree[name] for leaf in leaves(member, seen + (name,))]

    return {g: list(dict.fromkeys(leaves(g))) for g in tree}


def _size(entry: dict, data: dict, task: str) -> int | None:
    for key in ("samples", "sample_len"):
        if _is_number(entry.get(key)):
            return int(float(entry[key]))
    counts = (data.get("n-samples") or {}).get(task) or {}
    for key in ("effective", "original"):
        if _is_number(counts.get(key)):
            return int(float(counts[key]))
    return None


def _output_type(data: dict, task: str, logged: dict) -> str:
    config = (data.get("configs") or {}).get(task) or {}
    if config.get("output_type"):
        return str(config["output_type"])
    names = set(logged)
    if names & {"word_perplexity", "byte_perplexity", "bits_per_byte"}:
        return "loglikelihood_rolling"
    if "perplexity" in names:
        return "loglikelihood"
    return "multiple_choice" if "acc_norm" in names else "unknown"


def logged_tasks(output: ResultsFile, base: str, sampled: set[str]) -> tuple[list[TaskResult], list[str]]:
    """A row of lm-eval's own figures for each task of ``output`` that has no samples file."""
    data = output.data
    groups = set(group_members(data)) | set(data.get("groups") or {})
    rows, missing = [], []
    for task, entry in sorted((data.get("results") or {}).items()):
        if task in sampled or task in groups or not isinstance(entry, dict):
            continue
        logged = figures(entry)
        if not logged:
            continue
        name = "/".join(p for p in (base, output.group, task) if p)
        rows.append(TaskResult(name, task, _output_type(data, task, logged), str(output.path),
                               _size(entry, data, task), dict(logged), logged, (),
                               (f"lm-eval's own figures from {output.path.name}; no samples file to recompute "
                                "them from",), basis="results"))
        missing.append(task)
    notes = []
    where = "/".join(p for p in (base, output.group) if p)
    if missing and not sampled:
        notes.append(f"{where}: only {output.path.name} (lm-eval ran without --log_samples): its own figures are "
                     "shown; rerun lm-eval with --log_samples for per-sample scoring")
    elif missing:
        notes.append(f"{where}: no samples file for {', '.join(missing)}: lm-eval's own figures from "
                     f"{output.path.name} shown; rerun lm-eval with --log_samples to score them")
    return rows, notes


def pooled_sample_stderr(stderrs, sizes) -> float:
    """lm-eval's ``pooled_sample_stderr``: the standard error of the pooled tasks' mean.

    √( Σ (nᵢ − 1) sᵢ² nᵢ / (Σ nᵢ − k) / Σ nᵢ ), with sᵢ each task's standard error and k tasks.
    """
    total = sum(sizes)
    variance = sum((n - 1) * s * s * n for s, n in zip(stderrs, sizes)) / (total - len(sizes))
    return math.sqrt(variance / total)


def _task_stderr(task: TaskResult, metric: str) -> float | None:
    value = task.metrics.get(metric)
    if task.basis == "samples" and metric in BINARY and value is not None and task.n_documents > 1:
        # lm-eval's mean_stderr of 0/1 values: Σ(x − p)² = n p (1 − p).
        return math.sqrt(value * (1 - value) / (task.n_documents - 1))
    logged = task.logged.get(stderr_name(metric))
    return float(logged) if logged is not None else None


def _aggregate(metric: str, members: list[TaskResult], logged) -> tuple[float, float | None, bool, list[int]]:
    """(value, stderr, weighted, sizes) of one metric over the group's tasks that have it."""
    have = [t for t in members if t.metrics.get(metric) is not None and t.n_documents]
    values = [float(t.metrics[metric]) for t in have]
    sizes = [int(t.n_documents) for t in have]
    weighted = sum(v * n for v, n in zip(values, sizes)) / sum(sizes)
    plain = sum(values) / len(values)
    # lm-eval's weight_by_size is the group's setting (MMLU: true; the default: false); the file
    # does not say it, but the group's logged figure does when the two means differ.
    by_size = not (logged is not None and math.isclose(logged, plain, rel_tol=MATCH, abs_tol=1e-12)
                   and not math.isclose(logged, weighted, rel_tol=MATCH, abs_tol=1e-12))
    stderrs = [_task_stderr(t, metric) for t in have]
    stderr = (pooled_sample_stderr(stderrs, sizes)
              if None not in stderrs and sum(sizes) > len(sizes) else None)
    return (weighted if by_size else plain), stderr, by_size, sizes


def group_rows(output: ResultsFile, tasks: list[TaskResult], base: str) -> tuple[list[TaskResult], list[str]]:
    """One row per group of ``output`` whose tasks are among ``tasks``, aggregated as lm-eval does."""
    data = output.data
    by_task = {t.task: t for t in tasks}
    logged_groups = {**(data.get("results") or {}), **(data.get("groups") or {})}
    rows, notes = [], []
    for group, leaves in sorted(group_members(data).items()):
        name = "/".join(p for p in (base, output.group, group) if p)
        logged = figures(logged_groups.get(group) or {})
        members = [by_task[t] for t in leaves if t in by_task]
        wanted = [m for m in logged if not split_key(m)[0].endswith("_stderr")]
        if not wanted:
            notes.append(f"{name}: lm-eval logs no aggregate for this group (no aggregate_metric_list); "
                         "its tasks are shown one by one")
            continue
        metrics, how, sizes = {}, {}, []
        for metric in wanted:
            if not any(t.metrics.get(metric) is not None and t.n_documents for t in members):
                continue
            value, stderr, by_size, sizes = _aggregate(metric, members, logged.get(metric))
            metrics[metric] = value
            metrics[stderr_name(metric)] = stderr
            how[metric] = by_size
        if not metrics:
            notes.append(f"{name}: none of its tasks ({', '.join(leaves)}) has the figures it logs")
            continue
        kinds = {t.output_type for t in members}
        weighted = [m for m, w in how.items() if w]
        plain = [m for m, w in how.items() if not w]
        text = f"{name}: group of {len(members)} tasks ({', '.join(t.task for t in members)}); "
        if weighted:
            text += (f"{', '.join(weighted)} = the tasks' values weighted by their numbers of samples "
                     f"({', '.join(str(n) for n in sizes)}), as lm-eval's aggregate_subtask_metrics "
                     "(weight_by_size); ")
        if plain:
            text += (f"{', '.join(plain)} = the plain mean of the tasks' values (the group's logged figure is "
                     "unweighted: weight_by_size false); ")
        text += "standard errors pooled as lm-eval's pooled_sample_stderr"
        warnings = _consistency(group, metrics, {}, {m: logged[m] for m in how})
        rows.append(TaskResult(name, group, kinds.pop() if len(kinds) == 1 else "mixed", str(output.path),
                               sum(sizes), metrics, logged, tuple(warnings), (text,), basis="group"))
        notes.append(text)
    return rows, notes
