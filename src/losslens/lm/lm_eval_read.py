"""Reading lm-evaluation-harness output folders: samples files, results files (this module's I/O).

:mod:`losslens.lm.lm_eval` re-exports these; see it for what is computed from them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..errors import InputError
from ..readers.json_lines import json_lines
from .detect import RESULTS_FILE, SAMPLES_FILE


def find_sample_files(spec) -> tuple[dict[tuple[str, str], Path], list[str], list[Path]]:
    """The newest samples file of each (model folder, task) under ``spec``, notes, results files."""
    path = Path(os.fspath(spec))
    notes: list[str] = []
    if path.is_file() and RESULTS_FILE.match(path.name):
        files, results = [], [path]  # lm-eval's aggregates alone (run without --log_samples)
    elif path.is_file():
        if not SAMPLES_FILE.match(path.name):
            raise InputError(f"{path}: not an lm-eval samples file (expected samples_<task>_<date>.jsonl "
                             "or results_<date>.json)")
        files = [path]
        results = sorted(path.parent.glob("results_*.json"))
    elif path.is_dir():
        files = sorted(p for p in path.rglob("samples_*.jsonl") if p.is_file())
        results = sorted(p for p in path.rglob("results_*.json") if p.is_file())
        if not files and not results:
            raise InputError(f"{path}: folder holds no lm-eval samples_<task>_<date>.jsonl or results_*.json "
                             "file (run lm-eval with --output_path and --log_samples)")
    else:
        raise InputError(f"{path}: no such file or folder")
    chosen: dict[tuple[str, str], tuple[str, Path]] = {}
    count: dict[tuple[str, str], int] = {}
    for file in files:
        match = SAMPLES_FILE.match(file.name)
        group = file.parent.relative_to(path).as_posix() if path.is_dir() else ""
        group = "" if group == "." else group
        key = (group, match["task"])
        date = match["date"] or ""
        count[key] = count.get(key, 0) + 1
        if key not in chosen or date >= chosen[key][0]:
            chosen[key] = (date, file)
    for key, n in sorted(count.items()):
        if n > 1:
            notes.append(f"{n} samples files of task {key[1]!r}; using the newest, {chosen[key][1].name}")
    return {k: v[1] for k, v in sorted(chosen.items())}, notes, results


def _results_for(results_files: list[Path], folder: Path) -> dict:
    """The newest results_*.json in ``folder`` (lm-eval writes it next to the samples), or {}."""
    candidates = sorted((p for p in results_files if p.parent == folder), key=lambda p: p.name)
    if not candidates:
        return {}
    newest = candidates[-1]
    try:
        data = json.loads(newest.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{newest}: not a readable lm-eval results file ({exc})") from None
    if not isinstance(data, dict):
        raise InputError(f"{newest}: not an lm-eval results file (expected a JSON object with a \"results\" "
                         "object of tasks)")
    for key in ("results", "configs", "groups", "group_subtasks", "n-samples"):
        if not isinstance(data.get(key) or {}, dict):
            raise InputError(f"{newest}, field {key!r}: expected an object (task name: ...), as lm-eval writes it")
    return data


def read_records(path: Path) -> tuple[dict, ...]:
    """Parse a JSON-lines samples file, naming the line of the first bad record."""
    records = []
    for number, record in json_lines(path):
        if not isinstance(record, dict):
            raise InputError(f"{path}, line {number}: a record must be a JSON object")
        record["__line__"] = number
        records.append(record)
    if not records:
        raise InputError(f"{path}: the file holds no samples")
    return tuple(records)


def read_lm_eval(spec) -> tuple[list, list[str]]:
    """Read every task of one lm-eval output (a samples file or the folder lm-eval writes).

    Parameters
    ----------
    spec : str or path

    Returns
    -------
    tasks : list of TaskSamples
        One per task (the newest file of each), sorted by task.
    notes : list of str
        What was chosen or skipped, in words.

    Raises
    ------
    InputError
        Not a samples file or folder, unreadable JSON (with its line).
    """
    tasks, notes, _ = read_outputs(spec)
    return tasks, notes


def read_outputs(spec) -> tuple[list, list[str], list]:
    """:func:`read_lm_eval`, and the newest results file of each model folder (``ResultsFile``).

    The results files are given for a folder or a ``results_*.json`` input: their tasks without
    samples files and their groups become rows; a lone samples file gives none (its folder's
    results file speaks of tasks that were not asked for).
    """
    from .lm_eval_units import infer_output_type
    from .task_result import TaskSamples
    from .lm_eval_results import ResultsFile, figures

    files, notes, results_files = find_sample_files(spec)
    root = Path(os.fspath(spec))
    root = root if root.is_dir() else root.parent
    folders = {path.parent for path in files.values()} | {path.parent for path in results_files}
    # lm-eval writes <output_path>/<model>/: name runs by the model folder only when there are several.
    several = len(folders) > 1

    def group_of(folder: Path) -> str:
        relative = folder.relative_to(root).as_posix() if several else "."
        return "" if relative == "." else relative

    tasks = []
    parsed: dict[Path, dict] = {}  # each folder's results file, read once for all its tasks
    for (group, task), path in files.items():
        if path.parent not in parsed:
            parsed[path.parent] = _results_for(results_files, path.parent)
        results = parsed[path.parent]
        config = (results.get("configs") or {}).get(task) or {}
        records = read_records(path)
        output_type = infer_output_type(records, config)
        if not config:
            notes.append(f"{task}: no results_*.json beside {path.name}; output type {output_type} "
                         "inferred from the records")
        logged = figures((results.get("results") or {}).get(task) or {})
        delimiter = config.get("target_delimiter", " ")
        tasks.append(TaskSamples(task, group_of(path.parent), path, records,
                                 output_type, delimiter if isinstance(delimiter, str) else " ", logged))
    outputs = []
    if not Path(os.fspath(spec)).is_file() or not files:
        for folder in sorted({path.parent for path in results_files}):
            if folder not in parsed:
                parsed[folder] = _results_for(results_files, folder)
            newest = max((p for p in results_files if p.parent == folder), key=lambda p: p.name)
            outputs.append(ResultsFile(group_of(folder), newest, parsed[folder]))
    return tasks, notes, outputs


