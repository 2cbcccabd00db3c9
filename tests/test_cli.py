"""The command line: demo, fit, JSON output and one-line errors with exit code 2."""

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import REFERENCE, printed_random_effect
from glmmnb.cli import main


def test_demo_prints_r_numbers(capsys):
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    for piece in ("1.6174", "0.3988", "0.0492", "0.0647", "196", "0.0253", "0.9936"):
        assert piece in out, piece
    _, sd = printed_random_effect(out, "slide: (Intercept)")
    assert sd == pytest.approx(0.0097186, rel=1e-3)     # R's VarCorr(glmm)


def test_module_entry_point_runs():
    proc = subprocess.run([sys.executable, "-m", "glmmnb", "--help"], capture_output=True,
                          text=True, check=True)
    assert "demo" in proc.stdout and "fit" in proc.stdout


def test_fit_json_with_exposure(capsys):
    path = REFERENCE / "v05_offset" / "data.csv"
    expected = json.loads((REFERENCE / "v05_offset" / "expected.json").read_text())
    code = main(["fit", str(path), "--formula", "counts ~ treatment", "--groups", "slide",
                 "--exposure", "exposure", "--format", "json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out["params"].values()) == pytest.approx(expected["pql"]["params"], rel=1e-4)
    assert list(out["ddf"].values()) == expected["pql"]["df"]


def test_fit_text_with_fixed_theta(capsys):
    path = REFERENCE / "v08_fixed_theta" / "data.csv"
    assert main(["fit", str(path), "--formula", "counts ~ treatment", "--groups", "slide",
                 "--theta", "2"]) == 0
    assert "2 (fixed)" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["fit", "no-such.csv", "--formula", "y ~ 1", "--groups", "g"], "cannot read"),
    (["fit", str(REFERENCE / "v01_seed" / "data.csv"), "--formula", "counts ~ RNAi",
      "--groups", "plate"], "column 'plate' is not in"),
    (["fit", str(REFERENCE / "v01_seed" / "data.csv"), "--formula", "counts ~ nothere",
      "--groups", "slide"], "nothere"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


# --- issue 9: valid JSON, the nested and missing options, one-line warnings -----

@pytest.fixture
def day1_csv(tmp_path, seed_data):
    """Day 1 only: the RNAi effect has 0 denominator df, so its p-value is NaN (as in R)."""
    path = tmp_path / "day1.csv"
    seed_data[seed_data["experiment"] == "day1"].to_csv(path, index=False)
    return path


def _strict_json(text):
    def reject(constant):
        raise AssertionError(f"invalid JSON constant {constant}")

    return json.loads(text, parse_constant=reject)


def test_json_writes_null_for_nan(capsys, day1_csv):
    code = main(["fit", str(day1_csv), "--formula", "counts ~ RNAi", "--groups", "slide",
                 "--format", "json"])
    assert code == 0
    out = _strict_json(capsys.readouterr().out)
    assert out["pvalues"]["RNAi[T.Target]"] is None
    assert out["ddf"]["RNAi[T.Target]"] == 0


def test_warnings_are_one_clean_line_each(capsys, day1_csv):
    assert main(["fit", str(day1_csv), "--formula", "counts ~ RNAi", "--groups", "slide"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err and all(line.startswith("glmmnb: warning: ") for line in err)
    assert any("0 denominator df" in line for line in err)
    assert len(err) == len(set(err))


def test_vc_formula_option_matches_r(capsys):
    case = REFERENCE / "v11_nested"
    expected = json.loads((case / "expected.json").read_text())
    for spec in ("slide", "slide=0 + C(slide)"):
        code = main(["fit", str(case / "data.csv"), "--formula", expected["formula"],
                     "--groups", expected["groups"], "--vc-formula", spec, "--format", "json"])
        assert code == 0
        out = _strict_json(capsys.readouterr().out)
        assert list(out["params"].values()) == pytest.approx(expected["pql"]["params"],
                                                             rel=1e-4)
        assert list(out["ddf"].values()) == expected["pql"]["df"]


def test_missing_drop_option(capsys, tmp_path, seed_data):
    path = tmp_path / "gap.csv"
    seed_data.assign(counts=seed_data["counts"].astype(float).where(seed_data.index != 4)
                     ).to_csv(path, index=False)
    argv = ["fit", str(path), "--formula", "counts ~ RNAi", "--groups", "slide",
            "--format", "json"]
    assert main(argv) == 2
    assert "missing values" in capsys.readouterr().err
    assert main(argv + ["--missing", "drop"]) == 0
    assert _strict_json(capsys.readouterr().out)["nobs"] == 199


def test_fit_failure_is_one_line(capsys, tmp_path, seed_data):
    path = tmp_path / "exact.csv"
    exact = seed_data.assign(counts=np.where(seed_data["RNAi"] == "Target", 5, 3))
    exact.to_csv(path, index=False)
    assert main(["fit", str(path), "--formula", "counts ~ RNAi", "--groups", "slide"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("glmmnb: error: FloatingPointError")


def test_re_formula_option_matches_r(capsys):
    case = REFERENCE / "v06_random_slope"
    expected = json.loads((case / "expected.json").read_text())
    code = main(["fit", str(case / "data.csv"), "--formula", expected["formula"],
                 "--groups", expected["groups"], "--re-formula", expected["re_formula"],
                 "--format", "json"])
    assert code == 0
    out = _strict_json(capsys.readouterr().out)
    assert list(out["params"].values()) == pytest.approx(expected["pql"]["params"], rel=1e-4)
