"""Finalise per-document sums into language-model metrics and warnings (pure).

Every corpus figure is a weighted mean over documents, exactly as lm-evaluation-harness
computes it (``weighted_perplexity``, ``bits_per_byte`` in ``lm_eval/api/metrics.py``):
``log_loss = Σnll / Σtokens``, ``bits_per_byte = Σnll / Σbytes / ln 2``,
``byte_perplexity = exp(Σnll / Σbytes)``, ``word_perplexity = exp(Σnll / Σwords)`` — never a
mean of per-document perplexities.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..accumulate import HIST_EDGES, OTHER
from ..evaluation import LossWarning, json_safe
from ..formatting import plural
from ..options import Options
from ..display import Notebook
from .documents import DocumentTable
from .layout import LMLayout
from ..catalog import MIN_K_PLUS_PLUS, MIN_K_PROB, RANK1_SHARE, ZLIB_RATIO

LN2 = math.log(2)
Z95 = 1.959963984540054


def ratio_ci95(numerators: np.ndarray, denominators: np.ndarray) -> tuple[float, float]:
    """95% interval of Σy/Σx from per-document sums (the ratio estimator).

    With R = Σy/Σx over D documents, the residuals e_d = y_d − R·x_d give
    Var(R) ≈ Σe²/(D−1) / (D·x̄²) (Cochran, *Sampling Techniques*, §6.3): documents, not
    tokens, are the independent units, so long documents do not shrink the interval by their
    length alone. NaNs when D ≤ 1 or Σx = 0.
    """
    d = len(numerators)
    total = float(denominators.sum())
    if d <= 1 or total <= 0:
        return (math.nan, math.nan)
    ratio = float(numerators.sum()) / total
    residuals = numerators - ratio * denominators
    mean_x = total / d
    variance = float(residuals @ residuals) / (d - 1) / (d * mean_x * mean_x)
    half = Z95 * math.sqrt(variance)
    return (ratio - half, ratio + half)


@dataclass(frozen=True)
class LMMetrics:
    """Corpus-level figures of one scope (the run, a split or a slice value).

    Per-token figures are None when the input gives no token counts, per-byte and per-word
    figures when it gives no bytes or words: never guessed.
    """

    n_documents: int
    n_tokens: int | None
    n_bytes: int | None
    n_words: int | None
    nll_nats: float
    log_loss: float | None
    log_loss_ci95: tuple[float, float] | None
    cross_entropy_bits: float | None
    perplexity: float | None
    bits_per_byte: float | None
    bits_per_byte_ci95: tuple[float, float] | None
    byte_perplexity: float | None
    word_perplexity: float | None
    n_memorized: int
    memorized_token_share: float | None

    def to_dict(self) -> dict:
        """Plain JSON-safe data, in a fixed key order."""
        return json_safe({name: getattr(self, name) for name in self.__dataclass_fields__})


def _int(values):
    return None if values is None else int(round(float(values.sum())))


def metrics_of(docs: DocumentTable, rows: np.ndarray | slice, memorized: np.ndarray) -> LMMetrics:
    """The corpus figures of the documents ``rows`` of ``docs``."""
    nll = docs.nll[rows]
    total = float(nll.sum())
    tokens = docs.n_tokens[rows] if docs.n_tokens is not None else None
    nbytes = docs.n_bytes[rows] if docs.n_bytes is not None else None
    words = docs.n_words[rows] if docs.n_words is not None else None
    mem = memorized[rows]
    n_tokens = _int(tokens)
    log_loss = total / n_tokens if n_tokens else None
    n_bytes = _int(nbytes)
    per_byte = total / float(nbytes.sum()) if n_bytes else None
    n_words = _int(words)
    bpb_ci = None
    if per_byte is not None:
        lo, hi = ratio_ci95(nll, nbytes)
        bpb_ci = (lo / LN2, hi / LN2)
    return LMMetrics(
        n_documents=len(nll),
        n_tokens=n_tokens,
        n_bytes=n_bytes,
        n_words=n_words,
        nll_nats=total,
        log_loss=log_loss,
        log_loss_ci95=ratio_ci95(nll, tokens) if log_loss is not None else None,
        cross_entropy_bits=log_loss / LN2 if log_loss is not None else None,
        perplexity=_exp(log_loss),
        bits_per_byte=per_byte / LN2 if per_byte is not None else None,
        bits_per_byte_ci95=bpb_ci,
        byte_perplexity=_exp(per_byte),
        word_perplexity=_exp(total / float(words.sum())) if n_words else None,
        n_memorized=int(mem.sum()),
        memorized_token_share=(float(tokens[mem].sum()) / n_tokens) if n_tokens else None,
    )


def _exp(value):
    if value is None:
        return None
    return math.exp(value) if value < 709 else math.inf


@dataclass(frozen=True)
class DocumentRow:
    """One document of the worst / best / memorised tables."""

    document: object
    n_tokens: int | None
    mean_loss_nats: float | None
    nll_nats: float
    min_k_prob: float | None
    zlib_ratio: float | None
    min_k_plus_plus: float | None
    rank1_share: float | None
    snippet: str | None

    def to_dict(self) -> dict:
        """Plain JSON-safe data."""
        return json_safe({name: getattr(self, name) for name in self.__dataclass_fields__})


@dataclass(frozen=True)
class LMRunEvaluation:
    """Everything computed for one token or sequence run."""

    name: str
    inputs: tuple[str, ...]
    layout: LMLayout
    options: Options
    overall: LMMetrics
    by_split: dict[str, LMMetrics]
    by_slice: dict[str, dict[str, LMMetrics]]
    token_loss_quantiles_nats: dict[str, float | None]
    document_loss_quantiles_nats: dict[str, float | None]
    token_loss_histogram: tuple[int, ...]
    unigram_entropy_bits: float | None
    information_gain_bits: float | None
    worst_documents: tuple[DocumentRow, ...]
    best_documents: tuple[DocumentRow, ...]
    memorized_documents: tuple[DocumentRow, ...]
    warnings: tuple[LossWarning, ...]
    documents: DocumentTable = field(repr=False, compare=False)
    memorized: np.ndarray = field(repr=False, compare=False)
    #: With ``--reference``: its run's name, each score's :class:`~losslens.lm.contamination.ScoreEvidence`
    #: and the documents above the reference's 99th percentile (:mod:`losslens.lm.contamination`).
    reference: str | None = None
    contamination: dict = field(default_factory=dict)
    standout_documents: tuple = ()

    @property
    def layout_kind(self) -> str:
        """``tokens`` or ``sequences``: the catalog layout of this run."""
        return self.layout.kind

    def to_dict(self) -> dict:
        """The run as JSON-safe data with a stable key order (None, never NaN)."""
        return json_safe({
            "name": self.name,
            "kind": "language_model",
            "inputs": list(self.inputs),
            "layout": self.layout.to_dict(),
            "min_k": self.options.min_k,
            "overall": self.overall.to_dict(),
            "by_split": {k: v.to_dict() for k, v in self.by_split.items()},
            "by_slice": {c: {k: v.to_dict() for k, v in values.items()} for c, values in self.by_slice.items()},
            "token_loss_quantiles_nats": self.token_loss_quantiles_nats,
            "document_loss_quantiles_nats": self.document_loss_quantiles_nats,
            "unigram_entropy_bits": self.unigram_entropy_bits,
            "information_gain_bits": self.information_gain_bits,
            "worst_documents": [d.to_dict() for d in self.worst_documents],
            "best_documents": [d.to_dict() for d in self.best_documents],
            "memorized_documents": [d.to_dict() for d in self.memorized_documents],
            "warnings": [w.to_dict() for w in self.warnings],
            **({"reference": self.reference,
                "contamination": {k: v.to_dict() for k, v in self.contamination.items()},
                "standout_documents": list(self.standout_documents)} if self.reference else {}),
        })


def min_k_prob(docs: DocumentTable) -> np.ndarray:
    """Min-K% Prob per document: exp(mean of its max(1, ⌊k·n⌋) lowest token log-probs)."""
    with np.errstate(over="ignore"):
        return np.exp(-docs.top_loss)


def document_score_arrays(docs: DocumentTable, layout: LMLayout | None = None) -> dict[str, np.ndarray]:
    """The contamination scores per document (:data:`losslens.lm.contamination.SCORES`; NaN: unknown).

    Each is oriented so that higher = looks more memorised. The zlib ratio needs token counts and
    the document's text; token text decoded one token at a time (U+FFFD) is not the real text, so
    it gives none unless a text column does.
    """
    from .compression import zlib_ratios

    n = len(docs.keys)
    unknown = np.full(n, np.nan)
    mean_logprob = -docs.nll / docs.n_tokens if docs.n_tokens is not None else unknown
    lossy = docs.bytes_lost and (layout is None or layout.text is None)
    with np.errstate(divide="ignore", invalid="ignore"):
        rank1 = docs.rank1 / docs.n_tokens if docs.rank1 is not None and docs.n_tokens is not None else unknown
    return {
        MIN_K_PROB: min_k_prob(docs),
        ZLIB_RATIO: zlib_ratios(mean_logprob, None if lossy else docs.zlib),
        MIN_K_PLUS_PLUS: docs.z_low if docs.z_low is not None else unknown,
        RANK1_SHARE: rank1,
    }


def memorized_mask(docs: DocumentTable, options: Options) -> np.ndarray:
    """Documents whose hardest tokens are still easy, or whose mean token loss is near zero."""
    flagged = np.zeros(len(docs.keys), dtype=bool)
    with np.errstate(invalid="ignore"):
        flagged |= min_k_prob(docs) >= options.memorized_prob
        if docs.n_tokens is not None:
            flagged |= docs.nll / docs.n_tokens <= options.near_zero
    return flagged


def histogram_quantiles(counts: np.ndarray, qs=(0.5, 0.9, 0.99)) -> dict[str, float | None]:
    """Quantiles read from the fixed log-spaced histogram (geometric bin middle, ~12%)."""
    total = int(counts.sum())
    out = {}
    cumulative = np.cumsum(counts)
    for q in qs:
        key = f"p{round(q * 100)}"
        if total == 0:
            out[key] = None
            continue
        b = int(np.searchsorted(cumulative, q * total, side="left"))
        out[key] = 0.0 if b == 0 else float(HIST_EDGES[-1]) if b >= len(HIST_EDGES) else float(
            math.sqrt(HIST_EDGES[b - 1] * HIST_EDGES[b]))
    return out


def unigram_entropy_bits(counts: dict) -> float | None:
    """Entropy of the text's own token distribution, in bits: the best constant model's loss."""
    values = np.array(list(counts.values()), dtype=np.float64)
    total = values.sum()
    if total <= 0:
        return None
    p = values / total
    # + 0.0: a text of one distinct token gives -0.0, which would print as "-0" in the warning.
    return float(-(p * np.log2(p)).sum()) + 0.0


def _rows(docs, mem, order, limit, scores) -> tuple[DocumentRow, ...]:
    out = []

    def value(name, i):
        v = scores[name][i]
        return float(v) if np.isfinite(v) else None

    for i in order[:limit].tolist():
        n = int(docs.n_tokens[i]) if docs.n_tokens is not None else None
        out.append(DocumentRow(
            document=docs.keys[i], n_tokens=n,
            mean_loss_nats=float(docs.nll[i] / n) if n else None,
            nll_nats=float(docs.nll[i]),
            min_k_prob=value(MIN_K_PROB, i), zlib_ratio=value(ZLIB_RATIO, i),
            rank1_share=value(RANK1_SHARE, i), min_k_plus_plus=value(MIN_K_PLUS_PLUS, i),
            snippet=docs.snippets[i],
        ))
    return tuple(out)


def _group(values: tuple) -> dict[str, np.ndarray]:
    """Documents by split or slice value; missing values named as classifier scopes name them."""
    from ..batch import MISSING, QUOTED_MISSING

    def scope(v) -> str:
        if v is None or v == "" or (isinstance(v, float) and math.isnan(v)):
            return MISSING
        return QUOTED_MISSING if str(v) == MISSING else str(v)

    groups: dict[str, list[int]] = {}
    for i, v in enumerate(values):
        groups.setdefault(scope(v), []).append(i)
    return {k: np.array(v, dtype=np.int64) for k, v in sorted(groups.items())}


def lm_run_evaluation(docs: DocumentTable, layout: LMLayout, options: Options, name: str,
                      inputs: tuple[str, ...]) -> LMRunEvaluation:
    """Finalise one run's per-document table into metrics, tables and warnings.

    Parameters
    ----------
    docs : DocumentTable
        From :meth:`DocumentAccumulator.finish` (with fragmented documents' Min-K% already
        recomputed).
    layout : LMLayout
    options : Options
    name : str
    inputs : tuple of str

    Returns
    -------
    LMRunEvaluation
    """
    mem = memorized_mask(docs, options)
    everything = np.arange(len(docs.keys))
    overall = metrics_of(docs, everything, mem)
    by_split = {k: metrics_of(docs, rows, mem) for k, rows in _group(docs.split).items()} if docs.split else {}
    by_slice = {}
    for column, values in docs.slices.items():
        groups = _group(values)
        # The max_slices largest values by documents; the rest folded into "(other)" (exact: sums add).
        ranked = sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))
        kept = dict(sorted(ranked[: options.max_slices]))
        if len(ranked) > options.max_slices:
            kept[OTHER] = np.sort(np.concatenate([rows for _, rows in ranked[options.max_slices:]]))
        by_slice[column] = {k: metrics_of(docs, rows, mem) for k, rows in kept.items()}
    scores = document_score_arrays(docs, layout)
    probs = scores[MIN_K_PROB]
    if docs.n_tokens is not None:
        per_doc = np.divide(docs.nll, docs.n_tokens, out=np.full(len(docs.nll), np.nan), where=docs.n_tokens > 0)
    else:
        per_doc = np.full(len(docs.nll), np.nan)
    finite = np.isfinite(per_doc)
    doc_quantiles = {f"p{q}": (float(np.quantile(per_doc[finite], q / 100)) if finite.any() else None)
                     for q in (50, 90, 99)}
    # Stable order: by mean loss, ties by position in the file.
    ranked = np.lexsort((everything, -np.where(finite, per_doc, -np.inf)))
    worst = _rows(docs, mem, ranked, options.worst, scores)
    best_order = np.lexsort((everything, np.where(finite, per_doc, np.inf)))
    best = _rows(docs, mem, best_order, options.worst, scores)
    mem_order = np.lexsort((everything, -np.nan_to_num(probs, nan=0.0)))
    mem_order = mem_order[mem[mem_order]]
    memorized_rows = _rows(docs, mem, mem_order, options.worst, scores)
    unigram = unigram_entropy_bits(docs.unigrams) if docs.unigrams else None
    gain = (unigram - overall.cross_entropy_bits
            if unigram is not None and overall.cross_entropy_bits is not None else None)
    run = LMRunEvaluation(
        name=name, inputs=inputs, layout=layout, options=options, overall=overall,
        by_split=by_split, by_slice=by_slice,
        token_loss_quantiles_nats=histogram_quantiles(docs.histogram) if layout.kind == "tokens"
        else {"p50": None, "p90": None, "p99": None},
        document_loss_quantiles_nats=doc_quantiles,
        token_loss_histogram=tuple(int(c) for c in docs.histogram),
        unigram_entropy_bits=unigram, information_gain_bits=gain,
        worst_documents=worst, best_documents=best, memorized_documents=memorized_rows,
        warnings=(), documents=docs, memorized=mem,
    )
    from dataclasses import replace

    return replace(run, warnings=lm_warnings(run))


def lm_warnings(run: LMRunEvaluation) -> tuple[LossWarning, ...]:
    """The language-model warnings, most important first, with stable codes."""
    out = []
    o, opts, docs = run.overall, run.options, run.documents
    if o.n_memorized:
        share_docs = o.n_memorized / o.n_documents
        tokens = f" and {o.memorized_token_share:.1%} of the tokens" if o.memorized_token_share is not None else ""
        rule = (f"Min-K% Prob (k={opts.min_k:g}) ≥ {opts.memorized_prob:g} or mean token loss ≤ {opts.near_zero:g} nats"
                if run.layout.kind == "tokens" else f"mean token loss ≤ {opts.near_zero:g} nats")
        out.append(LossWarning(
            "memorized_documents",
            f"{o.n_memorized:,} of {plural(o.n_documents, 'document')} ({share_docs:.1%}){tokens} "
            f"{'looks' if o.n_memorized == 1 else 'look'} memorised: "
            f"{rule}, i.e. even their hardest tokens are predicted with ease. This usually means the "
            "documents were in the training data (memorised training data, a contaminated evaluation "
            "set) or are duplicated; check them before trusting this run's loss.",
        ))
    if run.information_gain_bits is not None and run.information_gain_bits <= 0:
        out.append(LossWarning(
            "worse_than_prior",
            f"cross-entropy {o.cross_entropy_bits:.4g} bits/token is no better than the text's own unigram "
            f"entropy {run.unigram_entropy_bits:.4g} bits: the model does not beat predicting each token "
            "by its frequency in this very text; check the tokenizer, the log base and the model.",
        ))
    if docs.bytes_lost:
        out.append(LossWarning(
            "bytes_unknown",
            f"bits per byte is not computed: the token text holds U+FFFD ({docs.bytes_lost}), the mark of "
            "tokens decoded one at a time, which loses the bytes of characters split across tokens. "
            "Add an 'n_bytes' column (bytes of text per token), or give the tokenizer's own token "
            "strings (convert_ids_to_tokens), whose bytes losslens counts exactly.",
        ))
    if docs.empty:
        shown = ", ".join(map(repr, docs.empty[:5])) + (", …" if len(docs.empty) > 5 else "")
        out.append(LossWarning(
            "empty_documents",
            f"{plural(len(docs.empty), 'document')} {'has' if len(docs.empty) == 1 else 'have'} no scored "
            f"token ({shown}), left out of every figure; check the mask column.",
        ))
    return tuple(out)


@dataclass(frozen=True)
class LMEvaluation(Notebook):
    """The language-model runs of one job, with their comparisons.

    In a notebook: ``_repr_html_`` (a card), ``to_html()``, ``to_json()`` and ``document()``
    (see :mod:`losslens.notebook`).
    """

    runs: tuple[LMRunEvaluation, ...]
    comparisons: tuple = ()
    #: What :class:`losslens.job.JobResult` reports this as.
    kind = "language_model"

    def to_dict(self) -> dict:
        """JSON-safe data with a stable key order."""
        return {"runs": [r.to_dict() for r in self.runs],
                "comparisons": [c.to_dict() for c in self.comparisons]}
