"""Decode a Parquet file with pyarrow as losslens reads it, and nothing else: the floor of its reading.

Usage::

    .venv/bin/python benchmarks/decode_only.py FILE.parquet

The same calls as ``losslens metrics`` on a narrow file (``losslens.reading``): every column,
each read through a 64 KB buffer without pre-buffering, in record batches of about 16 MB, in
this one thread (no Arrow threads), with the command line's settings of Arrow's memory pool and
OpenBLAS's threads. Prints the number of rows, then the wall and CPU seconds of the decoding
alone (imports and start-up excluded). ``bench.py`` runs it beside DuckDB's query on the 10M-row
file: what losslens pays to read the file before computing anything.
"""

import sys
import time

from losslens.threads import choose_arrow_memory_pool, quiet_blas_threads

# Before pyarrow (and numpy with it) loads, as the command line does.
quiet_blas_threads()
choose_arrow_memory_pool()
import pyarrow.parquet as pq  # noqa: E402

#: losslens.reading's PARQUET_BUFFER_BYTES and BATCH_BYTES.
BUFFER_BYTES = 2**16
BATCH_BYTES = 16 * 2**20


def main(path: str) -> int:
    wall, cpu = time.perf_counter(), time.process_time()
    parquet = pq.ParquetFile(path, pre_buffer=False, buffer_size=BUFFER_BYTES)
    columns = parquet.schema_arrow.names
    rows_per_batch = max(1024, BATCH_BYTES // (8 * max(1, len(columns))))
    rows = sum(batch.num_rows for batch in parquet.iter_batches(batch_size=rows_per_batch, use_threads=False))
    print(rows, f"{time.perf_counter() - wall:.4f}", f"{time.process_time() - cpu:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
