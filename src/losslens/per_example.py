"""The per-example file (``--per-example OUT.csv|OUT.parquet``), written as batches are scored.

:class:`PerExampleWriter` is an engine observer: each scored batch becomes rows of the file
at once, so memory does not grow with the data. It writes through
:class:`losslens.output.StagedFile`: :meth:`~PerExampleWriter.commit` puts the file in place and
:meth:`~PerExampleWriter.abort` deletes the temporary file, so the file appears whole or not at
all (a named pipe or ``/dev/stdout`` is written directly).

Columns, in order: ``run``, ``source``, ``row`` (1-based data row in ``source``), ``id`` (when the
layout has an id column, given with ``--id`` or detected), ``label``, ``predicted``, ``true_prob``, ``loss_nats``, ``loss_bits``, ``weight``
(with a weight column), ``split`` (null where a run has none), then one column per slice
column (named ``slice_<col>`` if the name is taken). ``loss_nats`` is exactly the loss the
metrics average: clipped to [eps, 1 − eps] for probabilities as scikit-learn does, never
clipped for logits. With soft targets ``label`` is the most likely target class and the loss
is the cross-entropy against the whole target distribution.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import UsageError
from .evaluation import LN2

#: Column names the file uses itself; a slice column of the same name gets a prefix.
_FIXED = ("run", "source", "row", "id", "label", "predicted", "true_prob", "loss_nats", "loss_bits", "weight", "split")


def file_format(path: str) -> str:
    """``csv`` or ``parquet`` from the file name; anything else is a usage error."""
    lowered = path.lower()
    if lowered.endswith(".csv"):
        return "csv"
    if lowered.endswith((".parquet", ".pq")):
        return "parquet"
    raise UsageError(f"--per-example {path}: the file name must end in .csv or .parquet")


class PerExampleWriter:
    """Engine observer writing one row per example to a CSV or Parquet file.

    Parameters
    ----------
    path : str
        The target file; its suffix picks the format (see :func:`file_format`). Written
        through :class:`losslens.output.StagedFile`: whole or not at all, or directly to a
        special file (a pipe, ``/dev/stdout``).
    id_column, weight_column : bool, optional
        Whether to write ``id`` and ``weight`` columns. Default: as the first run's detected
        layout has them, so that an id column found by detection is written too.
    by : sequence of str, optional
        The slice columns written after ``split``. Default: the first run's layout's.
    """

    def __init__(self, path: str, id_column: bool | None = None, weight_column: bool | None = None,
                 by=None) -> None:
        self.path = Path(path)
        self.format = file_format(path)
        self._wanted = (id_column, weight_column, None if by is None else tuple(by))
        self.by: tuple[str, ...] = ()
        self.schema = None
        self._writer = None
        self._staged = None
        self.n_rows = 0

    def _columns(self, layout) -> None:
        """Fix the file's columns: as asked, else from the (first run's) detected layout."""
        import pyarrow as pa

        id_column, weight_column, by = self._wanted
        if layout is not None:
            id_column = layout.id is not None if id_column is None else id_column
            weight_column = layout.weight is not None if weight_column is None else weight_column
            by = tuple(layout.by) if by is None else by
        self.by = tuple(by or ())
        fields = [("run", pa.string()), ("source", pa.string()), ("row", pa.int64())]
        if id_column:
            fields.append(("id", pa.string()))
        fields += [("label", pa.string()), ("predicted", pa.string()), ("true_prob", pa.float64()),
                   ("loss_nats", pa.float64()), ("loss_bits", pa.float64())]
        if weight_column:
            fields.append(("weight", pa.float64()))
        fields.append(("split", pa.string()))
        self._slice_names = [f"slice_{c}" if c in _FIXED else c for c in self.by]
        fields += [(name, pa.string()) for name in self._slice_names]
        self.schema = pa.schema(fields)

    def _open(self, layout=None, schema=None) -> None:
        from .output import StagedFile

        if schema is None:
            self._columns(layout)
        else:
            self.schema = schema
        self._staged = StagedFile(self.path)
        if self.format == "csv":
            from pyarrow import csv

            self._writer = csv.CSVWriter(self._staged.path, self.schema)
        else:
            import pyarrow.parquet as pq

            self._writer = pq.ParquetWriter(self._staged.path, self.schema)

    def __call__(self, run_name: str, layout, batch) -> None:
        """Append the examples of one scored batch."""
        import pyarrow as pa

        if self._writer is None:
            self._open(layout)
        n = batch.n
        classes = np.asarray(layout.classes, dtype=object)
        columns = {
            "run": pa.array([run_name] * n, type=pa.string()),
            "source": pa.array([batch.source] * n, type=pa.string()),
            "row": pa.array(batch.rows, type=pa.int64()),
            "label": pa.array(classes[batch.label], type=pa.string()),
            "predicted": pa.array(classes[batch.predicted], type=pa.string()),
            "true_prob": pa.array(batch.true_prob, type=pa.float64()),
            "loss_nats": pa.array(batch.loss, type=pa.float64()),
            "loss_bits": pa.array(batch.loss / LN2, type=pa.float64()),
            "weight": pa.array(batch.weight, type=pa.float64()),
            "id": pa.array(batch.ids if batch.ids is not None else [None] * n, type=pa.string()),
            "split": pa.array(batch.split if batch.split is not None else [None] * n, type=pa.string()),
        }
        slices = batch.slices or {}
        for column, name in zip(self.by, self._slice_names):
            values = slices.get(column)
            columns[name] = pa.array(values if values is not None else [None] * n, type=pa.string())
        record = pa.RecordBatch.from_arrays([columns[f.name] for f in self.schema], schema=self.schema)
        self._writer.write_batch(record)
        self.n_rows += n

    def write_table(self, table) -> None:
        """Write a whole Arrow table as the file's rows (language models: one row per document).

        Used instead of the observer calls; the file's columns are the table's.
        """
        if self._writer is not None:
            raise UsageError("--per-example: the file already has rows of another layout")
        self._open(schema=table.schema)
        self._writer.write_table(table)
        self.n_rows += table.num_rows

    def commit(self) -> Path:
        """Finish the file and put it in place (an empty run set still gets a header)."""
        if self._writer is None:
            self._open()
        self._writer.close()
        self._writer = None
        self._staged.commit()
        self._staged = None
        return self.path

    def abort(self) -> None:
        """Delete the temporary file; any earlier file at the target is left untouched."""
        if self._writer is not None:
            try:
                self._writer.close()
            except Exception:  # noqa: BLE001 - already failing; the file is deleted anyway
                pass
            self._writer = None
        if self._staged is not None:
            self._staged.abort()
            self._staged = None
