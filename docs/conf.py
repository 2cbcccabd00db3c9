"""Sphinx configuration for glmmnb."""

import glmmnb

project = "glmmnb"
author = "glmmnb developers"
release = glmmnb.__version__
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.napoleon",
]
autosummary_generate = True
napoleon_google_docstring = False
exclude_patterns = ["_build"]
html_theme = "alabaster"
nitpicky = False
