"""One BLAS thread inside a fit.

The dense work of a fit is small (p x p systems, 2 x 2 to 10 x 10 stacks,
the few-parameter L-BFGS-B of the variance optimiser) or already cut into
cache-sized blocks, and OpenBLAS's threads only add the cost of waking a
second core, which on a busy machine is milliseconds per call: at 1e5 rows
with a random slope, scipy's L-BFGS-B spent 1.3 s of a 2.3 s fit waiting in
its BLAS calls with the default threads and nothing with one (README,
Performance).  The limit holds during the fit only; the caller's setting is
restored afterwards.
"""

from __future__ import annotations

import contextlib

__all__ = ["one_blas_thread"]

_CONTROLLER = None


def one_blas_thread():
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
