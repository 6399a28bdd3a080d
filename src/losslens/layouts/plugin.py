"""What a layout plugin provides, and the streaming loop every streamed layout shares.

A *layout plugin* is one kind of input: a classifier table, a token or sequence file, a
harness's logs, a Trainer state. The engines (:mod:`losslens.engine` for this process,
:mod:`losslens.distributed` for Dask) know nothing of kinds; they call these methods:

=====================  ======================================================================
``plan``               inputs -> :class:`~losslens.plans.RunPlan` (sources and run names)
``layout_of``          detection from the header (and first batch), with its notes
``batches``            the run's read batches, in reading order
``score``              one read batch -> ``[(scored, part)]``: validated, per-unit losses, and
                       its mergeable sums (runs in a worker thread)
``empty`` / ``add``    the run's sums before any batch, and one part merged in (``+``)
``accumulate``         :func:`stream` of the above (a plugin may wrap it: a token file whose
                       documents are scattered is sorted and streamed again)
``finish``             the summed run -> its result (metrics by scope, sections, warnings)
``evaluation``         the runs -> the kind's evaluation (with its comparisons, by ``unit``)
``compare``            the comparisons a job reports
``dask_types``,        the Dask engine's: the columns to read, one delayed sum per
``partitions``,        partition, merged on the client in a fixed order
``merge_partitions``
=====================  ======================================================================

Plugins whose input is a log to parse rather than rows to stream (lm-eval samples, Trainer
states) override :meth:`LayoutPlugin.evaluate_inputs` and say ``dask = False``.
"""

from __future__ import annotations

from functools import partial
from typing import Callable, Iterable, Sequence

from ..errors import UsageError
from ..threads import ordered_map, thread_count


def stream(items: Iterable, score: Callable, total, add: Callable, observers: Sequence = (),
           light: Callable | None = None):
    """Score ``items`` in worker threads and merge each part into ``total`` in reading order.

    This thread reads (decodes) the items while :func:`~losslens.threads.thread_count` less one
    workers score them: on two CPUs one worker beside the reading thread keeps both busy, where
    two workers competed with it for the cores (10M rows: wall ×0.93, 1M ×0.95, tokens ×0.94;
    wide files, whose row groups the workers read themselves, ×0.98–1.00).

    Parameters
    ----------
    items : iterable
        Read batches, in reading order (read in this thread while workers score).
    score : callable
        ``score(item) -> [(scored, part), ...]``; runs in a worker thread (numpy and pyarrow
        release the GIL).
    total : object
        The sums before the first part.
    add : callable
        ``add(total, part) -> total``; called here, in reading order, so the figures are those
        of one thread to the last bit and two runs give byte-identical JSON.
    observers : sequence of callables
        Each called with every ``scored`` batch, in reading order.
    light : callable, optional
        ``light(parts)``: whether a scored item's parts hold little memory (their ``scored``
        is a stand-in that the observers need, not the batch's arrays); then one batch more is
        read ahead (see :func:`losslens.threads.ordered_map`).

    Returns
    -------
    object
        The merged total.
    """
    for parts in ordered_map(score, items, light=light, workers=thread_count() - 1):
        for scored, part in parts:
            for observer in observers:
                observer(scored)
            total = add(total, part)
        # Let this batch go before the next is read: otherwise the loop's names keep it alive
        # beside the two in flight.
        parts = scored = part = None
    return total


class LayoutPlugin:
    """One kind of input over the shared engines (see the module docstring).

    Attributes
    ----------
    kind : str
        The kind of job its runs make (``JobResult.kind``): ``classifier``,
        ``language_model``, ``lm_eval`` or ``trainer``.
    unit : str
        What its comparisons pair: ``example``, ``document``, ``question``, ``step``.
    dask : bool
        Whether ``--engine dask`` can run it.
    observes_batches : bool
        Whether engine observers (the per-example file, the progress line) see its batches.
    """

    kind = ""
    unit = ""
    dask = False
    observes_batches = False

    # -- the job's checks -------------------------------------------------------------------
    def check_options(self, options, engine: str, n_inputs: int, observers: Sequence = ()) -> None:
        """Refuse options this kind has nothing for (:class:`UsageError`), before reading."""
        if engine == "dask" and not self.dask:
            raise UsageError(f"--engine dask does not read {self.kind} inputs: drop --engine dask")

    # -- the local engine -------------------------------------------------------------------
    def plan(self, inputs: Sequence, names, options) -> list:
        """The runs to evaluate (:func:`losslens.plans.plan_runs`)."""
        from ..plans import plan_runs

        return plan_runs(inputs, names, options)

    def evaluate_inputs(self, inputs: Sequence, names, options, observers: Sequence = ()):
        """Every input evaluated as a run, then :meth:`evaluation` of the runs."""
        runs = tuple(self.evaluate_run(plan, options, observers) for plan in self.plan(inputs, names, options))
        return self.evaluation(runs, options)

    def evaluate_run(self, plan, options, observers: Sequence = ()):
        """One run: layout, one streaming pass, finish."""
        layout = self.layout_of(plan.sources, options)
        total = self.accumulate(plan.sources, layout, options, [partial(o, plan.name, layout) for o in observers])
        return self.finish(total, layout, plan, options)

    def accumulate(self, sources, layout, options, observers: Sequence = (), light=None, **score_arguments):
        """One streaming pass over the run's batches (:func:`stream`, with ``light``); ``score_arguments`` go to :meth:`score`."""
        score = partial(self.score, layout=layout, options=options, **score_arguments)
        return stream(self.batches(sources, layout, options), score, self.empty(layout, options), self.add, observers,
                      light)

    def add(self, total, part):
        """``total`` with ``part`` merged in (mergeable sums: ``+``)."""
        return total + part

    def compare(self, evaluation, collector, options) -> tuple:
        """The comparisons a job reports (each run after the first against the first)."""
        return tuple(getattr(evaluation, "comparisons", ()))

    def collector(self, n_inputs: int):
        """An engine observer keeping what comparisons pair (None: the runs carry it)."""
        return None

    # -- what every streamed plugin defines -------------------------------------------------
    def layout_of(self, sources, options):  # pragma: no cover - abstract
        raise NotImplementedError

    def batches(self, sources, layout, options):  # pragma: no cover - abstract
        raise NotImplementedError

    def score(self, item, layout, options) -> list:  # pragma: no cover - abstract
        raise NotImplementedError

    def empty(self, layout, options):  # pragma: no cover - abstract
        raise NotImplementedError

    def finish(self, total, layout, plan, options):  # pragma: no cover - abstract
        raise NotImplementedError

    def evaluation(self, runs: tuple, options):  # pragma: no cover - abstract
        raise NotImplementedError

    # -- the Dask engine (plugins with dask = True) -----------------------------------------
    def dask_types(self, source, layout) -> dict:  # pragma: no cover - abstract
        """The columns of ``source`` the Dask engine reads, each with its Arrow type (None: as stored)."""
        raise NotImplementedError

    def partitions(self, frames, sources, layout, options) -> list:  # pragma: no cover - abstract
        """One ``dask.delayed`` sum per partition of the run's Dask dataframes (one per source), in
        a fixed order."""
        raise NotImplementedError

    def merge_partitions(self, results: list, sources, layout, options):  # pragma: no cover - abstract
        """The partitions' sums merged on the client, in the order of :meth:`partitions`."""
        raise NotImplementedError

    def finish_partitions(self, total, layout, plan, options):
        """The run from the merged partitions (default: :meth:`finish`)."""
        return self.finish(total, layout, plan, options)

    def local_error(self, exc, sources, layout, options):
        """The local engine's message for an input error a worker found (its rows are the file's)."""
        return exc
