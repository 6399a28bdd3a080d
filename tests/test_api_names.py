"""The Python API reads names: DataFrame columns and Series names map to classes by name, as
the CLI maps file columns; polars frames and series; torch tensors of every float dtype;
``logits=``; scikit-learn's ``labels=`` answered; a one-line ``repr(Evaluation)``.

Every number is checked against scikit-learn, torch or a hand-worked value on real models
(LogisticRegression) fitted on scikit-learn's bundled data sets with their string class names.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import polars as pl
import pytest

from sklearn.datasets import load_breast_cancer, load_iris, load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import losslens
from losslens.errors import InputError, UsageError

torch = pytest.importorskip("torch")  # a reference (make test installs it)

# scikit-learn and losslens sum in different orders (and numpy's SIMD log differs from
# libm's in the last bit), so log losses agree to a few ulps, never bit for bit.
CLOSE = dict(rel=1e-12)
FLOAT32_EPS = float(np.finfo(np.float32).eps)


def fitted(loader):
    """Labels as the data set's class names, and a model fitted on every other example.

    Scaled first, as scikit-learn advises: unscaled wine takes LogisticRegression 30 s.
    """
    data = loader()
    names = np.asarray(data.target_names)[data.target]
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)).fit(data.data[::2], names[::2])
    return data.data, names, model


@pytest.fixture(scope="module")
def iris():
    return fitted(load_iris)


@pytest.fixture(scope="module")
def wine():
    return fitted(load_wine)


@pytest.fixture(scope="module")
def cancer():
    return fitted(load_breast_cancer)


# --------------------------------------------------------------------------- DataFrames


@pytest.mark.parametrize("dataset", ["iris", "wine"])
def test_frame_columns_map_by_name_in_any_order(dataset, request):
    X, y, model = request.getfixturevalue(dataset)
    proba = model.predict_proba(X)
    reference = log_loss(y, proba, labels=model.classes_)
    frame = pd.DataFrame(proba, columns=model.classes_)
    assert losslens.evaluate(y, frame).overall.log_loss == pytest.approx(reference, **CLOSE)
    shuffled = frame[[model.classes_[i] for i in (2, 0, 1)]]  # not sorted: position would be wrong
    evaluation = losslens.evaluate(y, shuffled)
    assert evaluation.overall.log_loss == pytest.approx(reference, **CLOSE)
    assert evaluation.run.classes == tuple(shuffled.columns)  # report order = column order, as the CLI
    # The CLI's column prefixes name the classes too: df.add_prefix("p_") as a file would have them.
    prefixed = losslens.evaluate(y, shuffled.add_prefix("proba_"))
    assert prefixed.overall.log_loss == pytest.approx(reference, **CLOSE)
    # classes= in yet another order only orders the report; the columns still go by name.
    declared = sorted(model.classes_, reverse=True)
    evaluation = losslens.evaluate(pd.Series(y), shuffled, classes=declared)
    assert evaluation.overall.log_loss == pytest.approx(reference, **CLOSE)
    assert evaluation.run.classes == tuple(declared)


def test_numbers_compare_as_numbers_in_names(wine):
    X, names, model = wine
    y = np.searchsorted(model.classes_, names)  # 0, 1, 2 as LabelEncoder gives them
    proba = model.predict_proba(X)
    reference = log_loss(y, proba)
    # Column names read back from Parquet or polars are text; labels 0.0, 1.0, 2.0 are floats.
    text_names = pd.DataFrame(proba, columns=["0", "1", "2"])[["2", "0", "1"]]
    assert losslens.evaluate(y, text_names).overall.log_loss == pytest.approx(reference, **CLOSE)
    int_names = pd.DataFrame(proba, columns=[0, 1, 2])[[1, 2, 0]]
    assert losslens.evaluate(y.astype(float), int_names).overall.log_loss == pytest.approx(reference, **CLOSE)


def test_default_range_index_is_positional_unless_it_is_the_classes(wine):
    X, names, model = wine
    proba = model.predict_proba(X)
    reference = log_loss(names, proba, labels=model.classes_)
    # DataFrame(model.predict_proba(X)): columns 0..k-1 name no string label, so they are
    # positions (sorted labels, as model.classes_), as an array is.
    assert losslens.evaluate(names, pd.DataFrame(proba)).overall.log_loss == pytest.approx(reference, **CLOSE)
    # Labels 1..3 (the data set's own numbering): 0..2 are positions, not classes 1 and 2.
    one_based = np.searchsorted(model.classes_, names) + 1
    assert losslens.evaluate(one_based, pd.DataFrame(proba)).overall.log_loss == pytest.approx(reference, **CLOSE)
    # Labels 0..k-1 with classes= in another order: position and name disagree; refused.
    zero_based = one_based - 1
    with pytest.raises(UsageError, match=re.escape(
        "y_prob's columns '0', '1', '2' are default positions, but classes=['2', '0', '1'] orders the same names "
        "differently; name the columns (DataFrame(p, columns=classes)) or pass a plain array"
    )):
        losslens.evaluate(zero_based, pd.DataFrame(proba), classes=[2, 0, 1])


def test_names_that_disagree_with_classes_are_refused(iris):
    X, y, model = iris
    frame = pd.DataFrame(model.predict_proba(X), columns=model.classes_)
    with pytest.raises(UsageError, match=re.escape(
        "y_prob's columns 'setosa', 'versicolor', 'virginica' and classes=['setosa', 'versicolor', 'virginca'] "
        "disagree; name the columns after the classes"
    )):
        losslens.evaluate(y, frame, classes=["setosa", "versicolor", "virginca"])
    typo = frame.rename(columns={"virginica": "virginca"})
    with pytest.raises(InputError, match=re.escape(
        "y_true: label 'virginica' has no column among y_prob's columns 'setosa', 'versicolor', 'virginca'; "
    )):
        losslens.evaluate(y, typo)


def test_names_that_name_no_class_stay_positional(iris):
    # Names such as x0, x1, x2 (a feature-name default) say nothing about the classes: the
    # columns are taken in order, as an array's are, and as scikit-learn takes them.
    X, y, model = iris
    proba = model.predict_proba(X)
    frame = pd.DataFrame(proba, columns=["x0", "x1", "x2"])
    assert losslens.evaluate(y, frame).overall.log_loss == pytest.approx(log_loss(y, proba), **CLOSE)
    # ... but one misspelt name among real ones is a mistake, not a position.
    with pytest.raises(InputError, match="label 'virginica' has no column"):
        losslens.evaluate(y, frame.rename(columns={"x0": "setosa", "x1": "versicolor"}))


# --------------------------------------------------------------------------- one column


def test_series_named_after_a_class_is_its_probability(cancer):
    X, y, model = cancer  # classes_ ['benign', 'malignant']
    proba = model.predict_proba(X)
    reference = log_loss(y, proba, labels=model.classes_)
    for j, cls in enumerate(model.classes_):
        evaluation = losslens.evaluate(y, pd.Series(proba[:, j], name=cls))
        assert evaluation.overall.log_loss == pytest.approx(reference, **CLOSE), cls
        assert evaluation.run.layout.classes[evaluation.run.layout.positive_index] == cls
    # Numbers as numbers: a Series named 0 (or 0.0) with labels 0/1 is P(0), not P(1).
    y01 = (y == "malignant").astype(int)
    for name in (0, 0.0, "0"):
        evaluation = losslens.evaluate(y01, pd.Series(proba[:, 0], name=name))
        assert evaluation.overall.log_loss == pytest.approx(reference, **CLOSE), name
    # True is 1: boolean labels with columns named 0 and 1 (or a Series named True), any order.
    is_malignant = y01.astype(bool)
    swapped = pd.DataFrame(proba, columns=[0, 1])[[1, 0]]
    assert losslens.evaluate(is_malignant, swapped).overall.log_loss == pytest.approx(reference, **CLOSE)
    assert losslens.evaluate(y01, pd.Series(proba[:, 1], name=True)).overall.log_loss == pytest.approx(
        reference, **CLOSE)
    # A one-column DataFrame(p) has the default column 0: a position, so P(1) as scikit-learn
    # takes an (n, 1) y_pred, not P(class 0).
    assert losslens.evaluate(y01, pd.DataFrame(proba[:, 1])).overall.log_loss == pytest.approx(reference, **CLOSE)
    # DataFrame(predict_proba)[1] with labels 1 and 2 is class 1 by name, class 2 by position.
    with pytest.raises(InputError, match=re.escape(
        "y_prob is named 1, which is class '1' by name but column 1 (class '2') of predict_proba by position; "
        "rename it after the class it is the probability of: .rename(2) or .rename(1)"
    )):
        losslens.evaluate(y01 + 1, pd.DataFrame(proba)[1])
    assert losslens.evaluate(y01 + 1, pd.DataFrame(proba)[1].rename(2)).overall.log_loss == pytest.approx(
        reference, **CLOSE)


def test_one_unnamed_column_with_text_labels_is_refused(cancer):
    X, y, model = cancer
    p_malignant = model.predict_proba(X)[:, 1]
    message = (
        "y_prob of shape (569,) holds one probability, but the labels 'benign' and 'malignant' have no natural "
        "order: it could be P('benign') or P('malignant'); name it after its class "
        "(pandas.Series(p, name='malignant')) or say positive_label='malignant'"
    )
    for unnamed in (p_malignant, pd.Series(p_malignant), pd.Series(p_malignant, name="proba")):
        with pytest.raises(InputError, match=re.escape(message)):
            losslens.evaluate(y, unnamed)
    reference = log_loss(y, p_malignant)  # scikit-learn: P(the later label in sorted order)
    said = losslens.evaluate(y, p_malignant, positive_label="malignant")
    assert said.overall.log_loss == pytest.approx(reference, **CLOSE)
    # classes=[negative, positive] says it too, as before; numeric labels keep the greater.
    declared = losslens.evaluate(y, p_malignant, classes=["benign", "malignant"])
    assert declared.overall.log_loss == pytest.approx(reference, **CLOSE)
    with pytest.raises(UsageError, match=re.escape(
        "y_prob is named 'benign', which classes=['no', 'yes'] does not list"
    )):
        losslens.evaluate(y, pd.Series(p_malignant, name="benign"), classes=["no", "yes"])


# --------------------------------------------------------------------------- polars


def test_polars_frames_and_series_map_by_name(iris, cancer):
    X, y, model = iris
    proba = model.predict_proba(X)
    reference = log_loss(y, proba, labels=model.classes_)
    frame = pl.DataFrame({c: proba[:, j] for j, c in enumerate(model.classes_)}).select(
        ["virginica", "setosa", "versicolor"]
    )
    evaluation = losslens.evaluate(pl.Series("species", y), frame)
    assert evaluation.overall.log_loss == pytest.approx(reference, **CLOSE)
    # polars' default names (column_0, ...) name nothing: positional.
    assert losslens.evaluate(y, pl.DataFrame(proba)).overall.log_loss == pytest.approx(reference, **CLOSE)
    X, yb, binary = cancer
    pb = binary.predict_proba(X)
    evaluation = losslens.evaluate(yb, pl.Series("benign", pb[:, 0]))
    assert evaluation.overall.log_loss == pytest.approx(log_loss(yb, pb, labels=binary.classes_), **CLOSE)
    # A whole polars frame with its label column is read as a pandas one is.
    table = frame.with_columns(pl.Series("label", y)).rename({c: f"p_{c}" for c in model.classes_})
    assert losslens.evaluate(table).overall.log_loss == pytest.approx(reference, **CLOSE)


# --------------------------------------------------------------------------- torch


@pytest.fixture(scope="module")
def wine_logits(wine):
    X, names, model = wine
    y = torch.as_tensor(np.searchsorted(model.classes_, names))
    return y, torch.as_tensor(model.decision_function(X), dtype=torch.float32)


def test_torch_tensors_of_every_float_dtype(wine_logits):
    y, logits = wine_logits
    exact = torch.nn.functional.cross_entropy(logits.double(), y).item()
    # Unit roundoff of each dtype: a probability rounded to it is off by at most that share,
    # so each example's -log p by at most about that much; the mean too.
    roundoff = {torch.float32: 2.0**-24, torch.float16: 2.0**-11, torch.bfloat16: 2.0**-8}
    for dtype, u in roundoff.items():
        proba = torch.softmax(logits, dim=1).to(dtype)  # as a model run under autocast hands them out
        evaluation = losslens.evaluate(y, proba)
        # The very values given, cast exactly to float32, clipped at float32's eps (as
        # scikit-learn clips a float32 array), summed in float64: this hand-worked number.
        given = proba.float().numpy().astype(np.float64)[np.arange(len(y)), y.numpy()]
        hand = -np.mean(np.log(np.clip(given, FLOAT32_EPS, 1 - FLOAT32_EPS)))
        assert evaluation.overall.log_loss == pytest.approx(hand, **CLOSE), dtype
        assert evaluation.overall.log_loss == pytest.approx(exact, abs=2 * u + FLOAT32_EPS), dtype
        assert evaluation.run.layout.eps == FLOAT32_EPS
        assert evaluation.overall.n_unnormalized == 0, dtype  # a bf16 softmax sums to 1 within bf16's rounding
    # A tensor that still requires grad (a model's output) is read without a .detach() by the user.
    graded = torch.softmax(logits.clone().requires_grad_(True), dim=1).to(torch.bfloat16)
    assert losslens.evaluate(y, graded).overall.log_loss == pytest.approx(
        losslens.evaluate(y, graded.detach()).overall.log_loss, rel=0)


def test_logits_are_log_softmaxed_not_clipped(wine_logits, iris):
    y, logits = wine_logits
    for dtype in (torch.float32, torch.float16, torch.bfloat16, torch.float64):
        given = logits.to(dtype)
        reference = torch.nn.functional.cross_entropy(given.double(), y).item()  # the cast is exact
        assert losslens.evaluate(y, logits=given).overall.log_loss == pytest.approx(reference, **CLOSE), dtype
    # A confident mistake by a margin of 100: clipped probabilities would give -log(eps) = 36.04.
    gap = torch.tensor([[0.0, 100.0], [2.0, -1.0], [0.5, 0.25]])
    labels = torch.tensor([0, 0, 1])
    evaluation = losslens.evaluate(labels, logits=gap)
    reference = torch.nn.functional.cross_entropy(gap.double(), labels).item()
    assert evaluation.overall.log_loss == pytest.approx(reference, **CLOSE)
    assert evaluation.run.worst[0].loss == pytest.approx(100.0, **CLOSE)
    # Names work for logits as for probabilities: a shuffled frame of decision_function.
    X, names, model = iris
    scores = model.decision_function(X)
    frame = pd.DataFrame(scores, columns=model.classes_)[["versicolor", "virginica", "setosa"]]
    reference = torch.nn.functional.cross_entropy(
        torch.as_tensor(scores), torch.as_tensor(np.searchsorted(model.classes_, names))).item()
    assert losslens.evaluate(names, logits=frame).overall.log_loss == pytest.approx(reference, **CLOSE)


# --------------------------------------------------------------------------- keywords


def test_sklearn_labels_keyword_is_answered(iris):
    X, y, model = iris
    proba = model.predict_proba(X)
    message = (
        "labels= is scikit-learn's keyword; losslens calls it classes= and takes it in y_prob's column order, "
        "while scikit-learn takes y_prob's columns in sorted order whatever order labels= has: "
        "classes=sorted(labels) gives scikit-learn's number"
    )
    with pytest.raises(UsageError, match=re.escape(message)):
        losslens.evaluate(y, proba, labels=model.classes_)
    with pytest.raises(UsageError, match=re.escape(message)):
        losslens.evaluate(pd.DataFrame({"label": y}), labels=list(model.classes_))
    weights = np.linspace(0.5, 2.0, len(y))
    evaluation = losslens.evaluate(y, proba, classes=sorted(model.classes_), sample_weight=weights)
    assert evaluation.overall.log_loss == pytest.approx(
        log_loss(y, proba, labels=model.classes_, sample_weight=weights), **CLOSE)


def test_repr_is_one_short_line(iris):
    X, y, model = iris
    evaluation = losslens.evaluate(y, pd.DataFrame(model.predict_proba(X), columns=model.classes_), name="iris")
    overall = evaluation.overall.log_loss
    assert repr(evaluation) == f"<Evaluation: 1 run 'iris', log_loss {overall:.4f} nats, 150 examples>"
    assert repr(evaluation.run) == f"<RunEvaluation 'iris', log_loss {overall:.4f} nats, 150 examples>"
    two = losslens.evaluate_runs([pd.DataFrame({"label": [0, 1], "p_1": [0.25, 0.75]})] * 2, names=["a", "b"])
    assert repr(two) == "<Evaluation: 2 runs ('a', 'b'); first 'a', log_loss 0.2877 nats, 2 examples>"
