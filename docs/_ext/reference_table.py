"""Sphinx extension: fit every stored R reference case at build time and tabulate.

The comparison page then always shows what the code in this checkout gives,
next to R's numbers, instead of figures pasted once and left to rot.
"""

import json
import pathlib

import numpy as np
import pandas as pd

REFERENCE = pathlib.Path(__file__).resolve().parents[2] / "tests" / "data" / "reference"


def _fit(folder):
    from glmmnb import NegBinMixedGLM

    exp = json.loads((folder / "expected.json").read_text())
    data = pd.read_csv(folder / "data.csv")
    if exp.get("rows"):
        data = data.iloc[exp["rows"]]
    offset = np.log(data["exposure"].to_numpy()) if exp.get("offset") else None
    theta = exp["theta"] if exp["theta_source"] == "fixed" else None
    res = NegBinMixedGLM.from_formula(
        exp["formula"], data, groups=exp["groups"], re_formula=exp.get("re_formula"),
        vc_formula=exp.get("vc_formula"), offset=offset, theta=theta).fit()
    return res, exp


def _row(folder):
    res, exp = _fit(folder)
    pql = exp["pql"]
    rel = lambda a, b: float(np.max(np.abs(np.asarray(a) / np.asarray(b) - 1)))  # noqa: E731
    return [
        folder.name, f"{int(res.nobs)}", f"{exp['theta']:.4g}",
        f"{rel(res.theta, exp['theta']):.1e}", f"{rel(res.params, pql['params']):.1e}",
        f"{rel(res.bse, pql['bse']):.1e}",
        "yes" if res.ddf.tolist() == pql["df"] else "NO",
        f"{rel(res.pvalues, pql['pvalues']):.1e}",
        f"{rel(np.sqrt(res.scale), pql['resid_sd']):.1e}",
        f"{res.n_iter} / {pql['n_iter']}",
    ]


def _table():
    head = ["case", "N", "theta", "theta rel. diff", "params max rel. diff",
            "bse max rel. diff", "DF identical", "p max rel. diff", "sigma rel. diff",
            "iterations (ours / R)"]
    rows = [_row(f) for f in sorted(p for p in REFERENCE.iterdir() if p.is_dir())]
    lines = [".. list-table::", "   :header-rows: 1", ""]
    for row in [head] + rows:
        lines.append("   * - " + row[0])
        lines.extend(f"     - {cell}" for cell in row[1:])
    return "\n".join(lines) + "\n"


def _write(app):
    out = pathlib.Path(app.srcdir) / "_generated"
    out.mkdir(exist_ok=True)
    (out / "reference_table.rst").write_text(_table())


def setup(app):
    app.connect("builder-inited", _write)
    return {"version": "1", "parallel_read_safe": True}
