"""Errors of the constructs package."""

from __future__ import annotations


class LayerBuildError(Exception):
    """A layer or function bundle could not be built; the message says why and what to do."""


class WheelDownloadError(LayerBuildError):
    """The package index could not be reached or had no suitable wheel."""
