"""lm-evaluation-harness ``--log_samples`` output: read it and recompute every metric.

:func:`evaluate_task` is the one task evaluator of every harness: it scores a
:class:`~losslens.lm.harness_task.HarnessTask` made from lm-eval's records (:mod:`~losslens.lm.lm_eval_units`)
or by an adapter (:mod:`losslens.lm.harness`, :mod:`~losslens.lm.harness_more`: inspect-ai, HELM,
lighteval, vLLM); :func:`evaluate_lm_eval` reads inputs of any of them. lm-eval's own files are read
by :mod:`losslens.lm.lm_eval_read` (a results file alone: :mod:`losslens.lm.lm_eval_results`).

Computation follows ``lm_eval/api/task.py`` (``process_results``) and ``lm_eval/api/metrics.py``:

- ``multiple_choice``: ``acc`` = argmax of the choices' log-likelihoods is the gold index;
  ``acc_norm`` = the same after dividing each log-likelihood by the character length of its
  choice (the continuation without its one leading target delimiter); ``brier_score`` = mean over
  questions of Σ over the question's choices of (softmax − 1[gold])² — for two choices twice
  scikit-learn's binary Brier score. Each question also becomes a classifier example (label =
  gold index, ``logit_j`` = the log-likelihoods themselves, −inf for choices a question does not
  have) evaluated by losslens's classifier engine, so log loss (the exact log-softmax, never
  clipped: ``torch.nn.functional.cross_entropy`` on the log-likelihoods), calibration and the rest apply.
- ``loglikelihood``: ``perplexity`` = exp(−mean ll), ``acc`` = mean is_greedy.
- ``loglikelihood_rolling``: ``word_perplexity`` = exp(−Σll/Σwords), ``byte_perplexity`` =
  exp(−Σll/Σbytes), ``bits_per_byte`` = −Σll/Σbytes/ln 2 from the logged ``[ll, count]`` pairs;
  there are no token counts, so per-token figures are None.
- ``generate_until`` carries no likelihood: skipped with a note.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import InputError, UsageError
from ..display import Notebook
from .detect import SAMPLES_FILE, is_lm_eval_output  # noqa: F401 (public here too)
from .harness import LM_EVAL, ChoiceUnit, HarnessTask, harness_tasks, helm_model_of
from .lm_eval_units import (  # noqa: F401 (public here too)
    OUTPUT_TYPES, _bool, _float, _is_number, arguments_of, choice_units, harness_task_of, infer_output_type,
)
from .lm_eval_read import find_sample_files, read_lm_eval, read_outputs, read_records  # noqa: F401 (public here)
from .task_result import TaskResult, TaskSamples, _consistency  # noqa: F401 (public here too)
from ..catalog import (
    ACC, ACC_NORM, BITS_PER_BYTE, BRIER_SCORE, BYTE_PERPLEXITY, CROSS_ENTROPY_BITS, ECE, LOG_LOSS, N_BYTES,
    N_WORDS, PERPLEXITY, VIEWS, WORD_PERPLEXITY,
)


# -- computation --------------------------------------------------------------------------------
def softmax(lls: np.ndarray) -> np.ndarray:
    """Softmax of log-likelihoods, computed stably in float64 (as ``lm_eval.utils.softmax``)."""
    shifted = np.exp(lls - lls.max())
    return shifted / shifted.sum()


@dataclass(frozen=True)
class Question:
    """One multiple-choice question, recomputed (``acc_norm`` None where the harness defines none)."""

    doc_id: object
    gold: int
    loglikelihoods: tuple[float, ...]
    probabilities: tuple[float, ...]
    acc: float
    acc_norm: float | None
    brier: float
    logged_acc: float | None
    logged_acc_norm: float | None


def question_of(unit: ChoiceUnit) -> Question:
    """Score one question as lm-eval's ``process_results`` does, whichever harness logged it."""
    lls = np.array(unit.loglikelihoods, dtype=float)
    acc_norm = None
    if unit.lengths is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            acc_norm = float(int(np.argmax(lls / np.array(unit.lengths, dtype=float))) == unit.gold)
    q = softmax(lls)
    onehot = np.zeros(len(lls))
    onehot[unit.gold] = 1.0
    return Question(doc_id=unit.id, gold=unit.gold, loglikelihoods=tuple(lls.tolist()),
                    probabilities=tuple(q.tolist()), acc=float(int(np.argmax(lls)) == unit.gold),
                    acc_norm=acc_norm, brier=float(((q - onehot) ** 2).sum()),
                    logged_acc=unit.logged.get(ACC), logged_acc_norm=unit.logged.get(ACC_NORM))


def questions_of(samples: TaskSamples) -> list[Question]:
    """Recompute each multiple-choice record as lm-eval's ``process_results`` does."""
    return [question_of(unit) for unit in choice_units(samples)]


#: The classifier run's calibration figures a multiple-choice task reports with lm-eval's.
CALIBRATION_NAMES = VIEWS["multiple_choice_calibration"]


def _totals(task: HarnessTask) -> dict:
    """The harness's aggregates to check, under the recomputed metrics' names."""
    return {metric: task.logged[key] for metric, key in task.checks.items() if key in task.logged}


def _per_sample(task: HarnessTask, ids, losses: np.ndarray, weights: np.ndarray):
    """Units of one sample (epochs, trials) as one pair for the comparison: weighted mean loss.

    Unchanged when every unit is its own sample (lm-eval).
    """
    sample_of = {u.id: u.sample for u in task.units if getattr(u, "sample", None) is not None}
    samples = [sample_of.get(i, i) for i in ids]  # ids in the engine's document order
    if samples == list(ids):
        return tuple(ids), losses, weights
    order: dict = {}
    for k, sample in enumerate(samples):
        order.setdefault(sample, []).append(k)
    rows = list(order.values())
    total = np.array([weights[r].sum() for r in rows])
    mean = np.array([(losses[r] * weights[r]).sum() for r in rows]) / total
    return tuple(order), mean, total / np.array([len(r) for r in rows])


def evaluate_task(task: HarnessTask | TaskSamples, run_name: str, by: Sequence[str] = ()) -> TaskResult | None:
    """Recompute one task of any harness. None when it has nothing to score (``generate_until``).

    ``by``: slice a multiple-choice task by fields of its units' metadata (``metadata.subject``
    for inspect-ai, ``doc.subject`` for lm-eval, ``split`` for HELM); see :func:`slice_values`.
    """
    if isinstance(task, TaskSamples):
        task = harness_task_of(task)
    if task.output_type == "generate_until" or not task.units:
        return None
    if task.output_type == "multiple_choice":
        result = _evaluate_choices(task, run_name, by)
    elif task.output_type == "loglikelihood":
        result = _evaluate_likelihoods(task, run_name)
    else:
        result = _evaluate_documents(task, run_name)
    ids, losses, weights = _per_sample(task, result.document_ids, result.document_losses, result.document_weights)
    # A sample's epochs averaged are no longer one right-or-wrong outcome: no McNemar test on them.
    correct = result.document_correct if len(ids) == len(result.document_ids) else None
    brier = result.document_brier  # a mean over units, so a sample's epochs average like its losses
    if brier is not None:
        brier = _per_sample(task, result.document_ids, brier, result.document_weights)[1]
    harness_notes = task.notes if task.harness != LM_EVAL else ()
    return replace(result, harness=task.label, group=task.group, document_ids=ids, document_losses=losses,
                   document_weights=weights, document_correct=correct, document_brier=brier,
                   notes=result.notes + harness_notes)


def slice_values(task: HarnessTask, column: str) -> list | None:
    """Each unit's value of a ``--by`` column, a dotted path into the unit's metadata
    (``metadata.subject``); None when no unit has it, ``(none)`` for the units that lack it."""
    values = []
    for unit in task.units:
        value = unit.metadata
        for part in column.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        values.append(None if isinstance(value, (dict, list)) else value)
    if all(v is None for v in values):
        return None
    return ["(none)" if v is None else str(v) for v in values]


def _evaluate_choices(task: HarnessTask, run_name: str, by: Sequence[str] = ()) -> TaskResult:
    from ..layouts.multiple_choice import classifier_frame, classifier_of

    questions = [question_of(unit) for unit in task.units]
    frame = classifier_frame(questions)
    sliced, unsliced = [], []
    for column in by:
        values = slice_values(task, column)
        if values is None:
            unsliced.append(f"--by {column}: no sample of this task has this field; not sliced by it")
        else:
            frame[column] = values
            sliced.append(column)
    classifier, losses = classifier_of(frame, run_name, sliced)
    overall = classifier.runs[0].overall
    normalised = [q.acc_norm for q in questions if q.acc_norm is not None]
    metrics = {
        ACC: float(np.mean([q.acc for q in questions])),
        ACC_NORM: float(np.mean(normalised)) if normalised else None,
        BRIER_SCORE: float(np.mean([q.brier for q in questions])),
        LOG_LOSS: overall.log_loss,
        CROSS_ENTROPY_BITS: overall.cross_entropy_bits,
        ECE: overall.ece,
        # Calibration that says what is fixable, from the classifier run (catalog names).
        **{name: getattr(overall, name) for name in CALIBRATION_NAMES},
        "n_choices_min": min(len(q.probabilities) for q in questions),
        "n_choices_max": frame.shape[1] - 2,
    }
    rows = {ACC: ([q.acc for q in questions], [q.logged_acc for q in questions]),
            ACC_NORM: ([q.acc_norm for q in questions], [q.logged_acc_norm for q in questions])}
    warnings = _consistency(task.task, metrics, rows, _totals(task), task.harness)
    notes = ("brier_score is lm-eval's: Σ over a question's choices of (q − 1[gold])²; for two choices "
             "that is twice scikit-learn's binary Brier score", *unsliced)
    return TaskResult(run_name, task.task, task.output_type, task.source, len(questions), metrics, task.logged,
                      tuple(warnings) + classifier.runs[0].warnings, notes, classifier=classifier,
                      document_ids=tuple(q.doc_id for q in questions), document_losses=losses,
                      document_weights=np.ones(len(questions)),
                      document_correct=np.array([q.acc for q in questions]) == 1.0,
                      document_brier=np.array([q.brier for q in questions], dtype=np.float64))


def _evaluate_likelihoods(task: HarnessTask, run_name: str) -> TaskResult:
    lls = [u.loglikelihood for u in task.units]
    greedy = [float(u.is_greedy) for u in task.units]
    mean_ll = sum(lls) / len(lls)  # lm_eval.api.metrics.mean, same order of summation
    metrics = {PERPLEXITY: math.exp(-mean_ll), ACC: sum(greedy) / len(greedy), "mean_loglikelihood": mean_ll}
    warnings = _consistency(task.task, metrics, {ACC: (greedy, [u.logged.get(ACC) for u in task.units])},
                            _totals(task), task.harness)
    return TaskResult(run_name, task.task, task.output_type, task.source, len(lls), metrics, task.logged,
                      tuple(warnings), (), document_ids=tuple(u.id for u in task.units),
                      document_losses=-np.array(lls), document_weights=np.ones(len(lls)),
                      document_correct=np.array(greedy) == 1.0)


def _document_frame(task: HarnessTask):
    """Documents as the language-model engine reads them: one row per token, or per document."""
    import pandas as pd

    if task.output_type == "tokens":
        return pd.DataFrame({
            "doc_id": [u.id for u in task.units for _ in u.token_logprobs],
            "logprob": [v for u in task.units for v in u.token_logprobs],
            N_BYTES: [len(b) for u in task.units for b in u.token_bytes]}), "tokens"
    frame = pd.DataFrame([{"doc_id": u.id, "nll": u.nll,
                           N_WORDS: math.nan if u.n_words is None else u.n_words,
                           N_BYTES: math.nan if u.n_bytes is None else u.n_bytes} for u in task.units])
    frame = frame.dropna(axis=1, how="all")
    if frame.isna().any().any():
        column = frame.columns[frame.isna().any()][0]
        raise InputError(f"{task.source}: some records lack the [loglikelihood, count] pair for {column}")
    return frame, "sequences"


def _evaluate_documents(task: HarnessTask, run_name: str) -> TaskResult:
    """A rolling task (sums, words and bytes, no token counts) or a token task, by the LM engine."""
    from ..layouts.tokens import TOKENS
    from ..options import Options

    frame, layout = _document_frame(task)
    lm = TOKENS.evaluate_inputs([frame], [run_name], Options(layout=layout))
    o = lm.runs[0].overall
    metrics = {WORD_PERPLEXITY: o.word_perplexity, BYTE_PERPLEXITY: o.byte_perplexity,
               BITS_PER_BYTE: o.bits_per_byte, LOG_LOSS: o.log_loss, PERPLEXITY: o.perplexity}
    warnings = _consistency(task.task, metrics, {}, _totals(task), task.harness)
    table = lm.runs[0].documents
    weights = table.n_bytes if table.n_bytes is not None else np.ones(len(table.keys))
    notes = () if layout == "tokens" else (
        "no token counts in lm-eval samples: per-token figures are null" if task.harness == LM_EVAL else
        "scored by each document's summed log-likelihood over its words and bytes: per-token figures are null",)
    return TaskResult(run_name, task.task, task.output_type, task.source, len(task.units), metrics, task.logged,
                      tuple(warnings) + (lm.runs[0].warnings if layout == "tokens" else ()), notes, lm=lm,
                      document_ids=table.keys, document_losses=table.nll / weights, document_weights=weights)


@dataclass(frozen=True)
class LMEvalEvaluation(Notebook):
    """Every task of one or more lm-eval outputs (checkpoints), with their comparisons.

    In a notebook: ``_repr_html_`` (a card), ``to_html()``, ``to_json()`` and ``document()``
    (see :mod:`losslens.notebook`).
    """

    tasks: tuple[TaskResult, ...]
    notes: tuple[str, ...]
    comparisons: tuple = ()
    #: What :class:`losslens.job.JobResult` reports this as.
    kind = "lm_eval"

    @property
    def runs(self) -> tuple[TaskResult, ...]:
        """Each task is one run (named ``<folder or file stem>/<task>``)."""
        return self.tasks

    def logged_rows(self) -> list[tuple[str, str, float, float | None]]:
        """``(task, metric, value, stderr)`` of lm-eval's own figures, for tasks not recomputed from samples.

        Tasks read from ``results_*.json`` alone and groups: what the results file says of them
        (every metric it logged, filters kept in the name), to show beside the recomputed rows.
        """
        from .lm_eval_results import split_key, stderr_name

        return [(t.name, metric, value, t.logged.get(stderr_name(metric)))
                for t in self.tasks if t.basis != "samples"
                for metric, value in t.logged.items() if not split_key(metric)[0].endswith("_stderr")]

    def to_dict(self) -> dict:
        """JSON-safe data with a stable key order."""
        return {"tasks": [t.to_dict() for t in self.tasks], "notes": list(self.notes),
                "comparisons": [c.to_dict() for c in self.comparisons]}


def _named_source(result: TaskResult) -> TaskResult:
    """The task's classifier run named after its samples file, not the in-memory table it was scored as."""
    if result.classifier is None:
        return result
    run = result.classifier.runs[0]
    run = replace(run, inputs=(result.source,),
                  worst=tuple(replace(e, source=result.source) for e in run.worst),
                  warnings=tuple(replace(w, message=w.message.replace("<DataFrame>", result.source))
                                 for w in run.warnings))
    return replace(result, classifier=replace(result.classifier, runs=(run,) + result.classifier.runs[1:]))


def _results_rows(outputs, tasks, done: list[TaskResult], base: str, notes: list[str]) -> list[TaskResult]:
    """Rows from each results file: its tasks without samples, then its groups (notes appended)."""
    from .lm_eval_results import group_rows, logged_tasks

    rows = []
    for output in outputs:
        sampled = {t.task for t in tasks if t.group == output.group}
        logged, more = logged_tasks(output, base, sampled)
        notes += more
        mine = [t for t in done + logged if t.name == "/".join(p for p in (base, output.group, t.task) if p)]
        groups, more = group_rows(output, mine, base)
        notes += more
        rows += logged + groups
    return rows


def _loss_unit(task: TaskResult) -> str:
    """What a task's document losses are per: a question, or a byte (a document without byte counts)."""
    if task.layout_kind not in ("sequences", "tokens"):
        return "question"
    return "byte" if task.lm is not None and task.lm.runs[0].documents.n_bytes is not None else "document"


def _base_name(spec) -> str:
    """An input's checkpoint name: its folder or file stem; a HELM run folder's model."""
    path = Path(os.fspath(spec))
    if path.is_dir() and (path / "scenario_state.json").is_file() and helm_model_of(path.name):
        return helm_model_of(path.name)
    return path.name if path.is_dir() else path.stem


def _read_input(spec, base: str, notes: list[str], cluster, by: Sequence[str], document=None) -> list[TaskResult]:
    """Every task of one input (one checkpoint) of whichever harness wrote it, evaluated."""
    from .detect import harnesses_in
    found = harnesses_in(spec)
    tasks, outputs = [], []
    if not found or LM_EVAL in found:  # not a log of any harness: lm-eval's reader says why
        tasks, task_notes, outputs = read_outputs(spec)
        notes += [f"{base}: {n}" for n in task_notes]
    for harness in found:  # a folder can hold logs of several harnesses: one run per task
        tasks += harness_tasks(spec, harness, document) if harness != LM_EVAL else []
    tasks = _distinct_names(tasks)
    done = []
    for task in tasks:
        run_name = "/".join(p for p in (base, task.group, task.task) if p)
        result = evaluate_task(task, run_name, by)
        if result is not None and cluster:
            result = replace(result, document_clusters=_clusters(task, result, cluster))
        if not isinstance(task, TaskSamples):  # what the log gives and lacks, once per input
            notes += [n for n in (f"{base}: {n}" for n in task.notes) if n not in notes]
        if result is None:
            notes.append(f"{run_name}: {task.output_type} task skipped (no likelihoods to score)")
        else:
            done.append(_named_source(result))
    done += _results_rows(outputs, tasks, done, base, notes)
    if tasks and not done and not any(isinstance(t, TaskSamples) for t in tasks):
        why = next((n for t in tasks for n in t.notes[1:] if "run" in n or "adapter" in n),
                   "no sample carries answer-letter top_logprobs or prompt_logprobs; run the model with "
                   "logprobs=True")
        raise InputError(f"{spec}: nothing to score in this {tasks[0].harness} output: {why}")
    if not tasks and not done:
        raise InputError(f"{spec}: the lm-eval results file holds no task with a numeric figure; "
                         "run lm-eval with --log_samples to score the samples")
    return done


def _distinct_names(tasks: list) -> list:
    """Tasks of one name from two harnesses in one folder: the other harness's name in their group."""
    count: dict = {}
    for task in tasks:
        count[(task.group, task.task)] = count.get((task.group, task.task), 0) + 1
    return [replace(t, group="/".join(p for p in (t.harness.lower(), t.group) if p))
            if count[(t.group, t.task)] > 1 and not isinstance(t, TaskSamples) else t for t in tasks]


def _clusters(task, result: TaskResult, cluster: str) -> tuple | None:
    """Each document's ``--cluster`` value: lm-eval's from its records, another harness's from its
    units' metadata (``metadata.subject``), one per compared document."""
    from .compare import record_clusters

    if isinstance(task, TaskSamples):
        return record_clusters(task.records, cluster, task.path)
    first: dict = {}
    for unit in task.units:
        key = unit.sample if getattr(unit, "sample", None) is not None else unit.id
        first.setdefault(key, getattr(unit, "metadata", {}))
    values = record_clusters([first[i] for i in result.document_ids], cluster, task.source)
    return values


def evaluate_lm_eval(inputs, names: Sequence[str] | None = None, *, cluster: str | None = None, n_bootstrap: int = 0,
                     seed: int = 0, by: Sequence[str] = (), document: str | None = None) -> LMEvalEvaluation:
    """Evaluate harness logs: each task one run named ``<folder or file stem>/<task>``.

    Parameters
    ----------
    inputs : path or sequence of paths
        lm-eval samples files or output folders, inspect-ai logs (``.eval``, ``.json``) or
        folders of them, HELM run folders or folders of runs (see
        :func:`losslens.lm.detect.harness_of`); several inputs are checkpoints, each later one
        compared with the first, task by task, paired by the harness's sample id (``doc_id``).
    names : sequence of str, optional
        Replace the first part of each input's run names (``base`` gives ``base/arc_easy``).
    cluster, n_bootstrap, seed, document
        ``--cluster doc.FIELD``, ``--bootstrap N`` (:func:`.compare.compare_tasks`), vLLM's ``--document``.
    by : sequence of str
        ``--by``: slice multiple-choice tasks by a dotted field of their samples (lm-eval
        ``doc.subject``, inspect-ai ``metadata.subject``, HELM ``split``); the slices are in each
        task's classifier run (``by_slice``).

    Returns
    -------
    LMEvalEvaluation
    """
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    if names is not None and len(names) != len(inputs):
        raise UsageError(f"{len(names)} --name value(s) for {len(inputs)} input(s); give one per input")
    from ..plans import unique_names

    # Checkpoints in folders of the same name (ck/step1/out, ck/step2/out) must not share
    # run names: baselines and gates find runs by name.
    bases = list(names) if names else unique_names([_base_name(spec) for spec in inputs])
    results: list[list[TaskResult]] = []
    notes: list[str] = []
    for spec, base in zip(inputs, bases):
        results.append(_read_input(spec, base, notes, cluster, by, document))
    from .compare import compare_tasks

    comparisons = compare_tasks(results, _loss_unit, cluster, n_bootstrap, seed)
    return LMEvalEvaluation(tuple(t for r in results for t in r), tuple(notes), tuple(comparisons))
