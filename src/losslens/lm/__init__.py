"""Language-model evaluation outputs: token log-probs, sequence losses, lm-eval samples.

The seam the command line, job layer and reports use:

- :func:`evaluate_lm` / :func:`evaluate_lm_runs` — token and sequence files → :class:`LMEvaluation`.
- :func:`read_lm_eval` / :func:`evaluate_lm_eval` — lm-evaluation-harness ``--log_samples`` output.
- :func:`per_document_table` — the ``--per-example`` rows of a token / sequence run.
- :func:`looks_like_lm` — whether a header is a token / sequence file rather than a classifier's;
  :func:`is_lm_eval_output` — whether a path is an lm-eval samples file or output folder.

Submodules import pyarrow lazily where they can; importing this package costs numpy only.
"""

from __future__ import annotations


def __getattr__(name):
    # Lazy: `losslens --help` must not pay for pyarrow.
    if name in ("evaluate_lm", "evaluate_lm_runs"):
        import losslens.engine as engine

        return getattr(engine, name)
    if name in ("read_lm_eval", "evaluate_lm_eval"):
        from . import lm_eval

        return getattr(lm_eval, name)
    if name == "is_lm_eval_output":  # the light module: a path check needs no engine
        from .detect import is_lm_eval_output

        return is_lm_eval_output
    if name == "per_document_table":
        from .export import per_document_table

        return per_document_table
    if name == "looks_like_lm":
        from .detect import looks_like_lm

        return looks_like_lm
    if name == "LMOptions":  # the one Options of every kind, under its old name
        from ..options import Options

        return Options
    raise AttributeError(name)


__all__ = ["evaluate_lm", "evaluate_lm_runs", "read_lm_eval", "evaluate_lm_eval", "is_lm_eval_output",
           "per_document_table", "looks_like_lm", "LMOptions"]
