"""One record batch of a token or sequence file → validated float64 arrays (:func:`convert_batch`).

Pure: the caller reads the batch (:mod:`losslens.lm.engine`) and, for the list layout, flattens it
to one row per token first (:mod:`losslens.lm.lists`). Messages name the file, column and row
(:class:`Places`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

import losslens.lm.token_bytes as token_bytes

from ..arrow_values import plain_numpy
from ..errors import InputError, where
from .layout import LMLayout


@dataclass
class TokenBatch:
    """One validated batch: float64 losses in nats and the columns that go with them."""

    documents: pa.Array
    nll: np.ndarray
    scored: np.ndarray | None  # bool per row; None: every row is scored
    n_tokens: np.ndarray | None  # sequence layout only
    n_bytes: np.ndarray | None
    n_words: np.ndarray | None
    tokens: pa.Array | None
    text: pa.Array | None
    split: pa.Array | None
    slices: dict[str, pa.Array]
    bytes_lost: str | None = None  # where the token text first held U+FFFD: bytes unknown
    null_first: int = 0  # documents whose first token's log-prob is null (not scored)
    empty: tuple = ()  # list layout: documents whose list is empty or null (no token at all)
    rank1: np.ndarray | None = None  # bool per row: the model's most probable token (scored rows only)
    z: np.ndarray | None = None  # Min-K%++ token score (log p − μ) / σ (0 on rows not scored)
    # The loss histogram's counts of the scored tokens, when taken beside the conversion (in a
    # worker thread, see losslens.layouts.tokens); None: the accumulator counts them.
    histogram: np.ndarray | None = None
    # The batch's documents and their Min-K% scores, taken in the same worker thread
    # (losslens.lm.documents.DocumentRuns); None: the accumulator finds them.
    runs: object | None = None


#: ``previous`` of :func:`convert_batch` for a batch that begins a file.
START = object()


class Places:
    """Where row ``i`` of a batch is in the file, for messages: ``file, column 'c', row n``.

    A flattened list layout (:mod:`losslens.lm.lists`) gives each token's file row and its
    position in the row's list (``…, row 3, token 5``).
    """

    def __init__(self, source: str, offset: int, rows: np.ndarray | None = None, items: np.ndarray | None = None):
        self.source, self.offset, self.rows, self.items = source, offset, rows, items

    def __call__(self, column: str | None, i: int) -> str:
        if self.rows is None:
            return where(self.source, column, self.offset + i + 1)
        return f"{where(self.source, column, int(self.rows[i]))}, token {int(self.items[i])}"


def _numeric(batch: pa.RecordBatch, name: str, places: Places) -> tuple[np.ndarray, float]:
    """A numeric column as float64 and the machine epsilon of its stored type."""
    import pyarrow.compute as pc

    column = batch.column(name)
    kind = column.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        # lm-eval and some CSV writers give numbers as strings.
        try:
            column = pc.cast(column, pa.float64())
        except pa.ArrowInvalid:
            for i, value in enumerate(column.to_pylist()):
                try:
                    float(value)
                except (TypeError, ValueError):
                    raise InputError(f"{places(name, i)}: non-numeric value {value!r}") from None
        kind = pa.float64()
    elif not (pa.types.is_floating(kind) or pa.types.is_integer(kind) or pa.types.is_boolean(kind)
              or pa.types.is_null(kind)):
        raise InputError(f"{where(places.source, name)}: values of type {kind} are not numbers")
    values = np.asarray(plain_numpy(column), dtype=np.float64)
    eps = float(np.finfo(np.float32).eps) if kind in (pa.float32(), pa.float16()) else float(np.finfo(np.float64).eps)
    return values, eps


def _first_bad(values: np.ndarray, bad: np.ndarray, places: Places, column) -> tuple[str, float]:
    i = int(np.flatnonzero(bad)[0])
    return places(column, i), float(values[i])


def convert_batch(batch: pa.RecordBatch, layout: LMLayout, source: str, offset: int, previous=START, *,
                  places: Places | None = None, starts: np.ndarray | None = None,
                  any_null: bool = False) -> TokenBatch:
    """Validate one record batch and convert it to arrays.

    Parameters
    ----------
    batch : pyarrow.RecordBatch
        The layout's columns (one row per token: list layouts are flattened first).
    layout : LMLayout
        What the columns mean.
    source : str
        The file, for messages.
    offset : int
        Data rows before this batch, so that messages give the file's row number (1-based).
    previous : object
        The document id of the file's row before this batch (:data:`START` for a file's first
        batch): whether the batch's first row begins a document.
    places : Places, optional
        Where each row is in the file, for messages (by default ``offset`` + the row).
    starts : numpy.ndarray of bool, optional
        The rows that begin a document (by default where the document id changes).
    any_null : bool
        Take every null log-prob as an unscored first token (rows validated before, in file
        order, then sorted).

    Returns
    -------
    TokenBatch

    Raises
    ------
    InputError
        A missing document id, a null log-prob other than a document's first (nothing predicts
        the first token: the Hugging Face and vLLM convention), a NaN or infinite value, a
        positive log-probability (beyond 4 machine epsilons of the stored type, which are clamped
        to 0: float32 log-softmax gives such values for near-certain tokens), a negative loss or
        count, or a null mask.
    """
    places = places or Places(source, offset)
    documents = batch.column(layout.document)
    if documents.null_count:
        i = int(np.flatnonzero(plain_numpy(documents.is_null()))[0])
        raise InputError(f"{places(layout.document, i)}: missing document id")
    # Computed only when needed (null log-probs, SentencePiece pieces).
    starts = _LazyStarts(documents, previous, starts)
    raw, eps = _numeric(batch, layout.loss, places)
    raw, scored = _masked(batch, layout, places, raw)
    scored, raw, null_first = _null_first_tokens(batch, layout, places, raw, scored, starts, any_null)
    nll = _checked_nll(raw, eps, layout, places)
    tokens, n_bytes, bytes_lost = _token_bytes(batch, layout, places, scored, starts)
    n_tokens = _counts(batch, layout.n_tokens, places)
    if n_tokens is not None:
        lossy_but_empty = (n_tokens == 0) & (nll > 0)
        if lossy_but_empty.any():
            place, value = _first_bad(n_tokens, lossy_but_empty, places, layout.n_tokens)
            raise InputError(f"{place}: 0 tokens but a loss of {float(nll[lossy_but_empty][0])!r} nats; "
                             "a document's loss needs its token count")
    rank1, z = None, None
    if layout.rank or layout.top_logprob or layout.mu:
        rank1, z = token_columns(batch, layout, places, raw, nll, scored)
    return TokenBatch(
        documents=documents,
        nll=nll,
        scored=scored,
        n_tokens=n_tokens,
        n_bytes=n_bytes,
        n_words=_counts(batch, layout.n_words, places),
        tokens=tokens,
        text=batch.column(layout.text) if layout.text is not None else None,
        split=batch.column(layout.split) if layout.split is not None else None,
        slices={c: batch.column(c) for c in layout.by},
        bytes_lost=bytes_lost,
        null_first=null_first,
        rank1=rank1,
        z=z,
    )


def _token_bytes(batch, layout: LMLayout, places: Places, scored, starts):
    """The token text column (as strings), each token's bytes and where bytes were lost.

    Bytes come from the n_bytes column, else are counted from the token text by the layout's
    convention; ``bytes_lost`` names the first token whose text lost bytes (then no counts).
    """
    tokens = batch.column(layout.token) if layout.token is not None else None
    if tokens is not None and not (pa.types.is_string(tokens.type) or pa.types.is_large_string(tokens.type)):
        tokens = tokens.cast(pa.string())  # polars' string views, an all-null column
    n_bytes, bytes_lost = _counts(batch, layout.n_bytes, places), None
    if n_bytes is None and tokens is not None:
        lossy = token_bytes.first_lossy(tokens, scored)
        if lossy is not None:
            bytes_lost = places(layout.token, lossy)
        else:
            convention = layout.token_bytes or token_bytes.UTF8
            n_bytes = token_bytes.count_bytes(
                tokens, convention, starts() if convention == token_bytes.SENTENCEPIECE else None)
    return tokens, n_bytes, bytes_lost


def _masked(batch, layout: LMLayout, places: Places, raw: np.ndarray):
    """``raw`` with the unscored rows of the mask column as 0, and the scored rows (None: no mask)."""
    if layout.mask is None:
        return raw, None
    mask_column = batch.column(layout.mask)
    if mask_column.null_count:
        i = int(np.flatnonzero(plain_numpy(mask_column.is_null()))[0])
        raise InputError(f"{places(layout.mask, i)}: missing mask value; "
                         "use 1 for scored tokens and 0 for padding or prompt")
    mask_values, _ = _numeric(batch, layout.mask, places)
    scored = mask_values != 0
    # Padding and prompt rows are not scored: whatever they hold (0, NaN, null) is ignored.
    return np.where(scored, raw, 0.0), scored


def _checked_nll(raw: np.ndarray, eps: float, layout: LMLayout, places: Places) -> np.ndarray:
    """Each token's loss in nats from the loss column's values, after checking them.

    Refuses a NaN or infinite value and a positive log-probability (or negative loss) beyond 4
    machine epsilons of the stored type; those within are clamped to 0.
    """
    bad = ~np.isfinite(raw)
    if bad.any():
        place, value = _first_bad(raw, bad, places, layout.loss)
        raise InputError(f"{place}: {value} is not a finite number; every scored token needs a finite "
                         "log-probability (drop or mask the row)")
    nll = raw * (-layout.loss_scale if layout.loss_sign < 0 else layout.loss_scale)
    tolerance = 4 * eps * layout.loss_scale
    negative = nll < 0
    if negative.any():
        too_far = negative & (nll < -tolerance)
        if too_far.any():
            place, value = _first_bad(raw, too_far, places, layout.loss)
            if layout.loss_sign < 0:
                raise InputError(
                    f"{place}: log-probability {value} is positive; log-probabilities are ≤ 0 "
                    f"(if the column holds losses, pass --nll {layout.loss})"
                )
            raise InputError(f"{place}: loss {value} is negative; losses are ≥ 0 "
                             f"(if the column holds log-probabilities, pass --logprob {layout.loss})")
        nll = np.maximum(nll, 0.0)
    return nll


def _counts(batch, name: str | None, places: Places) -> np.ndarray | None:
    """The count column ``name`` (None: no such column), refused unless finite and ≥ 0."""
    if name is None:
        return None
    values, _ = _numeric(batch, name, places)
    wrong = ~np.isfinite(values) | (values < 0)
    if wrong.any():
        place, value = _first_bad(values, wrong, places, name)
        raise InputError(f"{place}: {value} is not a count; counts are finite and ≥ 0")
    return values


class _LazyStarts:
    """Called: True at the rows that begin a document, where the id changes (file order)."""

    def __init__(self, documents: pa.Array, previous=START, known: np.ndarray | None = None):
        self.documents, self.previous, self.known = documents, previous, known

    def __call__(self) -> np.ndarray:
        if self.known is None:
            out = np.zeros(len(self.documents), dtype=bool)
            if len(self.documents):
                out[run_starts(self.documents)] = True
                out[0] = self.previous is START or self.documents[0].as_py() != self.previous
            self.known = out
        return self.known


def _null_first_tokens(batch, layout: LMLayout, places: Places, raw, scored, starts, any_null):
    """Null log-probs of a document's first token become unscored rows; any other null is an error."""
    if layout.kind != "tokens":
        return scored, raw, 0
    column = batch.column(layout.loss)
    if column.null_count == 0:
        return scored, raw, 0
    nulls = np.asarray(plain_numpy(column.is_null()), dtype=bool)
    if scored is not None:
        nulls &= scored  # a masked row may hold anything
    if not nulls.any():
        return scored, raw, 0
    wrong = nulls & ~starts() if not any_null else np.zeros_like(nulls)
    if wrong.any():
        i = int(np.flatnonzero(wrong)[0])
        raise InputError(f"{places(layout.loss, i)}: missing log-probability; only a document's first "
                         "token may have none (nothing predicts it); give every other token its "
                         "log-probability, or mask the row")
    scored = ~nulls if scored is None else scored & ~nulls
    return scored, np.where(nulls, 0.0, raw), int(nulls.sum())


def run_starts(documents: pa.Array) -> np.ndarray:
    """Row index where each run of equal consecutive document ids begins."""
    n = len(documents)
    if n <= 1:
        return np.zeros(n, dtype=np.int64)
    if pa.types.is_null(documents.type):  # every id missing (an empty column): convert_batch refuses it
        return np.zeros(1, dtype=np.int64)
    if pa.types.is_integer(documents.type) or pa.types.is_floating(documents.type):
        # numpy is faster here, and keeps pyarrow.compute (a slow import) off the common path.
        ids = plain_numpy(documents)
        changed = np.flatnonzero(ids[1:] != ids[:-1])
    else:
        import pyarrow.compute as pc

        change = pc.not_equal(documents.slice(1), documents.slice(0, n - 1))
        changed = np.flatnonzero(np.asarray(plain_numpy(change)))
    return np.concatenate([[0], changed + 1]).astype(np.int64)


def token_columns(batch, layout, places, raw: np.ndarray, nll: np.ndarray, scored):
    """Per-token rank-1 flags and Min-K%++ scores of one record batch (None without their columns).

    Parameters
    ----------
    batch : pyarrow.RecordBatch
    layout : LMLayout
    places : losslens.lm.convert.Places
        For messages.
    raw : numpy.ndarray
        The loss column as read (log-probs or losses in the file's base; 0 where not scored).
    nll : numpy.ndarray
        The losses in nats.
    scored : numpy.ndarray of bool or None

    Returns
    -------
    (numpy.ndarray of bool or None, numpy.ndarray or None)
        Rank 1 per row, and ``(log p − μ) / σ`` per row (0 on rows not scored; 0 where σ = 0, a
        next-token distribution uniform over its support, where log p = μ).

    Raises
    ------
    InputError
        A rank below 1, a μ above 0 (beyond 4 ulps), a negative σ, or a non-finite value on a scored
        row; the message names the file, column and row.
    """
    use = np.ones(len(raw), dtype=bool) if scored is None else scored

    def column(name, bad, rule, fix="drop or mask the row"):
        values, eps = _numeric(batch, name, places)
        wrong = use & (~np.isfinite(values) | bad(values, eps))
        if wrong.any():
            place, value = _first_bad(values, wrong, places, name)
            raise InputError(f"{place}: {value} is not {rule} ({fix})")
        return np.where(use, values, 0.0), eps

    rank1 = None
    if layout.rank is not None:
        # A column named 'rank' may be something else (a data-parallel worker's rank): say so.
        rank1 = column(layout.rank, lambda v, e: v < 1, "a token's rank; ranks are 1 (most probable) or more",
                       f"if {layout.rank!r} holds something else, such as a worker's rank, rename the column")[0] == 1
    elif layout.top_logprob is not None:
        top, eps = column(layout.top_logprob, lambda v, e: v > 4 * e, "a log-probability; they are ≤ 0")
        logprob = raw if layout.loss_sign < 0 else -raw
        # The token is the most probable one: equal to the top log-prob within 4 ulps of the stored
        # type (two log-softmax kernels may round the same value apart); ties count as rank 1.
        rank1 = logprob >= top - 4 * eps * np.maximum(1.0, np.abs(top))
    z = None
    if layout.mu is not None and layout.sigma is not None:
        mu = column(layout.mu, lambda v, e: v > 4 * e, "a mean log-probability; it is ≤ 0")[0] * layout.loss_scale
        sigma = column(layout.sigma, lambda v, e: v < 0, "a standard deviation; it is ≥ 0")[0] * layout.loss_scale
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(sigma > 0, (-nll - mu) / sigma, 0.0)
        z[~use] = 0.0
    if rank1 is not None and scored is not None:
        rank1 &= scored
    return rank1, z


# -- per document ------------------------------------------------------------------------------
