"""The neutral per-task input every harness adapter produces and :func:`losslens.lm.lm_eval.evaluate_task` scores.

Below the adapters (:mod:`losslens.lm.harness`: inspect-ai and HELM; :mod:`losslens.lm.harness_more`:
lighteval and vLLM) so that each imports it and none imports another.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ChoiceUnit:
    """One multiple-choice question: its choices' log-likelihoods and the gold index.

    ``sample`` is the id the checkpoint comparison pairs on (the harness's sample id; several
    units share it when a harness repeats a sample, e.g. inspect's epochs). ``lengths`` divide the
    log-likelihoods for ``acc_norm`` (None: the harness defines no length normalisation).
    ``logged`` holds the harness's own per-unit figures (``{"acc": 1.0}``) to check;
    ``metadata`` what ``--by`` and ``--cluster`` can name by dotted path (inspect-ai
    ``metadata.subject``, lm-eval ``doc.subject``, HELM ``split``).
    """

    id: object
    gold: int
    loglikelihoods: tuple[float, ...]
    lengths: tuple[float, ...] | None = None
    logged: dict = field(default_factory=dict)
    sample: object = None
    metadata: dict = field(default_factory=dict)


@dataclass(frozen=True)
class LikelihoodUnit:
    """One loglikelihood request: the continuation's log-likelihood and whether it is greedy."""

    id: object
    loglikelihood: float
    is_greedy: bool
    logged: dict = field(default_factory=dict)


@dataclass(frozen=True)
class DocumentUnit:
    """One scored document: its tokens' log-probs and bytes, or (lm-eval's rolling tasks) only the
    summed negative log-likelihood with word and byte counts."""

    id: object
    nll: float | None = None
    n_words: float | None = None
    n_bytes: float | None = None
    token_logprobs: tuple[float, ...] | None = None
    token_bytes: tuple[bytes, ...] | None = None
    logged: dict = field(default_factory=dict)
    sample: object = None


@dataclass(frozen=True)
class HarnessTask:
    """The neutral input of :func:`losslens.lm.lm_eval.evaluate_task`: one task of one harness.

    ``output_type`` is ``multiple_choice`` (:class:`ChoiceUnit`), ``loglikelihood``
    (:class:`LikelihoodUnit`), ``loglikelihood_rolling`` (:class:`DocumentUnit` with sums only,
    scored as a sequence file) or ``tokens`` (:class:`DocumentUnit` with token log-probs, scored
    as a token file); ``generate_until`` has nothing to score. ``checks`` maps a recomputed
    metric to the key of ``logged`` it must agree with.
    """

    harness: str
    version: str | None
    task: str
    group: str
    source: str
    output_type: str
    units: tuple
    logged: dict
    notes: tuple[str, ...] = ()
    checks: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        """The harness and its version, as notes and tables name it."""
        return f"{self.harness} {self.version}" if self.version else self.harness
