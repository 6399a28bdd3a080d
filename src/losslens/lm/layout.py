"""Decide, once, from a file's header which language-model layout it is and its columns.

Pure: takes column names, returns an :class:`LMLayout`. Every guess is written into
``notes`` so that the user sees what was detected and how to override it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import losslens.catalog as catalog
from ..errors import InputError, UsageError, where
from ..options import Options
from .options import (
    DEFAULT_DOCUMENT_COLUMNS,
    DEFAULT_LOGPROB_COLUMNS,
    DEFAULT_MASK_COLUMNS,
    DEFAULT_MU_COLUMNS,
    DEFAULT_NLL_COLUMNS,
    DEFAULT_RANK_COLUMNS,
    DEFAULT_SIGMA_COLUMNS,
    DEFAULT_SPLIT_COLUMN,
    DEFAULT_TEXT_COLUMNS,
    DEFAULT_TOKEN_COLUMNS,
    DEFAULT_TOP_LOGPROB_COLUMNS,
    LIST_LOGPROB_COLUMNS,
    LIST_NLL_COLUMNS,
    LIST_TOKEN_COLUMNS,
    N_BYTES_COLUMN,
    N_TOKENS_COLUMN,
    N_WORDS_COLUMN,
)
from .token_bytes import N_BYTES, describe


@dataclass(frozen=True)
class LMLayout:
    """Which columns of a token or sequence file mean what.

    ``loss_sign`` is -1 when the loss column holds log-probabilities (nll = −value) and +1
    when it holds losses; ``loss_scale`` converts the file's log base to nats.
    """

    kind: str  # "tokens" or "sequences"
    document: str
    loss: str
    loss_sign: int
    loss_scale: float
    n_tokens: str | None
    n_bytes: str | None
    n_words: str | None
    token: str | None
    mask: str | None
    text: str | None
    split: str | None
    by: tuple[str, ...]
    notes: tuple[str, ...]
    #: One row per document whose loss (token, n_bytes, mask) columns hold lists (Hugging Face
    #: ``datasets``); :mod:`losslens.lm.lists` flattens each batch to one row per token.
    lists: bool = False
    #: No document id column: documents are the rows, numbered from 0 (list layout only).
    row_ids: bool = False
    #: How bytes per token are counted (:mod:`losslens.lm.token_bytes`), None without bytes.
    token_bytes: str | None = None
    #: Per-token columns of the contamination scores (token layout only; see
    #: :mod:`losslens.lm.contamination`): the token's rank, the top token's log-prob, and the
    #: mean and standard deviation of log p over the vocabulary (same log base as the loss).
    rank: str | None = None
    top_logprob: str | None = None
    mu: str | None = None
    sigma: str | None = None

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column to read, each once, in a fixed order."""
        wanted = (None if self.row_ids else self.document, self.loss, self.n_tokens, self.n_bytes,
                  self.n_words, self.token, self.mask, self.text, self.split, *self.by,
                  self.rank, self.top_logprob, self.mu, self.sigma)
        return tuple(dict.fromkeys(c for c in wanted if c is not None))

    def flat(self) -> "LMLayout":
        """The layout of the flattened batches of a list layout (one row per token)."""
        return replace(self, lists=False, row_ids=False) if self.lists else self

    def to_dict(self) -> dict:
        """Plain data for JSON."""
        return {
            "kind": self.kind, "document": self.document, "loss": self.loss,
            "loss_is_logprob": self.loss_sign < 0,
            # The count columns' keys are the names of the metrics they sum into.
            catalog.N_TOKENS: self.n_tokens, catalog.N_BYTES: self.n_bytes, catalog.N_WORDS: self.n_words,
            "token": self.token,
            "mask": self.mask, "text": self.text, "split": self.split, "by": list(self.by),
            "lists": self.lists, "token_bytes": self.token_bytes, "rank": self.rank,
            "top_logprob": self.top_logprob, "mu": self.mu, "sigma": self.sigma, "notes": list(self.notes),
        }


def _first(names, candidates):
    return next((c for c in candidates if c in names), None)


def _given(names, column, flag, source):
    if column is not None and column not in names:
        raise UsageError(f"{source}: {flag} {column!r} names no column; columns: {', '.join(names)}")
    return column


#: The name documents get when they are identified by their row number.
ROW_ID = "row"


def _loss_column(names, options: Options, source: str, lists) -> tuple[str, int, list]:
    """The loss column, its sign (-1: log-probabilities) and the note saying which it is."""
    if options.logprob:
        return _given(names, options.logprob, "--logprob", source), -1, []
    if options.nll:
        return _given(names, options.nll, "--nll", source), 1, []
    plural_lp = tuple(c for c in LIST_LOGPROB_COLUMNS if c in lists)
    plural_nll = tuple(c for c in LIST_NLL_COLUMNS if c in lists)
    loss, sign = _first(names, DEFAULT_LOGPROB_COLUMNS + plural_lp), -1
    if loss is None:
        loss, sign = _first(names, DEFAULT_NLL_COLUMNS + plural_nll), 1
    if loss is None:
        raise InputError(
            f"{source}: no log-probability or loss column; name one of "
            f"{', '.join(DEFAULT_LOGPROB_COLUMNS + DEFAULT_NLL_COLUMNS)} or pass --logprob / --nll COL"
        )
    return loss, sign, [f"{'log-probabilities' if sign < 0 else 'losses'} from column {loss!r} "
                        f"(--logprob / --nll to choose another)"]


def _list_layout(names, options: Options, source: str, lists, loss: str) -> dict:
    """The columns of a list layout: one row per document, a list of token log-probs in ``loss``."""
    if options.layout == "sequences":
        raise UsageError(f"{source}: column {loss!r} holds a list per row, one per token: "
                         "that is the token layout, not --layout sequences")
    document = _given(names, options.document, "--document", source) or next(
        (c for c in DEFAULT_DOCUMENT_COLUMNS if c in names and c not in lists), None)
    token = _given(names, options.token, "--token", source) or _first(
        [c for c in names if c in lists], DEFAULT_TOKEN_COLUMNS + LIST_TOKEN_COLUMNS)
    mask = _given(names, options.mask, "--mask", source) or _first(names, DEFAULT_MASK_COLUMNS)
    n_bytes = N_BYTES_COLUMN if N_BYTES_COLUMN in names else None
    for column in (token, mask, n_bytes):
        if column is not None and column not in lists:
            raise InputError(f"{where(source, column)}: one value per row, but {loss!r} holds a list of "
                             f"token log-probs per row; {column!r} must hold a list per row too "
                             "(one item per token)")
    notes = [f"list layout (Hugging Face datasets): one row per document, one item of {loss!r} per token"
             + (f", documents identified by {document!r}" if document else
                f", documents identified by their row number from 0 (shown as {ROW_ID!r})")]
    return dict(document=document or ROW_ID, row_ids=document is None, token=token, mask=mask,
                n_bytes=n_bytes, notes=notes)


def detect_lm_layout(names, options: Options, source: str = "<data>", list_columns=()) -> LMLayout:
    """Detect the token or sequence layout from the column names.

    Parameters
    ----------
    names : sequence of str
        The file's columns.
    options : Options
        Explicit columns override detection.
    source : str
        The file, for messages.
    list_columns : collection of str
        The columns holding a list per row (from the file's schema): a loss column among them
        makes the list layout (one row per document, see :func:`_list_layout`).

    Returns
    -------
    LMLayout
        ``token_bytes`` is ``n_bytes`` with an ``n_bytes`` column and None otherwise: the token
        strings' convention is read from the data (:func:`losslens.lm.engine.lm_layout_of`).

    Raises
    ------
    InputError
        No document id or no log-prob / loss column.
    UsageError
        An explicitly named column does not exist.
    """
    names = list(names)
    lists = frozenset(list_columns)
    loss, sign, notes = _loss_column(names, options, source, lists)
    if loss in lists:
        found = _list_layout(names, options, source, lists, loss)
        notes += found.pop("notes")
        return _finish(names, options, source, loss, sign, notes, kind="tokens", lists=True, **found)
    document = _given(names, options.document, "--document", source) or _first(names, DEFAULT_DOCUMENT_COLUMNS)
    if document is None:
        raise InputError(
            f"{source}: no document id column; name one of {', '.join(DEFAULT_DOCUMENT_COLUMNS)} "
            "or pass --document COL"
        )
    n_tokens = N_TOKENS_COLUMN if N_TOKENS_COLUMN in names else None
    kind = options.layout or ("sequences" if n_tokens else "tokens")
    if kind == "tokens" and n_tokens is not None:
        notes.append(f"column {N_TOKENS_COLUMN!r} ignored in the token layout")
        n_tokens = None
    if options.layout is None:
        notes.append(
            "sequence layout: one row per document (column 'n_tokens')" if kind == "sequences"
            else f"token layout: one row per scored token of document {document!r}"
        )
    token = _given(names, options.token, "--token", source) or (
        _first(names, DEFAULT_TOKEN_COLUMNS) if kind == "tokens" else None)
    mask = _given(names, options.mask, "--mask", source) or (
        _first(names, DEFAULT_MASK_COLUMNS) if kind == "tokens" else None)
    layout = _finish(names, options, source, loss, sign, notes, kind=kind, document=document, token=token,
                     mask=mask, n_tokens=n_tokens, n_bytes=N_BYTES_COLUMN if N_BYTES_COLUMN in names else None)
    return _score_columns(names, layout) if kind == "tokens" else layout


def _score_columns(names, layout: LMLayout) -> LMLayout:
    """The token layout's rank / top log-prob / mu / sigma columns, with a note on what they give."""
    rank, top = _first(names, DEFAULT_RANK_COLUMNS), _first(names, DEFAULT_TOP_LOGPROB_COLUMNS)
    mu, sigma = _first(names, DEFAULT_MU_COLUMNS), _first(names, DEFAULT_SIGMA_COLUMNS)
    notes = []
    if rank or top:
        notes.append(f"rank-1 share from column {rank or top!r}"
                     + (" (rank 1 = the most probable token)" if rank else " (rank 1 = log-prob equal to it)"))
    if mu and sigma:
        notes.append(f"Min-K%++ from columns {mu!r} (mean of log p over the vocabulary) and {sigma!r} "
                     "(its standard deviation)")
    else:
        missing = " and ".join(f"{kind} ({', '.join(map(repr, columns))})" for kind, columns, found in (
            ("the mean of log p over the vocabulary", DEFAULT_MU_COLUMNS, mu),
            ("its standard deviation", DEFAULT_SIGMA_COLUMNS, sigma)) if not found)
        notes.append(f"Min-K%++ cannot be computed: no column for {missing} under the model's next-token "
                     "distribution")
        mu = sigma = None
    return replace(layout, rank=rank, top_logprob=None if rank else top, mu=mu, sigma=sigma,
                   notes=layout.notes + tuple(notes))


def _finish(names, options: Options, source: str, loss: str, sign: int, notes: list, *, kind: str,
            document: str, token, mask, n_bytes, n_tokens=None, lists=False, row_ids=False) -> LMLayout:
    """The columns every layout shares (scale, split, slices, text), and the layout."""
    scale = 1.0
    if options.log_base is not None:
        import math

        scale = math.log(options.log_base)
        notes.append(f"values are in log base {options.log_base:g}; converted to nats")
    if mask:
        notes.append(f"rows with {mask!r} = 0 / False are not scored" if not lists
                     else f"tokens with {mask!r} = 0 / False are not scored")
    if n_bytes is not None:
        notes.append(describe(N_BYTES, token, n_bytes))
    text = _given(names, options.text, "--text", source) or _first(names, DEFAULT_TEXT_COLUMNS)
    split = _given(names, options.split, "--split", source) or (
        DEFAULT_SPLIT_COLUMN if DEFAULT_SPLIT_COLUMN in names else None)
    by = tuple(_given(names, c, "--by", source) for c in options.by)
    return LMLayout(
        kind=kind, document=document, loss=loss, loss_sign=sign, loss_scale=scale,
        n_tokens=n_tokens, n_bytes=n_bytes,
        n_words=N_WORDS_COLUMN if N_WORDS_COLUMN in names and not lists else None,
        token=token, mask=mask, text=text, split=split, by=by, notes=tuple(notes),
        lists=lists, row_ids=row_ids, token_bytes=N_BYTES if n_bytes is not None else None,
    )
