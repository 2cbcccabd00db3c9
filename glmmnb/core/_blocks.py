"""Row blocks for the fused elementwise passes of the numerical modules.

Each pass over a million-row array streams it through memory, and a fresh
temporary of 8 MB or more is fresh pages from the system; done block by
block the temporaries stay in cache.  The elements are computed by the same
operations; only sums are accumulated block by block.  Below 10,000 elements
OpenBLAS keeps its dot products on one thread: a threaded ddot waits for a
second core, which costs milliseconds when that core is busy.
"""

from __future__ import annotations

import numpy as np

__all__ = ["BLOCK", "blocks", "sum_log"]

BLOCK = 8192


def blocks(n: int) -> list[slice]:
    """Slices covering ``range(n)`` in blocks of ``BLOCK`` rows.

    Examples
    --------
    >>> blocks(3)
    [slice(0, 3, None)]
    """
    return [slice(a, min(a + BLOCK, n)) for a in range(0, n, BLOCK)]


def sum_log(w: np.ndarray) -> float:
    """``np.log(w).sum()``, block by block.

    Examples
    --------
    >>> import numpy as np
    >>> float(sum_log(np.full(3, np.e)))
    3.0
    """
    total = 0.0
    for s in blocks(w.shape[0]):
        total += np.log(w[s]).sum()
    return total
