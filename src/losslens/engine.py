"""The one local engine: inputs of any kind -> runs -> the kind's evaluation and comparisons.

Every kind of input is a layout plugin (:mod:`losslens.layouts`): the engine plans the runs,
lets the plugin check its options, streams each run through the plugin's layout, scoring and
sums (:func:`losslens.layouts.plugin.stream`: batches scored in worker threads, merged in
reading order) and finishes it; ``--engine dask`` maps the same plugin over Dask partitions
(:mod:`losslens.distributed`). Reading happens in the plugins through :mod:`losslens.reading`;
everything after that is pure. Reporters take the evaluation this returns and compute nothing
of their own.

The Python API's entry points live here too: :func:`evaluate` / :func:`evaluate_runs` for
classifier tables (``losslens.evaluate``) and :func:`evaluate_lm` / :func:`evaluate_lm_runs` for
token and sequence files (``losslens.lm.evaluate_lm``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from .errors import UsageError
from .layouts import plugin_for
from .options import Options
from .pipes import pipes_read_once

if TYPE_CHECKING:
    from .evaluation import Evaluation
    from .lm.evaluation import LMEvaluation


def evaluate_job(kind: str, inputs: Sequence, options: Options, names: Sequence[str] | None = None,
                 observers: Sequence = (), engine: str = "local", scheduler: str | None = None):
    """Evaluate ``inputs`` of one kind (one run each) and compare the runs.

    Parameters
    ----------
    kind : str
        The kind of input (:data:`losslens.layouts.KINDS`; :func:`losslens.lm.detect.input_kind`).
    inputs : sequence
        Paths, folders, globs or tables; each item one run.
    options : Options
    names : sequence of str, optional
        One run name per input.
    observers : sequence of callables, optional
        Called as ``observer(run_name, layout, scored_batch)`` with every scored batch of the
        layouts whose batches are examples (classifier tables; see :func:`evaluate_runs`).
    engine : str
        ``local`` or ``dask``.
    scheduler : str, optional
        A ``dask.distributed`` scheduler address (``engine="dask"``).

    Returns
    -------
    tuple
        ``(evaluation, comparisons)``: the kind's evaluation and each later run against the first.
    """
    plugin = plugin_for(kind)
    observers = list(observers) if plugin.observes_batches else []
    plugin.check_options(options, engine, len(inputs), observers)
    if engine == "dask":
        from .distributed import evaluate_dask

        evaluation = evaluate_dask(plugin, inputs, names, options, scheduler)
        return evaluation, plugin.compare(evaluation, None, options)
    collector = plugin.collector(len(inputs))
    if collector is not None:
        observers.append(collector)
    evaluation = plugin.evaluate_inputs(inputs, names, options, observers)
    return evaluation, plugin.compare(evaluation, collector, options)


def evaluate(data, *, name: str | None = None, **options) -> Evaluation:
    """Evaluate one run of predictions.

    Parameters
    ----------
    data : pandas or polars DataFrame, pyarrow.Table, str, path, or list of paths
        The predictions: a table, or files (CSV, TSV, plain or ``.gz``/``.bz2``/``.xz``/``.zst``, Parquet,
        JSON lines, Arrow IPC / Feather), folders of parts or glob patterns that together
        make up one run.
    name : str, optional
        The run's name; by default the file's stem (or ``"data"`` for a table).
    **options
        The layout and computation options of :class:`~losslens.options.Options`, with the
        command line's names: ``label``, ``probs``, ``logits``, ``positive_prob``,
        ``positive_logit``, ``positive_label``, ``targets``, ``classes``, ``id``,
        ``weight``, ``split``, ``by``, ``renormalize``, ``bins``, ``worst``; reading:
        ``encoding``, ``sep``, ``decimal``, ``format``; labels in another file:
        ``labels`` (with ``id``) and ``allow_missing_labels``.

    Returns
    -------
    Evaluation
        With one run; ``.to_dict()`` gives the JSON document.

    Raises
    ------
    InputError
        The data cannot be evaluated; the message names file, column and row.
    UsageError
        The options are contradictory or unknown.

    Examples
    --------
    >>> import pandas as pd, losslens
    >>> df = pd.DataFrame({"label": [1, 1, 0, 0], "p_0": [0.2, 0.1, 0.7, 0.6],
    ...                    "p_1": [0.8, 0.9, 0.3, 0.4]})
    >>> round(losslens.evaluate(df).overall.log_loss, 6)
    0.299723
    """
    return evaluate_runs([data], names=[name] if name else None, **options)


def evaluate_runs(
    inputs: Sequence,
    names: Sequence[str] | None = None,
    observers: Sequence = (),
    options: Options | None = None,
    **option_values,
) -> Evaluation:
    """Evaluate several runs with the same options, one per item of ``inputs``.

    Parameters
    ----------
    inputs : sequence
        Each item is what :func:`evaluate` takes as ``data``.
    names : sequence of str, optional
        One name per input; defaults to file stems, made unique.
    observers : sequence of callables, optional
        Each is called as ``observer(run_name, layout, scored_batch)`` for every scored
        batch, in file order: the hook for consumers of per-example values (the
        per-example file, paired comparisons, the bootstrap). Observers must not keep the
        batch's arrays unless they mean to hold the data in memory.
    options : Options, optional
        Ready-made options (as the command line builds them); otherwise they are built
        from ``option_values``.
    **option_values
        As for :func:`evaluate`.

    Returns
    -------
    Evaluation
    """
    opts = _options(options, option_values)
    with pipes_read_once():  # a pipe given as input and as labels, or as labels of each run
        return plugin_for("classifier").evaluate_inputs(inputs, names, opts, observers)


def evaluate_lm(data, *, name: str | None = None, **options) -> LMEvaluation:
    """Evaluate one language-model run: a token or a sequence file.

    Parameters
    ----------
    data : pandas.DataFrame, pyarrow.Table, str, path or list of paths
        One row per scored token (document id + log-prob or loss) or one row per document
        (summed loss + ``n_tokens``).
    name : str, optional
        The run's name; by default the file's stem.
    **options
        The fields of :class:`~losslens.options.Options` (``document``, ``logprob``,
        ``nll``, ``log_base``, ``token``, ``mask``, ``by``, ``min_k``, ``memorized_prob``,
        ``near_zero``, ...).

    Returns
    -------
    LMEvaluation

    Examples
    --------
    >>> import pandas as pd
    >>> tokens = pd.DataFrame({"doc_id": [0, 0, 1], "logprob": [-1.0, -2.0, -3.0],
    ...                        "token": ["a", "bc", "d"]})
    >>> run = evaluate_lm(tokens).runs[0]
    >>> run.overall.log_loss, run.overall.n_bytes
    (2.0, 4)
    """
    return evaluate_lm_runs([data], names=[name] if name else None, **options)


def evaluate_lm_runs(inputs: Sequence, names: Sequence[str] | None = None,
                     options: Options | None = None, **option_values) -> LMEvaluation:
    """Evaluate several token / sequence runs with the same options; later runs are compared
    with the first, paired by document id.

    Parameters
    ----------
    inputs : sequence
        Each item is what :func:`evaluate_lm` takes as ``data``.
    names : sequence of str, optional
    options : Options, optional
        Ready-made options; otherwise built from ``option_values`` (with ``bootstrap=N`` the
        comparisons get paired bootstrap intervals; ``reference=PATH`` contamination scores).

    Returns
    -------
    LMEvaluation
    """
    return plugin_for("language_model").evaluate_inputs(inputs, names, _options(options, option_values))


def _options(options: Options | None, option_values: dict) -> Options:
    if options is not None and option_values:
        raise UsageError("give either options= or option keywords, not both")
    return options if options is not None else Options.from_kwargs(**option_values)
