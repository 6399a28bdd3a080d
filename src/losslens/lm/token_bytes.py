"""How many bytes of text each token string stands for (bits per byte without an ``n_bytes`` column).

Token strings come in three conventions, told apart per file from its first batch
(:func:`detect_convention`) and then applied to every batch (:func:`count_bytes`):

- ``byte_level_bpe``: ``tokenizer.convert_ids_to_tokens`` of a byte-level BPE (GPT-2, RoBERTa,
  Llama 3, Qwen...): every byte of the text is one character of GPT-2's byte-to-unicode table
  (:func:`bytes_to_unicode`: ``Ġ`` is a space, ``Ċ`` a newline, ``Ã©`` the two bytes of ``é``),
  so a token's bytes are its characters, exactly.
- ``sentencepiece``: SentencePiece pieces (Llama 2, Mistral, T5): ``▁`` is one space byte,
  ``<0xNN>`` one byte, other text its UTF-8 length; the ``▁`` SentencePiece adds before a
  document's first word (``add_dummy_prefix``, which ``decode`` drops) counts none.
- ``utf8``: text (tokens decoded to strings): UTF-8 length.

Special tokens (``<s>``, ``</s>``, ``<|endoftext|>``...) count 0 bytes in every convention, so a
document's bytes are those of ``tokenizer.decode(ids, skip_special_tokens=True)``. Text decoded one
token at a time holds U+FFFD wherever a character's bytes are split across tokens; its bytes cannot
be known (``b"\\xe6\\x97"`` and ``b"\\xa5"`` decode to one and one U+FFFD, ``b"\\xe6"`` and
``b"\\x97\\xa5"`` to one and two), so such a batch has no byte counts (:data:`LOSSY`) and bits per
byte is refused rather than guessed.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pyarrow as pa

UTF8 = "utf8"
BYTE_LEVEL = "byte_level_bpe"
SENTENCEPIECE = "sentencepiece"
N_BYTES = "n_bytes"
LOSSY = "lossy"

REPLACEMENT = "\ufffd"
SPACE_MARK = "\u2581"  # ▁
#: Whole tokens that are special tokens: no text, 0 bytes.
SPECIAL = r"^(<\|[^\s|]*\|>|</?(s|unk|pad|bos|eos|mask)>)$"
#: A SentencePiece byte-fallback piece.
BYTE_PIECE = r"^<0x[0-9A-Fa-f]{2}>$"
#: A character outside GPT-2's byte-to-unicode table (whose characters are U+0021-U+007E,
#: U+00A1-U+00AC, U+00AE-U+00FF and U+0100-U+0143). RE2 syntax (pyarrow.compute).
OUTSIDE_TABLE = r"[^\x{21}-\x{7e}\x{a1}-\x{ac}\x{ae}-\x{143}]"
#: The table's stand-ins for bytes that are not printable Latin-1 (Ġ for a space, Ċ for a newline).
SHIFTED = r"[\x{100}-\x{143}]"

DESCRIPTIONS = {
    N_BYTES: "bytes from column {n_bytes!r}",
    UTF8: "bytes per token: UTF-8 length of the text in {token!r}",
    BYTE_LEVEL: ("bytes per token: {token!r} holds byte-level BPE strings (GPT-2's byte-to-unicode "
                 "markers, 'Ġ' a space, 'Ċ' a newline): one byte per character, exactly"),
    SENTENCEPIECE: ("bytes per token: {token!r} holds SentencePiece pieces: '▁' one space byte, "
                    "'<0xNN>' one byte, other text its UTF-8 length; the '▁' before a document's "
                    "first word, which SentencePiece adds and decode() drops, none"),
    LOSSY: ("bytes per token unknown: {token!r} holds U+FFFD (tokens decoded one at a time lose the "
            "bytes of characters split across tokens): bits per byte is not computed; add an "
            "'n_bytes' column (or give the convert_ids_to_tokens strings)"),
}
SPECIAL_NOTE = "; special tokens such as <s>, </s>, <|endoftext|> count 0 bytes"


@lru_cache(maxsize=1)
def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte-to-unicode table: byte value → the character that stands for it.

    Printable Latin-1 bytes stand for themselves; the other 68 (control characters, space,
    DEL, NBSP, soft hyphen...) for U+0100 onwards, in byte order (as in OpenAI's ``encoder.py``).
    """
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table, shifted = {}, 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + shifted)
            shifted += 1
    return table


@lru_cache(maxsize=1)
def unicode_to_bytes() -> dict[str, int]:
    """The inverse of :func:`bytes_to_unicode`."""
    return {c: b for b, c in bytes_to_unicode().items()}


def _strings(tokens: "pa.Array") -> "pa.Array":
    import pyarrow as pa
    import pyarrow.compute as pc

    if not (pa.types.is_string(tokens.type) or pa.types.is_large_string(tokens.type)):
        tokens = pc.cast(tokens, pa.string())
    return tokens.fill_null("")


def _flags(tokens: pa.Array, pattern: str, regex: bool = True) -> np.ndarray:
    import pyarrow.compute as pc

    found = pc.match_substring_regex(tokens, pattern) if regex else pc.match_substring(tokens, pattern)
    return np.asarray(found.to_numpy(zero_copy_only=False), dtype=bool)


def _special(tokens: "pa.Array") -> np.ndarray:
    """Whole special tokens; the regular expression runs only on tokens in angle brackets (fast)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    bracketed = np.asarray(pc.and_(pc.starts_with(tokens, "<"), pc.ends_with(tokens, ">"))
                           .to_numpy(zero_copy_only=False), dtype=bool)
    out = np.zeros(len(tokens), dtype=bool)
    if bracketed.any():
        rows = np.flatnonzero(bracketed)
        out[rows] = _flags(tokens.take(pa.array(rows)), SPECIAL)
    return out


def detect_convention(tokens: pa.Array) -> str:
    """Which convention the token strings of a file's first batch follow (see the module docstring).

    Byte-level BPE needs every token inside GPT-2's table *and* some of the table's shifted
    characters (``Ġ``, ``Ċ``): text decoded to strings has spaces, which the table has not, so
    ordinary text with a rare ``Ġ`` is never taken for it. SentencePiece needs ``▁`` or ``<0xNN>``
    pieces and no space anywhere. Anything else is text (UTF-8); U+FFFD makes it :data:`LOSSY`.
    """
    import pyarrow as pa

    tokens = _strings(tokens)
    tokens = tokens.filter(pa.array(~_special(tokens)))
    if len(tokens) == 0:
        return UTF8
    if _flags(tokens, REPLACEMENT, regex=False).any():
        return LOSSY
    if not _flags(tokens, OUTSIDE_TABLE).any() and _flags(tokens, SHIFTED).any():
        return BYTE_LEVEL
    if not _flags(tokens, " ", regex=False).any() and (
            _flags(tokens, SPACE_MARK, regex=False).any() or _flags(tokens, BYTE_PIECE).any()):
        return SENTENCEPIECE
    return UTF8


def describe(convention: str, token: str | None, n_bytes: str | None) -> str:
    """The layout note that says how bytes were counted."""
    text = DESCRIPTIONS[convention].format(token=token, n_bytes=n_bytes)
    return text + SPECIAL_NOTE if convention in (UTF8, BYTE_LEVEL, SENTENCEPIECE) else text


def first_lossy(tokens: pa.Array, scored: np.ndarray | None) -> int | None:
    """Index of the first scored token holding U+FFFD, or None."""
    lossy = _flags(_strings(tokens), REPLACEMENT, regex=False)
    if scored is not None:
        lossy &= scored
    return int(np.flatnonzero(lossy)[0]) if lossy.any() else None


def count_bytes(tokens: pa.Array, convention: str, starts: np.ndarray | None = None) -> np.ndarray:
    """Bytes of text per token, as float64, under ``convention``.

    Parameters
    ----------
    tokens : pyarrow.Array
        Token strings (null: 0 bytes).
    convention : str
        :data:`UTF8`, :data:`BYTE_LEVEL` or :data:`SENTENCEPIECE`.
    starts : numpy.ndarray of bool, optional
        Rows that begin a document (SentencePiece: the dummy-prefix ``▁`` of a document's first
        text token counts 0 bytes).

    Returns
    -------
    numpy.ndarray
    """
    import pyarrow.compute as pc

    tokens = _strings(tokens)
    if convention == BYTE_LEVEL:
        # Inside the table a character is one byte; characters outside it (added tokens
        # stored as plain text) count their UTF-8 length, found one token at a time.
        counts = np.asarray(pc.utf8_length(tokens).to_numpy(zero_copy_only=False), dtype=np.float64)
        table = unicode_to_bytes()
        for i in np.flatnonzero(_flags(tokens, OUTSIDE_TABLE)).tolist():
            text = tokens[i].as_py()
            counts[i] = sum(1 if c in table else len(c.encode("utf-8")) for c in text)
    else:
        counts = np.asarray(pc.binary_length(tokens).to_numpy(zero_copy_only=False), dtype=np.float64)
    if convention == SENTENCEPIECE:
        marks = np.asarray(pc.count_substring(tokens, SPACE_MARK).to_numpy(zero_copy_only=False), dtype=np.float64)
        counts -= 2 * marks  # '▁' is 3 bytes of UTF-8 and stands for one space
        counts[_flags(tokens, BYTE_PIECE)] = 1.0
    special = _special(tokens)
    counts[special] = 0.0
    if convention == SENTENCEPIECE and starts is not None and starts.any():
        counts -= _dummy_prefixes(tokens, starts, special)
    return counts


def _dummy_prefixes(tokens: pa.Array, starts: np.ndarray, special: np.ndarray) -> np.ndarray:
    """1 at each document's first non-special token when it begins with '▁', else 0."""
    import pyarrow.compute as pc

    begins = np.asarray(pc.starts_with(tokens, SPACE_MARK).to_numpy(zero_copy_only=False), dtype=bool)
    out = np.zeros(len(tokens))
    n = len(tokens)
    for s in np.flatnonzero(starts).tolist():
        i = s
        while i < n and special[i] and not (i > s and starts[i]):
            i += 1  # past <s> and the like, within the document
        if i < n and (i == s or not starts[i]) and begins[i]:
            out[i] = 1.0
    return out


def readable(pieces: list, convention: str | None) -> str:
    """Token strings joined into the text they stand for (for snippets): markers decoded."""
    import re

    table = unicode_to_bytes()
    raw = bytearray()
    for piece in pieces:
        piece = piece or ""
        if convention == BYTE_LEVEL:
            for c in piece:
                raw += bytes([table[c]]) if c in table else c.encode("utf-8")
        elif convention == SENTENCEPIECE and re.fullmatch(BYTE_PIECE, piece):
            raw.append(int(piece[3:5], 16))
        elif convention == SENTENCEPIECE:
            raw += piece.replace(SPACE_MARK, " ").encode("utf-8")
        else:
            raw += piece.encode("utf-8")
    return raw.decode("utf-8", errors="replace")
