"""Command line: ``python -m benchmarks [--sizes 1e5,1e6,1e7] [--quick] ...``.

Prints one row per configuration: glmmnb's median wall time and peak extra
memory, R's time for ``glm.nb`` + ``glmmPQL`` on the identical data, the
speed ratio, the largest relative difference of the fixed effects and
whether the two agree (every fixed effect and theta within 1e-4 relative).
R runs only where ``Rscript`` with MASS and nlme is installed, and by
default only up to 1e5 rows (about 5 s there; 1e6 rows take minutes):
raise ``--r-max-rows`` to time it on more.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import platform
import sys

from . import r_runner, suite, timing

AGREE_RTOL = 1e-4
QUICK_SIZES = [10_000, 100_000]
DEFAULT_SIZES = [100_000, 1_000_000, 10_000_000]


def _sizes(text):
    return [int(float(s)) for s in text.split(",") if s.strip()]


def _rel_diff(a, b):
    return max(abs(x - y) / max(abs(y), 1e-12) for x, y in zip(a, b))


def _fmt(x, spec):
    return "-" if x is None else format(x, spec)


def scaling_exponent(rows):
    """Least-squares slope of log(time) on log(rows) for the ``ri`` rows, 1e5..1e7."""
    pts = [(math.log(r["rows"]), math.log(r["glmmnb_s"])) for r in rows
           if r["config"] == "ri" and 100_000 <= r["rows"] <= 10_000_000]
    if len(pts) < 2:
        return None
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    sxx = sum((p[0] - mx) ** 2 for p in pts)
    return sum((p[0] - mx) * (p[1] - my) for p in pts) / sxx


def _parser():
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=_sizes, default=None,
                    help="comma-separated row counts (groups = rows / 100); "
                         "default 1e5,1e6,1e7 (quick: 1e4,1e5)")
    ap.add_argument("--repeat", type=int, default=None,
                    help="timed repeats per configuration, median reported (default 5, quick 3)")
    ap.add_argument("--no-r", action="store_true", help="do not time R")
    ap.add_argument("--r-max-rows", type=int, default=100_000,
                    help="time R only up to this many rows (default 1e5)")
    ap.add_argument("--r-repeat", type=int, default=1, help="timed R repeats (default 1)")
    ap.add_argument("--no-memory", action="store_true", help="skip the peak-memory runs")
    ap.add_argument("--configs", default="ri,rs,subsample",
                    help="comma-separated subset of ri,rs,subsample")
    ap.add_argument("--csv", metavar="PATH", help="also write the table as CSV")
    ap.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    ap.add_argument("--quick", action="store_true",
                    help="small sizes and few repeats (well under a minute)")
    return ap


def _run_one(config, n, g, args, repeat, use_r):
    """Time one configuration (and R on the same data where asked); one table row."""
    res = timing.measure(config, n, g, repeat=repeat, memory=not args.no_memory)
    row = {"config": config.name, "rows": n, "groups": g, "glmmnb_s": res["median"],
           "glmmnb_times": res["times"], "peak_mib": res.get("peak_mib"),
           "memory_method": res.get("memory_method"), "params": res["params"],
           "theta": res["theta"], "r_s": None, "ratio": None, "max_rel_diff": None,
           "agree": None}
    if use_r and config.r_lhs is not None and n <= args.r_max_rows:
        data = suite.load_data(config, n, g)
        r = r_runner.time_r(data, suite.FORMULA, "slide", config.r_lhs,
                            repeat=args.r_repeat)
        diff = _rel_diff(res["params"], r.params)
        theta_diff = abs(res["theta"] - r.theta) / r.theta
        row.update(r_s=r.median, r_times=r.times, r_params=r.params, r_theta=r.theta,
                   ratio=r.median / res["median"], max_rel_diff=diff,
                   theta_rel_diff=theta_diff,
                   agree="yes" if max(diff, theta_diff) <= AGREE_RTOL else "no")
    return row


def _write(rows, args, repeat, expo):
    header = ["config", "rows", "groups", "glmmnb_s", "peak_mib", "r_s", "ratio",
              "max_rel_diff", "agree"]
    if args.csv:
        with open(args.csv, "w", newline="") as fh:
            wr = csv.DictWriter(fh, fieldnames=header, extrasaction="ignore")
            wr.writeheader()
            wr.writerows(rows)
    if args.json:
        meta = {"python": sys.version.split()[0], "platform": platform.platform(),
                "repeat": repeat, "scaling_exponent": expo, "agree_rtol": AGREE_RTOL}
        with open(args.json, "w") as fh:
            json.dump({"meta": meta, "results": rows}, fh, indent=2)


def main(argv=None):
    args = _parser().parse_args(argv)
    sizes = args.sizes or (QUICK_SIZES if args.quick else DEFAULT_SIZES)
    repeat = args.repeat or (3 if args.quick else 5)
    wanted = set(args.configs.split(","))
    use_r = False
    if not args.no_r:
        use_r = r_runner.r_available()
        if not use_r:
            print("R not found (Rscript with MASS and nlme): R is not timed", flush=True)
    print(f"{'config':<10}{'rows':>10}{'groups':>8}{'glmmnb s':>10}{'peak MiB':>10}"
          f"{'R s':>9}{'ratio':>8}{'max rel diff':>14}{'agree':>7}", flush=True)
    rows = []
    for config, n, g in suite.plan(sizes, quick=args.quick):
        if config.name not in wanted:
            continue
        row = _run_one(config, n, g, args, repeat, use_r)
        rows.append(row)
        print(f"{config.name:<10}{n:>10}{g:>8}{row['glmmnb_s']:>10.3f}"
              f"{_fmt(row['peak_mib'], '.0f'):>10}{_fmt(row['r_s'], '.2f'):>9}"
              f"{_fmt(row['ratio'], '.1f'):>8}{_fmt(row['max_rel_diff'], '.1e'):>14}"
              f"{row['agree'] or '-':>7}", flush=True)
    expo = scaling_exponent(rows)
    if expo is not None:
        print(f"scaling exponent of the ri fit time, 1e5..1e7 rows: {expo:.2f} "
              "(1 = linear)")
    _write(rows, args, repeat, expo)
    return 0


if __name__ == "__main__":
    sys.exit(main())
