"""Merge Lambda Coverage data files into one report."""

from coverage_combiner.__about__ import __version__

__all__ = ["__version__"]
