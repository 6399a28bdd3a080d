"""Per-document sums of a token or sequence file, built from a stream of Arrow batches.

Pure apart from the arrays it is handed: :func:`convert_batch` (in :mod:`losslens.lm.convert`)
validates one record batch and turns it into float64 arrays; :class:`DocumentAccumulator` keeps,
per document, the summed loss, token, byte and word counts and the Min-K% Prob score, the
contamination scores' parts (rank-1 count, Min-K%++, zlib-compressed length of the text; see
:mod:`losslens.lm.contamination`), plus the token-level sums (Σℓ, Σℓ², a fixed log-spaced loss
histogram and unigram counts of the token text).

Memory. For documents whose tokens are contiguous in the file (the usual case) the state is one
row per document plus the tokens of the one document still open at the end of a batch: constant
in the number of tokens. Min-K% needs a document's tokens together, so a document whose tokens
reappear after another document (non-contiguous) is marked *fragmented*: its sums stay exact
(they add) and its Min-K% score is recomputed by :func:`min_k_of_fragments` in a second pass
that keeps only the fragmented documents' losses in memory (8 bytes a token plus their ids).
Past ``FRAGMENT_LIMIT`` fragmented documents (e.g. rows shuffled) the accumulator raises
:class:`TooFragmented` and the engine re-reads the run sorted by document, in memory.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

import losslens.lm.token_bytes as token_bytes

from ..accumulate import HIST_EDGES
from ..arrow_values import bool_array, int64_array, plain_numpy
from ..batch_figures import loss_histogram
from .compression import pieces_text, zlib_length
from .convert import START, Places, TokenBatch, convert_batch, run_starts  # noqa: F401 (re-exported)
from .layout import LMLayout

#: Characters of a document's text kept for the worst / best documents tables.
SNIPPET_CHARS = 80
#: More fragmented documents than this and the run is re-read sorted by document instead of
#: keeping each fragmented document's losses for a second pass (see :class:`TooFragmented`).
FRAGMENT_LIMIT = 1000
#: Below this mean run length a batch's Min-K% scores come from one sort of the batch;
#: above it from one partial sort per document (a Python loop over few, long documents).
SHORT_RUNS = 64


def ids_at(documents: pa.Array, rows: np.ndarray) -> list:
    """The document ids at ``rows``, as Python values."""
    if pa.types.is_integer(documents.type) or pa.types.is_floating(documents.type):
        return plain_numpy(documents)[rows].tolist()
    return documents.take(int64_array(rows)).to_pylist()


def min_k_count(n: int, k: float) -> int:
    """How many of a document's ``n`` tokens Min-K% averages: ``max(1, int(k·n))``.

    ``int(k·n)`` as in the reference implementation of Shi et al. (2023).
    """
    return max(1, int(n * k))


def top_loss_means(nll: np.ndarray, starts: np.ndarray, ends: np.ndarray, k: float) -> np.ndarray:
    """Per run ``[starts[i], ends[i])``: mean of its ``min_k_count`` largest losses (NaN if empty).

    The largest losses are the lowest log-probabilities, so ``exp(−mean)`` is Min-K% Prob.
    """
    out = np.full(len(starts), np.nan)
    lengths = ends - starts
    if len(starts) == 0:
        return out
    if lengths.mean() >= SHORT_RUNS:
        # Documents of equal length (common: evaluation at a fixed context length) are
        # partitioned together as the rows of one 2-D array.
        for n in np.unique(lengths).tolist():
            if n == 0:
                continue
            which = np.flatnonzero(lengths == n)
            m = min_k_count(n, k)
            block = nll[starts[which, None] + np.arange(n)]
            top = np.partition(block, n - m, axis=1)[:, n - m:] if m < n else block
            out[which] = top.sum(axis=1) / m
        return out
    # Many short documents: one sort of the whole range by (run, −loss).
    first, last = int(starts[0]), int(ends[-1])
    run_of_row = np.repeat(np.arange(len(starts)), lengths)
    values = nll[first:last]
    order = np.lexsort((-values, run_of_row))
    sorted_values = values[order]
    m = np.maximum(1, (lengths * k).astype(np.int64))
    position = np.arange(len(values)) - np.repeat(starts - first, lengths)
    keep = position < np.repeat(m, lengths)
    nonempty = lengths > 0
    sums = np.add.reduceat(sorted_values * keep, (starts - first)[nonempty]) if nonempty.any() else []
    out[nonempty] = np.asarray(sums) / m[nonempty]
    return out


@dataclass(frozen=True)
class DocumentRuns:
    """A token batch's documents (runs of one id) and the Min-K% scores of the complete ones.

    Computed from the batch alone and the last document id of the batch before it, so that the
    costly part of adding a batch (a partial sort per document) runs in a worker thread while
    the accumulator adds the previous batch in file order.
    """

    starts: np.ndarray
    ends: np.ndarray
    keys: list
    #: 1 when the batch's first document goes on from the previous batch, else 0.
    first: int
    #: Min-K% (mean of the largest losses) of the runs ``[first, last)``; the last run may go on.
    tops: np.ndarray


def document_runs(batch: TokenBatch, k: float, previous_key=None) -> DocumentRuns:
    """The :class:`DocumentRuns` of a non-empty token batch (see there); ``previous_key`` None: the
    run's first batch (a document id is never null)."""
    n = len(batch.nll)
    starts = run_starts(batch.documents)
    ends = np.append(starts[1:], n)
    keys = ids_at(batch.documents, starts)
    first = 1 if previous_key is not None and keys[0] == previous_key else 0
    last = len(starts) - 1
    tops = np.zeros(0)
    if last > first:
        # Complete documents of this batch: Min-K% straight from the batch's arrays.
        scored = batch.scored
        if scored is None:
            tops = top_loss_means(batch.nll, starts[first:last], ends[first:last], k)
        else:
            tops = np.array([_top_mean(batch.nll[s:e][scored[s:e]], k)
                             for s, e in zip(starts[first:last].tolist(), ends[first:last].tolist())])
    return DocumentRuns(starts, ends, keys, first, tops)


class TooFragmented(Exception):
    """Raised by the accumulator when so many documents are non-contiguous that sorting wins."""


@dataclass
class _Open:
    """The last document of a batch, which may go on in the next batch."""

    key: object
    values: list  # arrays of scored losses
    nll: float
    n_tokens: int
    n_bytes: float
    n_words: float
    split: object
    slices: dict
    snippet: str | None
    z: list  # arrays of scored Min-K%++ token scores (empty without mu / sigma)
    rank1: float  # scored tokens at rank 1 (NaN without a rank column)
    pieces: list  # token strings, in order (None when the zlib length came from a text column)
    zlib: float  # zlib-compressed bytes of the text column's text (NaN: from the pieces, or none)


@dataclass
class DocumentAccumulator:
    """Per-document and token-level sums of one run, fed batch by batch in file order."""

    layout: LMLayout
    min_k: float = 0.2
    index: dict = field(default_factory=dict)
    keys: list = field(default_factory=list)
    nll: list = field(default_factory=list)
    n_tokens: list = field(default_factory=list)
    n_bytes: list = field(default_factory=list)
    n_words: list = field(default_factory=list)
    top_loss: list = field(default_factory=list)
    rank1: list = field(default_factory=list)
    z_low: list = field(default_factory=list)
    zlib: list = field(default_factory=list)
    split: list = field(default_factory=list)
    slices: dict = field(default_factory=dict)
    snippets: list = field(default_factory=list)
    fragmented: set = field(default_factory=set)
    empty: set = field(default_factory=set)
    token_sum: float = 0.0
    token_sum_sq: float = 0.0
    token_count: int = 0
    histogram: np.ndarray = field(default_factory=lambda: np.zeros(len(HIST_EDGES) + 1, np.int64))
    unigrams: dict = field(default_factory=dict)
    open: _Open | None = None
    raise_when_fragmented: bool = False
    bytes_lost: str | None = None
    null_first: int = 0

    def __post_init__(self):
        self.slices = {c: [] for c in self.layout.by}

    # -- adding -----------------------------------------------------------------------------
    def add(self, batch: TokenBatch) -> None:
        """Add one validated batch."""
        self.bytes_lost = self.bytes_lost or batch.bytes_lost
        self.null_first += batch.null_first
        self.empty.update(batch.empty)
        if self.layout.kind == "sequences":
            self._add_sequences(batch)
        else:
            self._add_tokens(batch)

    def _attributes(self, batch: TokenBatch, rows: np.ndarray):
        take = int64_array(rows)
        split = batch.split.take(take).to_pylist() if batch.split is not None else [None] * len(rows)
        slices = {c: a.take(take).to_pylist() for c, a in batch.slices.items()}
        return split, slices

    def _add_sequences(self, batch: TokenBatch) -> None:
        n = len(batch.nll)
        rows = np.arange(n)
        keys = batch.documents.to_pylist()
        split, slices = self._attributes(batch, rows)
        texts = batch.text.to_pylist() if batch.text is not None else [None] * n
        n_tokens = batch.n_tokens
        for i, key in enumerate(keys):
            self._document(
                key, float(batch.nll[i]),
                int(n_tokens[i]) if n_tokens is not None else -1,
                float(batch.n_bytes[i]) if batch.n_bytes is not None else math.nan,
                float(batch.n_words[i]) if batch.n_words is not None else math.nan,
                math.nan, split[i], {c: v[i] for c, v in slices.items()},
                _snippet(texts[i]), (math.nan, math.nan, zlib_length(texts[i])),
            )

    def _add_tokens(self, batch: TokenBatch) -> None:
        import pyarrow.compute as pc

        n = len(batch.nll)
        if n == 0:
            return
        scored = batch.scored
        nll = batch.nll if scored is None else np.where(scored, batch.nll, 0.0)
        values = batch.nll if scored is None else batch.nll[scored]
        # Token-level sums over scored tokens only: a masked position's 0 is no evidence.
        self.token_sum += float(values.sum())
        self.token_sum_sq += float(values @ values)
        self.token_count += len(values)
        self.histogram += batch.histogram if batch.histogram is not None else loss_histogram(values)
        if batch.tokens is not None:
            texts = batch.tokens if scored is None else batch.tokens.filter(bool_array(scored))
            counted = pc.value_counts(texts.fill_null(""))
            for text, count in zip(counted.field("values").to_pylist(), counted.field("counts").to_pylist()):
                self.unigrams[text] = self.unigrams.get(text, 0) + count

        runs = batch.runs
        if runs is None:
            runs = document_runs(batch, self.min_k, self.open.key if self.open is not None else None)
        starts, ends, keys = runs.starts, runs.ends, runs.keys
        sums = np.add.reduceat(nll, starts)
        counts = np.diff(np.append(starts, n)) if scored is None else np.add.reduceat(scored.astype(np.int64), starts)
        nbytes = (np.add.reduceat(batch.n_bytes if scored is None else batch.n_bytes * scored, starts)
                  if batch.n_bytes is not None else None)
        nwords = (np.add.reduceat(batch.n_words if scored is None else batch.n_words * scored, starts)
                  if batch.n_words is not None else None)
        split, slices = self._attributes(batch, starts)
        snippets = [self._token_snippet(batch, s, e) for s, e in zip(starts.tolist(), ends.tolist())] \
            if (batch.tokens is not None or batch.text is not None) else [None] * len(starts)
        rank1 = np.add.reduceat(batch.rank1.astype(np.float64), starts) if batch.rank1 is not None \
            else np.full(len(starts), np.nan)

        def run(i):
            s, e = int(starts[i]), int(ends[i])
            kept = batch.nll[s:e] if scored is None else batch.nll[s:e][scored[s:e]]
            z = [] if batch.z is None else [batch.z[s:e] if scored is None else batch.z[s:e][scored[s:e]]]
            text = batch.text is not None
            return _Open(keys[i], [kept], float(sums[i]), int(counts[i]),
                         float(nbytes[i]) if nbytes is not None else math.nan,
                         float(nwords[i]) if nwords is not None else math.nan,
                         split[i], {c: v[i] for c, v in slices.items()}, snippets[i], z, float(rank1[i]),
                         None if text or batch.tokens is None else [batch.tokens.slice(s, e - s).to_pylist()],
                         zlib_length(batch.text[s].as_py()) if text else math.nan)

        first = 0
        if self.open is not None:
            if keys[0] == self.open.key:
                more = run(0)
                self.open.values += more.values
                self.open.nll += more.nll
                self.open.n_tokens += more.n_tokens
                self.open.n_bytes += more.n_bytes
                self.open.n_words += more.n_words
                self.open.z += more.z
                self.open.rank1 += more.rank1
                if self.open.pieces is not None:
                    self.open.pieces += more.pieces
                if len(starts) == 1:
                    return
                first = 1
            self._close(self.open)
            self.open = None
        last = len(starts) - 1
        if last > first:
            if runs.first != first:  # taken against another previous batch: take them again
                runs = document_runs(batch, self.min_k, keys[0] if first else None)
            tops = runs.tops
            columns = (sums, counts, nbytes, nwords, rank1, split, slices, snippets)
            if not self._add_complete(batch, keys[first:last], first, last, columns, tops):
                for i in range(first, last):
                    self._close(run(i), float(tops[i - first]))
        self.open = run(last) if last >= first else None

    def _add_complete(self, batch: TokenBatch, keys: list, first: int, last: int, columns: tuple,
                      tops: np.ndarray) -> bool:
        """Add the complete documents ``[first, last)`` of a batch at once; False if they need
        :meth:`_close` one by one (token text or Min-K%++ scores to keep, a document met before or
        twice in the batch, a document without scored tokens).

        The same values :meth:`_document` appends, as Python floats and ints in the same order: a
        batch of 700 documents is added in a few list extensions instead of 700 calls.
        """
        if batch.z is not None or batch.text is not None or batch.tokens is not None:
            return False
        sums, counts, nbytes, nwords, rank1, split, slices, snippets = columns
        counted = counts[first:last]
        if not counted.all() or len(set(keys)) != len(keys) or any(k in self.index for k in keys):
            return False
        m = len(keys)
        self.index.update(zip(keys, range(len(self.keys), len(self.keys) + m)))
        self.keys.extend(keys)
        self.nll.extend(sums[first:last].tolist())
        self.n_tokens.extend(counted.tolist())
        self.n_bytes.extend(nbytes[first:last].tolist() if nbytes is not None else [math.nan] * m)
        self.n_words.extend(nwords[first:last].tolist() if nwords is not None else [math.nan] * m)
        self.top_loss.extend(tops.tolist())
        self.rank1.extend(rank1[first:last].tolist())
        self.z_low.extend([math.nan] * m)  # no mu / sigma columns: no Min-K%++
        self.zlib.extend([math.nan] * m)  # no token text: no zlib length
        self.split.extend(split[first:last])
        for c, values in slices.items():
            self.slices[c].extend(values[first:last])
        self.snippets.extend(snippets[first:last])
        return True

    def _token_snippet(self, batch: TokenBatch, s: int, e: int) -> str | None:
        if batch.text is not None:
            return _snippet(batch.text[s].as_py())
        pieces, size = [], 0
        for piece in batch.tokens.slice(s, min(e - s, SNIPPET_CHARS)).to_pylist():
            pieces.append(piece or "")
            size += len(piece or "")
            if size >= SNIPPET_CHARS:
                break
        return _snippet(token_bytes.readable(pieces, self.layout.token_bytes))

    def _close(self, doc: _Open, top: float | None = None) -> None:
        if top is None:
            values = np.concatenate(doc.values) if len(doc.values) > 1 else doc.values[0]
            top = _top_mean(values, self.min_k)
        scores = (doc.rank1, _low_mean(doc.z, self.min_k), self._zlib(doc))
        self._document(doc.key, doc.nll, doc.n_tokens, doc.n_bytes, doc.n_words,
                       top, doc.split, doc.slices, doc.snippet, scores)

    def _zlib(self, doc: _Open) -> float:
        if doc.pieces is None:
            return doc.zlib
        pieces = [p for part in doc.pieces for p in part]
        return zlib_length(pieces_text(pieces, self.layout.token_bytes))

    def _document(self, key, nll, n_tokens, n_bytes, n_words, top, split, slices, snippet, scores) -> None:
        if n_tokens == 0:
            if key not in self.index:
                self.empty.add(key)
            return
        i = self.index.get(key)
        if i is None:
            self.index[key] = len(self.keys)
            self.keys.append(key)
            self.nll.append(nll)
            self.n_tokens.append(n_tokens)
            self.n_bytes.append(n_bytes)
            self.n_words.append(n_words)
            self.top_loss.append(top)
            self.rank1.append(scores[0])
            self.z_low.append(scores[1])
            self.zlib.append(scores[2])
            self.split.append(split)
            for c, v in slices.items():
                self.slices[c].append(v)
            self.snippets.append(snippet)
            return
        # The document's rows are not contiguous: the sums still add, Min-K% needs a second pass.
        self.nll[i] += nll
        self.n_tokens[i] += n_tokens
        self.n_bytes[i] += n_bytes
        self.n_words[i] += n_words
        self.rank1[i] += scores[0]
        # The text of a document in several places is not one row's: its zlib length is recomputed
        # by the second pass of a token run, unknown in a sequence file.
        self.zlib[i] = math.nan
        if self.layout.kind == "tokens":
            # Min-K%++ needs the document whole too: second pass.
            self.fragmented.add(key)
            self.top_loss[i] = self.z_low[i] = math.nan
            if self.raise_when_fragmented and len(self.fragmented) > FRAGMENT_LIMIT:
                raise TooFragmented()

    def finish(self) -> "DocumentTable":
        """Close the last open document and return the per-document arrays."""
        if self.open is not None:
            self._close(self.open)
            self.open = None
        self.empty -= self.index.keys()
        known = self.layout.kind == "tokens" or self.layout.n_tokens is not None
        return DocumentTable(
            keys=tuple(self.keys),
            nll=np.array(self.nll, dtype=np.float64),
            n_tokens=np.array(self.n_tokens, dtype=np.float64) if known else None,
            n_bytes=_known(self.n_bytes, (self.layout.n_bytes is not None or self.layout.token is not None)
                           and self.bytes_lost is None),
            n_words=_known(self.n_words, self.layout.n_words is not None),
            top_loss=np.array(self.top_loss, dtype=np.float64),
            rank1=np.array(self.rank1, dtype=np.float64),
            z_low=np.array(self.z_low, dtype=np.float64),
            zlib=np.array(self.zlib, dtype=np.float64),
            split=tuple(self.split) if self.layout.split else None,
            slices={c: tuple(v) for c, v in self.slices.items()},
            snippets=tuple(self.snippets),
            fragmented=frozenset(self.fragmented),
            empty=tuple(sorted(self.empty, key=str)),
            token_sum=self.token_sum,
            token_sum_sq=self.token_sum_sq,
            token_count=self.token_count,
            histogram=self.histogram.copy(),
            unigrams=dict(self.unigrams),
            bytes_lost=self.bytes_lost,
            null_first=self.null_first,
        )


def _known(values, present: bool):
    return np.array(values, dtype=np.float64) if present else None


def _top_mean(values: np.ndarray, k: float) -> float:
    n = len(values)
    if n == 0:
        return math.nan
    m = min_k_count(n, k)
    top = np.partition(values, n - m)[n - m:] if m < n else values
    return float(top.sum() / m)


def _low_mean(parts: list, k: float) -> float:
    """Min-K%++ of a document: the mean of its ``min_k_count`` lowest token scores (NaN: none)."""
    if not parts:
        return math.nan
    return -_top_mean(-(np.concatenate(parts) if len(parts) > 1 else parts[0]), k)


def _snippet(text) -> str | None:
    if text is None:
        return None
    text = " ".join(str(text).split())
    return text if len(text) <= SNIPPET_CHARS else text[: SNIPPET_CHARS - 1] + "…"


@dataclass(frozen=True)
class DocumentTable:
    """Per-document arrays of one run (row i is document ``keys[i]``), plus token-level sums.

    ``n_tokens``, ``n_bytes``, ``n_words`` are None when the input does not give them;
    ``top_loss`` is the mean of each document's Min-K% largest token losses (NaN for sequence
    files, which have no per-token detail).
    """

    keys: tuple
    nll: np.ndarray
    n_tokens: np.ndarray | None
    n_bytes: np.ndarray | None
    n_words: np.ndarray | None
    top_loss: np.ndarray
    split: tuple | None
    slices: dict
    snippets: tuple
    fragmented: frozenset
    empty: tuple
    token_sum: float
    token_sum_sq: float
    token_count: int
    histogram: np.ndarray
    unigrams: dict
    sorted_by_document: bool = False
    #: Where the token text first held U+FFFD (bytes unknown: ``n_bytes`` is None), or None.
    bytes_lost: str | None = None
    #: Documents whose first token had a null log-prob (not scored).
    null_first: int = 0
    #: Per document: scored tokens at rank 1, Min-K%++ and the zlib-compressed bytes of the text
    #: (NaN where the input cannot give them; None from builders that do not keep them).
    rank1: np.ndarray | None = None
    z_low: np.ndarray | None = None
    zlib: np.ndarray | None = None


def min_k_of_fragments(batches, layout: LMLayout, keys: frozenset, k: float) -> dict:
    """Second pass for non-contiguous documents: their Min-K%, Min-K%++ and zlib length, exactly.

    Parameters
    ----------
    batches : iterable of TokenBatch
        The run's batches again, in file order (a document's text is its rows in file order).
    layout : LMLayout
    keys : frozenset
        The fragmented documents' ids.
    k : float

    Returns
    -------
    dict
        Document id → (mean of its ``min_k_count`` largest losses, Min-K%++, zlib-compressed
        bytes of its text). Memory: the fragmented documents' scored losses and token scores
        (8 bytes each), their token strings when the zlib length comes from them, and their ids.
    """
    import pyarrow.compute as pc

    wanted = pa.array(sorted(keys, key=str)) if keys else None
    collected: dict = {}
    for batch in batches:
        rows = pc.is_in(batch.documents, value_set=wanted.cast(batch.documents.type))
        rows = np.asarray(plain_numpy(rows), dtype=bool)
        if not rows.any():
            continue
        chosen = rows & batch.scored if batch.scored is not None else rows
        ids = batch.documents.filter(bool_array(rows)).to_pylist()
        texts = _texts(batch, rows)
        kept = chosen[rows]
        z = batch.z[rows] if batch.z is not None else None
        for j, (key, value) in enumerate(zip(ids, batch.nll[rows].tolist())):
            doc = collected.setdefault(key, ([], [], [], []))
            if kept[j]:
                doc[0].append(value)
                if z is not None:
                    doc[1].append(z[j])
            if texts is not None:
                doc[2 if layout.text is None else 3].append(texts[j])
    return {key: (_top_mean(np.array(v), k), _low_mean([np.array(z)] if z else [], k),
                  zlib_length(text[0]) if text else
                  zlib_length(pieces_text(pieces, layout.token_bytes)) if layout.token else math.nan)
            for key, (v, z, pieces, text) in collected.items()}


def _texts(batch: TokenBatch, rows: np.ndarray):
    """The rows' document text (a text column) or token strings, or None."""
    column = batch.text if batch.text is not None else batch.tokens
    return None if column is None else column.filter(bool_array(rows)).to_pylist()
