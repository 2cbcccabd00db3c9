"""Sphinx configuration for glmmnb."""

import pathlib
import sys

import glmmnb

sys.path.insert(0, str(pathlib.Path(__file__).parent / "_ext"))

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
]
autosummary_generate = True
napoleon_google_docstring = False
exclude_patterns = ["_build", "_generated"]
plot_include_source = True
plot_html_show_source_link = False
plot_formats = [("png", 100)]
html_theme = "alabaster"
nitpicky = False
