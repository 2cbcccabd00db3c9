"""Timing and peak memory, each measured in a fresh worker process.

``python -m benchmarks.timing CONFIG ROWS GROUPS --repeat N [--memory]``
builds the data, runs the configuration and prints one JSON line.

Time: one untimed warm-up fit (imports, first-call caches), then the median
of ``--repeat`` wall-clock timings (``time.perf_counter``), with the split
into ``from_formula`` and ``fit``.  The numpy floor (:mod:`.floor`) is timed
in the same process just before and just after the fits, on the same data.

Memory (``--memory``, a separate fresh process, one fit): the peak resident
set size of the process while fitting, minus the resident size just before
(with the data frame already built).  Linux lets a process reset its own
high-water mark (``echo 5 > /proc/self/clear_refs`` resets ``VmHWM``), so the
number is the real peak of everything the fit touches -- numpy arrays,
pandas/patsy copies, BLAS/LAPACK workspace -- and not only what
``tracemalloc`` sees (numpy reports its buffers to tracemalloc, but compiled
libraries' own allocations are invisible to it, and tracing slows the fit).
glibc would otherwise keep freed blocks in its heap and let the fit reuse
memory freed while building the data, hiding part of the peak, so the worker
runs with ``MALLOC_MMAP_THRESHOLD_=65536``: every large array is its own
mapping and returns to the system when freed.  Where ``clear_refs`` or
``/proc`` is unavailable the worker falls back to ``tracemalloc``'s peak and
says so (``memory_method``).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import time

__all__ = ["run_worker", "measure"]

_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def _status_kib(field):
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def _reset_hwm():
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        _status_kib("VmHWM")
        return True
    except OSError:
        return False


def _peak_memory(run):
    """Peak extra memory of ``run()`` in MiB, and the method used."""
    gc.collect()
    if _reset_hwm():
        before = _status_kib("VmRSS")
        _reset_hwm()
        run()
        return (_status_kib("VmHWM") - before) / 1024.0, "rss-hwm"
    import tracemalloc

    tracemalloc.start()
    run()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2.0**20, "tracemalloc"


def _peak_tree_memory(run, interval=0.1):
    """Peak extra resident memory of this process and its children during ``run()``, MiB.

    Worker processes (``n_jobs > 1``) hold their own blocks, which this
    process's high-water mark does not see; their resident sizes are sampled
    with psutil every ``interval`` seconds and summed with this process's.
    Without psutil this is :func:`_peak_memory` (this process only).
    """
    try:
        import psutil
    except ImportError:
        return _peak_memory(run)
    import threading

    me = psutil.Process()

    def total():
        size = me.memory_info().rss
        for child in me.children(recursive=True):
            try:
                size += child.memory_info().rss
            except psutil.Error:
                pass
        return size

    gc.collect()
    before = total()
    peak = [before]
    done = threading.Event()

    def sample():
        while not done.wait(interval):
            peak[0] = max(peak[0], total())

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        run()
    finally:
        done.set()
        thread.join()
    peak[0] = max(peak[0], total())
    return (peak[0] - before) / 2.0**20, f"process tree rss, sampled every {interval} s"


def _worker(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("config")
    ap.add_argument("rows", type=int)
    ap.add_argument("groups", type=int)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--memory", action="store_true")
    args = ap.parse_args(argv)
    from .suite import CONFIGS, load_data, make_fit

    config = CONFIGS[args.config]
    if config.one_core and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    data = load_data(config, args.rows, args.groups)
    run = make_fit(config, data)
    out = {"config": config.name, "rows": args.rows, "groups": args.groups,
           "frame_mib": float(data.memory_usage(deep=True).sum()) / 2.0**20}
    if args.memory:
        out["peak_mib"], out["memory_method"] = _peak_memory(run)
    else:
        params, theta = run()                      # warm-up, untimed
        floors = _floor(config, data)
        times = []
        for _ in range(max(1, args.repeat)):
            t0 = time.perf_counter()
            params, theta = run()
            times.append(time.perf_counter() - t0)
        floors += _floor(config, data)
        phases = getattr(run, "phases", [])[1:]
        out.update(times=times, median=statistics.median(times),
                   params=[float(x) for x in params], theta=theta,
                   floor_s=statistics.median(floors) if config.simulated else None)
        if phases:
            out["formula_s"] = statistics.median(p[0] for p in phases)
            out["fit_s"] = statistics.median(p[1] for p in phases)
    print("RESULT " + json.dumps(out))


def _floor(config, data):
    """Timings of the numpy floor on this data (simulated configurations only)."""
    if not config.simulated:
        return []
    from .floor import time_floor

    return time_floor(data, "slide")


def run_worker(config, rows, groups, repeat=3, memory=False, timeout=1800):
    """Run one worker process and return its JSON result as a dict."""
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    if memory:
        env["MALLOC_MMAP_THRESHOLD_"] = "65536"
    if config.one_core:
        env.update({k: "1" for k in _THREAD_VARS})
    cmd = [sys.executable, "-m", "benchmarks.timing", config.name, str(rows), str(groups),
           "--repeat", str(repeat)] + (["--memory"] if memory else [])
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")]
    if out.returncode != 0 or not lines:
        raise RuntimeError(f"benchmark worker failed ({' '.join(cmd[2:])}):\n"
                           f"{out.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def measure(config, rows, groups, repeat=3, memory=True):
    """Timing (and, if ``memory``, peak memory) of one configuration."""
    res = run_worker(config, rows, groups, repeat=repeat)
    if memory:
        mem = run_worker(config, rows, groups, memory=True)
        res["peak_mib"], res["memory_method"] = mem["peak_mib"], mem["memory_method"]
        res["frame_mib"] = mem["frame_mib"]
    return res


if __name__ == "__main__":
    _worker()
