"""Per-document rows of a token or sequence run (``--per-example`` for language models; pure).

Columns, in order: ``run``, the document id (under the input's own column name), ``n_tokens``,
``n_bytes``, ``nll_nats``, ``bits_per_token``, ``bits_per_byte``, ``min_k_prob``, ``zlib_ratio``,
``min_k_plus_plus``, ``rank1_share`` (see :mod:`losslens.lm.contamination`), ``memorized``,
``split`` (when the run has one), then the slice columns. Unknown values (no byte counts, no
per-token detail in a sequence file) are null. A slice column whose name is taken gets the
prefix ``slice_``. Writing the table (atomically) is the caller's: this returns data only.
"""

from __future__ import annotations

import math

import numpy as np

from .evaluation import LMRunEvaluation, document_score_arrays
from ..catalog import (
    BITS_PER_BYTE, MIN_K_PLUS_PLUS, MIN_K_PROB, N_BYTES, N_TOKENS, NLL_NATS, RANK1_SHARE, ZLIB_RATIO,
)

FIXED = ("run", N_TOKENS, N_BYTES, NLL_NATS, "bits_per_token", BITS_PER_BYTE, MIN_K_PROB,
         ZLIB_RATIO, MIN_K_PLUS_PLUS, RANK1_SHARE, "memorized", "split")


def per_document_table(run: LMRunEvaluation):
    """One row per document of ``run`` as a :class:`pyarrow.Table`, in first-seen order.

    Parameters
    ----------
    run : LMRunEvaluation

    Returns
    -------
    pyarrow.Table
        See the module docstring for the columns.

    Examples
    --------
    >>> import pandas as pd
    >>> from losslens.lm import evaluate_lm
    >>> run = evaluate_lm(pd.DataFrame({"doc_id": ["a", "a"], "logprob": [-1.0, -3.0]})).runs[0]
    >>> per_document_table(run).column("bits_per_token").to_pylist() == [2 / math.log(2)]
    True
    """
    import pyarrow as pa

    docs = run.documents
    n = len(docs.keys)
    ln2 = math.log(2)

    def nullable(values):
        return pa.array(values, pa.float64(), mask=~np.isfinite(values))

    tokens = docs.n_tokens if docs.n_tokens is not None else np.full(n, np.nan)
    nbytes = docs.n_bytes if docs.n_bytes is not None else np.full(n, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        per_token = docs.nll / tokens / ln2
        per_byte = docs.nll / nbytes / ln2
    columns = {
        "run": pa.array([run.name] * n, pa.string()),
        run.layout.document: pa.array(list(docs.keys)),
        N_TOKENS: nullable(tokens).cast(pa.int64()),
        N_BYTES: nullable(nbytes).cast(pa.int64()),
        NLL_NATS: pa.array(docs.nll, pa.float64()),
        "bits_per_token": nullable(per_token),
        BITS_PER_BYTE: nullable(per_byte),
        # min_k_prob, zlib_ratio, min_k_plus_plus, rank1_share (contamination.SCORES' order)
        **{name: nullable(values) for name, values in document_score_arrays(docs, run.layout).items()},
        "memorized": pa.array(run.memorized, pa.bool_()),
    }
    if docs.split is not None:
        columns["split"] = pa.array([None if v is None else str(v) for v in docs.split], pa.string())
    for column, values in docs.slices.items():
        name = f"slice_{column}" if column in columns else column
        columns[name] = pa.array(list(values))
    return pa.table(columns)


def per_document_rows(evaluation):
    """The ``--per-example`` table of a language-model job: every run's :func:`per_document_table`.

    Parameters
    ----------
    evaluation : LMEvaluation
        Token / sequence runs. lm-eval samples are refused: their samples files already hold
        one row per document.

    Returns
    -------
    pyarrow.Table

    Raises
    ------
    UsageError
        For lm-eval outputs, or runs whose document columns differ.
    """
    import pyarrow as pa

    from ..errors import UsageError

    if getattr(evaluation, "kind", None) == "trainer":
        from .trainer_run import curve_rows

        return curve_rows(evaluation)  # a Trainer run has no documents: its curves, one row per step
    if getattr(evaluation, "kind", None) == "lm_eval":
        raise UsageError("--per-example writes one row per document of token and sequence files; "
                         "lm-eval's samples_*.jsonl files already are that for lm-eval tasks")
    tables = [per_document_table(run) for run in evaluation.runs]
    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise UsageError(f"--per-example: the runs' document columns do not fit one file ({exc}); "
                         "write one run per command") from None
