"""The pandas script losslens's language-model path is measured against (benchmarks/bench_lm.py).

Reads a token file (``doc_id``, ``logprob``, ``n_bytes``) and computes what a careful user would
write by hand: per-document sums with ``groupby`` and the Min-K% Prob score (k = 0.2: the mean of
each document's max(1, int(0.2·n)) lowest log-probs, exponentiated), then the corpus log loss and
bits per byte. Prints the log loss so that the benchmark can check both agree.
"""

from __future__ import annotations

import math
import sys

import numpy as np
import pandas as pd


def main(path: str) -> None:
    frame = pd.read_parquet(path)
    frame["logprob"] = frame["logprob"].astype("float64")  # float32 sums of 10M values drift
    groups = frame.groupby("doc_id", sort=False)
    documents = groups.agg(nll=("logprob", "sum"), n_tokens=("logprob", "size"), n_bytes=("n_bytes", "sum"))
    documents["nll"] = -documents["nll"]
    # Min-K%: rank within each document (cythonized groupby rank), keep the lowest m.
    rank = groups["logprob"].rank(method="first").to_numpy()
    count = frame["doc_id"].map(np.maximum(1, (documents["n_tokens"] * 0.2).astype(int))).to_numpy()
    lowest = frame.loc[rank <= count]
    documents["min_k_prob"] = np.exp(lowest.groupby("doc_id", sort=False)["logprob"].mean())
    log_loss = documents["nll"].sum() / documents["n_tokens"].sum()
    bits_per_byte = documents["nll"].sum() / documents["n_bytes"].sum() / math.log(2)
    print(f"{float(log_loss)!r} {float(bits_per_byte)!r} {int((documents['min_k_prob'] >= 0.1).sum())}")


if __name__ == "__main__":
    main(sys.argv[1])
