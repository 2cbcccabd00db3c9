"""Settings of the worker processes that ``fit_many(n_jobs=...)`` fits in.

A worker process starts with glibc's default heap: memory blocks above
128 KiB come from ``mmap`` until frees teach malloc otherwise, and the top
of the heap is handed back to the system as soon as 128 KiB lie free there.
The batched core allocates and frees arrays of a few MiB many times per
block, so in a fresh process each of them faults its pages in afresh: a
block of 125 genes x 5,000 cells took 0.42-0.52 s in a spawned worker against
0.20-0.25 s in the calling process (whose heap had settled).  With both
thresholds at :data:`HEAP_THRESHOLD` the worker took 0.22-0.30 s.  The cost
is that up to that much freed memory stays with each worker process.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import platform
import sys

__all__ = ["HEAP_THRESHOLD", "in_worker_process", "tune_malloc"]

HEAP_THRESHOLD = 256 * 2**20
"""glibc's mmap and trim thresholds in the workers: 256 MiB, above any array of one block."""

# mallopt parameter numbers, from glibc's malloc.h
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

_tuned = False


def in_worker_process() -> bool:
    """Whether this is a child process that a local pool (joblib's loky) started.

    A Dask worker is not counted: its malloc settings are the cluster's to
    choose (``distributed.nanny.pre-spawn-environ``, see the many-responses
    docs).

    Examples
    --------
    >>> in_worker_process()
    False
    """
    if multiprocessing.parent_process() is None:
        return False
    distributed = sys.modules.get("distributed")
    if distributed is not None:
        try:
            distributed.get_worker()
            return False
        except ValueError:
            pass
    return True


def tune_malloc() -> bool:
    """Set this process's glibc mmap and trim thresholds to :data:`HEAP_THRESHOLD`, once.

    Returns whether the settings are in place: False where the C library
    is not glibc (macOS, musl, Windows), which have no such thresholds.

    Examples
    --------
    A task that pool workers run calls it first; the calling process is
    left as it is:

    >>> def task(block):
    ...     if in_worker_process():
    ...         tune_malloc()
    ...     return block
    >>> task(3)
    3
    """
    global _tuned
    if _tuned:
        return True
    if sys.platform != "linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    _tuned = (mallopt(_M_MMAP_THRESHOLD, HEAP_THRESHOLD) == 1
              and mallopt(_M_TRIM_THRESHOLD, HEAP_THRESHOLD) == 1)
    return _tuned
