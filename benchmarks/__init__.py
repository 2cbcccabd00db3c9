"""Benchmarks of glmmnb against R's glm.nb + glmmPQL: ``python -m benchmarks``.

Modules: :mod:`.data` (deterministic simulated data), :mod:`.suite` (the
configurations), :mod:`.timing` (median wall time and peak memory, each in a
fresh worker process), :mod:`.r_runner` (the same data fitted by R inside
``Rscript``) and :mod:`.__main__` (the command line and the table).
"""
