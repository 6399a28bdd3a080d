"""Sums that make up every metric, kept so that they merge with ``+``.

Pure. An :class:`Accumulator` holds only sums over examples (weighted where it matters), a
fixed-edge loss histogram and a bounded list of the worst examples, so that one file, each
split, each slice, each streamed batch and each Dask partition are the same code:
``sum(parts, Accumulator.empty(...))`` is the whole. :class:`RunAccumulator` keeps one
accumulator for the run, one per split and one per slice value.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np

from .batch import ScoredBatch
# HIST_EDGES is imported from here by the reporters and the language-model path.
from .batch_figures import (HIST_EDGES, _class_calibration, hard_label_brier, loss_histogram, square_sums,
                            top_k_hits, unit_column_sums)
from .class_sums import TOP_K, ClassSums, ColumnSums
from .fused import BATCH_SUMS, batch_sums

#: p(true class) at or below this makes a confident error (loss >= 13.8 nats).
CONFIDENT_ERROR_PROB = 1e-6


@dataclass(frozen=True)
class Example:
    """One example kept for the worst-examples table."""

    loss: float
    source: str
    row: int
    id: str | None
    label: int
    predicted: int
    true_prob: float
    split: str | None = None

    def sort_key(self):
        """Worst first; ties broken by file and row so merging order never matters."""
        return (-self.loss, self.source, self.row)


@dataclass
class Accumulator:
    """Mergeable sums over a set of examples with ``n_classes`` classes.

    Vectors have one entry per class (``class_*``, ``predicted_weight``, ``prob_sum``) or per
    calibration bin (``bin_*``). ``*_weight`` and ``*_sum`` fields are weighted sums.
    """

    n_classes: int
    n_bins: int
    max_worst: int
    n_examples: int = 0
    weight_sum: float = 0.0
    weight_sq_sum: float = 0.0
    loss_sum: float = 0.0
    loss_sq_sum: float = 0.0
    correct_weight: float = 0.0
    brier_sum: float = 0.0
    target_entropy_sum: float = 0.0
    n_clipped: int = 0
    clipped_loss_sum: float = 0.0
    n_unnormalized: int = 0
    n_confident_errors: int = 0
    confident_error_loss_sum: float = 0.0
    class_count: np.ndarray = None
    class_weight: np.ndarray = None
    class_loss_sum: np.ndarray = None
    class_correct_weight: np.ndarray = None
    predicted_weight: np.ndarray = None
    prob_sum: np.ndarray = None
    bin_weight: np.ndarray = None
    bin_confidence_sum: np.ndarray = None
    bin_correct_weight: np.ndarray = None
    # One-vs-rest calibration per class (flattened n_classes × n_bins), only where asked
    # for (the run overall): per-class ECE and the binary Brier decomposition need it.
    class_calibration: bool = False
    class_bin_weight: np.ndarray = None
    class_bin_prob_sum: np.ndarray = None
    class_bin_hit_weight: np.ndarray = None
    loss_histogram: np.ndarray = None
    worst: tuple[Example, ...] = field(default_factory=tuple)
    # Weighted count of examples whose true class is among the TOP_K most probable (ties
    # ranked as scikit-learn's top_k_accuracy_score ranks them); kept only when k > TOP_K.
    top_k_weight: float = 0.0
    # Σw²·q_c and Σw²·q_c² per class: the variance of the label counts a calibrated model
    # implies, for the bias correction of KL(P̂ ‖ Q̄) (see evaluation.kl_sampling_bias_bits).
    prob_w2_sum: np.ndarray = None
    prob_sq_w2_sum: np.ndarray = None
    # Off-diagonal (true, predicted) pairs as a sparse count, only with class_calibration
    # (the run overall): sorted unique codes true·k + predicted and their example counts,
    # so memory follows the pairs that occur, never k × k.
    pair_codes: np.ndarray = None
    pair_counts: np.ndarray = None

    def __post_init__(self) -> None:
        k, b = self.n_classes, self.n_bins
        for name, size, dtype in (
            ("class_count", k, np.int64),
            ("class_weight", k, np.float64),
            ("class_loss_sum", k, np.float64),
            ("class_correct_weight", k, np.float64),
            ("predicted_weight", k, np.float64),
            ("prob_sum", k, np.float64),
            ("bin_weight", b, np.float64),
            ("bin_confidence_sum", b, np.float64),
            ("bin_correct_weight", b, np.float64),
            ("loss_histogram", len(HIST_EDGES) + 1, np.int64),
            ("class_bin_weight", k * b if self.class_calibration else 0, np.float64),
            ("class_bin_prob_sum", k * b if self.class_calibration else 0, np.float64),
            ("class_bin_hit_weight", k * b if self.class_calibration else 0, np.float64),
            ("prob_w2_sum", k, np.float64),
            ("prob_sq_w2_sum", k, np.float64),
            ("pair_codes", 0, np.int64),
            ("pair_counts", 0, np.int64),
        ):
            if getattr(self, name) is None:
                setattr(self, name, np.zeros(size, dtype=dtype))

    @classmethod
    def empty(
        cls, n_classes: int, n_bins: int = 15, max_worst: int = 20, class_calibration: bool = False
    ) -> "Accumulator":
        """An accumulator of nothing: the identity of ``+``."""
        return cls(n_classes=n_classes, n_bins=n_bins, max_worst=max_worst, class_calibration=class_calibration)

    @classmethod
    def of(
        cls,
        batch: ScoredBatch,
        n_classes: int,
        n_bins: int = 15,
        max_worst: int = 20,
        confident_error: float = CONFIDENT_ERROR_PROB,
        class_calibration: bool = False,
        class_sums: "ClassSums | None" = None,
    ) -> "Accumulator":
        """Sums over the examples of one scored batch.

        Parameters
        ----------
        batch : ScoredBatch
            Examples with their losses.
        n_classes, n_bins, max_worst : int
            Number of classes, of calibration bins, and of worst examples to keep.
        confident_error : float
            p(true class) at or below this counts as a confident error.
        class_calibration : bool
            Also keep one-vs-rest calibration bins for every class (k × bins sums).
        class_sums : ClassSums, optional
            The batch's per-class sums when it was scored column by column and has no
            ``probs`` matrix (see :mod:`losslens.columnwise`); required then.

        Returns
        -------
        Accumulator
        """
        k, b = n_classes, n_bins
        if not batch.has_rows:
            return cls._of_columns(batch, k, b, max_worst, confident_error, class_calibration, class_sums)
        w = batch.weight
        label = batch.label
        if batch.targets is not None:
            # Soft targets: the label distribution is the mean target, not a count of argmaxes.
            class_weight = w @ batch.targets
            target_entropy_sum = float(w @ batch.target_entropy)
            diff = batch.matrix() - batch.targets
            brier = np.einsum("ij,ij->i", diff, diff)
            del diff  # an n × k temporary: freed before the calibration bins are taken
        else:
            class_weight = np.bincount(label, weights=w, minlength=k)
            target_entropy_sum = 0.0
            # The scoring pass's Brier rows where the C library took them (the very values).
            brier = batch.brier if batch.brier is not None else hard_label_brier(batch.matrix(), label)
        per_class = _class_calibration(batch, k, b) if class_calibration else {}
        unit = bool(np.all(w == 1.0))
        if not unit:
            prob_sum = w @ batch.matrix()
        elif batch.prob_sum is not None:
            prob_sum = batch.prob_sum  # the scoring pass's, added as BLAS adds (no matrix needed)
        else:
            prob_sum = unit_column_sums(batch.matrix(), w)
        if unit:
            # Unit weights (the common case): Σw²q is Σq, and no n × k weight product.
            prob_w2_sum = prob_sum
            prob_sq_w2_sum = batch.square_sums if batch.square_sums is not None else square_sums(batch.matrix())
        else:
            w2 = w * w
            prob_w2_sum = w2 @ batch.matrix()
            prob_sq_w2_sum = batch.square_sums if batch.square_sums is not None else square_sums(batch.matrix(), w2)
        top_k = None
        if k > TOP_K and batch.targets is None:
            top_k = batch.top_k_hit if batch.top_k_hit is not None else top_k_hits(
                batch.matrix(), label, batch.true_prob, TOP_K)
        if k == 2:
            brier = brier / 2  # scikit-learn's binary Brier score (scale_by_half="auto")
        return cls._of_rows(
            batch, k, b, max_worst, confident_error, class_calibration,
            brier=brier, class_weight=class_weight, target_entropy_sum=target_entropy_sum,
            prob_sum=prob_sum, prob_w2_sum=prob_w2_sum, prob_sq_w2_sum=prob_sq_w2_sum,
            top_k=top_k, per_class=per_class,
        )

    @classmethod
    def _of_columns(cls, batch, k, b, max_worst, confident_error, class_calibration, sums) -> "Accumulator":
        """:meth:`of` for a batch scored column by column: its per-class sums are given."""
        if sums is None:
            raise ValueError("a batch without probs needs its class_sums")
        if class_calibration and (sums.class_bin_weight is None or sums.class_bin_weight.size != k * b):
            raise ValueError(f"class calibration with {b} bins asked for, but the class sums have no such bins")
        per_class = {}
        if class_calibration:
            # Hits: the bin of each row's own class, from p(true class) as the sparse path does.
            true_bin = np.minimum((batch.true_prob * b).astype(np.int64), b - 1) + batch.label * b
            per_class = {
                "class_bin_weight": sums.class_bin_weight,
                "class_bin_prob_sum": sums.class_bin_prob_sum,
                "class_bin_hit_weight": np.bincount(true_bin, weights=batch.weight, minlength=k * b),
            }
        return cls._of_rows(
            batch, k, b, max_worst, confident_error, class_calibration,
            brier=batch.brier / 2 if k == 2 else batch.brier,
            class_weight=np.bincount(batch.label, weights=batch.weight, minlength=k),
            target_entropy_sum=0.0,
            prob_sum=sums.prob_sum, prob_w2_sum=sums.prob_w2_sum, prob_sq_w2_sum=sums.prob_sq_w2_sum,
            top_k=batch.top_k_hit, per_class=per_class,
        )

    @classmethod
    def _of_rows(
        cls, batch, k, b, max_worst, confident_error, class_calibration, *,
        brier, class_weight, target_entropy_sum, prob_sum, prob_w2_sum, prob_sq_w2_sum, top_k, per_class,
    ) -> "Accumulator":
        """The sums every batch makes from its per-row arrays, given those taken from ``probs``."""
        w, loss, label = batch.weight, batch.loss, batch.label
        # Unit weights (the common case): products with w and sums of w are skipped; 1·x is x
        # and a sum of ones is the count exactly, so the figures are the same to the bit.
        unit = bool(np.all(w == 1.0))
        wl = loss if unit else w * loss
        pairs = class_calibration and k <= DENSE_PAIR_CLASSES
        # One pass in C (losslens.fused) adds the bincounts below in their very order.
        counted = batch_sums(label, batch.predicted, batch.confidence, wl, None if unit else w, k, b, pairs)
        correct = None if counted is not None and unit else batch.predicted == label
        if counted is None:
            counted = _counted(batch, k, b, w, wl, unit, correct)
        confident = batch.true_prob <= confident_error
        if class_calibration:
            per_class = {**per_class, **_confused_pairs(batch, k, counted.get("pair_counts"))}
        top_k_weight = 0.0
        if top_k is not None:
            # A sum of ones is the count exactly (below 2**53): no gather of the unit weights.
            top_k_weight = float(np.count_nonzero(top_k)) if unit else float(w[top_k].sum())
        return cls(
            n_classes=k,
            n_bins=b,
            max_worst=max_worst,
            n_examples=batch.n,
            weight_sum=float(batch.n) if unit else float(w.sum()),
            weight_sq_sum=float(batch.n) if unit else float(w @ w),
            loss_sum=float(wl.sum()),
            loss_sq_sum=float(wl @ loss),
            correct_weight=float(counted["n_correct"]) if unit else float(w[correct].sum()),
            brier_sum=float(w @ brier),
            target_entropy_sum=target_entropy_sum,
            n_clipped=int(batch.clipped.sum()),
            clipped_loss_sum=float(wl[batch.clipped].sum()),
            n_unnormalized=int(batch.unnormalized.sum()),
            n_confident_errors=int(confident.sum()),
            confident_error_loss_sum=float(wl[confident].sum()),
            class_weight=class_weight,
            prob_sum=prob_sum,
            prob_w2_sum=prob_w2_sum,
            prob_sq_w2_sum=prob_sq_w2_sum,
            top_k_weight=top_k_weight,
            **{name: counted[name] for name in BATCH_SUMS},
            loss_histogram=loss_histogram(loss),
            worst=_worst_of(batch, max_worst),
            class_calibration=class_calibration,
            **per_class,
        )

    def __add__(self, other: "Accumulator") -> "Accumulator":
        if not isinstance(other, Accumulator):
            return NotImplemented
        if (self.n_classes, self.n_bins) != (other.n_classes, other.n_bins):
            raise ValueError("cannot merge accumulators with different classes or bins")
        merged = {}
        for f in fields(self):
            a, b = getattr(self, f.name), getattr(other, f.name)
            if f.name in ("n_classes", "n_bins"):
                merged[f.name] = a
            elif f.name == "class_calibration":
                if a != b:
                    raise ValueError("cannot merge accumulators with and without class calibration")
                merged[f.name] = a
            elif f.name == "max_worst":
                merged[f.name] = max(a, b)
            elif f.name == "worst":
                merged[f.name] = tuple(sorted(a + b, key=Example.sort_key)[: max(self.max_worst, other.max_worst)])
            elif f.name == "pair_codes":
                merged["pair_codes"], merged["pair_counts"] = merge_pairs(
                    a, self.pair_counts, b, other.pair_counts
                )
            elif f.name == "pair_counts":
                continue
            else:
                merged[f.name] = a + b
        return Accumulator(**merged)

    def __radd__(self, other):
        # Lets sum(parts) start from 0.
        return self if other == 0 else NotImplemented


def _counted(batch: ScoredBatch, k: int, b: int, w, wl, unit: bool, correct) -> dict:
    """:func:`losslens.fused.batch_sums` in numpy (without the pairs): the per-class and per-bin bincounts."""
    label, confidence = batch.label, batch.confidence
    bins = np.minimum((confidence * b).astype(np.int64), b - 1)
    return {
        "class_count": np.bincount(label, minlength=k),
        "class_loss_sum": np.bincount(label, weights=wl, minlength=k),
        "class_correct_weight": np.bincount(label[correct], weights=w[correct], minlength=k),
        "predicted_weight": np.bincount(batch.predicted, weights=w, minlength=k),
        "bin_weight": np.bincount(bins, weights=w, minlength=b),
        "bin_confidence_sum": np.bincount(bins, weights=confidence if unit else w * confidence, minlength=b),
        "bin_correct_weight": np.bincount(bins[correct], weights=w[correct], minlength=b),
        "n_correct": int(np.count_nonzero(correct)),
    }


#: Up to this many classes the confused pairs are counted densely over k² codes.
DENSE_PAIR_CLASSES = 256


def _confused_pairs(batch: ScoredBatch, k: int, dense: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Sparse counts of the batch's misclassified (true, predicted) pairs, as sorted codes.

    ``dense``: the k² counts already taken (by :func:`losslens.fused.batch_sums`), if any.
    """
    if dense is None:
        wrong = np.flatnonzero(batch.predicted != batch.label)
        codes = batch.label[wrong].astype(np.int64) * k + batch.predicted[wrong]
    if k <= DENSE_PAIR_CLASSES:
        # A dense count of k² cells is cheaper than sorting the codes when k is small.
        if dense is None:
            dense = np.bincount(codes, minlength=k * k)
        unique = np.flatnonzero(dense)
        return {"pair_codes": unique.astype(np.int64), "pair_counts": dense[unique].astype(np.int64)}
    unique, counts = np.unique(codes, return_counts=True)
    return {"pair_codes": unique, "pair_counts": counts.astype(np.int64)}


def merge_pairs(codes_a, counts_a, codes_b, counts_b) -> tuple[np.ndarray, np.ndarray]:
    """Add two sparse pair counts (sorted unique codes with counts) into one."""
    if codes_a.size == 0:
        return codes_b, counts_b
    if codes_b.size == 0:
        return codes_a, counts_a
    # Both are sorted: a stable sort (timsort for integers) merges the two runs in linear
    # time, where np.unique(return_inverse=True) would argsort them from scratch.
    both = np.concatenate([codes_a, codes_b])
    both.sort(kind="stable")
    keep = np.ones(both.size, dtype=bool)
    keep[1:] = both[1:] != both[:-1]
    unique = both[keep]
    counts = np.zeros(unique.size, dtype=np.int64)
    counts[np.searchsorted(unique, codes_a)] += counts_a
    counts[np.searchsorted(unique, codes_b)] += counts_b
    return unique, counts


def _worst_of(batch: ScoredBatch, limit: int) -> tuple[Example, ...]:
    if limit <= 0 or batch.n == 0:
        return ()
    if batch.n > limit:
        # argpartition then a stable sort: O(n) instead of sorting every loss.
        index = np.argpartition(-batch.loss, limit - 1)[:limit]
    else:
        index = np.arange(batch.n)
    examples = [
        Example(
            loss=float(batch.loss[i]),
            source=batch.source,
            row=int(batch.rows[i]),
            id=None if batch.ids is None else str(batch.ids[i]),
            label=int(batch.label[i]),
            predicted=int(batch.predicted[i]),
            true_prob=float(batch.true_prob[i]),
            split=None if batch.split is None else str(batch.split[i]),
        )
        for i in index
    ]
    return tuple(sorted(examples, key=Example.sort_key)[:limit])


def _groups(values: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """``(value, row indices)`` for each distinct value, in first-seen order."""
    uniques, first, inverse = np.unique(values.astype(str), return_index=True, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    bounds = np.cumsum(np.bincount(inverse, minlength=len(uniques)))[:-1]
    members = np.split(order, bounds)
    return [(str(uniques[g]), members[g]) for g in np.argsort(first)]


@dataclass
class RunAccumulator:
    """The accumulators of one run: overall, per split value and per slice value."""

    overall: Accumulator
    by_split: dict[str, Accumulator] = field(default_factory=dict)
    by_slice: dict[str, dict[str, Accumulator]] = field(default_factory=dict)

    @classmethod
    def empty(cls, n_classes: int, n_bins: int = 15, max_worst: int = 20, slice_columns=()) -> "RunAccumulator":
        """The identity of ``+`` for a run."""
        overall = Accumulator.empty(n_classes, n_bins, max_worst, class_calibration=True)
        return cls(overall, {}, {c: {} for c in slice_columns})

    @classmethod
    def of(cls, batch: ScoredBatch, n_classes: int, *settings, **named_settings) -> "RunAccumulator":
        """Overall, per-split and per-slice sums of one scored batch.

        ``n_classes`` and the settings after it (``n_bins``, ``max_worst``, ``confident_error``,
        by position or name) are :meth:`Accumulator.of`'s, with its defaults: one signature
        to keep, so the two cannot drift apart. Only the overall accumulator keeps per-class
        calibration bins: they cost k × bins sums each, and per-class calibration of every
        slice value is more noise than news.
        """
        sums: ColumnSums | None = batch.class_sums

        def acc(part, class_calibration=False, group=None):
            part_sums = None if sums is None else sums.overall if group is None else sums.groups[group]
            return Accumulator.of(
                part, n_classes, *settings, class_calibration=class_calibration, class_sums=part_sums,
                **named_settings,
            )

        by_split = {}
        if batch.split is not None:
            by_split = {v: acc(batch.take(i), group=(None, v)) for v, i in _groups(batch.split)}
        by_slice = {}
        for column, values in (batch.slices or {}).items():
            by_slice[column] = {v: acc(batch.take(i), group=(column, v)) for v, i in _groups(values)}
        return cls(acc(batch, class_calibration=True), by_split, by_slice)

    def __add__(self, other: "RunAccumulator") -> "RunAccumulator":
        if not isinstance(other, RunAccumulator):
            return NotImplemented
        return RunAccumulator(
            overall=self.overall + other.overall,
            by_split=_merge_dicts(self.by_split, other.by_split),
            by_slice={
                c: _cap(_merge_dicts(self.by_slice.get(c, {}), other.by_slice.get(c, {})))
                for c in dict.fromkeys([*self.by_slice, *other.by_slice])
            },
        )

    def __radd__(self, other):
        return self if other == 0 else NotImplemented


#: At most this many distinct values per slice column are kept while streaming; beyond it
#: the smallest so far are merged into OTHER, so memory stays bounded for id-like columns.
#: Sums stay exact; only which values are shown by name can differ from a second pass.
SLICE_CAP = 2000
OTHER = "(other)"


def _cap(values: dict[str, Accumulator]) -> dict[str, Accumulator]:
    if len(values) <= SLICE_CAP:
        return values
    return fold_smallest(values, SLICE_CAP // 2)


def fold_smallest(values: dict[str, Accumulator], keep: int) -> dict[str, Accumulator]:
    """Keep the ``keep`` largest values (by weight); merge the rest into ``(other)``."""
    ranked = sorted(values, key=lambda v: (v == OTHER, -values[v].weight_sum, v))
    kept = {v: values[v] for v in ranked[:keep] if v != OTHER}
    rest = [values[v] for v in ranked if v not in kept]
    if rest:
        kept[OTHER] = sum(rest[1:], rest[0])
    return kept


def _merge_dicts(a: dict, b: dict) -> dict:
    merged = dict(a)
    for key, value in b.items():
        merged[key] = merged[key] + value if key in merged else value
    return merged
