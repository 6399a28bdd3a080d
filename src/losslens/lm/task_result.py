"""What one task of an evaluation harness is, read and scored: :class:`TaskSamples`, :class:`TaskResult`.

The data types of :mod:`losslens.lm.lm_eval` and of the modules it reads with
(:mod:`~losslens.lm.lm_eval_read`, :mod:`~losslens.lm.lm_eval_results`,
:mod:`~losslens.lm.lm_eval_units`): they live below all four, so those import them and not
one another's evaluator. No I/O here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..evaluation import LossWarning, json_safe
from .harness import LM_EVAL

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
    #: Each question's Brier score as the task's ``brier_score`` averages it (multiple choice), for
    #: the paired Brier delta.
    document_brier: np.ndarray | None = field(default=None, repr=False)
    document_clusters: tuple | None = field(default=None, repr=False)
    #: Where the figures come from: ``samples`` (recomputed), ``results`` (lm-eval's own, from
    #: ``results_*.json``: no samples file), ``group`` (aggregated over a group's tasks).
    basis: str = "samples"
    #: The harness that wrote the task, with its version when the log records it.
    harness: str = LM_EVAL
    #: The model folder or log that tells apart tasks of one name within one input ("" if none).
    group: str = ""

    @property
    def type_label(self) -> str:
        """The output type as the tables show it, with where the figures come from and which harness."""
        if self.basis == "group":
            return f"group of {self.output_type}"
        label = self.output_type if self.basis == "samples" else f"{self.output_type} (logged)"
        return label if self.harness == LM_EVAL else f"{label} ({self.harness})"

    @property
    def layout_kind(self) -> str:
        """The catalog layout of this task (``multiple_choice``, ``loglikelihood``, ``sequences``)."""
        return TASK_LAYOUTS.get(self.output_type, self.output_type)

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
            "name": self.name, "task": self.task, "harness": self.harness, "output_type": self.output_type,
            "basis": self.basis,
            "source": self.source,
            "n_documents": self.n_documents, "metrics": self.metrics, "logged": self.logged,
            "warnings": [w.to_dict() for w in self.warnings], "notes": list(self.notes),
            "classifier": self.classifier.runs[0].to_dict() if self.classifier is not None else None,
            "language_model": self.lm.runs[0].to_dict() if self.lm is not None else None,
        })


#: lm-eval output types as catalog layouts (a rolling task is scored as a sequence file).
TASK_LAYOUTS = {"multiple_choice": "multiple_choice", "loglikelihood": "loglikelihood",
            "loglikelihood_rolling": "sequences", "tokens": "tokens"}


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


def _consistency(name, recomputed: dict, logged_rows: dict, logged_totals: dict,
                 harness: str = LM_EVAL) -> list[LossWarning]:
    problems = []
    for metric, (values, logged) in logged_rows.items():
        pairs = [(v, w) for v, w in zip(values, logged) if w is not None]
        bad = sum(1 for v, w in pairs if abs(v - w) > AGREEMENT)
        if bad:
            problems.append(f"{bad} of {len(pairs)} questions' logged {metric} differ from the recomputation")
    where = "results file's" if harness == LM_EVAL else "log's"
    for metric, value in logged_totals.items():
        mine = recomputed.get(metric)
        if mine is not None and value is not None and not math.isclose(mine, float(value), rel_tol=1e-9, abs_tol=1e-12):
            problems.append(f"{where} {metric} {float(value):.6g} ≠ recomputed {mine:.6g}")
    if not problems:
        return []
    which = "lm-eval" if harness == LM_EVAL else harness
    return [LossWarning("inconsistent_samples",
                        f"{'; '.join(problems)}. The samples and results disagree: the files may come from "
                        f"different runs, filters or {which} versions; trust neither until this is explained.",
                        scope=f"task={name}")]
