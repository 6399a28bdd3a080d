"""Column names and warning codes of the language-model layouts (token and sequence files, lm-eval samples).

Their options are fields of the one :class:`losslens.options.Options` (``document``, ``min_k``, ...).
"""

from __future__ import annotations

from ..options import Options
from ..catalog import N_BYTES, N_TOKENS, N_WORDS, TRAIN_EVAL_GAP

#: Document id columns tried in this order when ``document`` is not given.
DEFAULT_DOCUMENT_COLUMNS = ("doc_id", "document", "seq_id", "sequence_id")
#: Natural-log probability columns of the token layout (or the summed one of the sequence layout).
DEFAULT_LOGPROB_COLUMNS = ("logprob", "token_logprob", "log_prob")
#: Columns holding the negative log-probability (the loss) instead.
DEFAULT_NLL_COLUMNS = ("nll", "loss")
#: Further names of a list column of log-probabilities / losses / token strings (one list per
#: document, as Hugging Face ``datasets`` writes them); the singular names work too.
LIST_LOGPROB_COLUMNS = ("logprobs", "token_logprobs", "log_probs")
LIST_NLL_COLUMNS = ("nlls", "losses")
LIST_TOKEN_COLUMNS = ("tokens",)
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


#: The options of every kind are one dataclass (:class:`losslens.options.Options`, defaults in one
#: place); ``LMOptions`` is its old name, kept for scripts that import it.
LMOptions = Options
