"""A small character n-gram language model trained on text that ships with Python.

Used by the language-model tests (and by tests/data/lm_eval/make_fixtures.py) so that expected
values come from a real model on real text: the Zen of Python (the ``this`` module) is the
training text, docstrings of standard-library modules are the held-out documents.
"""

from __future__ import annotations

import codecs
import math
from collections import Counter, defaultdict


def zen_of_python() -> str:
    """The text of ``import this``, decoded from the module's ROT13 without printing it."""
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):  # importing `this` prints the poem
        import this
    return codecs.decode(this.s, "rot13")


def held_out_documents() -> dict[str, str]:
    """A few standard-library docstrings: real English text the model has not seen."""
    import csv
    import json
    import string
    import textwrap
    import fractions
    import heapq

    modules = [json, csv, string, textwrap, fractions, heapq]
    return {m.__name__: " ".join(m.__doc__.split()) for m in modules if m.__doc__}


class CharNGram:
    """Character n-gram model with recursive Dirichlet smoothing down to an add-one unigram.

    ``p_n(c | h) = (C(h c) + α·p_{n−1}(c | h[1:])) / (C(h) + α)``; the closed vocabulary is every
    character of the training and evaluation texts plus one unknown symbol, so that each
    conditional distribution sums to 1.
    """

    def __init__(self, order: int, alpha: float = 1.0):
        self.order = order
        self.alpha = alpha

    def fit(self, text: str, vocabulary: str) -> "CharNGram":
        self.vocab = sorted(set(vocabulary) | set(text)) + ["\uffff"]
        self.unigram = Counter(text)
        self.total = len(text)
        self.counts = [defaultdict(Counter) for _ in range(self.order + 1)]
        padded = "\x02" * self.order + text
        for i in range(self.order, len(padded)):
            for n in range(1, self.order + 1):
                self.counts[n][padded[i - n:i]][padded[i]] += 1
        return self

    def prob(self, history: str, char: str) -> float:
        p = (self.unigram.get(char, 0) + 1) / (self.total + len(self.vocab))
        for n in range(1, self.order + 1):
            h = history[-n:] if len(history) >= n else None
            if h is None:
                break
            table = self.counts[n].get(h)
            seen = sum(table.values()) if table else 0
            p = ((table.get(char, 0) if table else 0) + self.alpha * p) / (seen + self.alpha)
        return p

    def token_logprobs(self, text: str) -> list[float]:
        """Natural-log probability of each character given the ones before it."""
        padded = "\x02" * self.order + text
        return [math.log(self.prob(padded[: self.order + i], text[i])) for i in range(len(text))]
