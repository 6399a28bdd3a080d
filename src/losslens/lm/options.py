"""The frozen options of the language-model layouts (token and sequence files, lm-eval samples)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import UsageError
from ..options import DEFAULT_MAX_SLICES, DEFAULT_NEAR_ZERO, DEFAULT_WORST, from_known_kwargs
from ..catalog import N_BYTES, N_TOKENS, N_WORDS, TRAIN_EVAL_GAP

#: Document id columns tried in this order when ``document`` is not given.
DEFAULT_DOCUMENT_COLUMNS = ("doc_id", "document", "seq_id", "sequence_id")
#: Natural-log probability columns of the token layout (or the summed one of the sequence layout).
DEFAULT_LOGPROB_COLUMNS = ("logprob", "token_logprob", "log_prob")
#: Columns holding the negative log-probability (the loss) instead.
DEFAULT_NLL_COLUMNS = ("nll", "loss")
#: Mask columns: rows with 0 / False are padding or prompt and are not scored.
DEFAULT_MASK_COLUMNS = ("mask", "attention_mask", "loss_mask")
#: Token text column (its UTF-8 length gives the bytes when there is no ``n_bytes``).
DEFAULT_TOKEN_COLUMNS = ("token",)
#: Document text column of the sequence layout (for snippets of the worst / best documents).
DEFAULT_TEXT_COLUMNS = ("text",)
#: Per-token columns of the contamination scores (:mod:`losslens.lm.contamination`): the token's
#: rank under the model (1 = the most probable token), the top token's log-prob, and the mean and
#: standard deviation of log p over the vocabulary under the next-token distribution (Min-K%++).
DEFAULT_RANK_COLUMNS = ("rank", "token_rank")
DEFAULT_TOP_LOGPROB_COLUMNS = ("top_logprob",)
DEFAULT_MU_COLUMNS = ("mu", "logprob_mean", "mean_logprob")
DEFAULT_SIGMA_COLUMNS = ("sigma", "logprob_std", "std_logprob")
#: A column with this name makes the file a sequence layout (one row per document). The count
#: columns carry the names of the metrics they sum into (the catalog's), so they are not spelled here.
N_TOKENS_COLUMN = N_TOKENS
N_BYTES_COLUMN = N_BYTES
N_WORDS_COLUMN = N_WORDS
DEFAULT_SPLIT_COLUMN = "split"
#: The stable codes of the language-model warnings (``--fail-on-warning`` takes them); a warning
#: about one figure is named after it (``train_eval_gap``).
LM_WARNING_CODES = ("memorized_documents", "worse_than_prior", "empty_documents", "inconsistent_samples",
                    "bytes_unknown", "near_zero_train_loss", TRAIN_EVAL_GAP, "eval_loss_rising")


#: Options only language-model inputs have (their command-line flags: ``--document``, ``--log-base``...).
LM_ONLY_OPTIONS = ("document", "logprob", "nll", "log_base", "mask", "min_k", "memorized_prob", "reference")
#: Of those, the ones that name columns: giving one says the inputs are language-model files.
LM_COLUMN_OPTIONS = ("document", "logprob", "nll", "mask")


@dataclass(frozen=True)
class LMOptions:
    """How to read a token or sequence file and what to compute.

    Field names are the command line's (``--log-base`` is ``log_base``); ``None`` means detect.
    """

    layout: str | None = None  # "tokens" or "sequences"
    document: str | None = None
    logprob: str | None = None
    nll: str | None = None
    log_base: float | None = None  # None: natural log; 2 for files in bits
    token: str | None = None
    mask: str | None = None
    text: str | None = None
    split: str | None = None
    by: tuple[str, ...] = field(default_factory=tuple)
    min_k: float = 0.2
    memorized_prob: float = 0.1
    near_zero: float = DEFAULT_NEAR_ZERO
    worst: int = DEFAULT_WORST
    max_slices: int = DEFAULT_MAX_SLICES
    #: A run on text known not to be in the training data: each contamination score's AUROC of
    #: this run's documents against its documents (:mod:`losslens.lm.contamination`).
    reference: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "by", (self.by,) if isinstance(self.by, str) else tuple(self.by))
        if self.layout not in (None, "tokens", "sequences"):
            raise UsageError(f"--layout must be 'tokens' or 'sequences', got {self.layout!r}")
        if self.logprob and self.nll:
            raise UsageError("--logprob and --nll cannot be used together: give one loss column")
        if not 0 < self.min_k <= 1:
            raise UsageError(f"--min-k must be in (0, 1], got {self.min_k}")
        if not 0 < self.memorized_prob <= 1:
            raise UsageError(f"--memorized-prob must be in (0, 1], got {self.memorized_prob}")
        if self.log_base is not None and not (self.log_base > 0 and self.log_base != 1):
            raise UsageError(f"--log-base must be positive and not 1, got {self.log_base}")
        if self.worst < 0:
            raise UsageError(f"--worst must be 0 or more, got {self.worst}")

    @property
    def columns_given(self) -> bool:
        """Whether a language-model column was named (``--document``, ``--logprob``, ``--nll``, ``--mask``)."""
        return any(getattr(self, name) for name in LM_COLUMN_OPTIONS)

    @classmethod
    def from_kwargs(cls, **kwargs) -> "LMOptions":
        """Build options from keyword arguments, rejecting unknown names with a clear error."""
        return from_known_kwargs(cls, kwargs)


def lm_options_of(values: dict, options) -> LMOptions:
    """The language-model options of a job: its own flags from ``values``, the shared ones from ``options``.

    Parameters
    ----------
    values : dict
        Option values by name (the command line's, a config file's); only
        :data:`LM_ONLY_OPTIONS` are read, None meaning "not given".
    options : losslens.options.Options
        The shared options: ``split``, ``by``, ``near_zero``, ``worst``, ``max_slices``.

    Returns
    -------
    LMOptions
    """
    given = {k: values[k] for k in LM_ONLY_OPTIONS if values.get(k) is not None}
    for name in ("log_base", "min_k", "memorized_prob"):
        if name in given:
            try:
                given[name] = float(given[name])  # a config file may give text
            except (TypeError, ValueError):
                raise UsageError(f"--{name.replace('_', '-')} must be a number, got {given[name]!r}") from None
    return LMOptions(split=options.split, by=tuple(options.by), near_zero=options.near_zero,
                     worst=options.worst, max_slices=options.max_slices, **given)
