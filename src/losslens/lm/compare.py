"""Paired comparisons of language-model runs and lm-eval tasks by document id (pure).

The statistics are the classifier comparison's (:func:`losslens.comparison.paired_tests`), with
documents (or questions) as the paired units: a token-weighted delta is a ratio estimator whose
standard error treats documents, never tokens, as independent, as each run's
``log_loss_ci95`` does (:func:`losslens.lm.evaluation.ratio_ci95`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..comparison import PairedTests, adjust_p_values, paired_tests, verdict_of
from ..paired_deltas import BRIER_DELTA, P_GOLD_DELTA
from ..evaluation import json_safe
from ..display import Notebook


@dataclass(frozen=True)
class LMComparison(Notebook):
    """A candidate run against the reference, on the documents both have.

    ``log_loss_delta`` is the token-weighted mean of the per-document differences of mean token
    loss (candidate − reference; negative = better), weighted by the reference's token counts:
    with one tokenizer it is exactly Σnll_c/Σn − Σnll_r/Σn over the shared documents, a ratio
    estimator whose interval, p-value and minimum detectable effect (nats per token; per
    question for a multiple-choice task) take documents as the units.
    ``paired`` and ``n_paired`` mean what they mean in a classifier comparison
    (:class:`losslens.comparison.Comparison`): whether the delta is over units found in both
    runs, and how many. Runs that share no document id are not paired: no delta then.
    ``unit`` says what the loss is per: ``token`` (token and sequence runs), ``question``
    (lm-eval multiple-choice and loglikelihood tasks), ``byte`` or ``document`` (lm-eval rolling tasks).
    """

    reference: str
    candidate: str
    paired: bool
    n_paired: int
    log_loss_delta: float | None
    log_loss_delta_ci95: tuple[float, float] | None
    share_improved: float | None
    worst_regressions: tuple[dict, ...]
    only_in_reference: int
    only_in_candidate: int
    unit: str = "token"
    tests: PairedTests | None = None
    log_loss_delta_p_value_adjusted: float | None = None

    @property
    def paired_unit(self) -> str:
        """What one paired unit is: a ``question`` (lm-eval tasks scored per question) or a ``document``."""
        return "question" if self.unit == "question" else "document"

    @property
    def verdict(self) -> str:
        """``better``, ``worse`` or ``no detectable change`` (see :func:`losslens.comparison.verdict_of`)."""
        return verdict_of(self.log_loss_delta, self.log_loss_delta_p_value_adjusted)

    def to_dict(self) -> dict:
        """Plain JSON-safe data, stable key order."""
        data = {name: getattr(self, name) for name in self.__dataclass_fields__
                if name not in ("tests", "log_loss_delta_p_value_adjusted")}
        extra = self.tests.to_dict(self.log_loss_delta_p_value_adjusted) if self.tests else {}
        return json_safe({**data, **extra, "verdict": self.verdict})


def _nll_bytes(docs):
    """A document table's ``(nll, n_bytes)`` for the bits-per-byte delta, or None without byte counts."""
    return None if docs is None or docs.n_bytes is None else (docs.nll, docs.n_bytes)


def _mean_losses(docs):
    if docs.n_tokens is None:
        return None
    with np.errstate(invalid="ignore", divide="ignore"):
        return docs.nll / docs.n_tokens


def paired_documents(reference_keys, reference_loss, reference_weight, candidate_keys, candidate_loss,
                     reference_name, candidate_name, limit=10, unit: str = "token", *, reference_correct=None,
                     candidate_correct=None, clusters=None, cluster_column=None, n_bootstrap=0,
                     seed=0, reference_bytes=None, candidate_bytes=None, reference_brier=None,
                     candidate_brier=None) -> LMComparison:
    """Pair two runs' per-document mean losses by id and summarise the difference (losses per ``unit``).

    ``reference_correct`` / ``candidate_correct`` (a 0/1 score per document, e.g. lm-eval's
    ``acc``) add the accuracy delta and McNemar's test; ``clusters`` (one value per reference
    document) clustered standard errors; ``n_bootstrap`` a paired bootstrap with ``seed``.
    ``reference_bytes`` / ``candidate_bytes`` (each document's ``(nll, UTF-8 bytes)``, both arrays in
    key order) add the bits-per-byte delta, documents as units; a ``question`` unit adds the p(gold) delta, p(gold) = exp(−loss).
    ``reference_brier`` / ``candidate_brier`` (each question's Brier score, in key order) add the Brier delta.
    """
    where = {k: i for i, k in enumerate(candidate_keys)}
    pairs = [(i, where[k]) for i, k in enumerate(reference_keys) if k in where]
    n = len(pairs)
    only_ref = len(reference_keys) - n
    only_cand = len(candidate_keys) - n
    if n == 0:
        return LMComparison(reference_name, candidate_name, False, 0, None, None, None, (), only_ref, only_cand, unit)
    r = np.array([p[0] for p in pairs])
    c = np.array([p[1] for p in pairs])
    delta = candidate_loss[c] - reference_loss[r]
    weights = np.asarray(reference_weight[r], dtype=np.float64)
    correct = None
    if reference_correct is not None and candidate_correct is not None:
        correct = (np.asarray(reference_correct)[r], np.asarray(candidate_correct)[c])
    more = {}
    if unit == "question":  # a question's loss is −log p(gold): the probability of its true answer
        more[P_GOLD_DELTA] = np.exp(-candidate_loss[c]) - np.exp(-reference_loss[r])
    if reference_brier is not None and candidate_brier is not None:
        more[BRIER_DELTA] = np.asarray(candidate_brier)[c] - np.asarray(reference_brier)[r]
    documents = None
    if reference_bytes is not None and candidate_bytes is not None:
        (nll_r, bytes_r), (nll_c, bytes_c) = reference_bytes, candidate_bytes
        documents = (nll_r[r], bytes_r[r], nll_c[c], bytes_c[c])
    mean, ci, tests = paired_tests(delta, weights, ratio=True, correct=correct,
                                   clusters=None if clusters is None else np.asarray(clusters, dtype=object)[r],
                                   cluster_column=cluster_column, n_bootstrap=n_bootstrap, seed=seed,
                                   more=more, documents=documents)
    order = np.lexsort((r, -delta))[:limit]
    worst = tuple({"document": reference_keys[r[i]], "reference_loss": float(reference_loss[r[i]]),
                   "candidate_loss": float(candidate_loss[c[i]]), "delta": float(delta[i])}
                  for i in order.tolist() if delta[i] > 0)
    return LMComparison(reference_name, candidate_name, True, n, mean, ci if np.isfinite(ci[0]) else None,
                        float((delta < 0).mean()), worst, only_ref, only_cand, unit, tests)


def compare_lm_runs(runs, n_bootstrap: int = 0, seed: int = 0) -> tuple[LMComparison, ...]:
    """Each later token / sequence run against the first, paired by document id, p-values adjusted together."""
    if len(runs) < 2:
        return ()
    first = runs[0]
    ref_loss = _mean_losses(first.documents)
    out = []
    for run in runs[1:]:
        cand_loss = _mean_losses(run.documents)
        if ref_loss is None or cand_loss is None:
            continue
        out.append(paired_documents(first.documents.keys, ref_loss, first.documents.n_tokens,
                                    run.documents.keys, cand_loss, first.name, run.name,
                                    n_bootstrap=n_bootstrap, seed=seed, reference_bytes=_nll_bytes(first.documents),
                                    candidate_bytes=_nll_bytes(run.documents)))
    return adjust_p_values(out)


def compare_tasks(results, unit_of, cluster: str | None = None, n_bootstrap: int = 0,
                  seed: int = 0) -> tuple[LMComparison, ...]:
    """lm-eval checkpoints: each later output's task against the first output's, paired by ``doc_id``.

    Parameters
    ----------
    results : list of list of TaskResult
        The tasks of each output, in input order (the first is the reference).
    unit_of : callable
        A task's loss unit (``question``, ``byte``, ``document``).
    cluster : str, optional
        ``--cluster doc.FIELD``: the tasks' ``document_clusters`` hold its values.
    n_bootstrap, seed : int
        Paired bootstrap resamples and seed.

    Returns
    -------
    tuple of LMComparison
        Every task of every later output; the p-values adjusted together (one family).
    """
    if cluster and not any(t.document_clusters is not None for tasks in results for t in tasks):
        from ..errors import InputError

        raise InputError(f"--cluster {cluster!r}: no record of any task has this field; name a field of the "
                         "records' doc, e.g. doc.passage")
    comparisons = []
    reference = {t.task: t for t in results[0]} if results else {}  # tasks of several model folders: first wins
    # The same model folder or log (TaskResult.group) of the task when the reference has it.
    by_group = {(t.group, t.task): t for t in results[0]} if results else {}
    for later in results[1:]:
        for task in later:
            ref = by_group.get((task.group, task.task)) or reference.get(task.task)
            if ref is None or ref.document_losses is None or task.document_losses is None:
                continue  # a task only in lm-eval's results file has no per-document losses
            comparisons.append(paired_documents(
                ref.document_ids, ref.document_losses, ref.document_weights,
                task.document_ids, task.document_losses, ref.name, task.name, unit=unit_of(ref),
                reference_correct=getattr(ref, "document_correct", None),
                candidate_correct=getattr(task, "document_correct", None),
                clusters=getattr(ref, "document_clusters", None) if cluster else None,
                cluster_column=cluster, n_bootstrap=n_bootstrap, seed=seed,
                reference_bytes=_task_nll_bytes(ref), candidate_bytes=_task_nll_bytes(task),
                reference_brier=ref.document_brier, candidate_brier=task.document_brier))
    return adjust_p_values(comparisons)


def _task_nll_bytes(task):
    """An lm-eval rolling or token task's per-document ``(nll, bytes)`` (its language-model run's
    documents, in the order of ``document_ids``), or None."""
    lm = getattr(task, "lm", None)
    if lm is None:
        return None
    docs = lm.runs[0].documents
    if tuple(docs.keys) != tuple(task.document_ids):
        return None  # the task's documents were filtered or reordered: no safe alignment
    return _nll_bytes(docs)


def record_clusters(records, cluster: str, path) -> tuple | None:
    """Each lm-eval record's ``--cluster`` value: ``doc.FIELD`` (dots go deeper), or a top-level field.

    None when no record of the task has the field (a task of another shape: not clustered).

    Raises
    ------
    InputError
        Some records have the field and others lack it: naming the file, the line and the fix.
    """
    from ..errors import InputError

    out = []
    for record in records:
        value = record
        for part in cluster.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        out.append(None if value is None or isinstance(value, (dict, list)) else str(value))
    if all(v is None for v in out):
        return None
    if None in out:
        record = records[out.index(None)]
        raise InputError(f"{path}, line {record.get('__line__', '?')}: no field {cluster!r} to cluster on, "
                         "while other records of the task have it; give every record the field or drop --cluster")
    return tuple(out)
