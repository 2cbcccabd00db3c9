"""Workflows built on a fitted model: subsampling studies, distribution checks, plots."""
