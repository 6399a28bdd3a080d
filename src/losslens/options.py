"""The frozen set of options that says how to read and score one evaluation: every kind of input.

One tree, defaults in one place: the command line, config files and the Python API
(``losslens.evaluate``, ``losslens.lm.evaluate_lm``, ``run_job``) all build :class:`Options`;
each layout reads the fields it has (a token file ignores ``probs``, a classifier ``min_k``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from .errors import UsageError

#: Label columns tried in this order when ``label`` is not given.
DEFAULT_LABEL_COLUMNS = ("label", "y_true", "target", "y", "class", "true_label")
#: Prefixes of per-class probability columns; the longest matching prefix wins.
DEFAULT_PROB_PREFIXES = ("prob_of_", "proba_", "prob_", "p_")
#: Prefix of per-class logit columns.
DEFAULT_LOGIT_PREFIXES = ("logit_",)
#: Single-column binary layout: P(positive class).
DEFAULT_POSITIVE_PROB_COLUMNS = ("y_prob", "prob", "p", "score")
#: Example id columns tried in this order when ``id`` is not given.
DEFAULT_ID_COLUMNS = ("id", "example_id")
#: Split column used when ``split`` is not given.
DEFAULT_SPLIT_COLUMN = "split"
#: How many worst examples (documents, regressions) are kept: every kind of input, one default.
DEFAULT_WORST = 20
#: Thresholds every kind of input shares (classifier scopes, language-model documents).
DEFAULT_NEAR_ZERO = 0.01
DEFAULT_MAX_SLICES = 20
#: The options that name a language-model column: giving one says the inputs are language-model files.
LM_COLUMN_OPTIONS = ("document", "logprob", "nll", "mask")


@dataclass(frozen=True)
class Options:
    """How to read the columns of a prediction file and what to compute.

    Every field has the name of the command-line option it comes from (``--positive-prob``
    is ``positive_prob``). ``None`` means "detect".
    """

    label: str | None = None
    probs: str | None = None
    logits: str | None = None
    positive_prob: str | None = None
    positive_logit: str | None = None
    positive_label: str | None = None
    targets: str | None = None
    classes: tuple[str, ...] | None = None
    id: str | None = None
    weight: str | None = None
    split: str | None = None
    by: tuple[str, ...] = field(default_factory=tuple)
    #: Units sharing a value of this column (a passage, a template) are correlated: comparisons
    #: use clustered standard errors (``--cluster``).
    cluster: str | None = None
    renormalize: bool = False
    bins: int = 15
    worst: int = DEFAULT_WORST
    # Diagnostics thresholds (see losslens.diagnostics); each is a command-line option.
    near_zero: float = DEFAULT_NEAR_ZERO
    prior_shift: float = 0.05
    gap: float = 0.10
    confident_error: float = 1e-6
    small_sample: int = 30
    train_split: str | None = None
    max_slices: int = DEFAULT_MAX_SLICES
    bootstrap: int = 0
    seed: int = 0
    # Reading: None means detect (see losslens.reading.ReadOptions).
    encoding: str | None = None
    sep: str | None = None
    decimal: str | None = None
    format: str | None = None
    # Labels in a separate file, joined to the predictions on the id column.
    labels: str | None = None
    allow_missing_labels: bool = False
    # Language models (token and sequence files, lm-eval samples): see losslens.lm.layout.
    #: "tokens" or "sequences" (None: detect from the header).
    layout: str | None = None
    document: str | None = None
    logprob: str | None = None
    nll: str | None = None
    #: None: natural log; 2 for files in bits.
    log_base: float | None = None
    token: str | None = None
    mask: str | None = None
    text: str | None = None
    min_k: float = 0.2
    memorized_prob: float = 0.1
    #: A run on text known not to be in the training data: each contamination score's AUROC of
    #: this run's documents against its documents (:mod:`losslens.lm.contamination`).
    reference: str | None = None

    def __post_init__(self) -> None:
        self._check_classifier_options()
        self._check_language_model_options()

    @property
    def columns_given(self) -> bool:
        """Whether a language-model column was named (``--document``, ``--logprob``, ``--nll``, ``--mask``)."""
        return any(getattr(self, name) for name in LM_COLUMN_OPTIONS)

    def _check_classifier_options(self) -> None:
        # Accept lists from library callers and comma strings from config files alike.
        if isinstance(self.classes, str):
            object.__setattr__(self, "classes", tuple(split_list(self.classes)))
        elif self.classes is not None:
            object.__setattr__(self, "classes", tuple(str(c) for c in self.classes))
        if isinstance(self.by, str):
            object.__setattr__(self, "by", (self.by,))
        else:
            object.__setattr__(self, "by", tuple(self.by))
        given = [n for n in ("probs", "logits", "positive_prob", "positive_logit") if getattr(self, n)]
        if len(given) > 1:
            flags = " and ".join("--" + n.replace("_", "-") for n in given)
            raise UsageError(f"{flags} cannot be used together: give one prediction layout")
        if self.bins < 1:
            raise UsageError(f"--bins must be at least 1, got {self.bins}")
        if self.bootstrap < 0:
            raise UsageError(f"--bootstrap must be 0 or more, got {self.bootstrap}")
        if self.max_slices < 1:
            raise UsageError(f"--max-slices must be at least 1, got {self.max_slices}")
        if self.allow_missing_labels and not self.labels:
            raise UsageError("--allow-missing-labels needs --labels FILE")
        if self.labels and not self.id:
            raise UsageError("--labels needs --id COL: the column that pairs predictions with labels")
        if self.worst < 0:
            raise UsageError(f"--worst must be 0 or more, got {self.worst}")

    def _check_language_model_options(self) -> None:
        for name in ("log_base", "min_k", "memorized_prob"):
            value = getattr(self, name)
            if isinstance(value, str):  # a config file may give text
                try:
                    object.__setattr__(self, name, float(value))
                except ValueError:
                    raise UsageError(f"--{name.replace('_', '-')} must be a number, got {value!r}") from None
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

    @classmethod
    def from_kwargs(cls, **kwargs) -> "Options":
        """Build options from keyword arguments, rejecting unknown names with a clear error."""
        return from_known_kwargs(cls, kwargs)


def from_known_kwargs(cls, kwargs: dict):
    """``cls(**kwargs)`` for an options dataclass, naming unknown keywords and the known ones."""
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(kwargs) - known)
    if unknown:
        raise UsageError(f"unknown option(s) {', '.join(unknown)}; known options: {', '.join(sorted(known))}")
    return cls(**kwargs)


def split_list(text: str) -> list[str]:
    """Split ``"a, b,c"`` into ``["a", "b", "c"]``, dropping empty items."""
    return [item.strip() for item in text.split(",") if item.strip()]
