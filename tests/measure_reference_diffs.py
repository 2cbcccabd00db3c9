"""Largest differences to R per quantity: the figures behind tolerances.REGRESSION.

Run from the repository root: ``python tests/measure_reference_diffs.py``.
Prints, per quantity, the largest relative (and absolute) difference to R over
all stored cases and the case where it occurs. Random-effect variances below
``NEAR_ZERO_VARIANCE`` are reported apart, as absolute differences.
"""

import pathlib
import sys
import warnings

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

from conftest import fit_case, load_case  # noqa: E402
from test_reference_r import CASES, _ranef_levels  # noqa: E402
from tolerances import NEAR_ZERO_VARIANCE  # noqa: E402


def _rel(got, want):
    got, want = np.ravel(np.asarray(got, float)), np.ravel(np.asarray(want, float))
    diff = np.abs(got - want)
    return float(np.max(diff / np.maximum(np.abs(want), 1e-300), initial=0.0))


def _abs(got, want):
    return float(np.max(np.abs(np.ravel(got) - np.ravel(want)), initial=0.0))


def case_diffs(folder):
    """{quantity: difference} of one case."""
    data, exp = load_case(folder)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = fit_case(data, exp)
    pql, n, p = exp["pql"], res.nobs, len(res.params)
    out = {"theta": _rel(res.theta, exp["theta"]), "params": _rel(res.params, pql["params"]),
           "bse": _rel(res.bse, pql["bse"]), "tvalues": _rel(res.tvalues, pql["tvalues"]),
           "pvalues": _rel(res.pvalues, pql["pvalues"]),
           "cov_params": _rel(np.asarray(res.cov_params()) * (n - p) / n, pql["cov_params"]),
           "resid_sd": _rel(np.sqrt(res.scale), pql["resid_sd"]),
           "fitted (abs)": _abs(np.log(np.asarray(res.fittedvalues)[:10]), pql["fitted_head"])}
    if exp["theta_source"] == "glm.nb":
        out["se_theta"] = _rel(res.se_theta, exp["glm_nb"]["se_theta"])
    got = {exp["groups"]: np.asarray(res.cov_re)}
    got.update({name: np.array([[v]]) for name, v in zip(res.model.vc_names, res.vcomp)})
    for level, cov in got.items():
        want = np.atleast_2d(pql["cov_re"][level])
        var_w, var_g = np.diag(want), np.diag(cov)
        low = var_w < NEAR_ZERO_VARIANCE
        sd_w, sd_g = np.sqrt(var_w), np.sqrt(np.clip(var_g, 0, None))
        out["boundary variance (abs)"] = max(out.get("boundary variance (abs)", 0.0),
                                             _abs(var_g[low], var_w[low]))
        out["re_sd"] = max(out.get("re_sd", 0.0), _rel(sd_g[~low], sd_w[~low]))
        if (~low).sum() > 1:
            corr = cov / np.outer(sd_g, sd_g) - want / np.outer(sd_w, sd_w)
            out["correlation (abs)"] = float(np.abs(corr).max())
    for level, groups, values in _ranef_levels(folder):
        frame = res.ranef() if level == exp["groups"] else res.ranef(level)
        diff = np.abs(frame.loc[groups].to_numpy() - np.asarray(values, float))
        var = np.diag(np.atleast_2d(pql["cov_re"][level]))
        key = "ranef at boundary (abs)" if (var < NEAR_ZERO_VARIANCE).any() else "ranef (abs / SD)"
        scaled = diff if key.endswith("(abs)") else diff / np.sqrt(var)
        out[key] = max(out.get(key, 0.0), float(scaled.max()))
    return out


def main():
    worst = {}
    for folder in CASES:
        for quantity, value in case_diffs(folder).items():
            if value >= worst.get(quantity, (-1.0, ""))[0]:
                worst[quantity] = (value, folder.name)
    for quantity, (value, case) in worst.items():
        print(f"{quantity:26s} {value:8.1e}  ({case})")


if __name__ == "__main__":
    main()
