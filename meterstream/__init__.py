"""meterstream: self-hosted smart-meter streaming, anomaly detection and a queryable lake."""

from __future__ import annotations

from importlib import metadata

try:
    __version__ = metadata.version("meterstream")
except metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
