"""Largest differences to R per quantity and case: the figures behind tolerances.REGRESSION.

Run from the repository root: ``python tests/measure_reference_diffs.py``.
Each entry is max relative / max absolute difference.
"""
import sys
import warnings

import numpy as np
sys.path[:0] = [".", "tests"]
from conftest import DATA, REFERENCE, fit_case, load_case
CASES = sorted(p for p in REFERENCE.iterdir() if p.is_dir()) + sorted(p for p in (DATA / "r").iterdir() if p.is_dir())
def rel(a, b):
    a, b = np.ravel(np.asarray(a, float)), np.ravel(np.asarray(b, float))
    return np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)), np.max(np.abs(a-b))
rows = {}
for p in CASES:
    d, e = load_case(p)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = fit_case(d, e)
    q = e["pql"]; n, k = r.nobs, len(r.params)
    out = {
        "theta": rel(r.theta, e["theta"]),
        "params": rel(r.params, q["params"]), "bse": rel(r.bse, q["bse"]),
        "tvalues": rel(r.tvalues, q["tvalues"]), "pvalues": rel(r.pvalues, q["pvalues"]),
        "cov_params": rel(np.asarray(r.cov_params()) * (n - k) / n, q["cov_params"]),
        "resid_sd": rel(np.sqrt(r.scale), q["resid_sd"]),
        "fitted_head": rel(np.log(np.asarray(r.fittedvalues)[:10]), q["fitted_head"]),
        "cov_re": rel(np.asarray(r.cov_re), q["cov_re"][e["groups"]]),
    }
    for nm in (e.get("vc_formula") or {}):
        i = list(r.model.vc_names).index(nm)
        out["vc_" + nm] = rel(r.vcomp[i], q["cov_re"][nm][0][0])
    if q.get("ranef"):
        out["ranef"] = rel(r.ranef().loc[q["ranef"]["groups"]].to_numpy(), q["ranef"]["values"])
    if e["theta_source"] == "glm.nb":
        out["se_theta"] = rel(r.se_theta, e["glm_nb"]["se_theta"])
    print(p.name, " ".join(f"{k}={v[0]:.1e}/{v[1]:.1e}" for k, v in out.items()))
