"""lm-evaluation-harness ``--log_samples`` output: read it and recompute every metric.

Reading (this module's I/O) accepts a ``samples_<task>_<date>.jsonl`` file or the folder
lm-eval writes (``<output_path>/<model>/samples_*.jsonl``, usually next to a
``results_*.json``), as written by lm-eval 0.4.x: ``arguments`` as a list of
``[context, continuation]`` or as ``{"gen_args_i": {"arg_0", "arg_1"}}``, numbers as strings or
numbers, ``filtered_resps`` one level less nested than ``resps`` (we use ``filtered_resps``).

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
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import InputError, UsageError
from ..evaluation import Evaluation, LossWarning, json_safe
from ..notebook import Notebook
from .detect import SAMPLES_FILE, is_lm_eval_output  # noqa: F401 (public here too)
from .lm_eval_read import find_sample_files, read_lm_eval, read_outputs, read_records  # noqa: F401 (public here)

OUTPUT_TYPES = ("multiple_choice", "loglikelihood", "loglikelihood_rolling", "generate_until")
#: Logged per-question metrics whose recomputation must agree within this (they are 0/1 or sums).
AGREEMENT = 1e-9


@dataclass(frozen=True)
class TaskSamples:
    """The records of one task of one lm-eval output, and what its results file says of it."""

    task: str
    group: str  # the model folder inside the output, when it holds several; else ""
    path: Path
    records: tuple[dict, ...]
    output_type: str
    target_delimiter: str
    logged: dict


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
    first = records[0]
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


# -- computation --------------------------------------------------------------------------------
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


def softmax(lls: np.ndarray) -> np.ndarray:
    """Softmax of log-likelihoods, computed stably in float64 (as ``lm_eval.utils.softmax``)."""
    shifted = np.exp(lls - lls.max())
    return shifted / shifted.sum()


@dataclass(frozen=True)
class Question:
    """One multiple-choice question, recomputed."""

    doc_id: object
    gold: int
    loglikelihoods: tuple[float, ...]
    probabilities: tuple[float, ...]
    acc: float
    acc_norm: float
    brier: float
    logged_acc: float | None
    logged_acc_norm: float | None


def questions_of(samples: TaskSamples) -> list[Question]:
    """Recompute each multiple-choice record as lm-eval's ``process_results`` does."""
    out = []
    for record in samples.records:
        line = record["__line__"]
        responses = record.get("filtered_resps")
        if not isinstance(responses, list) or not responses:
            raise InputError(f"{samples.path}, line {line}, field 'filtered_resps': expected one "
                             "[loglikelihood, is_greedy] per choice")
        lls = np.array([_float(r[0] if isinstance(r, (list, tuple)) else r, samples.path, line, "log-likelihood")
                        for r in responses])
        args = arguments_of(record, samples.path)
        continuations = [a[1] if len(a) > 1 else "" for a in args]
        delimiter = samples.target_delimiter
        choices = [c[len(delimiter):] if delimiter and isinstance(c, str) and c.startswith(delimiter) else str(c)
                   for c in continuations]
        if len(choices) != len(lls):
            raise InputError(f"{samples.path}, line {line}: {len(lls)} responses for {len(choices)} arguments")
        target = record.get("target")
        gold = None
        if _is_number(target) and float(target) == int(float(target)):
            gold = int(float(target))
        elif isinstance(target, str) and target in choices:
            gold = choices.index(target)
        if gold is None or not 0 <= gold < len(lls):
            raise InputError(
                f"{samples.path}, line {line}, field 'target': {target!r} is not one of the "
                f"{len(lls)} choices (an index 0..{len(lls) - 1} or a choice's text); fix the task's doc_to_target"
            )
        if lls[gold] == -math.inf:  # another choice at −inf is fine: probability exactly 0
            raise InputError(f"{samples.path}, line {line}, field 'filtered_resps': the gold choice's log-likelihood is -inf, an infinite loss; check the model's scoring")
        lengths = np.array([float(len(c)) for c in choices])
        with np.errstate(divide="ignore", invalid="ignore"):
            normalized = lls / lengths
        q = softmax(lls)
        onehot = np.zeros(len(lls))
        onehot[gold] = 1.0
        out.append(Question(
            doc_id=record.get("doc_id", line),
            gold=gold,
            loglikelihoods=tuple(lls.tolist()),
            probabilities=tuple(q.tolist()),
            acc=float(int(np.argmax(lls)) == gold),
            acc_norm=float(int(np.argmax(normalized)) == gold),
            brier=float(((q - onehot) ** 2).sum()),
            logged_acc=float(record["acc"]) if _is_number(record.get("acc")) else None,
            logged_acc_norm=float(record["acc_norm"]) if _is_number(record.get("acc_norm")) else None,
        ))
    return out


#: The classifier run's calibration figures a multiple-choice task reports with lm-eval's.
CALIBRATION_NAMES = ("ece_equal_width", "ece_equal_mass", "rms_calibration_error", "max_calibration_error",
                     "temperature", "log_loss_after_temperature", "calibration_loss", "refinement_loss",
                     "brier_after_temperature")


def classifier_frame(questions: Sequence[Question]):
    """Questions as a classifier table: ``doc_id``, ``label`` = gold index, ``logit_j`` = log-likelihoods.

    A question with fewer than m choices gets logit −inf (probability exactly 0, adding exactly 0
    to its row's log-sum-exp) for the ones it lacks: :func:`classifier_of` allows that padding.
    """
    import pandas as pd

    width = max(len(q.loglikelihoods) for q in questions)
    logits = np.full((len(questions), width), -np.inf)
    for i, q in enumerate(questions):
        logits[i, : len(q.loglikelihoods)] = q.loglikelihoods
    frame = pd.DataFrame({"doc_id": [q.doc_id for q in questions], "label": [q.gold for q in questions]})
    for j in range(width):
        frame[f"logit_{j}"] = logits[:, j]
    return frame


def classifier_of(frame, run_name: str):
    """A :func:`classifier_frame` through the classifier engine: its Evaluation, and each question's
    loss in nats (in frame order, the very values its log loss averages, for the paired comparison).
    """
    from ..calibration_sample import sample_for
    from ..engine import accumulate, finish, layout_of, resolve_sources
    from ..options import Options

    options = Options(label="label", logits="logit_", id="doc_id", classes=[str(j) for j in range(frame.shape[1] - 2)])
    sources = resolve_sources(frame, options)
    layout = layout_of(sources, options)
    if not np.isfinite(frame[list(layout.prediction_columns)].to_numpy()).all():
        layout = replace(layout, neg_inf_padding=True, notes=(
            *layout.notes, "a question with fewer choices has logit -inf (probability exactly 0) for the others"))
    losses: list[np.ndarray] = []
    sample = sample_for(layout)
    total = accumulate(sources, layout, options, [lambda batch: losses.append(batch.loss), sample])
    run = finish(total, layout, run_name, tuple(s.display for s in sources), options, sample)
    return Evaluation(runs=(run,)), np.concatenate(losses)


@dataclass(frozen=True)
class TaskResult:
    """One task of one lm-eval output: lm-eval's metrics recomputed, and losslens's on top.

    ``metrics`` holds lm-eval's names (``acc``, ``acc_norm``, ``brier_score``, ``perplexity``,
    ``word_perplexity``, ``byte_perplexity``, ``bits_per_byte``) plus losslens's (``log_loss``...);
    ``logged`` what the results file says; ``classifier`` the classifier-engine evaluation of a
    multiple-choice task; ``lm`` the sequence-layout evaluation of a rolling task.
    """

    name: str
    task: str
    output_type: str
    source: str
    n_documents: int
    metrics: dict
    logged: dict
    warnings: tuple[LossWarning, ...]
    notes: tuple[str, ...]
    classifier: object = field(default=None, repr=False)
    lm: object = field(default=None, repr=False)
    document_ids: tuple = field(default=(), repr=False)
    document_losses: np.ndarray | None = field(default=None, repr=False)
    document_weights: np.ndarray | None = field(default=None, repr=False)
    document_correct: np.ndarray | None = field(default=None, repr=False)  # 0/1 acc, for McNemar
    document_clusters: tuple | None = field(default=None, repr=False)
    #: Where the figures come from: ``samples`` (recomputed), ``results`` (lm-eval's own, from
    #: ``results_*.json``: no samples file), ``group`` (aggregated over a group's tasks).
    basis: str = "samples"

    @property
    def type_label(self) -> str:
        """The output type as the tables show it, with where the figures come from."""
        if self.basis == "group":
            return f"group of {self.output_type}"
        return self.output_type if self.basis == "samples" else f"{self.output_type} (logged)"

    @property
    def layout_kind(self) -> str:
        """The catalog layout of this task (``multiple_choice``, ``loglikelihood``, ``sequences``)."""
        return _LAYOUTS.get(self.output_type, self.output_type)

    @property
    def overall(self) -> "TaskMetrics":
        """The task's metrics by attribute, as gates and the baseline read a run's."""
        return TaskMetrics(self)

    @property
    def by_split(self) -> dict:
        """lm-eval tasks have no splits of their own."""
        return {}

    def to_dict(self) -> dict:
        """JSON-safe data with a stable key order."""
        return json_safe({
            "name": self.name, "task": self.task, "output_type": self.output_type, "basis": self.basis,
            "source": self.source,
            "n_documents": self.n_documents, "metrics": self.metrics, "logged": self.logged,
            "warnings": [w.to_dict() for w in self.warnings], "notes": list(self.notes),
            "classifier": self.classifier.runs[0].to_dict() if self.classifier is not None else None,
            "language_model": self.lm.runs[0].to_dict() if self.lm is not None else None,
        })


#: lm-eval output types as catalog layouts (a rolling task is scored as a sequence file).
_LAYOUTS = {"multiple_choice": "multiple_choice", "loglikelihood": "loglikelihood",
            "loglikelihood_rolling": "sequences"}


class TaskMetrics:
    """A task's metrics as attributes: lm-eval's names first, then its classifier or sequence run's."""

    def __init__(self, task: TaskResult) -> None:
        self._task = task

    def __getattr__(self, name: str):
        task = self._task
        if name in task.metrics:
            return task.metrics[name]
        inner = task.classifier if task.classifier is not None else task.lm
        return getattr(inner.runs[0].overall, name, None) if inner is not None else None


def _consistency(name, recomputed: dict, logged_rows: dict, logged_totals: dict) -> list[LossWarning]:
    problems = []
    for metric, (values, logged) in logged_rows.items():
        pairs = [(v, w) for v, w in zip(values, logged) if w is not None]
        bad = sum(1 for v, w in pairs if abs(v - w) > AGREEMENT)
        if bad:
            problems.append(f"{bad} of {len(pairs)} questions' logged {metric} differ from the recomputation")
    for metric, value in logged_totals.items():
        mine = recomputed.get(metric)
        if mine is not None and value is not None and not math.isclose(mine, float(value), rel_tol=1e-9, abs_tol=1e-12):
            problems.append(f"results file's {metric} {float(value):.6g} ≠ recomputed {mine:.6g}")
    if not problems:
        return []
    return [LossWarning("inconsistent_samples",
                        f"{'; '.join(problems)}. The samples and results disagree: the files may come from "
                        "different runs, filters or lm-eval versions; trust neither until this is explained.",
                        scope=f"task={name}")]


def evaluate_task(samples: TaskSamples, run_name: str) -> TaskResult | None:
    """Recompute one task. None for ``generate_until`` tasks (no likelihoods)."""
    kind = samples.output_type
    source = str(samples.path)
    if kind == "generate_until":
        return None
    if kind == "multiple_choice":
        questions = questions_of(samples)
        frame = classifier_frame(questions)
        classifier, losses = classifier_of(frame, run_name)
        overall = classifier.runs[0].overall
        metrics = {
            "acc": float(np.mean([q.acc for q in questions])),
            "acc_norm": float(np.mean([q.acc_norm for q in questions])),
            "brier_score": float(np.mean([q.brier for q in questions])),
            "log_loss": overall.log_loss,
            "cross_entropy_bits": overall.cross_entropy_bits,
            "ece": overall.ece,
            # Calibration that says what is fixable, from the classifier run (catalog names).
            **{name: getattr(overall, name) for name in CALIBRATION_NAMES},
            "n_choices_min": min(len(q.probabilities) for q in questions),
            "n_choices_max": frame.shape[1] - 2,
        }
        warnings = _consistency(samples.task, metrics, {
            "acc": ([q.acc for q in questions], [q.logged_acc for q in questions]),
            "acc_norm": ([q.acc_norm for q in questions], [q.logged_acc_norm for q in questions]),
        }, {k: v for k, v in samples.logged.items() if k in ("acc", "acc_norm", "brier_score")})
        notes = ("brier_score is lm-eval's: Σ over a question's choices of (q − 1[gold])²; for two choices "
                 "that is twice scikit-learn's binary Brier score",)
        return TaskResult(run_name, samples.task, kind, source, len(questions), metrics, samples.logged,
                          tuple(warnings) + classifier.runs[0].warnings, notes, classifier=classifier,
                          document_ids=tuple(q.doc_id for q in questions), document_losses=losses,
                          document_weights=np.ones(len(questions)),
                          document_correct=np.array([q.acc for q in questions]) == 1.0)
    if kind == "loglikelihood":
        lls, greedy, logged_acc, ids = [], [], [], []
        for record in samples.records:
            responses = record.get("filtered_resps") or []
            pair = responses[0] if responses else None
            if not isinstance(pair, (list, tuple)) or len(pair) != 2:
                raise InputError(f"{samples.path}, line {record['__line__']}, field 'filtered_resps': "
                                 "expected [[loglikelihood, is_greedy]]")
            lls.append(_float(pair[0], samples.path, record["__line__"], "log-likelihood"))
            greedy.append(float(_bool(pair[1])))
            logged_acc.append(float(record["acc"]) if _is_number(record.get("acc")) else None)
            ids.append(record.get("doc_id", record["__line__"]))
        lls_array = np.array(lls)
        mean_ll = sum(lls) / len(lls)  # lm_eval.api.metrics.mean, same order of summation
        metrics = {"perplexity": math.exp(-mean_ll), "acc": sum(greedy) / len(greedy), "mean_loglikelihood": mean_ll}
        warnings = _consistency(samples.task, metrics, {"acc": (greedy, logged_acc)},
                                {k: v for k, v in samples.logged.items() if k in ("acc", "perplexity")})
        return TaskResult(run_name, samples.task, kind, source, len(lls), metrics, samples.logged,
                          tuple(warnings), (), document_ids=tuple(ids), document_losses=-lls_array,
                          document_weights=np.ones(len(lls)), document_correct=np.array(greedy) == 1.0)
    # loglikelihood_rolling: a sequence layout with words and bytes, and no token counts.
    import pandas as pd

    from .engine import evaluate_lm

    rows = []
    for record in samples.records:
        line = record["__line__"]
        responses = record.get("filtered_resps") or []
        ll = _float(responses[0][0] if responses and isinstance(responses[0], list) else (responses or [None])[0],
                    samples.path, line, "log-likelihood")
        words = record.get("word_perplexity")
        nbytes = record.get("byte_perplexity") or record.get("bits_per_byte")
        rows.append({"doc_id": record.get("doc_id", line), "nll": -ll,
                     "n_words": float(words[1]) if isinstance(words, list) else math.nan,
                     "n_bytes": float(nbytes[1]) if isinstance(nbytes, list) else math.nan})
    frame = pd.DataFrame(rows)
    frame = frame.dropna(axis=1, how="all")
    if frame.isna().any().any():
        column = frame.columns[frame.isna().any()][0]
        raise InputError(f"{samples.path}: some records lack the [loglikelihood, count] pair for {column}")
    lm = evaluate_lm(frame, name=run_name, layout="sequences")
    o = lm.runs[0].overall
    metrics = {"word_perplexity": o.word_perplexity, "byte_perplexity": o.byte_perplexity,
               "bits_per_byte": o.bits_per_byte, "log_loss": o.log_loss, "perplexity": o.perplexity}
    warnings = _consistency(samples.task, metrics, {},
                            {k: v for k, v in samples.logged.items()
                             if k in ("word_perplexity", "byte_perplexity", "bits_per_byte")})
    table = lm.runs[0].documents
    weights = table.n_bytes if table.n_bytes is not None else np.ones(len(table.keys))
    return TaskResult(run_name, samples.task, kind, source, len(rows), metrics, samples.logged,
                      tuple(warnings), ("no token counts in lm-eval samples: per-token figures are null",),
                      lm=lm, document_ids=table.keys, document_losses=table.nll / weights,
                      document_weights=weights)


@dataclass(frozen=True)
class LMEvalEvaluation(Notebook):
    """Every task of one or more lm-eval outputs (checkpoints), with their comparisons.

    In a notebook: ``_repr_html_`` (a card), ``to_html()``, ``to_json()`` and ``document()``
    (see :class:`losslens.notebook.Notebook`).
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

    def job_result(self):
        """These tasks as the command line's :class:`~losslens.job.JobResult` (comparisons included)."""
        from ..job import JobResult

        return JobResult(self, tuple(self.comparisons))


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
    if task.output_type != "loglikelihood_rolling":
        return "question"
    return "byte" if task.lm is not None and task.lm.runs[0].documents.n_bytes is not None else "document"


def _base_name(spec) -> str:
    path = Path(os.fspath(spec))
    return path.name if path.is_dir() else path.stem


def evaluate_lm_eval(inputs, names: Sequence[str] | None = None, *, cluster: str | None = None,
                     n_bootstrap: int = 0, seed: int = 0) -> LMEvalEvaluation:
    """Evaluate lm-eval outputs: each task one run named ``<folder or file stem>/<task>``.

    Parameters
    ----------
    inputs : path or sequence of paths
        Samples files or lm-eval output folders; several folders are checkpoints, each later
        one compared with the first, task by task, paired by ``doc_id``.
    names : sequence of str, optional
        Replace the first part of each input's run names (``base`` gives ``base/arc_easy``).
    cluster, n_bootstrap, seed
        ``--cluster doc.FIELD`` and ``--bootstrap N`` of the comparisons (:func:`.compare.compare_tasks`).

    Returns
    -------
    LMEvalEvaluation
    """
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    if names is not None and len(names) != len(inputs):
        raise UsageError(f"{len(names)} --name value(s) for {len(inputs)} input(s); give one per input")
    from ..engine import unique_names

    # Checkpoints in folders of the same name (ck/step1/out, ck/step2/out) must not share
    # run names: baselines and gates find runs by name.
    bases = list(names) if names else unique_names([_base_name(spec) for spec in inputs])
    results: list[list[TaskResult]] = []
    notes: list[str] = []
    for spec, base in zip(inputs, bases):
        tasks, task_notes, outputs = read_outputs(spec)
        notes += [f"{base}: {n}" for n in task_notes]
        done = []
        for samples in tasks:
            run_name = "/".join(p for p in (base, samples.group, samples.task) if p)
            result = evaluate_task(samples, run_name)
            if result is not None and cluster:
                from .compare import record_clusters

                result = replace(result, document_clusters=record_clusters(samples.records, cluster, samples.path))
            if result is None:
                notes.append(f"{run_name}: generate_until task skipped (no likelihoods to score)")
            else:
                done.append(_named_source(result))
        done += _results_rows(outputs, tasks, done, base, notes)
        if not tasks and not done:
            raise InputError(f"{spec}: the lm-eval results file holds no task with a numeric figure; "
                             "run lm-eval with --log_samples to score the samples")
        results.append(done)
    from .compare import compare_tasks

    comparisons = compare_tasks(results, _loss_unit, cluster, n_bootstrap, seed)
    return LMEvalEvaluation(tuple(t for r in results for t in r), tuple(notes), tuple(comparisons))
