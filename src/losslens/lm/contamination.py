"""Contamination evidence for language models: per-document scores and their AUROC against a reference.

Four per-document scores, each oriented so that **higher = the document looks more memorised**
(more likely to have been in the training data):

- ``min_k_prob``: Min-K% Prob (Shi et al. 2023), exp of the mean of the document's lowest
  ``max(1, ⌊k·n⌋)`` token log-probs (computed in :mod:`losslens.lm.documents`).
- ``zlib_ratio``: the mean token log-probability (nats, ≤ 0) divided by the zlib-compressed length
  in bytes of the document's UTF-8 text, ``zlib.compress(text.encode("utf-8"))`` at the default
  level: the "zlib" membership baseline of Carlini et al. 2021 ("Extracting Training Data from
  Large Language Models", §6.1: perplexity relative to zlib entropy), in the sign convention of the
  Min-K% reference code (Shi et al. 2023, ``ll / len(zlib.compress(bytes(text, "utf-8")))``). A
  document the model finds easy *for its compressibility* scores near 0.
- ``rank1_share``: the share of scored tokens that are the model's most probable token (a ``rank``
  column equal to 1, or a ``top_logprob`` column equal to the token's log-prob).
- ``min_k_plus_plus``: Min-K%++ (Zhang et al. 2024, "Min-K%++: Improved Baseline for Detecting
  Pre-Training Data from Large Language Models", eq. 4): per token
  ``(log p(x_t) − μ_t) / σ_t`` with ``μ_t = Σ_v p(v) log p(v)`` and
  ``σ_t² = Σ_v p(v) (log p(v) − μ_t)²`` under the model's next-token distribution (given as
  columns), and the document's score is the mean of its lowest ``max(1, ⌊k·n⌋)`` token scores
  (the same k as Min-K%).

With ``--reference FILE`` (a run on text known not to be in the training data) each score's AUROC
of "this run's documents vs the reference's" (:func:`auroc`, the Mann–Whitney statistic with ties
counted one half, as scikit-learn's ``roc_auc_score``) comes with a percentile bootstrap interval
that resamples documents within each group under a fixed seed, so that a report is reproducible.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..catalog import MIN_K_PLUS_PLUS, MIN_K_PROB, RANK1_SHARE, ZLIB_RATIO

#: The scores, in the order of tables and of the JSON's ``contamination``.
SCORES = (MIN_K_PROB, ZLIB_RATIO, MIN_K_PLUS_PLUS, RANK1_SHARE)
#: Bootstrap resamples of the AUROC interval, and its seed (fixed: the same input, the same report).
BOOTSTRAP = 1000
SEED = 0
#: Documents above this quantile of the reference's scores stand out.
STANDOUT_QUANTILE = 0.99
#: Documents listed as standing out (the JSON and the reports); their count is always given.
STANDOUT_ROWS = 20


# -- per token ---------------------------------------------------------------------------------
# -- against a reference -----------------------------------------------------------------------
def auroc(positive: np.ndarray, negative: np.ndarray) -> float:
    """P(score of a random positive > a random negative) + ½ P(tie): the area under the ROC curve.

    Parameters
    ----------
    positive, negative : numpy.ndarray
        Finite scores of the two groups (this run's documents, the reference's).

    Returns
    -------
    float
        NaN when a group is empty.

    Examples
    --------
    >>> auroc(np.array([3.0, 2.0]), np.array([1.0, 2.0]))
    0.875
    """
    from scipy.stats import rankdata

    n_pos, n_neg = len(positive), len(negative)
    if n_pos == 0 or n_neg == 0:
        return math.nan
    ranks = rankdata(np.concatenate([positive, negative]))  # ties get their mean rank
    u = float(ranks[:n_pos].sum()) - n_pos * (n_pos + 1) / 2
    return u / (n_pos * n_neg)


def auroc_ci95(positive: np.ndarray, negative: np.ndarray, resamples: int = BOOTSTRAP,
               seed: int = SEED) -> tuple[float, float]:
    """Percentile 95 % interval of :func:`auroc`, resampling documents within each group.

    The generator is ``numpy.random.default_rng(seed)``, drawing per resample the positives'
    indices then the negatives'; the same scores give the same interval. No sort per resample:
    the negatives are sorted once, and each positive's count of lower (and tied) negatives in a
    resample is read from the cumulative multiplicities of the resampled negatives, so a resample
    costs O(n) (10⁵ documents a side: about 5 s for the 1,000 resamples on a laptop core).
    """
    n_pos, n_neg = len(positive), len(negative)
    if n_pos == 0 or n_neg == 0:
        return (math.nan, math.nan)
    order = np.argsort(negative, kind="stable")
    rank_of = np.empty(n_neg, dtype=np.int64)
    rank_of[order] = np.arange(n_neg)
    ordered = negative[order]
    below = np.searchsorted(ordered, positive, side="left")
    through = np.searchsorted(ordered, positive, side="right")
    rng = np.random.default_rng(seed)
    values = np.empty(resamples)
    cumulative = np.zeros(n_neg + 1, dtype=np.int64)
    for b in range(resamples):
        pos = np.bincount(rng.integers(0, n_pos, n_pos), minlength=n_pos)
        neg = np.bincount(rank_of[rng.integers(0, n_neg, n_neg)], minlength=n_neg)
        np.cumsum(neg, out=cumulative[1:])
        # 2 × (negatives below each positive + half the tied ones): whole numbers, summed exactly.
        twice = cumulative[below] + cumulative[through]
        values[b] = float(pos @ twice) / (2.0 * n_pos * n_neg)
    lo, hi = np.quantile(values, [0.025, 0.975])
    return (float(lo), float(hi))


@dataclass(frozen=True)
class ScoreEvidence:
    """One score of one run against the reference."""

    auroc: float | None
    auroc_ci95: tuple[float, float] | None
    n_documents: int
    n_reference: int
    reference_p99: float | None
    n_above_reference_p99: int

    def to_dict(self) -> dict:
        """Plain data: ``auroc``, ``auroc_ci95`` and the counts behind them."""
        from ..evaluation import json_safe

        return json_safe({name: getattr(self, name) for name in self.__dataclass_fields__})


def document_scores(run) -> dict[str, np.ndarray]:
    """Every score of :data:`SCORES` per document of ``run`` (NaN where it cannot be computed)."""
    from .evaluation import document_score_arrays

    return document_score_arrays(run.documents, run.layout)


def evidence(scores: dict, reference: dict) -> dict[str, ScoreEvidence]:
    """Each score present in both runs (some finite value in each) → its :class:`ScoreEvidence`."""
    out = {}
    for name in SCORES:
        mine, theirs = scores.get(name), reference.get(name)
        if mine is None or theirs is None:
            continue
        pos, neg = mine[np.isfinite(mine)], theirs[np.isfinite(theirs)]
        if len(pos) == 0 or len(neg) == 0:
            continue
        p99 = float(np.quantile(neg, STANDOUT_QUANTILE))
        out[name] = ScoreEvidence(
            auroc=auroc(pos, neg), auroc_ci95=auroc_ci95(pos, neg), n_documents=len(pos),
            n_reference=len(neg), reference_p99=p99, n_above_reference_p99=int((pos > p99).sum()))
    return out


def standouts(keys: tuple, scores: dict, found: dict) -> tuple[dict, ...]:
    """The documents above the reference's 99th percentile on some score, most scores first.

    Each is ``{"document": id, "scores": [names above], <score>: value, ...}``; at most
    :data:`STANDOUT_ROWS`, ties by position in the file.
    """
    above = {name: scores[name] > ev.reference_p99 for name, ev in found.items()}
    if not above:
        return ()
    counts = sum(a.astype(np.int64) for a in above.values())
    order = np.lexsort((np.arange(len(keys)), -counts))
    rows = []
    for i in order[:STANDOUT_ROWS].tolist():
        if counts[i] == 0:
            break
        row = {"document": keys[i], "scores": [n for n in above if above[n][i]]}
        row.update({n: float(scores[n][i]) if np.isfinite(scores[n][i]) else None for n in found})
        rows.append(row)
    return tuple(rows)


#: What the AUROC says, for the terminal and the report (plain words, and its limits).
MEANING = (
    "AUROC: the chance that a document of this run scores higher (looks more memorised) than a "
    "document of the reference, text known not to be in the training data; 0.5 = no difference, "
    "near 1 = this run's documents look seen in training. The interval resamples documents (fixed seed). "
    "This is evidence, not proof: the scores also rise for text that is simply easier or more "
    "repetitive, so compare sets from the same source and time (same distribution except for the "
    "training cut-off); when both sets come from the same distribution these scores are weak and an "
    "AUROC near 0.5 does not show the run is clean."
)


def score_text(entry, value) -> str:
    """A score as its catalog entry says (a share in percent, else a number)."""
    import losslens.formatting as fmt
    from ..catalog import SHARE

    return fmt.percent(value, entry.decimals) if entry.kind == SHARE else fmt.number(value, entry.decimals)


def document_score_columns(rows) -> tuple:
    """The :data:`losslens.catalog.DOCUMENT_SCORES` some of ``rows`` has a value for (Min-K% Prob always)."""
    from ..catalog import DOCUMENT_SCORES

    return tuple(m for m in DOCUMENT_SCORES
                 if m.name == MIN_K_PROB or any(getattr(r, m.name) is not None for r in rows))


def standout_table(run) -> tuple[list, list]:
    """Header and text rows of ``run.standout_documents`` (the scores found for the run, in catalog order)."""
    from ..catalog import DOCUMENT_SCORES

    entries = [m for m in DOCUMENT_SCORES if m.name in run.contamination]
    header = ["document", "above p99 on", *(m.label for m in entries)]
    rows = [[str(row["document"]), f"{len(row['scores'])} of {len(entries)}",
             *(score_text(m, row[m.name]) for m in entries)] for row in run.standout_documents]
    return header, rows


def with_reference(runs: tuple, reference) -> tuple:
    """``runs`` with their ``contamination`` evidence against the reference run filled in."""
    from dataclasses import replace

    theirs = document_scores(reference)
    out = []
    for run in runs:
        mine = document_scores(run)
        found = evidence(mine, theirs)
        out.append(replace(run, contamination=found, reference=reference.name,
                           standout_documents=standouts(run.documents.keys, mine, found)))
    return tuple(out)
