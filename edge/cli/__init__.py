"""The ``edge-fer`` command line."""

from edge.cli.main import main

__all__ = ["main"]
