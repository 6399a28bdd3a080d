"""Paired comparisons of language-model runs by document id (pure)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..comparison import weighted_mean_ci
from ..evaluation import json_safe
from ..notebook import Notebook


@dataclass(frozen=True)
class LMComparison(Notebook):
    """A candidate run against the reference, on the documents both have.

    ``log_loss_delta`` is the token-weighted mean of the per-document differences of mean token
    loss (candidate − reference; negative = better), weighted by the reference's token counts:
    with one tokenizer it is exactly Σnll_c/Σn − Σnll_r/Σn over the shared documents.
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

    def to_dict(self) -> dict:
        """Plain JSON-safe data, stable key order."""
        return json_safe({name: getattr(self, name) for name in self.__dataclass_fields__})


def _mean_losses(docs):
    if docs.n_tokens is None:
        return None
    with np.errstate(invalid="ignore", divide="ignore"):
        return docs.nll / docs.n_tokens


def paired_documents(reference_keys, reference_loss, reference_weight, candidate_keys, candidate_loss,
                     reference_name, candidate_name, limit=10, unit: str = "token") -> LMComparison:
    """Pair two runs' per-document mean losses by id and summarise the difference (losses per ``unit``)."""
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
    weights = reference_weight[r]
    mean, ci = weighted_mean_ci(delta, weights)
    order = np.lexsort((r, -delta))[:limit]
    worst = tuple({"document": reference_keys[r[i]], "reference_loss": float(reference_loss[r[i]]),
                   "candidate_loss": float(candidate_loss[c[i]]), "delta": float(delta[i])}
                  for i in order.tolist() if delta[i] > 0)
    return LMComparison(reference_name, candidate_name, True, n, mean, ci if math.isfinite(ci[0]) else None,
                        float((delta < 0).mean()), worst, only_ref, only_cand, unit)


def compare_lm_runs(runs) -> tuple[LMComparison, ...]:
    """Each later token / sequence run against the first, paired by document id."""
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
                                    run.documents.keys, cand_loss, first.name, run.name))
    return tuple(out)
