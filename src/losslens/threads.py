"""Work on streamed batches in a few threads, handing the results back in input order.

numpy and pyarrow release the GIL in their loops, so scoring one batch in a worker thread while
the main thread decodes the next (and runs the order-dependent observers) uses a second core.
The results come back in the order of the inputs and the caller merges them in that order, so
every sum is taken exactly as one thread would take it: the same input gives byte-identical
figures whatever the number of threads.

The command line's process-wide settings for working this way live here too, each kept when the
user set it and none changing a figure: OpenBLAS's threads sleep after each call, all threads
share one malloc arena, Arrow's memory pool is jemalloc keeping the pages it frees (or mimalloc
purging after 10 ms), and Python's cyclic garbage collector runs less often and leaves the
command's objects to its exit.
"""

from __future__ import annotations

import os
import sys
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor, wait
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


#: glibc's ``mallopt`` parameter for the number of malloc arenas, and the variable that sets it.
M_ARENA_MAX = -8
ARENA_ENV = "MALLOC_ARENA_MAX"


def share_one_malloc_arena() -> bool:
    """Let every thread allocate from glibc's main arena (``mallopt(M_ARENA_MAX, 1)``).

    By default glibc gives each worker thread an arena of its own. Batch-sized numpy arrays
    freed there go back to the kernel and are faulted in again for the next batch: a 10M-row
    ``losslens metrics`` spent 0.8–1.5 s of system time doing that, 0.3–0.5 s with one
    shared arena, and ran 5–12% faster (peak memory 10–15 MB lower). The few large allocations
    per batch do not contend for the arena's lock. Nothing computed changes. A user's own
    ``MALLOC_ARENA_MAX`` is kept; elsewhere than glibc this does nothing. Called by the
    command line before its worker threads start.

    Returns
    -------
    bool
        Whether the setting was made.
    """
    if os.environ.get(ARENA_ENV) or not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt  # the process's own C library
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return mallopt(M_ARENA_MAX, 1) == 1


#: Container allocations between two collections of the cyclic garbage collector's youngest
#: generation, for the command line (Python's default is 700 up to 3.12).
GC_FIRST_THRESHOLD = 100_000


def collect_cycles_less_often() -> bool:
    """Run the cyclic garbage collector's youngest generation every 100,000 allocations, not 700.

    A command imports about 35,000 long-lived objects (modules, functions, classes); at 700 the
    collector scanned them 80 times on their way to the oldest generation, 9 ms of a 1M-row
    ``losslens metrics`` (4% of its CPU time in ``perf``), holding the GIL the worker threads
    need. The batches' arrays are not in reference cycles, so memory does not grow (10M rows:
    the same peak); cycles are still collected, less often. Nothing computed changes. A
    threshold set higher, or 0 (collection off), is kept.

    Returns
    -------
    bool
        Whether the setting was made.
    """
    import gc

    first, *older = gc.get_threshold()
    if not 0 < first < GC_FIRST_THRESHOLD:
        return False
    gc.set_threshold(GC_FIRST_THRESHOLD, *older)
    return True


def leave_objects_to_the_exit() -> None:
    """Keep Python's exit from searching every object of the run for reference cycles (``gc.freeze``).

    At exit the interpreter collects cycles over every object still alive, twice: 28 ms of a
    1M-row ``losslens metrics`` (perf: ``gc_collect_main`` and its visits in the last 45 ms of
    the process), 6% of its wall time. Frozen, they are left to the operating system with the
    process, as everything else. The exit still runs every ``atexit`` handler, closes files and
    joins threads; only cyclic garbage left at that point goes uncollected. Called by the
    command line when the command is done.
    """
    import gc

    gc.freeze()


#: mimalloc (the memory pool of pyarrow's wheels) reads this when pyarrow loads: how long, in
#: milliseconds, freed memory stays committed before it goes back to the system (1,000 by
#: default in mimalloc 3; 10 was mimalloc 2's default).
ARROW_PURGE_ENV = "MIMALLOC_PURGE_DELAY"
ARROW_PURGE_MS = "10"
#: Arrow reads its memory pool's name from this when pyarrow loads.
ARROW_POOL_ENV = "ARROW_DEFAULT_MEMORY_POOL"
ARROW_POOL = "jemalloc"
#: pyarrow's own jemalloc (its functions prefixed ``je_arrow_``) reads its options from this
#: when it starts, after the ones Arrow builds in.
ARROW_JEMALLOC_CONF_ENV = "JE_ARROW_MALLOC_CONF"
#: Keep freed pages for the next batches instead of giving them back to the system, and no
#: background thread to give them back.
ARROW_JEMALLOC_CONF = "background_thread:false,dirty_decay_ms:-1,muzzy_decay_ms:-1"


def choose_arrow_memory_pool() -> None:
    """jemalloc as pyarrow's memory pool where it has it, else mimalloc purging after 10 ms; a user's values are kept.

    The batches are decoded in one thread and freed in another, hundreds of MB a second.
    mimalloc, the default pool of pyarrow's wheels, held about a second's worth of freed
    batches (a 10M-row ``losslens metrics`` peaked at 320–340 MB); purged after 10 ms it
    peaked at 275–290 MB but faulted each batch's pages in again (130,000 page faults, 0.6 s of
    system time in that run). jemalloc reuses them: 60,000 faults, 0.33 s of system time, wall
    ×0.91 and 274 against 287 MiB (medians of 7 interleaved runs), and faster and smaller on
    every benchmark file (issue #22). A pyarrow built without jemalloc would warn on stderr
    if asked for it, so it is asked for only where pyarrow's own build header says it has it;
    mimalloc's purge delay is then set instead (0 ms made a 1,000-class file 30% slower).

    Where the pool is jemalloc, it keeps what is freed for the next batches
    (:data:`ARROW_JEMALLOC_CONF`). Arrow builds it in to give freed pages back to the system
    within a second, and its buffers of 16 kB or more right away, so many batches' decoded
    columns were faulted in again: a 10M-row ``losslens metrics`` had 140,000 page faults and
    0.48 s of system time, about 70,000 and 0.34 s kept (wall ×0.975, CPU ×0.945, peak +2 MiB;
    medians of 15 interleaved runs). The 1M-row and token files ran as fast as before (peak
    +5–7 MiB). The memory stays the process's until it exits. Nothing computed changes.
    Called by the command line before pyarrow loads (no effect after).
    """
    if ARROW_POOL_ENV not in os.environ and _arrow_has_jemalloc():
        os.environ[ARROW_POOL_ENV] = ARROW_POOL
    if os.environ.get(ARROW_POOL_ENV) == ARROW_POOL:
        os.environ.setdefault(ARROW_JEMALLOC_CONF_ENV, ARROW_JEMALLOC_CONF)
    os.environ.setdefault(ARROW_PURGE_ENV, ARROW_PURGE_MS)


def _arrow_has_jemalloc() -> bool:
    """Whether the installed pyarrow was built with jemalloc, read from the build header its wheels ship.

    Importing pyarrow to ask would be too late (it reads its pool's name when it loads); no
    header (a build that does not ship one) counts as no.
    """
    import importlib.util

    try:
        spec = importlib.util.find_spec("pyarrow")
    except (ImportError, ValueError):
        return False
    for folder in (spec.submodule_search_locations or []) if spec else []:
        try:
            with open(os.path.join(folder, "include", "arrow", "util", "config.h"), encoding="utf-8") as file:
                header = file.read()
        except OSError:
            continue
        return "#define ARROW_JEMALLOC\n" in header
    return False


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


#: The worker pools, one per process and thread count, kept between calls: starting two threads
#: cost about 1.7 ms, and the temperature fit maps over its sample a dozen times.
_POOLS: dict[tuple[int, int], ThreadPoolExecutor] = {}
_POOLS_LOCK = threading.Lock()


def _pool(threads: int) -> ThreadPoolExecutor:
    """The process's pool of ``threads`` worker threads (a forked child makes its own)."""
    key = (os.getpid(), threads)
    with _POOLS_LOCK:
        if key not in _POOLS:
            _POOLS[key] = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="losslens")
        return _POOLS[key]


def ordered_map(work: Callable[[T], R], items: Iterable[T], threads: int | None = None,
                ahead: int | None = None, light: Callable[[R], bool] | None = None,
                workers: int | None = None) -> Iterator[R]:
    """``map(work, items)`` run in ``threads`` worker threads, yielding results in input order.

    At most ``ahead`` items are in flight (their results waiting too), so memory stays that of a
    few batches. Items are drawn from ``items`` in the caller's thread (reading a file stays
    sequential). An exception is raised where the sequential ``map`` would raise it: an error
    of item i comes before anything of item i + 1, and an error while drawing items comes after
    the results of the items drawn before it.

    Parameters
    ----------
    work : callable
        Called once per item, in a worker thread; must not depend on the other items.
    items : iterable
        The inputs, drawn lazily.
    threads : int, optional
        Worker threads (default :func:`thread_count`); 1 runs ``work`` in the caller's thread.
    ahead : int, optional
        Items in flight at most (default ``threads``: batch-sized results bound the memory).
        Short items with small results want more, so that no thread waits for the caller to
        take a result before it gets the next item.
    light : callable, optional
        ``light(result)``: whether a finished result holds little memory (not its batch's
        arrays). Given, one item more than ``ahead`` is drawn while every finished result still
        waiting is light: a worker that finishes before the oldest item's worker then finds the
        next item drawn, instead of waiting while the caller waits for the oldest. A heavy
        result waiting stops the extra item, so memory stays that of ``ahead`` batches and one
        more drawn.
    workers : int, optional
        Worker threads that run ``work`` when ``threads`` is more than 1 (default ``threads``, at
        least 1): fewer where drawing an item is work of its own (decoding a batch), so that the
        caller's thread is not one thread too many for the CPUs.

    Yields
    ------
    The results of ``work``, in the order of ``items``.
    """
    threads = thread_count() if threads is None else threads
    if threads <= 1:
        yield from map(work, items)
        return
    ahead = threads if ahead is None else max(ahead, 1)
    pool = _pool(threads if workers is None else max(1, workers))
    pending: deque[Future] = deque()
    iterator = iter(items)
    exhausted = False

    def room() -> int:
        if light is None:
            return ahead
        waiting = (f for f in pending if f.done())
        return ahead + all(f.exception() is None and light(f.result()) for f in waiting)

    try:
        while True:
            while not exhausted and len(pending) < room():
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
        # On an error or an abandoned generator: nothing of this call runs on after it.
        for future in pending:
            future.cancel()
        wait(pending)
