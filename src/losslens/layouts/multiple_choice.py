"""Multiple-choice questions: per-choice log-likelihoods scored as a classifier's logits.

A question is one example of the classifier layout (:mod:`losslens.layouts.classifier`): label =
the gold index, ``logit_j`` = the choices' log-likelihoods themselves. Its loss is therefore the
exact log-softmax of the log-likelihoods, never clipped -- ``torch.nn.functional.cross_entropy``
on them -- and calibration, slices and paired comparisons come from the classifier's code. The
harness readers (:mod:`losslens.lm.lm_eval`) make the questions; the unit of a comparison is the
question, paired by the harness's sample id.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

import numpy as np

from ..calibration_sample import sample_for
from ..evaluation import Evaluation
from ..options import Options
from ..plans import resolve_sources
from .classifier import CLASSIFIER, finish


def classifier_frame(questions: Sequence):
    """Questions as a classifier table: ``doc_id``, ``label`` = gold index, ``logit_j`` = log-likelihoods.

    A question with fewer than m choices gets logit −inf (probability exactly 0, adding exactly 0
    to its row's log-sum-exp) for the ones it lacks: :func:`classifier_of` allows that padding.
    """
    import pandas as pd

    width = max(len(q.loglikelihoods) for q in questions)
    logits = np.full((len(questions), width), -np.inf)
    for i, q in enumerate(questions):
        logits[i, : len(q.loglikelihoods)] = q.loglikelihoods
    frame = pd.DataFrame({"doc_id": [q.doc_id for q in questions], "label": [q.gold for q in questions]})
    for j in range(width):
        frame[f"logit_{j}"] = logits[:, j]
    return frame


def classifier_of(frame, run_name: str, by: Sequence[str] = ()):
    """A :func:`classifier_frame` through the classifier engine: its Evaluation, and each question's
    loss in nats (in frame order, the very values its log loss averages, for the paired comparison).
    ``by`` names slice columns the frame carries after its logits.
    """
    width = sum(1 for c in frame.columns if str(c).startswith("logit_"))
    options = Options(label="label", logits="logit_", id="doc_id", classes=[str(j) for j in range(width)], by=tuple(by))
    sources = resolve_sources(frame, options)
    layout = CLASSIFIER.layout_of(sources, options)
    if not np.isfinite(frame[list(layout.prediction_columns)].to_numpy()).all():
        layout = replace(layout, neg_inf_padding=True, notes=(
            *layout.notes, "a question with fewer choices has logit -inf (probability exactly 0) for the others"))
    losses: list[np.ndarray] = []
    sample = sample_for(layout)
    total = CLASSIFIER.accumulate(sources, layout, options, [lambda batch: losses.append(batch.loss), sample])
    run = finish(total, layout, run_name, tuple(s.display for s in sources), options, sample)
    return Evaluation(runs=(run,)), np.concatenate(losses)
