"""The command line: demo, fit, JSON output and one-line errors with exit code 2."""

import json
import subprocess
import sys

import pytest

from conftest import REFERENCE
from glmmnb.cli import main


def test_demo_prints_r_numbers(capsys):
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    for piece in ("1.6174", "0.3988", "0.0492", "0.0647", "196", "0.0253", "0.009717", "0.9936"):
        assert piece in out, piece


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
