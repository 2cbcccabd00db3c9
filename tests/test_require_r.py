"""GLMMNB_REQUIRE_R=1 turns the skip of a live R test into a failure."""

import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
TEST = """
from conftest import requires_r

@requires_r
def test_needs_r():
    pass
"""


@pytest.mark.parametrize("require, code, word", [("", 0, "1 skipped"), ("1", 1, "1 error")])
def test_without_rscript(tmp_path, require, code, word):
    (tmp_path / "test_live.py").write_text(TEST)
    (tmp_path / "conftest.py").write_text((ROOT / "tests" / "conftest.py").read_text())
    # a PATH with this Python and nothing else: no Rscript
    env = {**os.environ, "PATH": str(pathlib.Path(sys.executable).parent),
           "GLMMNB_REQUIRE_R": require}
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "-c", os.devnull, "--rootdir", str(tmp_path), str(tmp_path)],
                         capture_output=True, text=True, env=env, cwd=tmp_path)
    assert out.returncode == code, out.stdout
    assert word in out.stdout
    if require:
        assert "GLMMNB_REQUIRE_R=1 but Rscript is" in out.stdout
