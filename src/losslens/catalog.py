"""The metric catalog: one entry per metric, read by every reporter, the gates and the baseline.

Pure data. A metric's JSON name, its label, unit, decimals, which direction is better and
which layouts have it are written here once; the terminal, the HTML page, the comparison of
runs, the baseline's regression rule and ``--fail-if`` all read them from here. The numbers
themselves are computed in :mod:`losslens.evaluation`.

Adding a metric: give :class:`losslens.evaluation.Metrics` the field (and compute it there),
then add one :class:`Metric` entry to :data:`METRICS` below, in the position it should take in
tables and in the JSON's ``metric_deltas``. ``tests/test_catalog.py`` fails until both exist.
A module other than the computation that needs a metric's name imports its constant from here
(``LOG_LOSS``) or loops over a view; ``tests/test_metric_names.py`` fails on a third spelling.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The layouts of prediction files (see :mod:`losslens.schema` and ``docs/architecture.md``).
CLASSIFIER, TOKENS, SEQUENCES, MULTIPLE_CHOICE = "classifier", "tokens", "sequences", "multiple_choice"
#: lm-evaluation-harness ``loglikelihood`` tasks (one continuation per document, e.g. lambada).
LOGLIKELIHOOD = "loglikelihood"
ALL_LAYOUTS = frozenset({CLASSIFIER, TOKENS, SEQUENCES, MULTIPLE_CHOICE, LOGLIKELIHOOD})
#: Token and sequence files (see :mod:`losslens.lm`).
LANGUAGE_MODEL = frozenset({TOKENS, SEQUENCES})
#: Layouts with one example per row (a question of a multiple-choice task is one example).
EXAMPLES = frozenset({CLASSIFIER, MULTIPLE_CHOICE})
#: Layouts with top-label calibration and a temperature fit (a question is one example).
CALIBRATED = frozenset({CLASSIFIER, MULTIPLE_CHOICE})
#: Layouts with a per-token (or per-question) log loss.
LOSS = frozenset({CLASSIFIER, TOKENS, SEQUENCES, MULTIPLE_CHOICE})
#: A Hugging Face Trainer run: its logged loss curves (see :mod:`losslens.lm.trainer_run`).
TRAINER = "trainer"

#: How a value is printed: a number with decimals, a whole count, a share in percent, or a
#: 95% interval (a pair; not a gate metric).
NUMBER, COUNT, SHARE, INTERVAL = "number", "count", "share", "interval"


@dataclass(frozen=True)
class Metric:
    """One metric of a scope (a run, a split, a slice value), as every reporter shows it.

    Attributes
    ----------
    name : str
        The JSON key in ``overall`` / ``by_split`` and the name ``--fail-if`` takes.
    label : str
        A short heading for tables (terminal and HTML).
    unit : str
        ``nats``, ``bits`` or empty.
    decimals : int
        Decimals printed (shares: decimals of the percentage).
    better : str or None
        ``lower`` or ``higher`` is better; None for counts and properties of the data. The
        baseline flags a change in the worse direction as a regression.
    kind : str
        :data:`NUMBER`, :data:`COUNT` or :data:`SHARE`.
    layouts : frozenset of str
        The layouts whose results have this metric.
    soft_only : bool
        Defined only with soft targets (``--targets``).
    help : str
        The tooltip of the metric's table column (the unit, or what the label abbreviates).
    """

    name: str
    label: str
    unit: str = ""
    decimals: int = 4
    better: str | None = None
    kind: str = NUMBER
    layouts: frozenset = frozenset({CLASSIFIER})
    soft_only: bool = False
    help: str = ""


#: JSON names that other modules spell: they import these, so each name is written once, here.
N_EXAMPLES = "n_examples"
LOG_LOSS = "log_loss"
CROSS_ENTROPY_BITS = "cross_entropy_bits"
PERPLEXITY = "perplexity"
ACCURACY = "accuracy"
BRIER_SCORE = "brier_score"
ECE = "ece"
ECE_EQUAL_MASS = "ece_equal_mass"
TEMPERATURE = "temperature"
CALIBRATION_LOSS = "calibration_loss"

#: Every metric of :class:`losslens.evaluation.Metrics`, in the order of its fields (the
#: order of the JSON's ``metric_deltas`` and of the baseline's deltas).
METRICS: tuple[Metric, ...] = (
    Metric(N_EXAMPLES, "examples", kind=COUNT, layouts=EXAMPLES),
    Metric("weight_sum", "weight", decimals=2, layouts=EXAMPLES, help="sum of example weights"),
    Metric(LOG_LOSS, "log loss", "nats", better="lower", layouts=LOSS,
           help="nats"),
    Metric("log_loss_ci95", "95% interval", "nats", kind=INTERVAL, layouts=LOSS,
           help="of the log loss"),
    Metric(CROSS_ENTROPY_BITS, "bits", "bits", better="lower", layouts=LOSS,
           help="cross-entropy in bits"),
    Metric(PERPLEXITY, "perplexity", decimals=3, better="lower", layouts=ALL_LAYOUTS),
    Metric("label_entropy_bits", "H(P̂) bits", "bits",
           help="label entropy: the baseline's cross-entropy"),
    Metric("kl_empirical_bits", "KL(P̂‖Q̄) bits", "bits", better="lower"),
    Metric("marginal_cross_entropy_bits", "H(P̂)+KL bits", "bits", better="lower",
           help="cross-entropy of always predicting the mean prediction Q̄"),
    Metric("information_gain_bits", "gain bits", "bits", better="higher", layouts=frozenset({CLASSIFIER, TOKENS}),
           help="information gain over the class-frequency baseline"),
    Metric("relative_information_gain", "relative gain", kind=SHARE, decimals=1, better="higher",
           help="information gain as a share of H(P̂)"),
    Metric(ACCURACY, "accuracy", kind=SHARE, decimals=2, better="higher",
           layouts=frozenset({CLASSIFIER, MULTIPLE_CHOICE})),
    Metric(BRIER_SCORE, "Brier", better="lower", layouts=frozenset({CLASSIFIER, MULTIPLE_CHOICE}),
           help="mean squared error of the probabilities"),
    Metric(ECE, "ECE", better="lower", layouts=frozenset({CLASSIFIER, MULTIPLE_CHOICE}),
           help="expected calibration error"),
    Metric("n_clipped", "clipped", kind=COUNT, better="lower",
           help="true-class probabilities of 0 or 1 clipped to [eps, 1 − eps]"),
    Metric("clipped_loss_share", "clipped loss", kind=SHARE, decimals=2, better="lower",
           help="share of the loss carried by clipped examples"),
    Metric("n_unnormalized", "unnormalized", kind=COUNT, better="lower",
           help="probability rows that do not sum to 1"),
    Metric("n_confident_errors", "confident errors", kind=COUNT, better="lower",
           help="examples with p(true class) at or below the threshold"),
    Metric("confident_error_loss_share", "confident error loss", kind=SHARE, decimals=2, better="lower",
           help="share of the loss carried by confident errors"),
    Metric("target_entropy_bits", "target entropy bits", "bits", soft_only=True,
           help="mean entropy of the soft targets: the part of the loss no model removes"),
    Metric("kl_bits", "KL(targets‖model) bits", "bits", better="lower", soft_only=True,
           help="cross-entropy above the target entropy"),
    Metric("top_5_accuracy", "top-5", kind=SHARE, decimals=2, better="higher",
           help="share of examples whose true class is among the 5 most probable (more than 5 classes)"),
    Metric("kl_empirical_bits_corrected", "KL corrected bits", "bits", better="lower",
           help="KL(P̂‖Q̄) minus the bias sampling noise alone gives a calibrated model"),
    Metric("prior_shift_p_value", "prior shift p", help="G-test of the label counts against n·Q̄"),
    Metric("classwise_ece", "classwise ECE", better="lower",
           help="mean one-vs-rest ECE over classes with enough examples"),
    Metric("ece_equal_width", "ECE equal-width", better="lower", layouts=CALIBRATED,
           help="top-label ECE over equal-width confidence bins (the same figure as ece)"),
    Metric(ECE_EQUAL_MASS, "ECE equal-mass", better="lower", layouts=CALIBRATED,
           help="top-label ECE over 10 bins of equal example count (HELM's ece_10_bin)"),
    Metric("rms_calibration_error", "RMS cal. error", better="lower", layouts=CALIBRATED,
           help="root of the weighted mean squared gap between accuracy and confidence per bin"),
    Metric("max_calibration_error", "max cal. error", better="lower", layouts=CALIBRATED,
           help="largest gap between accuracy and confidence over the non-empty bins"),
    Metric(TEMPERATURE, "temperature", decimals=3, layouts=CALIBRATED,
           help="T of softmax(z / T) that minimises the log loss: above 1 overconfident, below 1 underconfident"),
    Metric("log_loss_after_temperature", "log loss after T", "nats", better="lower", layouts=CALIBRATED,
           help="nats, after dividing the logits by the fitted temperature"),
    Metric(CALIBRATION_LOSS, "calibration loss", "nats", better="lower", layouts=CALIBRATED,
           help="nats of the log loss that one temperature removes (miscalibration)"),
    Metric("refinement_loss", "refinement loss", "nats", better="lower", layouts=CALIBRATED,
           help="nats of the log loss a temperature cannot remove (= log loss after T)"),
    Metric("brier_after_temperature", "Brier after T", better="lower", layouts=CALIBRATED,
           help="Brier score of softmax(z / T)"),
    Metric("ece_equal_width_ci95", "95% interval", kind=INTERVAL, layouts=CALIBRATED,
           help="bootstrap interval of the equal-width ECE (fixed seed)"),
    Metric("ece_equal_mass_ci95", "95% interval", kind=INTERVAL, layouts=CALIBRATED,
           help="bootstrap interval of the equal-mass ECE (fixed seed)"),
    Metric("rms_calibration_error_ci95", "95% interval", kind=INTERVAL, layouts=CALIBRATED,
           help="bootstrap interval of the RMS calibration error (fixed seed)"),
    Metric("max_calibration_error_ci95", "95% interval", kind=INTERVAL, layouts=CALIBRATED,
           help="bootstrap interval of the maximum calibration error (fixed seed)"),
)

#: JSON names that other modules spell: they import these, so each name is written once, here.
N_DOCUMENTS = "n_documents"
N_TOKENS = "n_tokens"
N_BYTES = "n_bytes"
N_WORDS = "n_words"
NLL_NATS = "nll_nats"
BITS_PER_BYTE = "bits_per_byte"
BYTE_PERPLEXITY = "byte_perplexity"
WORD_PERPLEXITY = "word_perplexity"
ACC = "acc"
ACC_NORM = "acc_norm"

#: The language-model metrics beyond the shared ones above (``log_loss``, ``cross_entropy_bits``,
#: ``perplexity``): the fields of :class:`losslens.lm.evaluation.LMMetrics` in their order, then
#: a token run's own figures and lm-evaluation-harness's names for its tasks.
LM_METRICS: tuple[Metric, ...] = (
    Metric(N_DOCUMENTS, "documents", kind=COUNT, layouts=LANGUAGE_MODEL),
    Metric(N_TOKENS, "tokens", kind=COUNT, layouts=LANGUAGE_MODEL, help="scored tokens"),
    Metric(N_BYTES, "bytes", kind=COUNT, layouts=LANGUAGE_MODEL, help="UTF-8 bytes of the scored text"),
    Metric(N_WORDS, "words", kind=COUNT, layouts=LANGUAGE_MODEL),
    Metric(NLL_NATS, "total loss", "nats", decimals=2, layouts=LANGUAGE_MODEL,
           help="summed negative log-likelihood of every scored token"),
    Metric(BITS_PER_BYTE, "bits/byte", "bits", better="lower", layouts=LANGUAGE_MODEL,
           help="total loss ÷ UTF-8 bytes ÷ ln 2: comparable across tokenizers"),
    Metric("bits_per_byte_ci95", "95% interval", "bits", kind=INTERVAL, layouts=LANGUAGE_MODEL,
           help="of the bits per byte"),
    Metric(BYTE_PERPLEXITY, "byte perplexity", decimals=3, better="lower", layouts=LANGUAGE_MODEL),
    Metric(WORD_PERPLEXITY, "word perplexity", decimals=3, better="lower", layouts=LANGUAGE_MODEL),
    Metric("n_memorized", "memorised", kind=COUNT, better="lower", layouts=LANGUAGE_MODEL,
           help="documents whose Min-K% Prob or mean token loss says memorised"),
    Metric("memorized_token_share", "memorised tokens", kind=SHARE, decimals=2, better="lower",
           layouts=LANGUAGE_MODEL, help="share of the tokens in memorised documents"),
    Metric("unigram_entropy_bits", "unigram entropy bits", "bits", layouts=frozenset({TOKENS}),
           help="entropy of the text's own token distribution: the best context-free model's loss"),
    Metric(ACC, "acc", kind=SHARE, decimals=2, better="higher",
           layouts=frozenset({MULTIPLE_CHOICE, LOGLIKELIHOOD}), help="lm-eval's acc"),
    Metric(ACC_NORM, "acc_norm", kind=SHARE, decimals=2, better="higher", layouts=frozenset({MULTIPLE_CHOICE}),
           help="lm-eval's acc_norm: argmax of log-likelihood per character of the choice"),
    Metric("mean_loglikelihood", "mean log-likelihood", "nats", better="higher", layouts=frozenset({LOGLIKELIHOOD})),
)

#: JSON names that other modules spell: they import these, so each name is written once, here.
LOG_LOSS_DELTA = "log_loss_delta"
LOG_LOSS_DELTA_CI95 = "log_loss_delta_ci95"
LOG_LOSS_DELTA_P_VALUE = "log_loss_delta_p_value"
LOG_LOSS_DELTA_P_VALUE_ADJUSTED = "log_loss_delta_p_value_adjusted"
MINIMUM_DETECTABLE_EFFECT = "minimum_detectable_effect"
ACCURACY_DELTA = "accuracy_delta"
MCNEMAR = "mcnemar"
BRIER_SCORE_DELTA = "brier_score_delta"
P_GOLD_DELTA = "p_gold_delta"
BITS_PER_BYTE_DELTA = "bits_per_byte_delta"
CLUSTER = "cluster"
VERDICT = "verdict"

#: The figures of a paired comparison (each later run against the first; JSON ``comparisons``):
#: not gate metrics (``delta.log_loss > 0 significant`` reads the adjusted p-value), so apart
#: from :data:`METRICS`. Unit ``nats`` means the delta's unit: per example, question or token.
COMPARISON_FIELDS: tuple[Metric, ...] = (
    Metric(LOG_LOSS_DELTA, "Δ log loss", "nats", better="lower", layouts=ALL_LAYOUTS,
           help="candidate − reference, mean over the paired units"),
    Metric(LOG_LOSS_DELTA_CI95, "95% interval", "nats", kind=INTERVAL, layouts=ALL_LAYOUTS, help="of the delta"),
    Metric(LOG_LOSS_DELTA_P_VALUE, "p", layouts=ALL_LAYOUTS, help="two-sided normal test of the paired differences"),
    Metric(LOG_LOSS_DELTA_P_VALUE_ADJUSTED, "adjusted p", layouts=ALL_LAYOUTS,
           help="Benjamini–Hochberg across every comparison of the job"),
    Metric(MINIMUM_DETECTABLE_EFFECT, "detectable change", "nats", layouts=ALL_LAYOUTS,
           help="smallest true delta found with 80% power at the 5% level"),
    Metric(ACCURACY_DELTA, "Δ accuracy", kind=SHARE, decimals=2, better="higher",
           layouts=frozenset({CLASSIFIER, MULTIPLE_CHOICE, LOGLIKELIHOOD}), help="paired, candidate − reference"),
    Metric("accuracy_delta_ci95", "95% interval", kind=INTERVAL, layouts=frozenset({CLASSIFIER, MULTIPLE_CHOICE, LOGLIKELIHOOD}),
           help="of the accuracy delta"),
    Metric(MCNEMAR, "flips", layouts=frozenset({CLASSIFIER, MULTIPLE_CHOICE, LOGLIKELIHOOD}),
           help="{improved, worsened, p_value}: McNemar's exact test on the units that flipped"),
    Metric(BRIER_SCORE_DELTA, "Δ Brier", better="lower", layouts=frozenset({CLASSIFIER}),
           help="paired mean of each example's Brier score difference"),
    Metric("brier_score_delta_ci95", "95% interval", kind=INTERVAL, layouts=frozenset({CLASSIFIER}),
           help="of the Brier delta"),
    Metric("brier_score_delta_p_value", "p (Brier)", layouts=frozenset({CLASSIFIER}),
           help="two-sided normal test of the paired Brier differences"),
    Metric(P_GOLD_DELTA, "Δ p(gold)", better="higher", layouts=frozenset({CLASSIFIER, MULTIPLE_CHOICE, LOGLIKELIHOOD}),
           help="paired mean change of the probability given to the true class or answer"),
    Metric("p_gold_delta_ci95", "95% interval", kind=INTERVAL,
           layouts=frozenset({CLASSIFIER, MULTIPLE_CHOICE, LOGLIKELIHOOD}), help="of the p(gold) delta"),
    Metric("p_gold_delta_p_value", "p (p(gold))", layouts=frozenset({CLASSIFIER, MULTIPLE_CHOICE, LOGLIKELIHOOD}),
           help="two-sided normal test of the paired p(gold) differences"),
    Metric(BITS_PER_BYTE_DELTA, "Δ bits/byte", "bits", better="lower", layouts=LANGUAGE_MODEL,
           help="ratio estimator over the paired documents: Σloss/Σbytes, candidate − reference"),
    Metric("bits_per_byte_delta_ci95", "95% interval", "bits", kind=INTERVAL, layouts=LANGUAGE_MODEL,
           help="of the bits-per-byte delta, documents as the units"),
    Metric("bits_per_byte_delta_p_value", "p (bits/byte)", layouts=LANGUAGE_MODEL,
           help="two-sided normal test of the bits-per-byte delta, documents as the units"),
    Metric("log_loss_delta_se_clustered", "clustered SE", "nats", layouts=ALL_LAYOUTS,
           help="with --cluster: the standard error the interval, p-value and detectable change use"),
    Metric(CLUSTER, "clusters", layouts=ALL_LAYOUTS, help="with --cluster: {column, n_clusters}"),
    Metric(VERDICT, "verdict", layouts=ALL_LAYOUTS,
           help="better / worse when the adjusted p-value is below 0.05, else no detectable change"),
)

#: A Trainer run's figures (:mod:`losslens.lm.trainer_run`), read from its logged loss curves.
#: JSON names that other modules spell: they import these, so each name is written once, here.
EVAL_LOSS = "eval_loss"
TRAIN_EVAL_GAP = "train_eval_gap"
_T = frozenset({TRAINER})
TRAINER_METRICS: tuple[Metric, ...] = (
    Metric(EVAL_LOSS, "eval loss", "nats", better="lower", layouts=_T, help="the last evaluation's loss, nats"),
    Metric("eval_cross_entropy_bits", "eval bits", "bits", better="lower", layouts=_T,
           help="the last eval loss in bits"),
    Metric("eval_perplexity", "eval perplexity", decimals=3, better="lower", layouts=_T,
           help="exp(last eval loss)"),
    Metric("best_eval_loss", "best eval loss", "nats", better="lower", layouts=_T,
           help="the lowest eval loss logged"),
    Metric("best_step", "best step", kind=COUNT, layouts=_T, help="the step of the lowest eval loss"),
    Metric("evals_since_best", "evals since best", kind=COUNT, better="lower", layouts=_T,
           help="evaluations after the best one (0: the last is the best)"),
    Metric("eval_loss_above_best", "above best", "nats", better="lower", layouts=_T,
           help="last eval loss − best eval loss"),
    Metric("train_loss", "train loss", "nats", better="lower", layouts=_T,
           help="the last logged training loss (mean over the last logging interval)"),
    Metric("train_loss_min", "min train loss", "nats", layouts=_T, help="the lowest logged training loss"),
    Metric(TRAIN_EVAL_GAP, "train/eval gap", "nats", better="lower", layouts=_T,
           help="last eval loss − the training loss logged at or before that step"),
    Metric("n_evaluations", "evaluations", kind=COUNT, layouts=_T),
    Metric("global_step", "step", kind=COUNT, layouts=_T, help="the run's last step"),
)

_BY_NAME = {m.name: m for m in METRICS + LM_METRICS + TRAINER_METRICS}

#: JSON names that other modules spell: they import these, so each name is written once, here.
MIN_K_PROB = "min_k_prob"
ZLIB_RATIO = "zlib_ratio"
MIN_K_PLUS_PLUS = "min_k_plus_plus"
RANK1_SHARE = "rank1_share"

#: Per-document contamination scores of a token / sequence run (the worst / best lists, the
#: ``--per-example`` export; computed in :mod:`losslens.lm.contamination`), each oriented so that
#: higher = the document looks more memorised. Not scope metrics: no gate or baseline reads them.
#: With ``--reference`` each run's ``contamination`` has ``{name: {auroc, auroc_ci95}}`` for these.
DOCUMENT_SCORES: tuple[Metric, ...] = (
    Metric(MIN_K_PROB, "Min-K% Prob", layouts=LANGUAGE_MODEL,
           help="exp of the mean of the document's lowest k% token log-probs (Shi et al. 2023)"),
    Metric(ZLIB_RATIO, "zlib ratio", decimals=5, layouts=LANGUAGE_MODEL,
           help="mean token log-prob (nats) ÷ zlib-compressed bytes of the text (Carlini et al. 2021)"),
    Metric(MIN_K_PLUS_PLUS, "Min-K%++", layouts=LANGUAGE_MODEL,
           help="mean of the lowest k% of (log p − μ) / σ over the vocabulary (Zhang et al. 2024)"),
    Metric(RANK1_SHARE, "rank-1", kind=SHARE, decimals=1, layouts=frozenset({TOKENS}),
           help="share of the scored tokens that are the model's most probable token"),
)

#: The metrics each table shows, in its order; the JSON always has every metric. A new
#: metric appears in a table when its name is added here.
VIEWS: dict[str, tuple[str, ...]] = {
    # Each scope of a run: the terminal's summary and the page's per-split and per-slice tables.
    "scopes": ("n_examples", "log_loss", "log_loss_ci95", "cross_entropy_bits", "perplexity", "accuracy",
               "brier_score", "ece", "label_entropy_bits", "kl_empirical_bits", "information_gain_bits"),
    # Runs side by side in the terminal, with each run's change against the first.
    "runs": ("n_examples", "log_loss", "cross_entropy_bits", "accuracy", "brier_score", "ece",
             "information_gain_bits"),
    # Runs side by side on the page.
    "runs_page": ("n_examples", "log_loss", "log_loss_ci95", "cross_entropy_bits", "perplexity", "accuracy",
                  "information_gain_bits", "kl_empirical_bits", "ece"),
    # A candidate run against the reference on the page: every change that matters.
    "changes": ("log_loss", "cross_entropy_bits", "perplexity", "accuracy", "brier_score", "ece",
                "information_gain_bits", "kl_empirical_bits"),
    # The headline figures of a run's section, in this order (their titles and captions are the page's).
    "headlines": ("log_loss", "cross_entropy_bits", "perplexity", "accuracy", "information_gain_bits",
                  "kl_empirical_bits"),
    # Many classes: added after the "scopes" columns and the "headlines" figures wherever some
    # scope of the run has a value (top-5 accuracy exists with more than 5 classes, classwise
    # ECE for the whole run), so a 3-class run gets no empty column.
    "when_present": ("top_5_accuracy", "classwise_ece"),
    # Calibration that says what is fixable: a table of its own under the scopes (where computed).
    "calibration_scopes": ("ece_equal_mass", "ece_equal_mass_ci95", "rms_calibration_error", "max_calibration_error",
                           "temperature",
                           "log_loss_after_temperature", "calibration_loss", "brier_after_temperature"),
    # The markdown summary's calibration table, one row per classifier run (overall).
    "calibration_summary": ("ece_equal_width", "ece_equal_mass", "ece_equal_mass_ci95", "rms_calibration_error",
                            "temperature",
                            "calibration_loss", "refinement_loss"),
    # The calibration figures with a bootstrap interval (JSON NAME_ci95), in the order the
    # decision text says them (terminal, markdown, page).
    "calibration_intervals": ("ece_equal_width", "ece_equal_mass", "rms_calibration_error", "max_calibration_error"),
    # The classifier run's calibration figures a multiple-choice lm-eval task reports beside lm-eval's.
    "multiple_choice_calibration": ("ece_equal_width", "ece_equal_mass", "rms_calibration_error",
                                    "max_calibration_error", "temperature", "log_loss_after_temperature",
                                    "calibration_loss", "refinement_loss", "brier_after_temperature"),
    # The metrics --bootstrap gives percentile intervals of (computed in losslens.bootstrap).
    "bootstrap": ("log_loss", "accuracy", "ece"),
    # Against --baseline: these, and every metric flagged as a regression.
    "baseline": ("log_loss", "cross_entropy_bits", "accuracy", "brier_score", "ece", "information_gain_bits"),
    # The markdown summary's headline table, one row per run and split (kept narrow for a CI page).
    "summary": ("n_examples", "log_loss", "log_loss_ci95", "cross_entropy_bits", "accuracy", "ece",
                "kl_empirical_bits"),
    # The trend's table of nights (page and markdown), after the night and the run.
    "trend_nights": ("log_loss", "log_loss_ci95", "accuracy", "ece"),
    # The trend page's small multiples, one panel each: calibration, accuracy and the label mix.
    "trend_panels": ("ece", "accuracy", "kl_empirical_bits", "label_entropy_bits"),
    # The loss a trend follows for a run (bands, trend_shift): the first a night of the run has
    # (an lm-eval rolling task has bits per byte and no log loss).
    "trend_losses": ("log_loss", "bits_per_byte", "eval_loss"),
    # Calibration figures added to the trend's nights table where some run has them (classifiers).
    "trend_calibration": ("ece_equal_mass", "rms_calibration_error", "temperature", "calibration_loss"),
    # Language-model figures added to the trend's nights table and panels where a run has them.
    "trend_lm": ("acc", "acc_norm", "perplexity", "bits_per_byte", "eval_loss", "best_eval_loss", "train_eval_gap"),
    # Each scope of a token or sequence run (terminal summary, the page's slice table).
    "lm_scopes": ("n_documents", "n_tokens", "log_loss", "cross_entropy_bits", "perplexity", "bits_per_byte",
                  "byte_perplexity", "word_perplexity", "n_memorized"),
    # Token / sequence runs side by side in the terminal.
    "lm_runs": ("n_documents", "n_tokens", "log_loss", "perplexity", "bits_per_byte", "n_memorized"),
    # lm-evaluation-harness tasks, with lm-eval's names.
    "lm_eval_tasks": ("acc", "acc_norm", "brier_score", "log_loss", "ece", "perplexity", "word_perplexity",
                      "byte_perplexity", "bits_per_byte"),
    # Hugging Face Trainer runs (terminal, markdown, the page's cards).
    "trainer_runs": ("eval_loss", "eval_perplexity", "best_eval_loss", "best_step", "evals_since_best",
                     "train_loss", "train_eval_gap"),
    # Against --baseline for language-model runs and lm-eval tasks.
    "lm_baseline": ("log_loss", "perplexity", "bits_per_byte", "byte_perplexity", "word_perplexity", "n_memorized",
                    "acc", "acc_norm", "brier_score", "eval_loss", "best_eval_loss", "train_eval_gap"),
}


def metric(name: str) -> Metric:
    """The catalog entry of ``name``; a plain 4-decimal number for a name not in the catalog.

    Examples
    --------
    >>> metric("log_loss").better, metric("accuracy").kind
    ('lower', 'share')
    """
    found = _BY_NAME.get(name)
    if found is not None:
        return found
    return Metric(name, name.replace("_", " "), kind=COUNT if name.startswith("n_") else NUMBER)


def metric_names(layout: str | None = None) -> tuple[str, ...]:
    """Names of the single-number metrics (of one layout, or all), in catalog order.

    What ``--fail-if`` accepts, what runs are compared on and what the baseline diffs.
    """
    return tuple(m.name for m in METRICS + LM_METRICS + TRAINER_METRICS
                 if m.kind != INTERVAL and (layout is None or layout in m.layouts))


def layout_of(run) -> str:
    """The layout of an evaluated run: a language-model run's or lm-eval task's ``layout_kind``, else classifier."""
    return getattr(run, "layout_kind", CLASSIFIER)


def scope_value(run, scope, name: str):
    """The value of metric ``name`` in ``scope`` (``run.overall`` or a split) of ``run``.

    A token run's ``unigram_entropy_bits`` and ``information_gain_bits`` belong to the whole
    run, not to a scope's sums: read from the run for its overall scope. None when undefined.
    """
    value = getattr(scope, name, None)
    if value is None and scope is getattr(run, "overall", None):
        value = getattr(run, name, None)
    return value


def view(name: str) -> tuple[Metric, ...]:
    """The metrics of one table (a key of :data:`VIEWS`), in order."""
    return tuple(_BY_NAME[n] for n in VIEWS[name])


def better(name: str) -> str | None:
    """``lower`` or ``higher`` is better for ``name``; None when neither (counts, entropies of the data)."""
    return metric(name).better


def view_present(name: str, scopes) -> tuple[Metric, ...]:
    """The metrics of view ``name`` that at least one of ``scopes`` has a value for.

    Parameters
    ----------
    name : str
        A key of :data:`VIEWS`, usually ``"when_present"``.
    scopes : iterable of losslens.evaluation.Metrics
        The scopes a table or a set of headline figures shows.

    Returns
    -------
    tuple of Metric
        In the view's order; a metric that is None or NaN in every scope is left out, so that
        no reporter shows an all-empty column (top-5 accuracy with 5 classes or fewer).
    """
    scopes = list(scopes)

    def has_value(x) -> bool:
        return x is not None and x == x  # NaN is the one value unequal to itself

    return tuple(m for m in view(name) if any(has_value(getattr(s, m.name, None)) for s in scopes))
