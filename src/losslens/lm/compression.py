"""The zlib-compressed length of a document's text, for the ``zlib_ratio`` contamination score.

Below :mod:`losslens.lm.documents` (which measures each document's text as it streams) and
:mod:`losslens.lm.evaluation` (which divides the mean token log-probability by it), apart from
the scores against a reference in :mod:`losslens.lm.contamination`, which sit above both.
"""

from __future__ import annotations

import math
import re
import zlib
from functools import lru_cache

import numpy as np

import losslens.lm.token_bytes as token_bytes


def zlib_length(text) -> float:
    """Bytes of ``zlib.compress(text.encode("utf-8"))`` (default level); NaN for no text."""
    if text is None:
        return math.nan
    data = text if isinstance(text, bytes) else str(text).encode("utf-8")
    return float(len(zlib.compress(data)))


_SPECIAL = re.compile(token_bytes.SPECIAL)


@lru_cache(maxsize=1)
def _byte_level_table() -> dict[int, str]:
    """``str.translate`` table: each character of GPT-2's byte-to-unicode table → the byte it stands for."""
    return {ord(c): chr(b) for c, b in token_bytes.unicode_to_bytes().items()}


def pieces_text(pieces: list, convention: str | None) -> bytes:
    """The UTF-8 text a document's token strings stand for, as ``decode(ids, skip_special_tokens=True)``.

    Special tokens are dropped, SentencePiece's dummy-prefix ``▁`` before the first word is not a
    space, and the byte-level BPE / SentencePiece markers are decoded as
    :func:`losslens.lm.token_bytes.readable` does (the bytes of characters split across tokens
    joined). Byte-level BPE takes a fast path (one ``str.translate`` of the joined pieces) when
    every character is in GPT-2's table.
    """
    kept = [p for p in pieces if p and not (p[0] == "<" and _SPECIAL.match(p))]
    if convention == token_bytes.SENTENCEPIECE and kept and kept[0].startswith(token_bytes.SPACE_MARK):
        kept[0] = kept[0][1:]
    if convention == token_bytes.BYTE_LEVEL:
        try:
            return "".join(kept).translate(_byte_level_table()).encode("latin-1")
        except UnicodeEncodeError:  # an added token stored as plain text: outside the table
            pass
    elif convention in (None, token_bytes.UTF8):
        return "".join(kept).encode("utf-8")
    return token_bytes.readable(kept, convention).encode("utf-8")


def zlib_ratios(mean_logprob: np.ndarray, compressed: np.ndarray | None) -> np.ndarray:
    """Mean token log-prob (nats) ÷ zlib-compressed bytes per document (NaN where either is unknown)."""
    if compressed is None:
        return np.full(len(mean_logprob), np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = mean_logprob / compressed
    return np.where(compressed > 0, out, np.nan)
