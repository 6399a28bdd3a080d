"""Decide, once, from a file's header which language-model layout it is and its columns.

Pure: takes column names, returns an :class:`LMLayout`. Every guess is written into
``notes`` so that the user sees what was detected and how to override it.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import InputError, UsageError
from .options import (
    DEFAULT_DOCUMENT_COLUMNS,
    DEFAULT_LOGPROB_COLUMNS,
    DEFAULT_MASK_COLUMNS,
    DEFAULT_NLL_COLUMNS,
    DEFAULT_SPLIT_COLUMN,
    DEFAULT_TEXT_COLUMNS,
    DEFAULT_TOKEN_COLUMNS,
    N_BYTES_COLUMN,
    N_TOKENS_COLUMN,
    N_WORDS_COLUMN,
    LMOptions,
)


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

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column to read, each once, in a fixed order."""
        wanted = (self.document, self.loss, self.n_tokens, self.n_bytes, self.n_words,
                  self.token, self.mask, self.text, self.split, *self.by)
        return tuple(dict.fromkeys(c for c in wanted if c is not None))

    def to_dict(self) -> dict:
        """Plain data for JSON."""
        return {
            "kind": self.kind, "document": self.document, "loss": self.loss,
            "loss_is_logprob": self.loss_sign < 0, "n_tokens": self.n_tokens,
            "n_bytes": self.n_bytes, "n_words": self.n_words, "token": self.token,
            "mask": self.mask, "text": self.text, "split": self.split, "by": list(self.by),
            "notes": list(self.notes),
        }


def _first(names, candidates):
    return next((c for c in candidates if c in names), None)


def _given(names, column, flag, source):
    if column is not None and column not in names:
        raise UsageError(f"{source}: {flag} {column!r} names no column; columns: {', '.join(names)}")
    return column


def looks_like_lm(names) -> bool:
    """True when the header has a document id and a log-prob or loss column but no classifier label."""
    return _first(names, DEFAULT_DOCUMENT_COLUMNS) is not None and (
        _first(names, DEFAULT_LOGPROB_COLUMNS + DEFAULT_NLL_COLUMNS) is not None
    )


def detect_lm_layout(names, options: LMOptions, source: str = "<data>") -> LMLayout:
    """Detect the token or sequence layout from the column names.

    Parameters
    ----------
    names : sequence of str
        The file's columns.
    options : LMOptions
        Explicit columns override detection.
    source : str
        The file, for messages.

    Returns
    -------
    LMLayout

    Raises
    ------
    InputError
        No document id or no log-prob / loss column.
    UsageError
        An explicitly named column does not exist.
    """
    names = list(names)
    notes = []
    document = _given(names, options.document, "--document", source) or _first(names, DEFAULT_DOCUMENT_COLUMNS)
    if document is None:
        raise InputError(
            f"{source}: no document id column; name one of {', '.join(DEFAULT_DOCUMENT_COLUMNS)} "
            "or pass --document COL"
        )
    if options.logprob:
        loss, sign = _given(names, options.logprob, "--logprob", source), -1
    elif options.nll:
        loss, sign = _given(names, options.nll, "--nll", source), 1
    else:
        loss = _first(names, DEFAULT_LOGPROB_COLUMNS)
        sign = -1
        if loss is None:
            loss, sign = _first(names, DEFAULT_NLL_COLUMNS), 1
        if loss is None:
            raise InputError(
                f"{source}: no log-probability or loss column; name one of "
                f"{', '.join(DEFAULT_LOGPROB_COLUMNS + DEFAULT_NLL_COLUMNS)} or pass --logprob / --nll COL"
            )
        notes.append(f"{'log-probabilities' if sign < 0 else 'losses'} from column {loss!r} "
                     f"(--logprob / --nll to choose another)")
    scale = 1.0
    if options.log_base is not None:
        import math

        scale = math.log(options.log_base)
        notes.append(f"values are in log base {options.log_base:g}; converted to nats")
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
    if mask:
        notes.append(f"rows with {mask!r} = 0 / False are not scored")
    n_bytes = N_BYTES_COLUMN if N_BYTES_COLUMN in names else None
    if n_bytes is None and token is not None:
        notes.append(f"bytes per token: UTF-8 length of {token!r}")
    text = _given(names, options.text, "--text", source) or _first(names, DEFAULT_TEXT_COLUMNS)
    split = _given(names, options.split, "--split", source) or (
        DEFAULT_SPLIT_COLUMN if DEFAULT_SPLIT_COLUMN in names else None)
    by = tuple(_given(names, c, "--by", source) for c in options.by)
    return LMLayout(
        kind=kind, document=document, loss=loss, loss_sign=sign, loss_scale=scale,
        n_tokens=n_tokens, n_bytes=n_bytes, n_words=N_WORDS_COLUMN if N_WORDS_COLUMN in names else None,
        token=token, mask=mask, text=text, split=split, by=by, notes=tuple(notes),
    )
