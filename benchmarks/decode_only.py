"""Decode a Parquet file as losslens reads it, and nothing else: the floor of its reading.

Usage::

    .venv/bin/python benchmarks/decode_only.py FILE.parquet

Every column of the file through losslens's own reader (``losslens.reading.iter_batches``: each
column read through a small buffer without pre-buffering, in record batches of about 16 MB, in
this one thread), with the command line's settings of Arrow's memory pool and OpenBLAS's
threads. Prints the number of rows, then the wall and CPU seconds of the reading alone (imports
and start-up excluded). ``bench.py`` runs it beside DuckDB's query on the 10M-row file: what
losslens pays to read the file before computing anything.
"""

import sys
import time

from losslens.threads import choose_arrow_memory_pool, quiet_blas_threads

# Before pyarrow (and numpy with it) loads, as the command line does.
quiet_blas_threads()
choose_arrow_memory_pool()
from losslens.reading import iter_batches, read_schema, resolve  # noqa: E402


def main(path: str) -> int:
    wall, cpu = time.perf_counter(), time.process_time()
    (source,) = resolve(path)
    types = dict.fromkeys(read_schema(source).names)  # every column, as stored
    rows = sum(batch.num_rows for _, batch in iter_batches(source, types))
    print(rows, f"{time.perf_counter() - wall:.4f}", f"{time.process_time() - cpu:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
