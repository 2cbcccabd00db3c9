"""Sphinx configuration for glmmnb."""

import pathlib
import sys

# the checkout's glmmnb, also when it is not installed
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(pathlib.Path(__file__).parent / "_ext"))

import glmmnb  # noqa: E402

project = "glmmnb"
author = "glmmnb developers"
release = glmmnb.__version__
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.napoleon",
    "matplotlib.sphinxext.plot_directive",
    "reference_table",
    "runblock",
    "r_names",
]
autosummary_generate = True
# The numpydoc Parameters sections already give every type; in signatures the
# hints would spell numpy's ArrayLike out as its long Union.  So hints only fill
# in types a docstring leaves out, and signatures stay as statsmodels shows them.
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented_params"
napoleon_google_docstring = False
exclude_patterns = ["_build", "_generated"]
plot_include_source = True
plot_html_show_source_link = False
plot_formats = [("png", 100)]
html_theme = "alabaster"
nitpicky = False
