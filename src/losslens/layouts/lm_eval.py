"""Evaluation harness logs: lm-evaluation-harness samples, inspect-ai, HELM, lighteval, vLLM.

Each harness's log is read by its reader (:mod:`losslens.readers`, lm-eval's own in
:mod:`losslens.lm.lm_eval_read`) into tasks; each task becomes a run of the kind its output type
says: multiple-choice questions through :mod:`losslens.layouts.multiple_choice` (the classifier
plugin on the choices' log-likelihoods), loglikelihood and rolling tasks through
:mod:`losslens.layouts.tokens` (per-document sums). :func:`losslens.lm.lm_eval.evaluate_lm_eval`
does the reading and the per-task dispatch; checkpoints are compared task by task, paired by the
harness's sample id.
"""

from __future__ import annotations

from typing import Sequence

from ..errors import UsageError
from .plugin import LayoutPlugin
from .tokens import refuse_single_bootstrap


class LMEvalLayout(LayoutPlugin):
    """Harness logs (see the module docstring)."""

    kind = "lm_eval"
    unit = "question"

    def check_options(self, options, engine: str, n_inputs: int, observers: Sequence = ()) -> None:
        refuse_single_bootstrap(options, n_inputs)
        if options.reference:
            raise UsageError("--reference compares the documents of token and sequence files read locally; "
                             "lm-eval samples have no per-token log-probs to score documents with")
        if engine == "dask":
            raise UsageError("--engine dask reads token and sequence files; lm-eval samples files are "
                             "small and read locally: drop --engine dask")

    def evaluate_inputs(self, inputs: Sequence, names, options, observers: Sequence = ()):
        from ..lm.lm_eval import evaluate_lm_eval

        return evaluate_lm_eval(list(inputs), names=names, cluster=options.cluster, n_bootstrap=options.bootstrap,
                                seed=options.seed, by=options.by, document=options.document)


#: The harness-log plugin.
HARNESS_LOGS = LMEvalLayout()
