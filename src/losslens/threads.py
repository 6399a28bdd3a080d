"""Work on streamed batches in a few threads, handing the results back in input order.

numpy and pyarrow release the GIL in their loops, so scoring one batch in a worker thread while
the main thread decodes the next (and runs the order-dependent observers) uses a second core.
The results come back in the order of the inputs and the caller merges them in that order, so
every sum is taken exactly as one thread would take it: the same input gives byte-identical
figures whatever the number of threads.
"""

from __future__ import annotations

import os
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")
R = TypeVar("R")

#: Environment variable that sets the number of worker threads (1: everything in the caller's thread).
THREADS_ENV = "LOSSLENS_THREADS"
#: Most worker threads by default: more gain nothing on batches of a few MB and cost memory.
MAX_THREADS = 4
#: OpenBLAS (numpy's BLAS) reads this when numpy loads: how long, in 2**n CPU cycles, its worker
#: threads spin after each call before they sleep (default n = 28: about 0.1 s at 2.6 GHz).
BLAS_SPIN_ENV = "OPENBLAS_THREAD_TIMEOUT"
#: The shortest spin OpenBLAS accepts.
BLAS_SPIN = "4"


def quiet_blas_threads() -> None:
    """Let OpenBLAS's threads sleep right after each call; a user's own setting is kept.

    losslens scores batches in its own worker threads beside the main one. Every large dot
    product (a Brier or weight sum, the mean prediction, a token batch's Σℓ²) wakes OpenBLAS's
    threads, which then spin for about 0.1 s on the cores losslens's threads need: on two cores
    that burned 40% of the CPU time of ``losslens metrics`` on a 1M-row file and a third of its
    wall time. Only the spinning changes: BLAS keeps its threads and splits its work as before,
    so every figure is the same to the last bit. Called by the command line before numpy loads
    (it has no effect after); a library user can set the variable before importing numpy.
    """
    os.environ.setdefault(BLAS_SPIN_ENV, BLAS_SPIN)


def thread_count() -> int:
    """Worker threads to use: ``$LOSSLENS_THREADS`` if set, else the usable CPUs up to :data:`MAX_THREADS`."""
    given = os.environ.get(THREADS_ENV, "").strip()
    if given.isdigit() and int(given) > 0:
        return int(given)
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(MAX_THREADS, cpus))


def ordered_map(work: Callable[[T], R], items: Iterable[T], threads: int | None = None) -> Iterator[R]:
    """``map(work, items)`` run in ``threads`` worker threads, yielding results in input order.

    At most ``threads`` items are in flight (their results waiting too), so memory stays that of a few batches. Items
    are drawn from ``items`` in the caller's thread (reading a file stays sequential). An
    exception is raised where the sequential ``map`` would raise it: an error of item i comes
    before anything of item i + 1, and an error while drawing items comes after the results of
    the items drawn before it.

    Parameters
    ----------
    work : callable
        Called once per item, in a worker thread; must not depend on the other items.
    items : iterable
        The inputs, drawn lazily.
    threads : int, optional
        Worker threads (default :func:`thread_count`); 1 runs ``work`` in the caller's thread.

    Yields
    ------
    The results of ``work``, in the order of ``items``.
    """
    threads = thread_count() if threads is None else threads
    if threads <= 1:
        yield from map(work, items)
        return
    pending: deque[Future] = deque()
    iterator = iter(items)
    exhausted = False
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="losslens") as pool:
        try:
            while True:
                while not exhausted and len(pending) < threads:
                    try:
                        item = next(iterator)
                    except StopIteration:
                        exhausted = True
                        break
                    except BaseException:
                        # A reading error: the items read before it come first, as without threads.
                        while pending:
                            yield pending.popleft().result()
                        raise
                    pending.append(pool.submit(work, item))
                if not pending:
                    return
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()
