"""The example sample behind the equal-mass ECE and the temperature split of the log loss.

Equal-mass bins need the examples' confidences, and the temperature fit needs each example's
whole row of log-probabilities (NLL(T) takes a log-sum-exp over every class), so neither can be
finished from streamed sums. :class:`CalibrationSample` is an engine observer that keeps, for at
most :data:`SAMPLE_SIZE` examples of a run, their confidence, correctness, weight, label, split,
slice values and row of log-probabilities: every example up to that size (the figures are then
exact), and above it a fixed-seed uniform sample (bottom-k of one random key per example, drawn
in reading order, so the sample does not depend on batch sizes). Memory is bounded whatever the
run's size: about 200,000 × (k × 8 + 40) bytes, 24 MB for 10 classes; with more classes the log-
probabilities are kept as float32 and the sample shrinks to fit :data:`SAMPLE_BYTES`.

:func:`with_calibration` finishes a run's figures from the sample (pure, given the sample).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import NamedTuple

import numpy as np

from .accumulate import OTHER
from .calibration_fit import equal_mass_ece, temperature_split
from .evaluation import Metrics, RunEvaluation
from .schema import Layout

#: Examples kept for the equal-mass ECE and the temperature fit (exact up to this many).
SAMPLE_SIZE = 200_000
#: Bytes the sample's log-probabilities may take; more classes keep fewer rows, as float32.
SAMPLE_BYTES = 64 * 2**20
#: Seed of the sample's keys: the same file gives the same sample and figures.
SAMPLE_SEED = 20261205
#: Bins of the equal-mass ECE (HELM's ``ece_10_bin``).
EQUAL_MASS_BINS = 10
#: Keys drawn at a time by :meth:`CalibrationSample.expect_rows` (2 MB: it runs beside the first
#: batches, so its few MB add to the run's peak).
THRESHOLD_CHUNK = 2**18
#: Split names whose examples a model may have memorised: the temperature is not fitted on them.
TRAINING_SPLITS = ("train", "training")


class CalibrationSample:
    """Engine observer: a fixed-seed uniform sample of at most ``size`` examples of one run.

    Parameters
    ----------
    n_classes : int
        Columns of each log-probability row.
    eps : float
        Probabilities are clipped to [eps, 1] before their log, as the log loss clips them.
    size : int
        Most examples kept.
    """

    def __init__(self, n_classes: int, eps: float, size: int = SAMPLE_SIZE, seed: int = SAMPLE_SEED):
        wide = size * n_classes * 8 > SAMPLE_BYTES
        self.dtype = np.float32 if wide else np.float64
        itemsize = np.dtype(self.dtype).itemsize
        self.capacity = max(1, min(size, SAMPLE_BYTES // (n_classes * itemsize)))
        self.eps = eps
        self.seed = seed
        self._prepared: dict = {}  # id(batch) -> what prepare() took of it in a worker thread
        self._threshold = math.inf  # rows with a larger key are never in the final sample
        self._threshold_drawn = None  # the Future of expect_rows's threshold while it is drawn
        self.rows_at_least = 0
        self.n_seen = 0
        self.filled = 0
        self.has_z = True
        self.soft = False
        cap = self.capacity
        self.keys = np.full(cap, np.inf)
        self._largest = math.inf  # the largest key kept once the sample is full (it only falls then)
        self.confidence = np.zeros(cap)
        self.correct = np.zeros(cap, dtype=bool)
        self.weight = np.zeros(cap)
        self.label = np.zeros(cap, dtype=np.int64)
        self.z = None  # allocated with the first batch that has rows of log-probabilities
        self.n_classes = n_classes
        self.split = None
        self.slices: dict[str, np.ndarray] = {}

    def expect_rows(self, n_rows: int) -> None:
        """Tell the sample the run has at least ``n_rows`` examples (a Parquet footer's count).

        The keys are drawn from the seed alone, so the largest key the final sample keeps is
        known before reading: an example with a larger key enters only to be replaced later,
        and its values are not copied (its key still is, so every slot ends as without this).
        On a 1M-row run that copies 200,000 rows instead of about 520,000.

        The threshold is drawn in a thread of its own (numpy releases the GIL while it draws and
        partitions: about 40 ms for 10M rows) while the first batches are read and scored; the first
        use of :attr:`threshold` waits for it.
        """
        if n_rows <= self.capacity:
            return
        self.rows_at_least = n_rows
        from .threads import thread_count

        if thread_count() <= 1:
            self._threshold = self._largest_kept_key(n_rows)
            return
        from concurrent.futures import ThreadPoolExecutor

        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="losslens-sample")
        self._threshold_drawn = pool.submit(self._largest_kept_key, n_rows)
        pool.shutdown(wait=False)  # its one thread ends with the job

    def _largest_kept_key(self, n_rows: int) -> float:
        """The largest of the ``capacity`` smallest of the first ``n_rows`` keys.

        Only the keys under the workers' bound (:meth:`_likely_above`) are kept, and partitioned
        once: 10M rows 68 -> 42 ms. Were fewer than ``capacity`` of them under it (50 standard
        deviations off), every key is drawn again and the smallest kept as they come.
        """
        rng = np.random.default_rng(self.seed)  # the very stream __call__ draws the keys from
        chunk = np.empty(min(THRESHOLD_CHUNK, n_rows))
        bound = self._likely_above(n_rows)
        under = []
        for start in range(0, n_rows, THRESHOLD_CHUNK):
            keys = rng.random(out=chunk[: min(THRESHOLD_CHUNK, n_rows - start)])
            under.append(keys[keys < bound])
        under = np.concatenate(under)
        if len(under) >= self.capacity:
            # The capacity smallest keys are all under the bound: the same key as the loop below gives.
            return float(np.partition(under, self.capacity - 1)[self.capacity - 1])
        rng = np.random.default_rng(self.seed)
        smallest, bound = np.empty(0), math.inf
        for start in range(0, n_rows, THRESHOLD_CHUNK):
            keys = rng.random(out=chunk[: min(THRESHOLD_CHUNK, n_rows - start)])
            # Only a key below the largest of the smallest so far can lower that largest value
            # (one equal to it leaves it as it is): the partitions take a few keys, not a chunk.
            smallest = np.concatenate([smallest, keys[keys < bound]])
            if len(smallest) > self.capacity:
                smallest = np.partition(smallest, self.capacity - 1)[: self.capacity]
                bound = smallest.max()
        # With more rows than counted the final largest key is smaller still: still safe.
        return float(smallest.max())

    @property
    def threshold(self) -> float:
        """Keys above this never reach the final sample (inf: unknown, every row is copied)."""
        if self._threshold_drawn is not None:
            self._threshold, self._threshold_drawn = self._threshold_drawn.result(), None
        return self._threshold

    def check_complete(self) -> None:
        """Fail loudly if fewer rows came than :meth:`expect_rows` was told (some kept rows were skipped)."""
        if self.n_seen < self.rows_at_least:
            raise RuntimeError(f"the sample saw {self.n_seen} rows, fewer than the {self.rows_at_least} expected")

    def keys_at(self, position: int, n: int) -> np.ndarray:
        """The keys of the run's examples ``position`` to ``position + n - 1``, in reading order.

        One key per example from the seed's stream, jumped ahead to ``position``: the very
        values one generator drawing every key in turn gives (each key takes one 64-bit draw),
        so a worker thread can draw the keys of its own batch.
        """
        bits = np.random.PCG64(self.seed)
        bits.advance(position)
        return np.random.Generator(bits).random(n)

    def prepare(self, batch, position: int, stand_in: bool = False):
        """In a worker thread: the keys of ``batch`` (the run's examples from ``position`` on) and
        the values of the examples among them that stay in the final sample.

        :meth:`__call__` then only places them in their slots, in reading order; the gathers,
        the clip and the log of their rows of probabilities run beside the other batches'.
        Does nothing without a threshold (:meth:`expect_rows` of more rows than the sample keeps):
        then every example may be copied, and :meth:`__call__` copies them itself. While the
        threshold is still being drawn, the examples under a bound safely above it are copied.

        Parameters
        ----------
        batch : ScoredBatch
        position : int
            The run's examples before the batch's first.
        stand_in : bool
            Whether the caller can hand :meth:`__call__` something else than the batch.

        Returns
        -------
        ScoredBatch or SampledRows
            What to give :meth:`__call__` for this batch. With ``stand_in`` and the threshold
            drawn, a :class:`SampledRows`: every example of the batch the sample can keep was
            taken here, so the batch's arrays need not wait for their turn in reading order
            (they are most of the memory of a batch in flight). Otherwise the batch itself.
        """
        if self.rows_at_least <= self.capacity:
            return batch
        drawn = self._threshold_drawn
        exact = drawn is None or drawn.done()  # then _bound() is the threshold itself
        keys = self.keys_at(position, batch.n)
        rows = np.flatnonzero(keys <= self._bound())
        # The rows that may enter: under the largest key kept now, which __call__'s only lowers.
        largest = self._largest
        below = np.flatnonzero(keys < largest) if largest < math.inf else None
        prepared = _Prepared(keys, rows, self._values(batch, rows), below)
        if stand_in and exact:
            return SampledRows(batch.n, *_soft_and_rows(batch), prepared)
        # Keyed by the batch's identity: it is alive from here until __call__ takes this back.
        self._prepared[id(batch)] = prepared
        return batch

    def _bound(self) -> float:
        """The threshold once drawn; until then a bound above it, so that a worker need not wait.

        The threshold is the ``capacity``-th smallest of ``rows_at_least`` uniform keys, about
        c = capacity / rows_at_least with a standard deviation of √(c(1 − c)/rows) (4e-4 for 1M
        rows); 1.2·c + 0.001 is at least 50 of them above it from 200,000 rows on. Should a key
        between them ever be needed, :meth:`_put` finds it missing and copies it from the batch.
        """
        drawn = self._threshold_drawn
        if drawn is None or drawn.done():
            return self.threshold
        return self._likely_above(self.rows_at_least)

    def _likely_above(self, n_rows: int) -> float:
        """A key above the ``capacity``-th smallest of ``n_rows`` uniform keys by 50 standard
        deviations (see :meth:`_bound`)."""
        return min(1.0, 1.2 * self.capacity / n_rows + 1e-3)

    def __call__(self, batch) -> None:
        """Offer every example of a scored batch (or its :class:`SampledRows`) to the sample."""
        n = batch.n
        if isinstance(batch, SampledRows):
            prepared, soft, has_rows = batch.prepared, batch.soft, batch.has_rows
        else:
            prepared = self._prepared.pop(id(batch), None)
            soft, has_rows = _soft_and_rows(batch)
        keys = prepared.keys if prepared is not None else self.keys_at(self.n_seen, n)
        self.n_seen += n
        if soft:
            self.soft = True
        if not has_rows:
            self.has_z = False  # a wide row group scored column by column: no rows to keep
        space = self.capacity - self.filled
        take = min(space, n)
        if take:
            # Slices, not index arrays: filling is a plain copy of the batch's first rows.
            self._put(slice(self.filled, self.filled + take), batch, slice(0, take), keys[:take], prepared)
            self.filled += take
        if take == n:
            return
        largest = self._largest if self._largest < math.inf else float(self.keys.max())
        if prepared is not None and prepared.below is not None and take == 0:
            # The worker's rows under the largest key when it prepared the batch: a few
            # thousand to compare, not the batch's keys.
            rest = prepared.below[keys[prepared.below] < largest]
        else:
            # The rows after the filled ones whose key could enter (a slice and flatnonzero: no
            # gather of every key through an index array).
            rest = np.flatnonzero(keys[take:] < largest) + take
        if not rest.size:
            return
        merged = np.concatenate([self.keys, keys[rest]])
        keep = np.argpartition(merged, self.capacity - 1)[: self.capacity]
        largest = merged[keep[-1]]  # argpartition's kth: the largest key kept
        entering = keep[keep >= self.capacity] - self.capacity
        if np.count_nonzero(merged == largest) == 1:
            # No other key equals the largest kept: the slots given up are those whose key is above it.
            free = np.flatnonzero(self.keys > largest)
        else:
            stays = np.zeros(self.capacity, dtype=bool)
            stays[keep[keep < self.capacity]] = True
            free = np.flatnonzero(~stays)
        self._largest = float(largest)
        self._put(free, batch, rest[entering], keys[rest[entering]], prepared)

    def _put(self, slots, batch, rows, keys, prepared=None) -> None:
        """Write the examples at ``rows`` of ``batch`` into the sample's ``slots`` (their values
        from ``prepared``, :meth:`prepare`'s, where given)."""
        self.keys[slots] = keys
        if self.threshold < math.inf:
            # Only the examples that stay to the end (see expect_rows): the others' slots are
            # taken again later, and only their keys decide by whom.
            kept = np.flatnonzero(keys <= self.threshold)
            if isinstance(slots, slice):
                slots, rows = slots.start + kept, rows.start + kept
            else:
                slots, rows = slots[kept], rows[kept]
        at = None
        if prepared is not None:
            # Each kept row was prepared (its key is at most the threshold, or the bound): find it there.
            at = np.minimum(np.searchsorted(prepared.rows, rows), len(prepared.rows) - 1)
            if len(prepared.rows) == 0 or not np.array_equal(prepared.rows[at], rows):
                at = None  # a kept row above the worker's bound (see _bound): copied from the batch
        if at is None and isinstance(batch, SampledRows):
            # prepare() gives a stand-in only when it copied every row up to the threshold itself.
            raise RuntimeError("the sample needs a row its stand-in batch did not take")
        if at is not None:
            values = {name: _pick(value, at) for name, value in prepared.values.items()}
        elif (isinstance(slots, slice) and self.dtype == np.float64 and batch.log_probs is None and batch.probs is not None
              and self.has_z):
            # Filling: clip and log straight into the sample's rows (the same two operations in
            # float64 as _values, without two batch-sized temporaries).
            values = self._values(batch, rows, rows_of_z=False)
            target = self._z()[slots]
            np.clip(batch.probs[rows], self.eps, 1.0, out=target)
            np.log(target, out=target)
        else:
            values = self._values(batch, rows)
        self.confidence[slots] = values["confidence"]
        self.correct[slots] = values["correct"]
        self.weight[slots] = values["weight"]
        self.label[slots] = values["label"]
        if self.has_z and values["z"] is not None:
            self._z()[slots] = values["z"]
        if values["split"] is not None:
            if self.split is None:
                self.split = np.empty(self.capacity, dtype=object)
            self.split[slots] = values["split"]
        for column, picked in values["slices"].items():
            if column not in self.slices:
                self.slices[column] = np.empty(self.capacity, dtype=object)
            self.slices[column][slots] = picked

    def _values(self, batch, rows, rows_of_z: bool = True) -> dict:
        """What the sample keeps of the examples at ``rows`` (an index array or a slice) of ``batch``.

        ``z`` is each row's log-probabilities (the log of the probabilities clipped to [eps, 1]),
        None without ``rows_of_z`` or for a batch scored column by column.
        """
        z = None
        if rows_of_z and batch.log_probs is not None:
            z = batch.log_probs[rows]
        elif rows_of_z and batch.has_rows:
            # A copy (also of a slice; gathered from the columns of a batch without a matrix),
            # clipped and logged in place.
            z = (np.array(batch.probs[rows]) if batch.probs is not None
                 else np.column_stack([column[rows] for column in batch.prob_columns]))
            np.clip(z, self.eps, 1.0, out=z)
            np.log(z, out=z)
        return {"confidence": batch.confidence[rows], "correct": batch.predicted[rows] == batch.label[rows],
                "weight": batch.weight[rows], "label": batch.label[rows], "z": z,
                "split": None if batch.split is None else batch.split[rows],
                "slices": {column: values[rows] for column, values in (batch.slices or {}).items()}}

    def _z(self) -> np.ndarray:
        """The sample's rows of log-probabilities, allocated with the first rows written."""
        if self.z is None:
            self.z = np.zeros((self.capacity, self.n_classes), dtype=self.dtype)
        return self.z

    @property
    def sampled(self) -> bool:
        """Whether the run had more examples than the sample keeps."""
        return self.n_seen > self.capacity


class _Prepared(NamedTuple):
    """What :meth:`CalibrationSample.prepare` took of a batch in a worker thread."""

    keys: np.ndarray  # of every example of the batch
    rows: np.ndarray  # the examples copied (ascending): those whose key is at most the threshold or bound
    values: dict  # CalibrationSample._values of those rows
    below: np.ndarray | None = None  # the examples whose key was under the sample's largest then (None: not full)


class SampledRows(NamedTuple):
    """What the sample takes of a scored batch, handed to :meth:`CalibrationSample.__call__` in its stead.

    :meth:`CalibrationSample.prepare` makes it in a worker thread once the threshold is drawn:
    the batch's keys and the values of every example of it that can stay in the final sample.
    A few MB, where the batch it stands for holds its probability matrix and per-row arrays.
    """

    n: int  # examples in the batch
    soft: bool  # whether it had soft targets
    has_rows: bool  # whether it had rows of probabilities or log-probabilities
    prepared: _Prepared


def _soft_and_rows(batch) -> tuple[bool, bool]:
    """Whether a scored batch has soft targets, and rows of probabilities or log-probabilities
    (a wide row group scored column by column has neither matrix): :class:`SampledRows`' flags."""
    return batch.targets is not None, batch.log_probs is not None or batch.has_rows


def _pick(value, at: np.ndarray):
    """``value[at]`` of a prepared array, of each of a dict's arrays, or None."""
    if value is None:
        return None
    if isinstance(value, dict):
        return {key: v[at] for key, v in value.items()}
    return value[at]


def with_calibration(run: RunEvaluation, sample: CalibrationSample) -> RunEvaluation:
    """``run`` with the equal-mass ECE and the temperature split in every scope, and layout notes.

    Each scope's temperature is fitted on that scope's (sampled) examples and its log loss after
    temperature reported on the same examples, so ``calibration_loss`` ≥ 0 there, optimistic by
    about 1/(2n) nats (one fitted parameter). A run whose split column has a training split
    (``train``/``training``) and another split is the exception: ``overall`` and the training
    split take the temperature fitted on the other (held-out) splits, because on examples a model
    memorised the fit drives T towards 0; their ``calibration_loss`` can then be negative.
    """
    sample.check_complete()
    n = sample.filled
    split = sample.split[:n] if sample.split is not None else None
    held_out = None
    if split is not None:
        training = np.isin(np.char.lower(split.astype(str)), TRAINING_SPLITS)
        if training.any() and not training.all():
            held_out = ~training
    fit_temperature = sample.has_z and not sample.soft and sample.z is not None

    def finished(metrics: Metrics, mask: np.ndarray, honest: bool = False) -> Metrics:
        return _scope_metrics(metrics, sample, mask, held_out if honest else None, fit_temperature)

    everything = np.ones(n, dtype=bool)
    overall = finished(run.overall, everything, honest=True)
    by_split = {name: finished(m, split == name, honest=name.lower() in TRAINING_SPLITS)
                for name, m in run.by_split.items()}
    by_slice = {column: {v: finished(values[v], mask) for v, mask in slice_masks(run, sample, column).items()}
                for column, values in run.by_slice.items()}
    notes = _notes(sample, held_out is not None, fit_temperature)
    layout = replace(run.layout, notes=(*run.layout.notes, *notes)) if notes else run.layout
    return replace(run, overall=overall, by_split=by_split, by_slice=by_slice, layout=layout)


def _scope_metrics(metrics: Metrics, sample: CalibrationSample, mask: np.ndarray, held_out, fit: bool) -> Metrics:
    """One scope's figures from its part of the sample (``held_out``: fit the temperature there)."""
    n = sample.filled
    # The whole sample (overall, or a run without splits): its arrays as they are, not copied.
    everything = bool(mask.all())

    def pick(values: np.ndarray) -> np.ndarray:
        return values[:n] if everything else values[:n][mask]

    weight = pick(sample.weight)
    if not mask.any() or weight.sum() <= 0:
        return metrics
    ece_mass = equal_mass_ece(pick(sample.confidence), pick(sample.correct), EQUAL_MASS_BINS, weight)
    if not fit:
        return replace(metrics, ece_equal_mass=ece_mass)
    z, label = sample.z[:n], sample.label[:n]
    extra = {}
    if held_out is not None and (sample.weight[:n][held_out].sum() > 0):
        extra = dict(fit_z=z[held_out], fit_labels=label[held_out], fit_weights=sample.weight[:n][held_out])
    split = temperature_split(pick(z), pick(label), weight, **extra)
    # The split's own log loss is the sample's; the scope's streamed log loss is exact. The part a
    # temperature removes is taken from the sample and the rest is the scope's loss minus it, so
    # log_loss = calibration_loss + refinement_loss holds for the reported figures.
    calibration = split.log_loss - split.log_loss_after_temperature
    # max(·, 0): a loss a temperature drives to 0 (separable examples) must not print as −3e-18.
    after = max(metrics.log_loss - calibration, 0.0)
    brier_after = metrics.brier_score - (split.brier_score - split.brier_after_temperature)
    return replace(metrics, ece_equal_mass=ece_mass, temperature=split.temperature,
                   log_loss_after_temperature=after, calibration_loss=calibration, refinement_loss=after,
                   brier_after_temperature=brier_after if math.isfinite(brier_after) else None)


def _notes(sample: CalibrationSample, honest: bool, fit: bool) -> list[str]:
    """What the layout notes say about how the sample-based figures were made."""
    notes = []
    if sample.sampled:
        kind = " (log-probabilities kept as float32)" if sample.dtype == np.float32 else ""
        notes.append(f"ece_equal_mass and the temperature split are computed on a fixed-seed uniform sample of "
                     f"{sample.capacity:,} of {sample.n_seen:,} examples{kind}")
    if honest and fit:
        notes.append("temperature for overall and the training split fitted on the held-out splits: on the "
                     "training split a model that memorised it drives T towards 0")
    if not fit:
        why = "soft targets" if sample.soft else "a wide file scored column by column keeps no rows of probabilities"
        notes.append(f"temperature, log_loss_after_temperature, calibration_loss, refinement_loss not computed: {why}")
    return notes


def sample_for(layout: Layout) -> CalibrationSample:
    """A sample sized for ``layout``'s classes, clipping probabilities at its eps."""
    return CalibrationSample(layout.n_classes, layout.eps)


def slice_masks(run, sample: "CalibrationSample", column: str) -> dict:
    """The sample's rows of each value of the ``--by`` column ``column`` in ``run.by_slice``.

    The value ``OTHER`` (the slices beyond ``--max-slices``, summed as one) takes every row whose
    value is none of the named ones, as the accumulator summed it.
    """
    values = sample.slices[column][: sample.filled]
    named = [v for v in run.by_slice[column] if v != OTHER]
    return {v: ~np.isin(values, named) if v == OTHER else values == v for v in run.by_slice[column]}
