"""Layouts as plugins: one module per kind of input, over the one local engine and the one Dask engine.

=================  ===============================================================  ===========
module             inputs                                                           unit
=================  ===============================================================  ===========
``classifier``     prediction tables: probabilities, logits, one-column binary,      example
                   soft targets, list columns
``multiple_choice``  per-choice log-likelihoods as the classifier's logits            question
                   (log-softmax, never clipped)
``tokens``         token files (one row per token) and sequence files (one row per   document
                   document), also as list columns
``lm_eval``        harness logs: lm-evaluation-harness samples, inspect-ai, HELM,     question /
                   lighteval, vLLM -- each task a run of the kinds above              document
``trainer``        Hugging Face Trainer states: logged loss curves                   step
=================  ===============================================================  ===========

What a plugin provides is in :mod:`losslens.layouts.plugin`. :func:`plugin_for` is the
registry the engines and the job use; it imports a plugin only when its kind is met, so a
classifier run never loads the language-model modules.
"""

from __future__ import annotations

#: Every kind of job, in the order the registry knows them (``JobResult.kind``).
KINDS = ("classifier", "language_model", "lm_eval", "trainer")


def plugin_for(kind: str):
    """The plugin of a kind of input (:func:`losslens.lm.detect.input_kind` tells the kind).

    Parameters
    ----------
    kind : str
        One of :data:`KINDS`.

    Returns
    -------
    losslens.layouts.plugin.LayoutPlugin
    """
    if kind == "classifier":
        from .classifier import CLASSIFIER

        return CLASSIFIER
    if kind == "language_model":
        from .tokens import TOKENS

        return TOKENS
    if kind == "lm_eval":
        from .lm_eval import HARNESS_LOGS

        return HARNESS_LOGS
    if kind == "trainer":
        from .trainer import TRAINER

        return TRAINER
    raise ValueError(f"no layout plugin for kind {kind!r}; known: {', '.join(KINDS)}")
