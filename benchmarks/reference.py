"""The hand-written baseline losslens is measured against: read the file, call scikit-learn.

Usage: ``python benchmarks/reference.py FILE.parquet``. Prints the log loss. Only what a user
would type without losslens: ``pandas.read_parquet`` and ``sklearn.metrics.log_loss``.
"""

import sys

import pandas as pd
from sklearn.metrics import log_loss


def main(path: str) -> None:
    """Print the log loss of the ``label`` column against the ``p_*`` columns of ``path``."""
    frame = pd.read_parquet(path)
    prob_columns = [c for c in frame.columns if c.startswith("p_")]
    labels = [int(c[2:]) for c in prob_columns]
    print(repr(log_loss(frame["label"], frame[prob_columns].to_numpy(), labels=labels)))


if __name__ == "__main__":
    main(sys.argv[1])
