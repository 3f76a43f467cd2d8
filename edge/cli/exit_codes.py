"""Compatibility name of :mod:`edge.exit_codes` (the codes shared by the three programs)."""

from edge.exit_codes import (
    INPUT_MISSING,
    INPUT_UNREADABLE,
    INTERNAL,
    INTERRUPTED,
    MODEL,
    NO_SOURCE,
    OK,
    OUTPUT,
    TABLE,
    USAGE,
    fail,
    table_text,
)

__all__ = ["OK", "INTERNAL", "USAGE", "MODEL", "INPUT_MISSING", "INPUT_UNREADABLE", "NO_SOURCE", "OUTPUT",
           "INTERRUPTED", "TABLE", "fail", "table_text"]
