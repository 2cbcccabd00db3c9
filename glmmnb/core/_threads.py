"""One BLAS thread around small dense work.

scipy's L-BFGS-B makes BLAS calls on vectors of a few elements, and waking
OpenBLAS's second thread for each costs milliseconds on a busy machine: at
1e5 rows with a random slope it spent 1.3 s of a 2.3 s fit there with the
default threads and nothing with one (README, Performance).  A tall product
with a tiny inner dimension suffers too: the model's ``exog @ T`` (1e6 x 3
times 3 x 3) took 0.36 s with two threads and 0.015 s with one.  The variance
optimiser and that product therefore run inside this limit; the passes over
all rows with a wide inner dimension keep the caller's threads.  The caller's
setting is restored on leaving.
"""

from __future__ import annotations

import contextlib

__all__ = ["one_blas_thread"]

_CONTROLLER = None


def one_blas_thread() -> contextlib.AbstractContextManager:
    """A context in which the loaded BLAS libraries use one thread.

    The controller is built once (building it scans the loaded libraries,
    ~8 ms); entering the limit then costs ~0.1 ms.

    Examples
    --------
    >>> import numpy as np
    >>> with one_blas_thread():
    ...     float(np.ones(3) @ np.ones(3))
    3.0
    """
    global _CONTROLLER
    if _CONTROLLER is None:
        from threadpoolctl import ThreadpoolController

        _CONTROLLER = ThreadpoolController()
    if not _CONTROLLER.select(user_api="blas").lib_controllers:
        return contextlib.nullcontext()
    return _CONTROLLER.limit(limits=1, user_api="blas")
