"""Largest differences between glmmnb and the R references in this folder.

Usage, from the repository root::

    PYTHONPATH=. python tests/data/inference/compare_with_r.py

One row per case: relative differences of the anova F and p-values (both
types; denDF compared for equality), of the Satterthwaite df (coefficients
and terms) against lmerTest, of the fixed-effect intervals against
``intervals(fit)``, and of the variance-parameter limits against R's
``intervals`` with a converged finite-difference step (``.relStep = 1e-4``),
absolute on nlme's transformed scale (log SD, log((1 + r) / (1 - r))) and
relative for sigma.
tests/test_inference.py asserts these with tolerances; this prints them.
"""

import json
import pathlib
import warnings

import numpy as np
import pandas as pd

from glmmnb import NegBinMixedGLM

HERE = pathlib.Path(__file__).parent


def _rel(a, b, floor=1e-8):
    a, b = np.asarray(a, float), np.asarray(b, float)
    keep = np.abs(b) > floor
    return float(np.max(np.abs(a[keep] / b[keep] - 1))) if keep.any() else 0.0


def _natural(values, names):
    v = np.asarray(values, float)
    cor = np.array([n.startswith("cor(") for n in names], dtype=bool)
    return np.where(cor[:, None], np.log((1 + v) / (1 - v)), np.log(np.abs(v)))


def _varcov(res, ref):
    """Largest difference on the transformed scale; a variance at zero (R: limits 0
    and Inf) counts as its SD difference if glmmnb's limits are 0 and Inf too."""
    if "reStruct" not in ref:
        return np.nan
    iv = res.intervals()
    worst = 0.0
    for name, frame in iv.random.items():
        r = ref["reStruct"][name]
        theirs = np.column_stack([np.atleast_1d(np.array(r[k], dtype=float))
                                  for k in ("lower", "est", "upper")])
        flat = np.isnan(theirs[:, 2])
        ours = frame.to_numpy()
        if not np.array_equal(np.isinf(ours[:, 2]), flat):
            return np.inf
        worst = max(worst, float(np.max(np.abs(ours[flat, 1] - theirs[flat, 1]), initial=0)))
        names = frame.index[~flat]
        diff = _natural(ours[~flat], names) - _natural(theirs[~flat], names)
        worst = max(worst, float(np.max(np.abs(diff), initial=0)))
    s = ref["sigma"]
    return max(worst, _rel(iv.sigma.to_numpy(), [s["lower"], s["est"], s["upper"]]))


def compare(path):
    exp = json.loads(path.read_text())
    data = pd.read_csv(HERE.parent / exp["data_file"])
    offset = np.log(data["exposure"].to_numpy()) if exp["offset"] else None
    model = NegBinMixedGLM.from_formula(exp["formula"], data, groups=exp["groups"],
                                        re_formula=exp["re_formula"],
                                        vc_formula=exp["vc_formula"], offset=offset)
    res, satt = model.fit(), model.fit(ddf="satterthwaite")
    row = {"case": path.stem}
    for kind in ("marginal", "sequential"):
        table, ref = res.anova(kind), exp[f"anova_{kind}"]
        row[f"{kind[:3]} F"] = _rel(table["F-value"], ref["F"])
        row[f"{kind[:3]} p"] = _rel(table["p-value"], ref["p"])
        row[f"{kind[:3]} denDF equal"] = bool(np.all(table["denDF"].to_numpy() == ref["denDF"]))
    lmer = exp["satterthwaite"]
    row["satt df"] = _rel(satt.ddf, lmer["df"])
    row["satt term df"] = _rel(satt.anova("marginal")["denDF"], [t["DenDF"] for t in lmer["terms"]])
    fixed = exp["intervals"]["fixed"]
    row["fixed ivl"] = _rel(res.intervals(which="fixed").fixed.to_numpy(),
                            np.column_stack([fixed["lower"], fixed["est"], fixed["upper"]]))
    row["var-cov ivl (1e-4 step)"] = _varcov(res, exp["intervals_relstep_1e4"])
    return row


if __name__ == "__main__":
    warnings.simplefilter("ignore")
    rows = [compare(p) for p in sorted(HERE.glob("*.json"))]
    frame = pd.DataFrame(rows).set_index("case")
    print(frame.to_string(float_format=lambda x: f"{x:.1e}"))
    print("var-cov: for a variance at zero (R's limits 0 and Inf) the SD difference")
