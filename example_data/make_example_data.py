"""Regenerate the example prediction files bundled with losslens.

Every file holds predictions of a real scikit-learn model on a data set that ships inside
scikit-learn (no download), with fixed seeds, so running this script again writes
byte-identical files (on the same platform and library versions).

Files written (to the folder of this script, or to ``--out DIR``):

``breast_cancer_binary.csv``
    Binary layout with ONE probability column. Columns ``id``, ``label`` (0 = malignant,
    1 = benign, scikit-learn's coding) and ``y_prob`` = P(label == 1), from a
    StandardScaler + LogisticRegression trained on a seeded 60 % split; rows are the
    held-out 40 % only. Read it with::

        losslens metrics example_data/breast_cancer_binary.csv

``digits_multiclass.parquet``
    The main example: 10 classes with string names ``"zero"`` ... ``"nine"``. Columns
    ``id``, ``label``, ``split`` (``"train"`` for a seeded 70 %, ``"validation"`` for the
    rest), ``ink`` (``"light"``/``"medium"``/``"heavy"``: tertile of the image's total pixel
    intensity) and ``p_zero`` ... ``p_nine``. A weakly regularised LogisticRegression
    (C=10) predicts every row, so the train rows are in-sample and show a lower loss than
    the validation rows. Read it with::

        losslens metrics example_data/digits_multiclass.parquet
        losslens metrics example_data/digits_multiclass.parquet --by ink

``wine_logits.csv``
    Logits instead of probabilities. Columns ``id``, ``label`` (``class_0``, ``class_1``,
    ``class_2``) and ``logit_class_0`` ... ``logit_class_2`` = ``decision_function`` of a
    multinomial StandardScaler + LogisticRegression, for a seeded held-out 40 %. Read it
    with::

        losslens metrics example_data/wine_logits.csv --logits logit_

``iris_soft_targets.csv``
    Soft targets (a distribution per row instead of a hard label). Columns ``id``,
    ``t_setosa``, ``t_versicolor``, ``t_virginica`` (share of each class among the row's
    10 nearest neighbours, itself excluded, with add-0.5 smoothing) and ``p_setosa``,
    ``p_versicolor``, ``p_virginica`` (out-of-fold predict_proba of a StandardScaler +
    LogisticRegression trained on the hard labels, 5-fold seeded KFold). Read it with::

        losslens metrics example_data/iris_soft_targets.csv --targets t_

Run ``make example-data`` (or ``python example_data/make_example_data.py``) to regenerate.
This script needs scikit-learn (the ``test`` extra) and does not import losslens itself,
so that the example data never depends on the code it is meant to check.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sklearn.datasets import load_breast_cancer, load_digits, load_iris, load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, log_loss
from sklearn.model_selection import KFold, cross_val_predict, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

#: One seed for every split and fold, so that a change of seed is a change in one place.
SEED = 0

#: Written into every CSV: 17 significant digits is enough for any float64 to round-trip
#: exactly, so the CSV files hold the same numbers as the model produced.
CSV_FLOAT_FORMAT = "%.17g"

#: Tolerance for "each probability row sums to 1". predict_proba normalises in float64,
#: so anything looser than a few ulps would hide a real bug (e.g. a dropped column).
SUM_TOL = 1e-9

DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
INK_LEVELS = ("light", "medium", "heavy")


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------


def make_ids(prefix: str, row_numbers: np.ndarray) -> list[str]:
    """Build row ids such as ``"bc-0001"`` from 0-based row numbers of the source data set.

    Parameters
    ----------
    prefix : str
        Text before the dash, e.g. ``"bc"``.
    row_numbers : numpy.ndarray of int
        0-based positions in the scikit-learn data set.

    Returns
    -------
    list of str
        ``f"{prefix}-{n + 1:04d}"`` for each row number. The id keeps the original row
        number (1-based), so a row of a held-out file can be traced back to the data set.
    """
    return [f"{prefix}-{n + 1:04d}" for n in row_numbers]


def logistic_pipeline(C: float = 1.0):
    """Return a StandardScaler + LogisticRegression pipeline.

    Parameters
    ----------
    C : float, default 1.0
        Inverse regularisation strength of the logistic regression.

    Returns
    -------
    sklearn.pipeline.Pipeline
        Unfitted pipeline. lbfgs is deterministic, so no random_state is needed; max_iter
        is high so that the fit converges (a ConvergenceWarning is turned into an error in
        :func:`main`, because a fit that stops early depends on the iteration cap).
    """
    return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=10_000))


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax, shifted by the row maximum to avoid overflow.

    Parameters
    ----------
    z : numpy.ndarray, shape (n_rows, n_classes)
        Logits.

    Returns
    -------
    numpy.ndarray
        Probabilities with the same shape; each row sums to 1.
    """
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """Write a DataFrame as CSV with exact floats and no index.

    Parameters
    ----------
    frame : pandas.DataFrame
        Data to write.
    path : pathlib.Path
        Destination file.
    """
    # "\n" line endings on every platform, so the bytes (and the sha256) do not depend on
    # the operating system the script runs on.
    frame.to_csv(path, index=False, float_format=CSV_FLOAT_FORMAT, lineterminator="\n")


def write_parquet(columns: dict[str, np.ndarray | list], path: Path) -> None:
    """Write columns to a Parquet file whose bytes depend only on the data.

    Parameters
    ----------
    columns : dict
        Column name -> values, in file order.
    path : pathlib.Path
        Destination file.
    """
    # Build the Arrow table directly instead of through pandas: pandas would add its own
    # schema metadata (including the pandas version), which changes the bytes of the file
    # without changing its content. Parquet itself stores no timestamp.
    table = pa.table(columns)
    pq.write_table(table, path, compression="zstd")


def check_probability_rows(probs: np.ndarray, what: str) -> None:
    """Assert that every row is a probability distribution.

    Parameters
    ----------
    probs : numpy.ndarray, shape (n_rows, n_classes)
        Values to check.
    what : str
        Name used in the assertion message.
    """
    assert not np.isnan(probs).any(), f"{what}: NaN"
    assert (probs >= 0).all() and (probs <= 1).all(), f"{what}: value outside [0, 1]"
    worst = np.abs(probs.sum(axis=1) - 1).max()
    assert worst <= SUM_TOL, f"{what}: a row sums to 1 +- {worst:g}"


# --------------------------------------------------------------------------------------
# the four files
# --------------------------------------------------------------------------------------


def breast_cancer_binary(out: Path) -> Path:
    """Write ``breast_cancer_binary.csv``: one P(label == 1) column for a held-out 40 %.

    Parameters
    ----------
    out : pathlib.Path
        Output folder.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    data = load_breast_cancer()
    X, y = data.data, data.target
    rows = np.arange(len(y))
    # Stratified so that the held-out part has the data set's 37/63 class balance.
    train, test = train_test_split(rows, train_size=0.6, random_state=SEED, stratify=y)
    # Held-out rows in data set order, so the ids read in increasing order.
    test = np.sort(test)

    model = logistic_pipeline().fit(X[train], y[train])
    proba = model.predict_proba(X[test])
    # Pick the column of class 1 by looking it up, not by assuming it is the last one.
    positive = int(np.flatnonzero(model.classes_ == 1)[0])
    y_prob = proba[:, positive]

    frame = pd.DataFrame(
        {"id": make_ids("bc", test), "label": y[test].astype(np.int64), "y_prob": y_prob}
    )
    path = out / "breast_cancer_binary.csv"
    write_csv(frame, path)
    print(
        f"breast_cancer: {len(test)} held-out rows, "
        f"log loss {log_loss(y[test], y_prob):.4f}, "
        f"accuracy {accuracy_score(y[test], y_prob >= 0.5):.4f}"
    )

    back = pd.read_csv(path)
    assert list(back.columns) == ["id", "label", "y_prob"]
    assert not back.isna().any().any()
    assert set(back["label"].unique()) <= {0, 1}
    assert ((back["y_prob"] >= 0) & (back["y_prob"] <= 1)).all()
    assert np.array_equal(back["y_prob"].to_numpy(), y_prob), "CSV floats did not round-trip"
    return path


def digits_multiclass(out: Path) -> Path:
    """Write ``digits_multiclass.parquet``: 10 named classes, train and validation rows.

    Parameters
    ----------
    out : pathlib.Path
        Output folder.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    data = load_digits()
    X, y = data.data, data.target
    names = np.array(DIGIT_NAMES, dtype=object)
    rows = np.arange(len(y))
    train, _ = train_test_split(rows, train_size=0.7, random_state=SEED, stratify=y)
    is_train = np.zeros(len(y), dtype=bool)
    is_train[train] = True

    # Tertiles of total ink over ALL rows (not per split), so a level means the same
    # thing in train and validation. The sums are integers with ties; qcut puts a tied
    # value on one side of an edge, which is why the three groups are not exactly equal.
    ink = pd.qcut(X.sum(axis=1), 3, labels=list(INK_LEVELS)).astype(str)

    # C=10 is weak regularisation on 64 features and ~1,260 rows: the model fits the
    # training rows almost perfectly, so in-sample loss is far below validation loss --
    # the gap that the ``split`` column is there to show.
    model = logistic_pipeline(C=10.0).fit(X[is_train], y[is_train])
    proba = model.predict_proba(X)  # every row: train rows in-sample, validation out-of-sample

    # classes_ is numeric 0..9; name each predict_proba column through classes_ rather
    # than by position, so a reordering of classes_ cannot silently mislabel a column.
    prob_columns = {f"p_{names[c]}": proba[:, j] for j, c in enumerate(model.classes_)}
    ordered = {f"p_{n}": prob_columns[f"p_{n}"] for n in DIGIT_NAMES}

    losses = {}
    for split_name, mask in (("train", is_train), ("validation", ~is_train)):
        losses[split_name] = log_loss(y[mask], proba[mask], labels=model.classes_)
        acc = accuracy_score(y[mask], model.classes_[proba[mask].argmax(axis=1)])
        print(
            f"digits {split_name:<10}: {mask.sum():4d} rows, "
            f"log loss {losses[split_name]:.4f}, accuracy {acc:.4f}"
        )
    assert losses["train"] < losses["validation"], "expected in-sample loss below validation"

    path = out / "digits_multiclass.parquet"
    write_parquet(
        {
            "id": make_ids("dig", rows),
            "label": list(names[y]),
            "split": ["train" if t else "validation" for t in is_train],
            "ink": list(ink),
            **ordered,
        },
        path,
    )

    back = pd.read_parquet(path)
    expected = ["id", "label", "split", "ink"] + [f"p_{n}" for n in DIGIT_NAMES]
    assert list(back.columns) == expected
    assert not back.isna().any().any()
    assert set(back["label"]) == set(DIGIT_NAMES)
    assert set(back["split"]) == {"train", "validation"}
    assert set(back["ink"]) == set(INK_LEVELS)
    p = back[[f"p_{n}" for n in DIGIT_NAMES]].to_numpy()
    check_probability_rows(p, "digits")
    assert np.array_equal(p, np.column_stack(list(ordered.values())))
    # The column named after the true class must be the model's best guess most of the
    # time; this fails loudly if the name <-> column mapping were off by one.
    true_col = np.array([DIGIT_NAMES.index(lab) for lab in back["label"]])
    assert (p.argmax(axis=1) == true_col).mean() > 0.9
    return path


def wine_logits(out: Path) -> Path:
    """Write ``wine_logits.csv``: multinomial logits for a held-out 40 %.

    Parameters
    ----------
    out : pathlib.Path
        Output folder.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    data = load_wine()
    X, y = data.data, data.target
    names = np.asarray(data.target_names, dtype=object)
    rows = np.arange(len(y))
    train, test = train_test_split(rows, train_size=0.6, random_state=SEED, stratify=y)
    test = np.sort(test)

    model = logistic_pipeline().fit(X[train], y[train])
    logits = model.decision_function(X[test])
    # The file is only right if losslens's softmax of these columns gives back the
    # model's probabilities; check it here rather than trust that decision_function
    # returns multinomial logits.
    proba = model.predict_proba(X[test])
    assert np.allclose(softmax(logits), proba, rtol=0, atol=1e-12), "softmax(logits) != proba"

    frame = pd.DataFrame({"id": make_ids("wine", test), "label": names[y[test]]})
    for j, c in enumerate(model.classes_):
        frame[f"logit_{names[c]}"] = logits[:, j]
    path = out / "wine_logits.csv"
    write_csv(frame, path)
    print(
        f"wine: {len(test)} held-out rows, log loss "
        f"{log_loss(y[test], proba, labels=model.classes_):.4f}, "
        f"accuracy {accuracy_score(y[test], model.classes_[proba.argmax(axis=1)]):.4f}"
    )

    back = pd.read_csv(path)
    logit_cols = [f"logit_{n}" for n in names]
    assert list(back.columns) == ["id", "label"] + logit_cols
    assert not back.isna().any().any()
    assert set(back["label"]) == set(names)
    assert np.array_equal(back[logit_cols].to_numpy(), logits), "CSV floats did not round-trip"
    check_probability_rows(softmax(back[logit_cols].to_numpy()), "wine softmax")
    return path


def neighbour_soft_targets(X: np.ndarray, y: np.ndarray, k: int, n_classes: int) -> np.ndarray:
    """Soft labels from the classes of each row's k nearest neighbours (itself excluded).

    Parameters
    ----------
    X : numpy.ndarray, shape (n_rows, n_features)
        Features; Euclidean distance in these units.
    y : numpy.ndarray of int, shape (n_rows,)
        Hard labels 0 .. n_classes - 1.
    k : int
        Number of neighbours.
    n_classes : int
        Number of classes.

    Returns
    -------
    numpy.ndarray, shape (n_rows, n_classes)
        ``(count + 0.5) / (k + 0.5 * n_classes)`` per row, then renormalised. The 0.5 keeps
        every class possible, as a panel of annotators rarely agrees with certainty.
    """
    # A full distance matrix (150 x 150 for iris) with a stable sort: iris has duplicate
    # rows and tied distances, and a stable sort breaks ties by row number, which a
    # tree-based neighbour search does not promise.
    d2 = ((X[:, None, :] - X[None, :, :]) ** 2).sum(axis=2)
    np.fill_diagonal(d2, np.inf)  # the row itself is never its own neighbour
    neighbours = np.argsort(d2, axis=1, kind="stable")[:, :k]
    counts = np.zeros((len(y), n_classes))
    for c in range(n_classes):
        counts[:, c] = (y[neighbours] == c).sum(axis=1)
    smoothed = counts + 0.5
    return smoothed / smoothed.sum(axis=1, keepdims=True)


def iris_soft_targets(out: Path) -> Path:
    """Write ``iris_soft_targets.csv``: neighbour-based soft targets and out-of-fold probabilities.

    Parameters
    ----------
    out : pathlib.Path
        Output folder.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    data = load_iris()
    X, y = data.data, data.target
    names = list(data.target_names)
    targets = neighbour_soft_targets(X, y, k=10, n_classes=len(names))

    # Iris is sorted by class, so the folds must be shuffled (seeded), or each fold would
    # test on a class the model never saw.
    folds = KFold(n_splits=5, shuffle=True, random_state=SEED)
    model = logistic_pipeline()
    proba = cross_val_predict(model, X, y, cv=folds, method="predict_proba")
    # cross_val_predict orders columns by the sorted labels 0, 1, 2 = target_names order.

    frame = pd.DataFrame({"id": make_ids("iris", np.arange(len(y)))})
    for j, n in enumerate(names):
        frame[f"t_{n}"] = targets[:, j]
    for j, n in enumerate(names):
        frame[f"p_{n}"] = proba[:, j]
    path = out / "iris_soft_targets.csv"
    write_csv(frame, path)
    cross_entropy = -(targets * np.log(proba)).sum(axis=1).mean()
    print(
        f"iris: {len(y)} rows, out-of-fold cross-entropy against soft targets "
        f"{cross_entropy:.4f}, hard-label log loss {log_loss(y, proba):.4f}"
    )

    back = pd.read_csv(path)
    t_cols = [f"t_{n}" for n in names]
    p_cols = [f"p_{n}" for n in names]
    assert list(back.columns) == ["id"] + t_cols + p_cols
    assert not back.isna().any().any()
    t = back[t_cols].to_numpy()
    assert np.abs(t.sum(axis=1) - 1).max() <= 1e-12, "soft targets do not sum to 1"
    check_probability_rows(t, "iris targets")
    check_probability_rows(back[p_cols].to_numpy(), "iris probabilities")
    assert np.array_equal(t, targets) and np.array_equal(back[p_cols].to_numpy(), proba)
    return path


# --------------------------------------------------------------------------------------
# entry point
# --------------------------------------------------------------------------------------


def sha256(path: Path) -> str:
    """Return the hex sha256 of a file, printed so two runs can be compared at a glance."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    """Write all example files and print their sizes and checksums.

    Parameters
    ----------
    argv : list of str, optional
        Command-line arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status (0).
    """
    parser = argparse.ArgumentParser(description="Regenerate the losslens example data.")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).resolve().parent,
        help="output folder (default: the folder of this script)",
    )
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    start = time.perf_counter()
    # One BLAS/OpenMP thread: multithreaded reductions may sum in a different order from
    # run to run, and the last bit of a float would then change the file's bytes.
    with threadpool_limits(limits=1), warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        paths = [
            breast_cancer_binary(args.out),
            digits_multiclass(args.out),
            wine_logits(args.out),
            iris_soft_targets(args.out),
        ]

    total = 0
    for path in paths:
        size = path.stat().st_size
        total += size
        print(f"{size:>9,d} B  {sha256(path)}  {path.name}")
    print(f"{total:>9,d} B  total, {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
